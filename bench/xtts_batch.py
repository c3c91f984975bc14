"""Batched XTTS decoding: audio tokens per second and time to first chunk, 1 vs N concurrent requests.

Full-size XTTS-v2 architecture (30 GPT layers, width 1024, 16 heads; random
weights in the genuine checkpoint layout, loaded through the real engine),
streaming through ``XttsEngine.synthesize`` -- the path the server, Wyoming
and batch use -- so prefill, the shared decoding loop and the per-request
vocoder are all in the figures. Every request decodes exactly ``--tokens``
tokens (random weights never emit the stop token; the checkpoint's
``gpt_max_audio_tokens`` bounds them).

Prints, per concurrency: tokens/s (all requests' tokens over the wall time),
mean and worst time to the first streamed chunk; then the ratios against
concurrency 1 measured in the same run, and coqui's own unbatched
``inference_stream`` for one request as a baseline.

    python bench/xtts_batch.py [--tokens 12] [--chunk 6] [--concurrency 1 4] [--device cpu] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as demod_voice.cli.main does, before torch loads

from bench._common import machine  # noqa: E402

TEXT = "The lighthouse keeper wrote in his journal every evening."


def run_concurrent(engine, latents, concurrency: int, chunk: int, seed0: int = 0) -> dict:
    """``concurrency`` threads released together, each streaming one request; timings per request."""
    gate = threading.Barrier(concurrency + 1)
    first: list[float] = [0.0] * concurrency
    done: list[float] = [0.0] * concurrency
    errors: list[BaseException] = []
    start = [0.0]

    def one(i: int) -> None:
        gate.wait()
        try:
            for n, _ in enumerate(engine.synthesize(TEXT, language="en", latents=latents, stream=True,
                                                    stream_chunk_size=chunk, seed=seed0 + i, top_k=50)):
                if n == 0:
                    first[i] = time.perf_counter() - start[0]
            done[i] = time.perf_counter() - start[0]
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(concurrency)]
    for t in threads:
        t.start()
    start[0] = time.perf_counter()
    gate.wait()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return {"ttfc_mean": statistics.mean(first), "ttfc_max": max(first), "wall": max(done)}


def prefix_cache_ttfc(engine, latents, chunk: int) -> dict:
    """TTFC of one request without the prefix cache, then of a first (computes) and a second (reuses) request.

    Also times the prefix's own prefill stage alone (median of 3), the most the cache can save a request.
    """
    import torch

    decoder = engine.scheduler.decoder
    out = {}
    engine.configure_batching(prefix_entries=0)
    out["without"] = run_concurrent(engine, latents, 1, chunk, seed0=7)["ttfc_mean"]
    engine.configure_batching(prefix_entries=8)
    decoder.prefixes.clear()
    out["first"] = run_concurrent(engine, latents, 1, chunk, seed0=7)["ttfc_mean"]
    out["second"] = run_concurrent(engine, latents, 1, chunk, seed0=7)["ttfc_mean"]
    tokens = torch.IntTensor(engine.model.tokenizer.encode(TEXT.lower(), lang="en")).unsqueeze(0)
    times = []
    with torch.inference_mode():
        prompt = decoder.prompt(latents.gpt_cond_latent.to(engine.model.device), tokens.to(engine.model.device))
        p = decoder.prefix_len(latents.gpt_cond_latent)
        for _ in range(3):
            started = time.perf_counter()
            decoder._stage(prompt[:p], None)
            times.append(time.perf_counter() - started)
    out["prefix_s"] = statistics.median(times)
    out["prefix_rows"], out["prompt_rows"] = p, int(prompt.shape[0])
    return out


def coqui_alone(engine, latents, chunk: int) -> dict:
    """coqui-tts's own inference_stream (no batching) for one request, same text and chunk size."""
    import torch

    model = engine.model
    torch.manual_seed(0)
    start = time.perf_counter()
    first = None
    with torch.inference_mode():
        for chunk_audio in model.inference_stream(TEXT, "en", latents.gpt_cond_latent, latents.speaker_embedding,
                                                  stream_chunk_size=chunk, top_k=50):
            if first is None:
                first = time.perf_counter() - start
            del chunk_audio
    return {"ttfc_mean": first, "ttfc_max": first, "wall": time.perf_counter() - start}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=12, help="audio tokens each request decodes")
    parser.add_argument("--chunk", type=int, default=6, help="stream_chunk_size (tokens per streamed chunk)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--device", default="cpu", choices=("cpu", "gpu"))
    parser.add_argument("--precision", default="fp32", choices=("fp32", "fp16", "bf16"))
    parser.add_argument("--keep", help="build the checkpoint here and reuse it next time")
    parser.add_argument("--no-coqui", action="store_true", help="skip coqui's unbatched baseline")
    parser.add_argument("--tiny", action="store_true", help="the tiny test architecture (a smoke run, not a figure)")
    parser.add_argument("--prefix-only", action="store_true",
                        help="only the prefix-cache figures (TTFC without / first / second request with the same voice)")
    args = parser.parse_args()

    import torch

    from demod_voice.engines import xtts
    from demod_voice.tiny_models import build_xtts as build

    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="xtts-batch-")) / "full"
    if not (folder / "model.pth").is_file():
        started = time.perf_counter()
        build(folder, full_size=not args.tiny, max_audio_tokens=args.tokens + 3)
        print(f"built the {'tiny' if args.tiny else 'full-size'} checkpoint in {time.perf_counter() - started:.0f} s")
    engine = xtts.load(folder, "cuda" if args.device == "gpu" else "cpu", args.precision)
    engine.configure_batching(max_batch=max(args.concurrency), window_ms=20)
    torch.manual_seed(0)
    latents = xtts.XttsLatents(torch.randn(1, 32, engine.gpt_width) * 0.5, torch.randn(1, 512, 1) * 0.1,
                               engine.model_id)
    run_concurrent(engine, latents, 1, args.chunk)  # warm up
    print(f"machine: {machine()}; torch threads {torch.get_num_threads()}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}; device {engine.device} "
          f"{engine.precision}; load average {os.getloadavg()[0]:.1f}")
    import datetime
    import subprocess

    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent).stdout.strip()
    print(f"date {datetime.datetime.now(datetime.UTC):%Y-%m-%dT%H:%MZ}, commit {rev or 'unknown'}")
    print(f"{args.tokens} tokens per request, chunks of {args.chunk}; max_batch {engine.scheduler.max_batch}")
    pc = prefix_cache_ttfc(engine, latents, args.chunk)
    print(f"prefix cache ({pc['prefix_rows']} of {pc['prompt_rows']} prompt rows): TTFC without the cache "
          f"{pc['without']:.2f} s; same voice, first request {pc['first']:.2f} s, second {pc['second']:.2f} s "
          f"(saved {pc['first'] - pc['second']:.2f} s; the prefix's prefill alone {pc['prefix_s']:.2f} s); "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    if args.prefix_only:
        return 0
    print(f"{'requests':>8} {'tokens/s':>9} {'TTFC mean':>10} {'TTFC max':>9} {'wall s':>7}")
    rows = {}
    for concurrency in args.concurrency:
        r = run_concurrent(engine, latents, concurrency, args.chunk, seed0=100 * concurrency)
        r["tps"] = concurrency * args.tokens / r["wall"]
        rows[concurrency] = r
        print(f"{concurrency:>8} {r['tps']:9.2f} {r['ttfc_mean']:10.2f} {r['ttfc_max']:9.2f} {r['wall']:7.1f}",
              flush=True)
    base = rows[args.concurrency[0]]
    for concurrency, r in rows.items():
        if concurrency == args.concurrency[0]:
            continue
        print(f"{concurrency} vs {args.concurrency[0]}: tokens/s {r['tps'] / base['tps']:.2f}x (goal >= 2.5x at 4), "
              f"TTFC mean {r['ttfc_mean'] / base['ttfc_mean']:.2f}x, max {r['ttfc_max'] / base['ttfc_max']:.2f}x "
              f"(goal <= 1.5x at 4)")
    if not args.no_coqui:
        c = coqui_alone(engine, latents, args.chunk)
        print(f"coqui inference_stream alone: tokens/s {args.tokens / c['wall']:.2f}, TTFC {c['ttfc_mean']:.2f} s "
              f"(ours alone: {base['tps']:.2f} tokens/s, TTFC {base['ttfc_mean']:.2f} s)")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
