"""A hostile model mirror (#35 item 2): ``models pull`` is bounded like every outbound call. The whole transfer
of a file has a deadline (a mirror that drips a byte a second ends), and a body longer than the manifest's size
is stopped while it streams, with no partial file left behind. The mirror is the fake upstream on loopback; the
code is ``models pull``'s own download (its HEAD, then the bounded GET)."""

from __future__ import annotations

import time

import pytest

from demod_voice import models, outbound
from demod_voice.errors import EngineError
from tests.security.fake_upstream import Upstream

ENTRY = models.ModelEntry(name="hostile", kind="test", repo="tester/hostile", revision="0" * 40, files=(),
                          license="Test")


@pytest.fixture(scope="module")
def upstream():
    up = Upstream()
    yield up
    up.close()


def test_a_dripping_mirror_ends_at_the_transfer_deadline(monkeypatch, upstream, tmp_path):
    monkeypatch.setattr(outbound, "TRANSFER_GRACE_S", 2.0)  # 2 s + 100 KB at 50 KB/s: a 4 s deadline
    spec = models.ModelFile("model.bin", size=100_000, sha256=None)
    started = time.monotonic()
    with pytest.raises(OSError, match="did not arrive within 4 s"):
        models._download(ENTRY, spec, tmp_path, f"{upstream.url}/drip", force=False)
    assert time.monotonic() - started < 8  # per-read timeouts would never end: a byte comes every second
    assert list(tmp_path.iterdir()) == []  # no partial file


def test_a_body_longer_than_the_manifest_is_stopped_while_streaming(upstream, tmp_path):
    spec = models.ModelFile("model.bin", size=4096, sha256=None)
    started = time.monotonic()
    with pytest.raises(EngineError, match="sent more of model.bin than the manifest"):
        models._download(ENTRY, spec, tmp_path, f"{upstream.url}/huge-chunked", force=False)  # 2 GB, no length
    assert time.monotonic() - started < 5
    assert list(tmp_path.iterdir()) == []


def test_an_announced_size_unlike_the_manifest_is_never_fetched(upstream, tmp_path):
    spec = models.ModelFile("model.bin", size=4096, sha256=None)
    before = upstream.hits.get("huge", 0)
    with pytest.raises(EngineError, match="announces model.bin as 2147483648 bytes"):
        models._download(ENTRY, spec, tmp_path, f"{upstream.url}/huge", force=False)
    assert upstream.hits["huge"] == before + 1  # the HEAD only: no GET followed
    assert list(tmp_path.iterdir()) == []


def test_without_a_size_in_the_entry_the_cap_still_holds(monkeypatch, upstream, tmp_path):
    monkeypatch.setattr(models, "MAX_FILE_BYTES", 1 << 20)
    spec = models.ModelFile("model.bin", size=None, sha256=None)
    with pytest.raises(EngineError, match="sent more of model.bin"):
        models._download(ENTRY, spec, tmp_path, f"{upstream.url}/huge", force=False)  # 2 GB announced
    with pytest.raises(EngineError, match="sent more of model.bin"):
        models._download(ENTRY, spec, tmp_path, f"{upstream.url}/huge-chunked", force=False)
    assert list(tmp_path.iterdir()) == []


def test_a_missing_file_is_named_after_one_head(upstream, tmp_path):
    spec = models.ModelFile("model.bin", size=10, sha256=None)
    with pytest.raises(models._HubMissing, match="model.bin in tester/hostile"):
        models._download(ENTRY, spec, tmp_path, f"{upstream.url}/missing", force=False)
