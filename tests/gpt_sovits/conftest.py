"""The GPT-SoVITS api_v2 stand-in started by the real ``demod-voice gpt-sovits start``, shared by this area's tests."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.helpers import run_cli

HERE = Path(__file__).resolve().parent
CONFIG = "GPT_SoVITS/configs/tts_infer.yaml"
TRANSCRIPT = "The quick brown fox jumps over the lazy dog."


def _install(folder: Path) -> Path:
    (folder / "GPT_SoVITS" / "configs").mkdir(parents=True)
    (folder / CONFIG).write_text("custom: {}\n")
    shutil.copy(HERE / "api_v2.py", folder / "api_v2.py")
    return folder


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _running(pid: int) -> bool:
    """Alive and not a zombie (an exited child of a process that has not collected it)."""
    try:
        os.kill(pid, 0)
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z"
    except (ProcessLookupError, FileNotFoundError):
        return False


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """A started server: its URL, the CLI env that manages it, and its request log."""
    home = tmp_path_factory.mktemp("gsv-home")
    env = {f"XDG_{k}_HOME": str(home / k.lower()) for k in ("CONFIG", "DATA", "CACHE")}
    env["FAKE_API_V2_LOG"] = str(home / "requests.jsonl")
    port = _free_port()
    install = _install(home / "GPT-SoVITS")
    started = run_cli("gpt-sovits", "start", "--install-dir", install, "--port", port, "--timeout", "60", env=env)
    assert started.returncode == 0, started.stderr.decode()
    yield {"url": f"http://127.0.0.1:{port}", "env": env, "log": home / "requests.jsonl", "home": home}
    run_cli("gpt-sovits", "stop", env=env)


def _requests(api, route: str = "/tts") -> list[dict]:
    lines = api["log"].read_text().splitlines() if api["log"].exists() else []
    return [r["params"] for r in map(json.loads, lines) if r["route"] == route]


