"""Remote engines: a second real ``demod-voice serve`` on loopback as an engine of this one.

The session's ``server`` fixture is the remote (keys required); a front server names it in
``router.remotes`` with its key in an environment variable, plus a remote that is down and one whose
key variable is unset. Nothing is mocked: both ends are real servers speaking HTTP.
"""

from __future__ import annotations

import io

import httpx
import numpy as np
import pytest
import soundfile as sf

from tests.server.conftest import KEYS, auth_config, free_port, start_server, stop_server

TEXT = "The remote engine speaks this sentence."


@pytest.fixture(scope="module")
def front(server, tmp_path_factory):
    home = tmp_path_factory.mktemp("front-home")
    config = f"""
{auth_config()}  cpu_workers: 2
  model_map: {{"tts-1": "fast", "remote-hd": "high", "remote-down": "medium", "remote-nokey": "highest"}}
router:
  tiers: {{"high": ["peer", "piper"], "medium": ["gone", "piper"], "highest": ["nokey", "piper"], "fast": ["piper"]}}
  remotes:
    peer: {{url: "{server['url']}", api_key_env: DEMOD_TEST_PEER_KEY, model: tts-1, timeout_s: 120}}
    gone: {{url: "http://127.0.0.1:{free_port()}", timeout_s: 5}}
    nokey: {{url: "{server['url']}", api_key_env: DEMOD_TEST_UNSET_KEY}}
"""
    proc, url = start_server(home, config, env_extra={"DEMOD_TEST_PEER_KEY": KEYS["bob"]})
    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEYS['alice']}"}, timeout=300)
    yield client
    client.close()
    stop_server(proc)


def _speech(client, model: str, text: str = TEXT, voice: str = "alloy") -> httpx.Response:
    return client.post("/v1/audio/speech", json={"model": model, "input": text, "voice": voice,
                                                 "response_format": "wav"})


def _samples(body: bytes) -> tuple[np.ndarray, int]:
    data, rate = sf.read(io.BytesIO(body), dtype="int16")
    return data, rate


def test_remote_serves_and_is_cached(front, bob):
    first = _speech(front, "remote-hd")
    assert first.status_code == 200, first.text
    assert first.headers["x-engine"] == "peer" and first.headers["x-cache"] == "miss"
    got, rate = _samples(first.content)
    # the same request straight to the remote gives the same samples (to the last bit: the WAV writer scales by
    # 32767, so a decode and re-encode may move a sample by one step): the front only decoded and re-encoded
    direct = _speech(bob, "tts-1")
    assert direct.status_code == 200
    want, want_rate = _samples(direct.content)
    assert rate == want_rate == 22050 and len(got) > rate // 2
    assert got.shape == want.shape and np.abs(got.astype(int) - want.astype(int)).max() <= 1

    again = _speech(front, "remote-hd")
    assert again.status_code == 200 and again.headers["x-cache"] == "hit" and again.content == first.content
    stats = front.get("/api/engines").json()["engines"]["peer"]
    assert stats["requests"] == 1 and stats["successes"] == 1  # the hit never reached the remote


def test_remote_down_falls_back_to_piper_with_audit(front):
    response = _speech(front, "remote-down", text="The remote is down, so Piper speaks.")
    assert response.status_code == 200, response.text
    assert response.headers["x-engine"] == "piper"
    report = front.get("/api/engines").json()
    events = [e for e in report["fallbacks"] if e["engine"] == "gone"]
    assert events and events[-1]["reason"] == "engine error" and "cannot be reached" in events[-1]["detail"]
    assert report["engines"]["gone"]["failures"] >= 1


def test_remote_key_only_from_environment(front):
    response = _speech(front, "remote-nokey", text="No key, no remote.")
    assert response.status_code == 200 and response.headers["x-engine"] == "piper"
    report = front.get("/api/engines").json()
    assert report["engines"]["nokey"]["installed"] is False
    events = [e for e in report["fallbacks"] if e["engine"] == "nokey"]
    assert events and events[-1]["reason"] == "engine not installed" and "DEMOD_TEST_UNSET_KEY" in events[-1]["detail"]


def test_remote_config_is_checked(isolated_home):
    from demod_voice import config
    from demod_voice.errors import ConfigError
    from demod_voice.synthesis import registry

    cfg = config.load()
    for bad, words in (({"url": "ftp://x"}, r"http\(s\) URL"), ({"url": "http://h", "api_key": "secret"}, "unknown field"),
                       ({"url": "http://h", "api_key_env": "not a name"}, "environment variable")):
        cfg.set("router.remotes", {"far": bad}, "test")
        with pytest.raises(ConfigError, match=words):
            registry.names(cfg)
    cfg.set("router.remotes", {"piper": {"url": "http://h"}}, "test")
    with pytest.raises(ConfigError, match="built-in"):
        registry.names(cfg)
    cfg.set("router.remotes", {"far": {"url": "http://h:1"}}, "test")
    assert registry.names(cfg, "tts")[-1] == "far" and registry.get("far", cfg).KIND == "tts"


def test_remote_in_a_batch_job(server, tmp_path):
    """Batch reaches a remote through the registry: ``engine: <remote name>``, its voice and speed."""
    import json

    from tests.helpers import run_cli

    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(json.dumps({"engine": "peer", "text": "A batch line from afar.", "voice": "en_US-joe-medium",
                                "speed": 1.2, "output": "far.wav"}) + "\n")
    env = {**{f"XDG_{k}_HOME": str(tmp_path / k.lower()) for k in ("CONFIG", "DATA", "CACHE")},
           "DEMOD_VOICE_ROUTER__REMOTES": f"{{peer: {{url: '{server['url']}', api_key_env: DEMOD_TEST_PEER_KEY}}}}",
           "DEMOD_TEST_PEER_KEY": KEYS["bob"]}
    proc = run_cli("batch", jobs, env=env)
    assert proc.returncode == 0, (proc.stdout + proc.stderr).decode()
    data, rate = sf.read(tmp_path / "far.wav")
    assert rate == 22050 and len(data) > rate // 2
    env.pop("DEMOD_TEST_PEER_KEY")
    (tmp_path / "far.wav").unlink()
    proc = run_cli("batch", jobs, env=env)
    assert proc.returncode == 1 and b"DEMOD_TEST_PEER_KEY is not set" in proc.stdout + proc.stderr
