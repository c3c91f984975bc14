"""The one model manager in a real server: a Piper voice loads on the first request, is unloaded after
``server.model_idle_unload_s`` without requests, and the next request loads it again (issue #33 item 4)."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.server.conftest import auth_config, client_for, start_server, stop_server

JOE = "en_US-joe-medium"


def _rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _piper_loaded(client: httpx.Client) -> list[dict]:
    return client.get("/api/engines").json()["engines"]["piper"]["loaded"]


def _speak(client: httpx.Client) -> bytes:
    reply = client.post("/v1/audio/speech", json={"model": "tts-1", "input": "Hello there.", "voice": JOE,
                                                  "response_format": "wav"})
    assert reply.status_code == 200, reply.text
    return reply.content


@pytest.mark.slow
def test_idle_model_is_unloaded_and_reloaded(tmp_path, joe_voice):
    config = f"{auth_config()}  model_idle_unload_s: 5\n  cache: false\n"
    proc, url = start_server(tmp_path, config)
    try:
        with client_for({"url": url}, "alice") as client:
            assert _piper_loaded(client) == []  # nothing loaded before the first request
            base = _rss_mb(proc.pid)
            first = _speak(client)
            loaded = _piper_loaded(client)
            assert [m["model"] for m in loaded] == [f"{JOE}.onnx"], loaded
            assert loaded[0]["device"] == "cpu" and loaded[0]["bytes"] > 1_000_000 and loaded[0]["last_used"] > 0
            rss_loaded = _rss_mb(proc.pid)
            started = time.monotonic()
            while _piper_loaded(client) and time.monotonic() - started < 120:
                time.sleep(0.5)
            waited = time.monotonic() - started
            assert _piper_loaded(client) == [], "not unloaded after 120 s idle"
            assert waited >= 4.0  # not before the idle time (5 s after the last use, which came before `started`)
            time.sleep(1.0)
            rss_unloaded = _rss_mb(proc.pid)
            metrics = client.get("/metrics").text
            assert "demod_model_unloads_total 1.0" in metrics, metrics
            again = _speak(client)
            assert again == first  # reloaded transparently: the same audio
            assert [m["model"] for m in _piper_loaded(client)] == [f"{JOE}.onnx"]
            assert "demod_model_loads_total 2.0" in client.get("/metrics").text
            models = client.get("/api/engines").json()["models"]
            assert models["idle_unload_s"] == 5 and models["loads"] == 2 and models["unloads"] == 1
        print(f"\nRSS MB: before {base:.0f}, loaded {rss_loaded:.0f}, unloaded {rss_unloaded:.0f} "
              f"(after {waited:.1f} s idle), reloaded {_rss_mb(proc.pid):.0f}")
    finally:
        stop_server(proc)
