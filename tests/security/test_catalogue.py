"""A hostile voice mirror (#35 item 6): sizes that differ from the index are refused before any byte is read,
downloads stop at the index's size, and the index itself is bounded (bytes and entries) and parsed once.
The mirror is the fake upstream on loopback (``HF_ENDPOINT``); the code is ``voices download``'s own."""

from __future__ import annotations

import json
import time

import pytest

from demod_voice import piper_voices
from demod_voice.errors import EngineError, InputError
from tests.security.fake_upstream import Upstream

PATH = "en/en_US/x/medium/en_US-x-medium.onnx"


@pytest.fixture(scope="module")
def upstream():
    up = Upstream()
    yield up
    up.close()


def _mirror(monkeypatch, upstream, mode: str) -> None:
    monkeypatch.setenv("HF_ENDPOINT", f"{upstream.url}/{mode}")


def test_an_announced_size_unlike_the_index_is_refused_before_downloading(monkeypatch, upstream, tmp_path):
    _mirror(monkeypatch, upstream, "sized/300000")  # HEAD and GET announce 300 KB; the index says 100 B
    before = upstream.hits.get("sized", 0)
    with pytest.raises(EngineError, match="announces .* as 300000 bytes, the index as 100"):
        piper_voices._download([(PATH, 100)], tmp_path, True, "a voice", "by hand")
    assert upstream.hits["sized"] - before == 1  # the HEAD only: no GET
    assert not any(tmp_path.rglob("*.onnx*"))


def test_a_download_stops_at_the_index_size(monkeypatch, upstream, tmp_path):
    _mirror(monkeypatch, upstream, "huge-chunked")  # no length announced, 2 GB sent
    started = time.monotonic()
    with pytest.raises(EngineError, match="more than 1000 bytes"):
        piper_voices._download([(PATH, 1000)], tmp_path, True, "a voice", "by hand")
    assert time.monotonic() - started < 30
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # no partial file is left


def test_an_index_announced_too_large_is_refused(monkeypatch, upstream, tmp_path):
    _mirror(monkeypatch, upstream, "huge")  # announces 2 GB for voices.json
    with pytest.raises(EngineError, match="announced 2147483648 bytes"):
        piper_voices._download([(piper_voices.INDEX, None)], tmp_path, True, "the index", "by hand")


def _entry(i: int) -> dict:
    base = f"en/en_US/v{i}/low/en_US-v{i}-low.onnx"
    return {"language": {"code": "en_US"}, "quality": "low", "num_speakers": 1,
            "files": {base: {"size_bytes": 10, "md5_digest": "0" * 32}, base + ".json": {"size_bytes": 2}}}


def test_the_index_has_an_entry_cap_and_a_size_cap(isolated_home):
    from demod_voice import config

    cfg = config.load()
    with pytest.raises(InputError, match="more than 10000"):
        piper_voices.parse_index({f"en_US-v{i}-low": _entry(i) for i in range(piper_voices.INDEX_MAX_ENTRIES + 1)},
                                 "test index")
    folder = piper_voices._index_dir(cfg)
    folder.mkdir(parents=True)
    with open(folder / piper_voices.INDEX, "wb") as fh:  # a sparse 21 MB file: never read
        fh.truncate(piper_voices.INDEX_MAX_BYTES + 1)
    with pytest.raises(InputError, match="larger than 20 MB"):
        piper_voices.load_index(cfg)


def test_the_index_is_parsed_once_and_kept_compact(isolated_home):
    from demod_voice import config

    cfg = config.load()
    folder = piper_voices._index_dir(cfg)
    folder.mkdir(parents=True)
    raw = {f"en_US-v{i}-low": {**_entry(i), "extra": "x" * 500} for i in range(200)}
    (folder / piper_voices.INDEX).write_text(json.dumps(raw))
    first = piper_voices.load_index(cfg)
    compact = folder / piper_voices.COMPACT
    assert compact.is_file() and compact.stat().st_size < (folder / piper_voices.INDEX).stat().st_size / 3
    assert piper_voices.load_index(cfg) == first


def test_a_model_pull_refuses_a_size_unlike_the_manifest(upstream):
    from demod_voice import models

    spec = models.ModelFile("model.bin", size=100, sha256="0" * 64)
    with pytest.raises(EngineError, match="announces model.bin as 300000 bytes, the manifest as 100"):
        models._check_announced_size(f"{upstream.url}/sized/300000/model.bin", spec)
    models._check_announced_size(f"{upstream.url}/sized/100/model.bin", spec)  # the same size passes
