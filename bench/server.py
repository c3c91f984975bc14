"""Benchmark: `demod-voice serve` against piper's own `python -m piper.http_server`, same voice, same run.

Measures p50/p95 latency and throughput at concurrency 1, 4 and 16 (cache off
on our side, so both synthesise every request), cache-hit latency, and the
time to the first streamed audio byte of a ~200-word text versus the time to
the full (non-streamed) response. Prints ratios; timings are noisy on a
shared machine, the ratios measured in the same run are what matter.

    .venv/bin/python bench/server.py [--requests-per-worker 3] [--voice en_US-joe-medium]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Please remember to water the plants on Tuesday.",
    "Our train leaves the station at half past nine.",
    "She painted the small boat a bright shade of blue.",
    "A cup of tea is the best way to start a morning.",
    "The museum opens its new exhibition next week.",
]
LONG = " ".join(
    f"Paragraph {i}: the old lighthouse keeper wrote in his journal every evening, noting the weather, "
    "the ships that passed, and the birds that rested on the rocks below." for i in range(7)
)  # ~200 words


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str, proc: subprocess.Popen, path: str) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server at {url} exited")
        try:
            httpx.get(url + path, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"server at {url} did not start")


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def merge(results: list[dict]) -> dict:
    latencies = [x for r in results for x in r["latencies"]]
    return {"p50": pct(latencies, 0.5), "p95": pct(latencies, 0.95),
            "rps": sum(len(r["latencies"]) for r in results) / sum(r["wall"] for r in results)}


def load(call, concurrency: int, total: int) -> dict:
    latencies: list[float] = []

    def one(i: int) -> None:
        started = time.perf_counter()
        call(SENTENCES[i % len(SENTENCES)] + f" Number {i}.")
        latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(total)))
    wall = time.perf_counter() - started
    return {"latencies": latencies, "wall": wall}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voice", default="en_US-joe-medium")
    parser.add_argument("--requests-per-worker", type=int, default=4, help="requests per client thread and server, in two rounds")
    parser.add_argument("--workers", type=int, default=2, help="our server.cpu_workers")
    parser.add_argument("--onnx-threads", type=int, default=None,
                        help="our piper.onnx_threads (default: ONNX Runtime's, one per core)")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from demod_voice import catalog, config

    model = catalog.resolve_piper_model(args.voice, config.load())
    home = Path(tempfile.mkdtemp(prefix="bench-server-"))
    env = {**os.environ, "XDG_DATA_HOME": str(home / "data"), "XDG_CACHE_HOME": str(home / "cache"),
           "XDG_CONFIG_HOME": str(home / "config"), "PYTHONPATH": str(REPO)}
    env = {k: v for k, v in env.items() if not k.startswith("DEMOD_VOICE_")}
    if args.onnx_threads:
        env["DEMOD_VOICE_PIPER__ONNX_THREADS"] = str(args.onnx_threads)
    ours_port, piper_port = free_port(), free_port()
    ours = subprocess.Popen([sys.executable, "-m", "demod_voice", "serve", "--port", str(ours_port), "--preload",
                             "--workers", str(args.workers), "-q"], env=env, cwd=REPO)
    theirs = subprocess.Popen([sys.executable, "-m", "piper.http_server", "-m", str(model), "--host", "127.0.0.1",
                               "--port", str(piper_port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ours_url, piper_url = f"http://127.0.0.1:{ours_port}", f"http://127.0.0.1:{piper_port}"
    try:
        wait_up(ours_url, ours, "/health")
        wait_up(piper_url, theirs, "/")
        client = httpx.Client(timeout=300, limits=httpx.Limits(max_connections=64))

        def ours_call(text: str, cache: bool = False) -> bytes:
            res = client.post(ours_url + "/api/tts", json={"text": text, "voice": args.voice, "format": "wav",
                                                           "cache": cache})
            res.raise_for_status()
            return res.content

        def piper_call(text: str) -> bytes:
            res = client.post(piper_url + "/synthesize", json={"text": text})
            res.raise_for_status()
            return res.content

        ours_call("Warm up."), piper_call("Warm up.")
        print(f"voice {args.voice}; our server: {args.workers} CPU workers, onnx threads "
              f"{args.onnx_threads or 'default'}; load average {os.getloadavg()[0]:.2f}; timings in seconds")
        print(f"{'conc':>4} {'server':>8} {'p50':>7} {'p95':>7} {'req/s':>7}")
        ratios = {}
        for concurrency in (1, 4, 16):
            total = max(4, concurrency * args.requests_per_worker // 2)
            # ABBA order, so a drifting machine load favours neither server
            runs = {"piper": [], "demod": []}
            for name in ("piper", "demod", "demod", "piper"):
                runs[name].append(load(piper_call if name == "piper" else ours_call, concurrency, total))
            a, b = (merge(runs[n]) for n in ("piper", "demod"))
            ratios[concurrency] = b["rps"] / a["rps"]
            for name, r in (("piper", a), ("demod", b)):
                print(f"{concurrency:>4} {name:>8} {r['p50']:7.3f} {r['p95']:7.3f} {r['rps']:7.2f}")
        print("throughput ratio demod/piper: " + ", ".join(f"c{c} {v:.2f}x" for c, v in ratios.items()))

        ours_call("Cached sentence for the benchmark.", cache=True)
        hits = []
        for _ in range(100):
            started = time.perf_counter()
            res = client.post(ours_url + "/api/tts", json={"text": "Cached sentence for the benchmark.",
                                                            "voice": args.voice, "format": "wav"})
            hits.append(time.perf_counter() - started)
            assert res.headers["x-cache"] == "hit"
        print(f"cache hit: p50 {pct(hits, 0.5) * 1000:.1f} ms, p95 {pct(hits, 0.95) * 1000:.1f} ms (goal: p50 < 5 ms)")

        words = len(LONG.split())
        started = time.perf_counter()
        ours_call(LONG + " Full.")
        full = time.perf_counter() - started
        started, first = time.perf_counter(), None
        with client.stream("POST", ours_url + "/v1/audio/speech",
                           json={"model": "tts-1", "input": LONG + " Streamed.", "voice": args.voice,
                                 "response_format": "wav"}) as res:
            for _ in res.iter_raw():
                if first is None:
                    first = time.perf_counter() - started
        streamed_total = time.perf_counter() - started
        started = time.perf_counter()
        piper_call(LONG + " Theirs.")
        piper_full = time.perf_counter() - started
        print(f"{words}-word text: first streamed byte {first:.2f} s, streamed total {streamed_total:.2f} s, "
              f"full response {full:.2f} s (piper server {piper_full:.2f} s)")
        print(f"time to first audio / full response: {first / full:.0%} (goal: < 40%)")
    finally:
        for proc in (ours, theirs):
            proc.terminate()
            proc.wait(30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
