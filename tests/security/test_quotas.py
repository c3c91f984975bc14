"""Issue 24 item 4: per-user quotas on saved voices, each refused with 413 or 429 and a clear message.

Before: 10 voices with 15 MB descriptions were all accepted (+150 MB in 3 s); voice count, sample
count, disk use and field lengths were unbounded.
"""

from __future__ import annotations

import io

import httpx
import numpy as np
import pytest
import soundfile as sf

from demod_voice.errors import LimitError
from demod_voice.voices import VoiceLimits, VoiceStore
from tests.security.conftest import KEYS, server_config
from tests.server.conftest import start_server, stop_server

QUOTAS = """voices:
  max_per_user: 3
  max_samples_per_voice: 2
  max_description_chars: 100
  max_field_chars: 20
"""


def tone(seconds: float, freq: float, rate: int = 16000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    buf = io.BytesIO()
    sf.write(buf, (0.3 * np.sin(2 * np.pi * freq * t)).astype("float32"), rate, format="FLAC")
    return buf.getvalue()


@pytest.fixture(scope="module")
def quota_server(tmp_path_factory):
    home = tmp_path_factory.mktemp("quota-server")
    proc, url = start_server(home, server_config(QUOTAS))
    yield url
    stop_server(proc)


def _client(url: str, user: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEYS[user]}"}, timeout=60)


def test_quota_fill_over_http(quota_server):
    with _client(quota_server, "alice") as alice, _client(quota_server, "bob") as bob:
        r = alice.post("/api/voices", json={"name": "big", "description": "x" * 15_000})
        assert r.status_code == 413 and "description is 15000 characters; the limit is 100" in r.json()["error"]["message"]
        r = alice.post("/api/voices", json={"name": "lang", "language": "l" * 50})
        assert r.status_code == 413 and "language" in r.json()["error"]["message"]
        for i in range(3):
            assert alice.post("/api/voices", json={"name": f"v{i}", "description": "fine"}).status_code == 201
        r = alice.post("/api/voices", json={"name": "v3"})
        assert r.status_code == 429, r.text
        assert "already has 3 saved voices; the limit is 3" in r.json()["error"]["message"]
        assert "voices.max_per_user" in r.json()["error"]["hint"]
        # the quota is per user: bob still has room
        assert bob.post("/api/voices", json={"name": "v0"}).status_code == 201
        for i in range(2):
            r = alice.post("/api/voices/v0/samples", files={"file": (f"s{i}.flac", tone(2, 150 + 40 * i))})
            assert r.status_code == 201, r.text
        r = alice.post("/api/voices/v0/samples", files={"file": ("s2.flac", tone(2, 300))})
        assert r.status_code == 429 and "already has 2 samples; the limit is 2" in r.json()["error"]["message"]
        r = alice.post("/api/voices/v1/samples", data={"transcript": "t" * 30}, files={"file": ("s.flac", tone(2, 200))})
        assert r.status_code == 413 and "transcript" in r.json()["error"]["message"]
        # deleting frees the quota
        assert alice.delete("/api/voices/v2").status_code == 200
        assert alice.post("/api/voices", json={"name": "v3"}).status_code == 201


def test_disk_quota(tmp_path):
    store = VoiceStore(tmp_path, "alice", limits=VoiceLimits(max_user_bytes=300_000))
    store.create("v")
    store.add_sample("v", tone(1, 200), filename="a.flac")  # 64 KB as float WAV
    with pytest.raises(LimitError) as err:
        for i in range(10):
            store.add_sample("v", tone(1, 230 + 20 * i), filename=f"b{i}.flac")
    assert err.value.status == 413 and "the limit is 0.3 MB" in err.value.message
    assert store.disk_usage() <= 300_000
