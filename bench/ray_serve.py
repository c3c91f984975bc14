"""Benchmark: the single-process server against ``serve --ray local`` with 1 and 2 Piper replicas, same run.

Each server gets the same distinct short texts (cache off, so every request synthesises) at a fixed
concurrency; the script prints requests/s, p50 and p95 per setup, then the cost of the extra hop: one
engine call through a Serve handle (ingress -> replica, streaming) against the same call in process, with
one Piper replica on a local Ray instance. Timings on a shared machine are noisy: the ratios measured in
one run are what matter, and the load average is printed with them.

    .venv/bin/python bench/ray_serve.py [--requests 48] [--concurrency 4] [--hops 30]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench._common import machine, pct  # noqa: E402

VOICE = "en_US-joe-medium"
PIPER = "piper:\n  noise_scale: 0.0\n  noise_w: 0.0\n  onnx_threads: 1\n"


def load() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def drive(url: str, texts: list[str], concurrency: int) -> dict:
    import httpx

    def one(text: str) -> float:
        with httpx.Client(base_url=url, timeout=600) as client:
            started = time.perf_counter()
            res = client.post("/api/tts", json={"text": text, "voice": VOICE, "format": "wav"})
            res.raise_for_status()
            return time.perf_counter() - started

    with httpx.Client(base_url=url, timeout=600) as client:  # warm: the voice loaded in every replica
        for _ in range(4):
            client.post("/api/tts", json={"text": "Warm up.", "voice": VOICE, "format": "wav"}).raise_for_status()
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        latencies = list(pool.map(one, texts))
    wall = time.perf_counter() - started
    return {"rps": len(texts) / wall, "p50": pct(latencies, 0.5), "p95": pct(latencies, 0.95)}


def run_setup(label: str, replicas: int | None, texts: list[str], concurrency: int) -> dict:
    from tests.ray_serve.helpers import RayServer, kill_scoped
    from tests.server.conftest import start_server, stop_server

    home = Path(tempfile.mkdtemp(prefix=f"bench-ray-{label}-"))
    config = PIPER + "server:\n  cache: false\n  cpu_workers: 2\n"
    if replicas is None:
        proc, url = start_server(home, config)
        try:
            return drive(url, texts, concurrency)
        finally:
            stop_server(proc)
    config += f"ray_serve:\n  engines:\n    piper: {{replicas: {replicas}, num_cpus: 1, max_ongoing_requests: 2}}\n"
    server = RayServer(home, config)
    try:
        server.wait_ready({}, "engine-piper", replicas)
        return drive(server.url, texts, concurrency)
    finally:
        server.stop()
        kill_scoped(str(server.ray_tmp))


def hop_cost(calls: int) -> dict:
    """Median seconds of one short Piper call: in process vs through a streaming Serve handle."""
    import ray
    from ray import serve

    from demod_voice import config as config_mod
    from demod_voice.server.ray_serve.engine import EngineDeployment
    from demod_voice.synthesis import registry
    from demod_voice.synthesis.requests import TTSRequest

    tmp = Path(tempfile.mkdtemp(prefix="bench-hop-"))
    (tmp / "c.yaml").write_text(PIPER)
    cfg = config_mod.load(tmp / "c.yaml", environ={}, user_file=Path("/nonexistent"))
    provider = registry.get("piper", cfg).Provider(cfg, "piper")
    from demod_voice.server.router import Router

    voice = Router(cfg).resolve_voice(VOICE, "local")
    request = TTSRequest(text="A short sentence.", voice=VOICE)

    def in_process() -> float:
        started = time.perf_counter()
        list(provider.prepare(request, voice).start())
        return time.perf_counter() - started

    from types import SimpleNamespace

    from demod_voice.server.ray_serve.run import _start_local, stop_descendants

    cfg.set("ray_serve.num_cpus", 2, "bench")
    _start_local(ray, cfg, SimpleNamespace(verbose=False, say=print))  # retried on a loaded machine
    try:
        handle = serve.run(EngineDeployment.options(name="engine-piper", num_replicas=1,
                                                    ray_actor_options={"num_cpus": 1}).bind(cfg, "piper"),
                           name="hop", route_prefix=None)
        streaming = handle.options(stream=True)

        def through_handle() -> float:
            started = time.perf_counter()
            list(streaming.speak.remote(request, voice))
            return time.perf_counter() - started

        for fn in (in_process, through_handle):  # warm both (voice loaded, connections made)
            fn()
        local, remote = [], []
        for _ in range(calls):  # interleaved, so load changes hit both alike
            local.append(in_process())
            remote.append(through_handle())
        return {"in_process": statistics.median(local), "handle": statistics.median(remote)}
    finally:
        serve.shutdown()
        ray.shutdown()
        stop_descendants()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=48)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--hops", type=int, default=30)
    args = parser.parse_args()
    texts = [f"Request number {i} of the benchmark. A second sentence follows." for i in range(args.requests)]
    print(f"machine: {machine()}; {args.requests} requests, {args.concurrency} at a time")
    results = {}
    for label, replicas in (("single process", None), ("--ray, 1 replica", 1), ("--ray, 2 replicas", 2)):
        before = load()
        try:
            results[label] = run_setup(label.replace(" ", "-").replace(",", ""), replicas, texts, args.concurrency)
        except RuntimeError as exc:  # Ray did not start (a loaded machine): say so, measure the rest
            print(f"{label:20s} did not start: {str(exc).strip().splitlines()[-1][:200]}  (load {before})")
            continue
        r = results[label]
        print(f"{label:20s} {r['rps']:6.2f} req/s  p50 {r['p50']:6.2f} s  p95 {r['p95']:6.2f} s"
              f"  (load {before} -> {load()})")
    if "single process" in results and "--ray, 1 replica" in results:
        base, one = results["single process"]["rps"], results["--ray, 1 replica"]["rps"]
        print(f"throughput overhead at 1 replica: {100 * (base - one) / base:+.1f} %")
    before = load()
    try:
        hop = hop_cost(args.hops)
    except Exception as exc:
        print(f"hop: Ray did not start ({type(exc).__name__})  (load {before})")
        return 1
    extra = hop["handle"] - hop["in_process"]
    print(f"hop: in process {hop['in_process'] * 1000:.1f} ms, through a Serve handle {hop['handle'] * 1000:.1f} ms"
          f" -> {extra * 1000:+.1f} ms per call ({100 * extra / hop['in_process']:+.1f} %)"
          f"  (load {before} -> {load()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
