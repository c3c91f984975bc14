"""A real server for the hostile-input tests: `demod-voice serve` on 127.0.0.1, a free port, isolated dirs.

Auth is required. alice and bob are ordinary users, root is an admin; the key hashes are in the config,
bob's plain key comes from a key file and carol's from DEMOD_VOICE_API_KEYS-style env (see test_auth).
Bodies are capped small (``MAX_BODY``) and a stalled body times out after ``BODY_TIMEOUT`` seconds.
"""

from __future__ import annotations

import httpx
import pytest

from tests.server.conftest import start_server, stop_server

KEYS = {"alice": "alice-key-0123456789abcdef", "bob": "bob-key-0123456789abcdef", "root": "root-key-0123456789abcdef"}
ALLOWED_ORIGIN = "http://allowed.example:8080"
MAX_BODY = 200_000
BODY_TIMEOUT = 2.0


def server_config(extra: str = "") -> str:
    from demod_voice.server.security import hash_key

    keys = "\n".join(f"    {user}: '{hash_key(key)}'" for user, key in KEYS.items())
    return f"""
auth:
  required: true
server:
  api_keys:
{keys}
  admin_users: [root]
  allowed_origins: ['{ALLOWED_ORIGIN}']
  max_body_bytes: {MAX_BODY}
  max_upload_mb: 0.1
  body_timeout_s: {BODY_TIMEOUT}
  cpu_workers: 2
router:
  breaker_failures: 2
  breaker_cooldown_s: 60
{extra}
"""


@pytest.fixture(scope="session")
def server(tmp_path_factory, joe_voice):
    home = tmp_path_factory.mktemp("security-server")
    proc, url = start_server(home, server_config(), ("--preload",))
    yield {"url": url, "home": home, "proc": proc, "port": int(url.rsplit(":", 1)[1])}
    stop_server(proc)


def client(server, user: str | None, **kwargs) -> httpx.Client:
    headers = {"Authorization": f"Bearer {KEYS[user]}"} if user else {}
    headers.update(kwargs.pop("headers", {}))
    kwargs.setdefault("timeout", 60)
    return httpx.Client(base_url=server["url"], headers=headers, **kwargs)


@pytest.fixture(scope="session")
def users(server):
    """One authenticated client per user, for the whole session."""
    clients = {user: client(server, user) for user in KEYS}
    yield clients
    for c in clients.values():
        c.close()


@pytest.fixture
def alice(users):
    return users["alice"]


@pytest.fixture
def bob(users):
    return users["bob"]


@pytest.fixture
def root(users):
    return users["root"]


@pytest.fixture(scope="session")
def xtts_checkpoint(tmp_path_factory):
    """A tiny random-weight XTTS-v2 checkpoint in the genuine layout (as tests/xtts builds it)."""
    pytest.importorskip("TTS.tts.models.xtts")
    from demod_voice.tiny_models import build_xtts as build

    return build(tmp_path_factory.mktemp("xtts") / "tiny-xtts", max_audio_tokens=8)
