"""A real local Ray run: ``serve --ray local`` with two Piper replicas, 48 concurrent requests and one replica
SIGKILLed under load. Nothing is lost, every answer is the engine layer's (and so the CLI's and batch's)
samples, the replica comes back, a repeat is a cache hit, and a stop leaves no Ray process."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import time

import httpx
import pytest

pytest.importorskip("ray.serve")

from tests.core.test_same_audio import JOE, engine_result, wav_samples  # noqa: E402
from tests.ray_serve.helpers import RayServer, alive, descendants, kill_scoped, scoped_processes  # noqa: E402
from tests.server.conftest import KEYS, auth_config  # noqa: E402

pytestmark = pytest.mark.slow

ALICE = {"Authorization": f"Bearer {KEYS['alice']}"}
BOB = {"Authorization": f"Bearer {KEYS['bob']}"}
TEXTS = [f"Request number {i}. It has a second sentence." for i in range(48)]


def config(root) -> str:
    return (auth_config() + "  admin_users: [alice]\n  request_timeout_s: 600\n"
            f"paths:\n  data_dir: {root / 'data'}\n  cache_dir: {root / 'cache'}\n"
            "piper:\n  noise_scale: 0.0\n  noise_w: 0.0\n  onnx_threads: 1\nrouter:\n  timeout_s: 300\n"
            "ray_serve:\n  num_cpus: 2\n  engines:\n    piper: {replicas: 2, num_cpus: 1, max_ongoing_requests: 4}\n")


def test_two_replicas_lose_nothing_when_one_is_killed(tmp_path, joe_voice):
    server = RayServer(tmp_path / "home", config(tmp_path / "home"))
    marker = str(server.ray_tmp)
    try:
        server.wait_ready(ALICE, "engine-piper", 2)
        replicas = server.replicas(ALICE, "piper")
        pids = sorted(r["pid"] for r in replicas)
        assert len(pids) == 2 and all(pids)
        started = descendants(server.proc.pid)

        def speak(i: int) -> tuple[int, httpx.Response]:
            headers = ALICE if i % 2 else BOB
            with httpx.Client(base_url=server.url, headers=headers, timeout=600) as client:
                return i, client.post("/api/tts", json={"text": TEXTS[i], "voice": JOE, "format": "wav"})

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(speak, i) for i in range(len(TEXTS))]
            done = 0
            while done < 6:  # kill mid-load: some answers are out, most are still to come
                done = sum(f.done() for f in futures)
                time.sleep(0.05)
            os.kill(pids[0], signal.SIGKILL)
            results = dict(f.result() for f in futures)
        assert {i: r.status_code for i, r in results.items() if r.status_code != 200} == {}
        assert all(r.headers["x-engine"] == "piper" for r in results.values())

        cfg_file = tmp_path / "engine.yaml"
        cfg_file.write_text("piper:\n  noise_scale: 0.0\n  noise_w: 0.0\n  onnx_threads: 1\n")
        from demod_voice.synthesis import Request

        for i, res in results.items():  # the single-process engine layer: what the CLI and batch write
            assert wav_samples(res.content) == engine_result(cfg_file, "piper", Request(text=TEXTS[i], voice=JOE)), i

        deadline = time.monotonic() + 300  # the controller replaces the killed replica
        while time.monotonic() < deadline:
            now = [r for r in server.replicas(ALICE, "piper") if r["state"] == "RUNNING"]
            if len(now) == 2 and pids[0] not in {r["pid"] for r in now}:
                break
            time.sleep(1)
        else:
            raise AssertionError(f"replica not replaced: {server.replicas(ALICE, 'piper')}")

        with httpx.Client(base_url=server.url, headers=ALICE, timeout=600) as client:
            repeat = client.post("/api/tts", json={"text": TEXTS[1], "voice": JOE, "format": "wav"})
            assert repeat.headers["x-cache"] == "hit" and repeat.content == results[1].content
            # a cache entry is per user: bob asking alice's text computes it (as in the single-process server)
            other = client.post("/api/tts", json={"text": TEXTS[1], "voice": JOE, "format": "wav"}, headers=BOB)
            assert other.headers["x-cache"] == "miss"
            engines = client.get("/api/engines").json()["engines"]
            assert engines["piper"]["deployment"]["replica_states"] == {"RUNNING": 2}
            metrics = client.get("/metrics").text
            assert 'demod_deployment_calls_total{deployment="engine-piper"}' in metrics
            assert httpx.post(server.url + "/api/tts", json={"text": "hi"}).status_code == 401

        assert server.stop() == 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (alive(started) or scoped_processes(marker)):
            time.sleep(0.5)
        assert alive(started) == [] and scoped_processes(marker) == []  # no Ray process left
    finally:
        server.stop()
        kill_scoped(marker)
