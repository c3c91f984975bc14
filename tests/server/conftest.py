"""One real server per test session: `demod-voice serve` on 127.0.0.1, a free port, isolated dirs.

Auth is required; three keys map to users alice, bob and carol (the page test).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import REPO, cli_env

KEYS = {"alice": "key-alice-0123456789", "bob": "key-bob-0123456789", "carol": "key-carol-0123456789"}
MAX_TEXT = 3000
MAX_UPLOAD_MB = 1.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _nofile(limit: int):
    def apply() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
    return apply


def start_server(home: Path, config: str, extra_args: tuple = (), env_extra: dict | None = None,
                 nofile: int | None = None) -> tuple[subprocess.Popen, str]:
    """``nofile``: the server's descriptor limit (``ulimit -n``)."""
    for sub in ("config", "data", "cache"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    (home / "server.yaml").write_text(config)
    port = free_port()
    env = cli_env({"XDG_CONFIG_HOME": str(home / "config"), "XDG_DATA_HOME": str(home / "data"),
                   "XDG_CACHE_HOME": str(home / "cache")})
    for name in list(env):
        if name.startswith("DEMOD_VOICE_"):
            del env[name]
    env.update(env_extra or {})
    log = open(home / "server.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "demod_voice", "serve", "--config", str(home / "server.yaml"),
                             "--port", str(port), *extra_args], env=env, stdout=log, stderr=subprocess.STDOUT,
                            cwd=REPO, preexec_fn=_nofile(nofile) if nofile else None)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180  # a loaded 2-core machine needs a while to import and preload
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited: " + (home / "server.log").read_text())
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("server did not start: " + (home / "server.log").read_text())


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def auth_config() -> str:
    """The config every server test starts with: keys required, one salted key hash per user of ``KEYS``.

    It ends inside the ``server:`` section, so callers continue with more ``server`` keys (indented 2).
    """
    from demod_voice.server.security import hash_key

    keys = "\n".join(f"    {user}: '{hash_key(key)}'" for user, key in KEYS.items())
    return f"auth:\n  required: true\nserver:\n  api_keys:\n{keys}\n"


@pytest.fixture(scope="session")
def server(tmp_path_factory, joe_voice):
    home = tmp_path_factory.mktemp("server-home")
    config = f"""
{auth_config()}  max_text_chars: {MAX_TEXT}
  max_upload_mb: {MAX_UPLOAD_MB}
  cpu_workers: 2
"""
    proc, url = start_server(home, config, ("--preload",))
    yield {"url": url, "home": home, "proc": proc}
    stop_server(proc)


def client_for(server, user: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {KEYS[user]}"} if user else {}
    return httpx.Client(base_url=server["url"], headers=headers, timeout=120)


@pytest.fixture(scope="session")
def alice(server):
    with client_for(server, "alice") as c:
        yield c


@pytest.fixture(scope="session")
def bob(server):
    with client_for(server, "bob") as c:
        yield c


@pytest.fixture(scope="session")
def short_wav(tmp_path_factory, joe_voice) -> Path:
    """~2 s of real speech, a second sample for reference selection."""
    from demod_voice.audio import write
    from demod_voice.engines.piper import engine as piper

    out = tmp_path_factory.mktemp("short") / "short.wav"
    engine = piper.load(joe_voice, "cpu")
    write(engine.synthesize_all("Good morning, everyone.", piper.PiperOptions(noise_scale=0.0, noise_w=0.0)), out)
    return out


def env_without_demod() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("DEMOD_VOICE_")}
