"""Benchmark: time to the first streamed byte per format, as a share of the full (non-streamed) response.

One `demod-voice serve` (cache off), a ~200-word text, each format measured in the
same run: streamed (`POST /v1/audio/speech`, which always streams) and whole
(`POST /api/tts` with `stream: false`), in ABBA order per format so a drifting
machine load favours neither. WAV streaming is the baseline the compressed
formats are compared with. The stream's total time is printed too: encoding
as the audio comes must not make the whole answer slower.

    .venv/bin/python bench/streaming.py [--rounds 1] [--pattern ABBA|AB] [--formats wav,mp3,opus,aac,flac]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench._common import machine  # noqa: E402
from bench.server import LONG, free_port, wait_up  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voice", default="en_US-joe-medium")
    parser.add_argument("--rounds", type=int, default=1, help="rounds per format")
    parser.add_argument("--pattern", default="ABBA", choices=("ABBA", "AB"),
                        help="A = whole, B = streamed; ABBA cancels load drift, AB halves the time")
    parser.add_argument("--formats", default="wav,mp3,opus,aac,flac")
    args = parser.parse_args()
    formats = args.formats.split(",")
    home = Path(tempfile.mkdtemp(prefix="bench-streaming-"))
    env = {**os.environ, "XDG_DATA_HOME": str(home / "data"), "XDG_CACHE_HOME": str(home / "cache"),
           "XDG_CONFIG_HOME": str(home / "config"), "PYTHONPATH": str(REPO)}
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "demod_voice", "serve", "--port", str(port), "--preload", "-q"],
                            env=env, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_up(url, proc, "/health")
        client = httpx.Client(base_url=url, timeout=600)

        def whole(fmt: str) -> float:
            started = time.perf_counter()
            res = client.post("/api/tts", json={"text": f"{LONG} Take {uuid.uuid4().hex[:6]}.", "voice": args.voice,
                                                "format": fmt, "stream": False, "cache": False})
            res.raise_for_status()
            return time.perf_counter() - started

        def streamed(fmt: str) -> tuple[float, float]:
            started, first = time.perf_counter(), None
            with client.stream("POST", "/v1/audio/speech",
                               json={"model": "tts-1", "input": f"{LONG} Take {uuid.uuid4().hex[:6]}.",
                                     "voice": args.voice, "response_format": fmt}) as res:
                res.raise_for_status()
                for piece in res.iter_raw():
                    if first is None and piece:
                        first = time.perf_counter() - started
            return first, time.perf_counter() - started

        whole("wav"), streamed("mp3")  # warm up: voice, encoders
        print(f"machine: {machine()}; load average before: {os.getloadavg()[0]:.1f}")
        print(f"text: {len(LONG.split())} words; voice {args.voice}; {args.rounds} {args.pattern} round(s) per format")
        print(f"{'format':>6} {'first byte':>10} {'stream total':>12} {'whole':>7} {'first/whole':>11}")
        shares = {}
        for fmt in formats:
            firsts, totals, wholes = [], [], []
            for _ in range(args.rounds):
                for step in args.pattern:
                    if step == "A":
                        wholes.append(whole(fmt))
                    else:
                        first, total = streamed(fmt)
                        firsts.append(first)
                        totals.append(total)
            first, total, full = (sum(v) / len(v) for v in (firsts, totals, wholes))
            shares[fmt] = first / full
            print(f"{fmt:>6} {first:10.2f} {total:12.2f} {full:7.2f} {shares[fmt]:11.0%}")
        if "wav" in shares:
            print("first-byte share relative to WAV streaming: "
                  + ", ".join(f"{f} {shares[f] / shares['wav']:.2f}x" for f in formats if f != "wav"))
        print(f"load average after: {os.getloadavg()[0]:.1f}")
        ok = shares.get("mp3", 0.0) < 0.40
        print(f"streamed MP3 first byte within 40% of the full response: {'yes' if ok else 'NO'}")
    finally:
        proc.terminate()
        proc.wait(30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
