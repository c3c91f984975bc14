"""Offline mode: DEMOD_VOICE_OFFLINE=1 == config ``models.offline: true``; nothing may touch the network.

A real loopback hub server (HF_ENDPOINT) stands where the model hub would be. In
offline mode it must receive zero requests, whatever is asked; the same pull
without offline mode does reach it, which shows the server would notice.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.xtts.hub_server import HubServer

REPO, REVISION = "tester/offline-model", "89abcdef0123456789abcdef0123456789abcdef"
FILES = {"config.json": b'{"offline": "test"}\n', "model.bin": b"\x01\x02" * 4096}


@pytest.fixture
def hub(isolated_home, tmp_path):
    registry = tmp_path / "registry.json"
    spec = {"kind": "test", "repo": REPO, "revision": REVISION, "license": "Test Licence 1.0",
            "files": [{"path": p, "size": len(d), "sha256": hashlib.sha256(d).hexdigest()} for p, d in FILES.items()]}
    registry.write_text(json.dumps({"tiny": spec}))
    with HubServer(REPO, REVISION, FILES) as server:
        server.env = {"HF_ENDPOINT": server.url, "HF_HOME": str(tmp_path / "hf-home"),
                      "HF_HUB_DISABLE_TELEMETRY": "1", "DEMOD_VOICE_MODELS__REGISTRY": str(registry)}
        server.folder = isolated_home / "data" / "demod-voice" / "models" / "tiny"
        yield server


def _assert_refused(proc, hub):
    err = proc.stderr.decode()
    assert proc.returncode == 2, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and "offline mode is on" in last and "DEMOD_VOICE_OFFLINE" in last
    assert "Traceback" not in err
    assert hub.requests == []  # not one request reached the hub
    assert not (hub.folder / "model.bin").exists()
    _assert_names_the_files(last, hub.folder)


def _assert_names_the_files(line: str, folder) -> None:
    """The one error line says where each missing file goes and what it must hash to (issue 25 item 3)."""
    assert f"place the files by hand in {folder}" in line, line
    for name, data in FILES.items():
        assert f"{name} (sha256 {hashlib.sha256(data).hexdigest()}" in line, line


def test_env_flag_refuses_models_pull_without_any_request(cli, hub):
    _assert_refused(cli("models", "pull", "tiny", env={**hub.env, "DEMOD_VOICE_OFFLINE": "1"}), hub)


def test_config_key_is_the_same_switch(cli, hub, tmp_path):
    config = tmp_path / "offline.yaml"
    config.write_text("models:\n  offline: true\n")
    _assert_refused(cli("--config", str(config), "models", "pull", "tiny", env=hub.env), hub)


def test_builtin_models_are_refused_too(cli, hub):
    # The real registry entries point at the public hub; HF_ENDPOINT sends them to the loopback server.
    for name in ("xtts-v2", "rvc-aux"):
        proc = cli("models", "pull", name, "--accept-license", env={**hub.env, "DEMOD_VOICE_OFFLINE": "1"})
        err = proc.stderr.decode()
        assert proc.returncode == 2 and "offline mode is on" in err and "place the files by hand" in err, err
        assert hub.requests == []


@pytest.mark.parametrize("quiet", [[], ["-q"]])
def test_hub_offline_flag_is_one_clear_error(cli, hub, quiet):
    """HF_HUB_OFFLINE=1 (the hub library's own switch): no request, one line naming files, sha256s, folder."""
    proc = cli(*quiet, "models", "pull", "tiny", env={**hub.env, "HF_HUB_OFFLINE": "1"})
    err = proc.stderr.decode()
    assert proc.returncode == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err  # nothing before the error: the download never started
    assert lines[-1].startswith("error: ") and "HF_HUB_OFFLINE" in lines[-1]
    _assert_names_the_files(lines[-1], hub.folder)
    assert hub.requests == []


class _DeadHub:
    """A loopback port that accepts connections and closes them at once, counting them (a hub that is down)."""

    def __enter__(self):
        import socket
        import threading

        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        return self

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def __exit__(self, *exc):
        self.sock.close()


@pytest.mark.parametrize("quiet", [[], ["-q"]])
def test_unreachable_hub_is_one_attempt_and_one_clear_error(cli, hub, quiet):
    """No retries (the hub client would retry for ~24 s), no doubled lines, and -q prints only the error."""
    with _DeadHub() as dead:
        proc = cli(*quiet, "models", "pull", "tiny", env={**hub.env, "HF_ENDPOINT": dead.url})
        connections = dead.connections
    err = proc.stderr.decode()
    assert proc.returncode == 1, err
    lines = err.strip().splitlines()
    assert connections == 1, err  # one attempt
    assert len(lines) == len(set(lines)), err  # no line printed twice
    assert "Retry" not in err and "Traceback" not in err
    assert lines[-1].startswith(f"error: cannot download tiny from {dead.url}")
    _assert_names_the_files(lines[-1], hub.folder)
    if quiet:
        assert len(lines) == 1, err


def test_whisper_model_by_name_is_refused(isolated_home, monkeypatch, hub):
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.setenv(name, "0")  # recorded, so what config.load sets is undone after the test
    monkeypatch.setenv("DEMOD_VOICE_OFFLINE", "1")
    for name, value in hub.env.items():
        monkeypatch.setenv(name, value)
    from demod_voice import config
    from demod_voice.dataset.transcribe import Transcriber
    from demod_voice.errors import DemodError

    config.load()  # as every command does first
    with pytest.raises(DemodError):  # refused, or not installed: never fetched
        Transcriber("tiny.en", "en")
    assert hub.requests == []


def test_offline_config_tells_the_hub_libraries(isolated_home, monkeypatch, tmp_path):
    import os

    from demod_voice import config

    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "DEMOD_VOICE_OFFLINE"):
        monkeypatch.setenv(name, "0")  # recorded, so what config.load sets is undone after the test
        monkeypatch.delenv(name)
    cfg_file = tmp_path / "offline.yaml"
    cfg_file.write_text("models:\n  offline: true\n")
    cfg = config.load(cfg_file)
    assert cfg.get("models.offline") is True
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"
    assert os.environ["DEMOD_VOICE_OFFLINE"] == "1"  # children (batch workers, Ray) inherit it
    assert config.load(None, environ={"DEMOD_VOICE_OFFLINE": "1"}).source("models.offline") == "env DEMOD_VOICE_OFFLINE"


def test_without_offline_mode_the_same_pull_reaches_the_hub(cli, hub):
    proc = cli("models", "pull", "tiny", env=hub.env)
    assert proc.returncode == 0, proc.stderr.decode()
    assert len(hub.requests) > 0 and (hub.folder / "model.bin").read_bytes() == FILES["model.bin"]
    # Once everything is present and verified, offline mode has nothing to refuse.
    before = len(hub.requests)
    proc = cli("models", "pull", "tiny", env={**hub.env, "DEMOD_VOICE_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr.decode()
    assert len(hub.requests) == before
