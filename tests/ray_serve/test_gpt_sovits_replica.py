"""A GPT-SoVITS replica owns its api_v2: Serve's local testing mode (no Ray processes) with the api_v2 stand-in
of ``tests/gpt_sovits`` installed as a user's checkout. The replica starts it on a free port, the ingress's
request is spoken through it, and Serve's own destructor call (what a replica's shutdown runs) stops it."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("ray.serve")

from tests.gpt_sovits.conftest import TRANSCRIPT, _free_port, _install, _requests, _running  # noqa: E402
from tests.gpt_sovits.test_gpt_sovits import _profile  # noqa: E402


def make_cfg(root: Path, gpt_sovits: str):
    from demod_voice import config

    (root / "c.yaml").write_text(f"paths:\n  data_dir: {root / 'data'}\n  cache_dir: {root / 'cache'}\n"
                                 f"gpt_sovits:\n{gpt_sovits}")
    return config.load(root / "c.yaml", environ={}, user_file=Path("/nonexistent"))


def test_a_managed_replica_starts_speaks_through_and_stops_its_own_api_v2(tmp_path, isolated_home, monkeypatch,
                                                                          speech_wav):
    from fastapi.testclient import TestClient
    from ray import serve

    from demod_voice.server.app import create_app
    from demod_voice.server.ray_serve.app import RayService, engines_to_deploy
    from demod_voice.server.ray_serve.engine import EngineDeployment

    monkeypatch.setenv("FAKE_API_V2_LOG", str(tmp_path / "requests.jsonl"))
    install = _install(tmp_path / "GPT-SoVITS")
    cfg = make_cfg(tmp_path, f"  install_dir: {install}\n  start_timeout_s: 60\n")
    assert "gpt-sovits" in engines_to_deploy(cfg)  # nothing runs yet: the replica will start it

    handle = serve.run(EngineDeployment.options(name="engine-gpt-sovits").bind(cfg, "gpt-sovits"),
                       name="engines-gsv", _local_testing_mode=True)
    pid = handle.server_pid.remote().result()
    assert _running(pid) and b"api_v2.py" in Path(f"/proc/{pid}/cmdline").read_bytes()
    replicas = tmp_path / "cache" / "gpt-sovits" / "replicas"
    (folder,) = replicas.iterdir()
    assert (folder / "api_v2.pid").stat().st_mode & 0o777 == 0o600 and folder.stat().st_mode & 0o777 == 0o700

    _profile(cfg, speech_wav, "hero", TRANSCRIPT)
    service = RayService(cfg, {"gpt-sovits": handle}, None, "demod-voice", refresh_s=0.2)
    with TestClient(create_app(cfg, service=service), base_url="http://127.0.0.1") as client:
        res = client.post("/api/tts", json={"text": "Through the replica.", "voice": "hero", "engine": "gpt-sovits",
                                            "format": "wav"})
    assert res.status_code == 200, res.text
    assert res.headers["x-engine"] == "gpt-sovits"
    assert service.remote_providers()["gpt-sovits"].counters.calls == 1
    assert _requests({"log": tmp_path / "requests.jsonl"})[-1]["text"] == "Through the replica."

    # what a replica's shutdown runs (scale-down, redeploy, serve.shutdown): the deployment's __del__
    handle._init_router()._user_callable_wrapper.call_destructor().result()
    for _ in range(100):  # the future may resolve a moment before the user thread's __del__ has returned
        if not _running(pid) and not folder.exists():
            break
        __import__("time").sleep(0.1)
    assert not _running(pid)
    assert not folder.exists()


def test_with_an_external_url_the_replica_starts_nothing(tmp_path, isolated_home):
    from demod_voice.server.ray_serve.engine import EngineDeployment

    install = _install(tmp_path / "GPT-SoVITS")
    url = f"http://127.0.0.1:{_free_port()}"
    cfg = make_cfg(tmp_path, f"  install_dir: {install}\n  url: {url}\n")
    replica = EngineDeployment.func_or_class(cfg, "gpt-sovits")
    assert replica.server_pid() is None and replica.cfg is cfg
    assert replica.provider.status()["server"] == url
    replica.__del__()
    assert not (tmp_path / "cache" / "gpt-sovits" / "replicas").exists()


def test_a_replica_whose_api_v2_died_fails_its_health_check(tmp_path, isolated_home):
    """Serve replaces a replica whose ``check_health`` raises; the replacement starts a fresh api_v2."""
    import os
    import signal

    from demod_voice.server.ray_serve.engine import EngineDeployment

    install = _install(tmp_path / "GPT-SoVITS")
    replica = EngineDeployment.func_or_class(make_cfg(tmp_path, f"  install_dir: {install}\n"), "gpt-sovits")
    try:
        replica.check_health()
        os.kill(replica.server_pid(), signal.SIGKILL)
        with pytest.raises(RuntimeError, match="server process .* is gone"):
            for _ in range(50):
                replica.check_health()
                __import__("time").sleep(0.1)
    finally:
        replica.__del__()
    assert not list((tmp_path / "cache" / "gpt-sovits" / "replicas").iterdir())
