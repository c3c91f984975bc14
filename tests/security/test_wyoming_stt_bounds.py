"""Regression tests: Wyoming frames are bounded before buffering; STT requests cannot name model paths;
a Wyoming unix socket never replaces an existing file."""

from __future__ import annotations

import asyncio
import json

import pytest

pytest.importorskip("wyoming")

from demod_voice.errors import InputError, UsageError  # noqa: E402
from demod_voice.wyoming.handler import MAX_LINE, MAX_PAYLOAD, FrameError, read_event  # noqa: E402


def read(data: bytes):
    async def go():
        reader = asyncio.StreamReader(limit=MAX_LINE)
        reader.feed_data(data)
        reader.feed_eof()
        return await read_event(reader)

    return asyncio.run(go())


@pytest.mark.parametrize("header", [
    {"type": "audio-chunk", "payload_length": MAX_PAYLOAD + 1},
    {"type": "audio-chunk", "payload_length": -5},
    {"type": "synthesize", "data_length": 10 ** 12},
    {"type": 5},
    {"data": {}},
])
def test_declared_sizes_and_shapes_are_checked_before_reading(header):
    # only the header is sent: a reader that trusted the sizes would wait for (or buffer) the body
    with pytest.raises(FrameError):
        read(json.dumps(header).encode() + b"\n")


def test_overlong_header_line():
    with pytest.raises(FrameError, match="longer than"):
        read(b'{"type": "x", "pad": "' + b"a" * (MAX_LINE + 10) + b'"}\n')


def test_well_formed_event_still_reads():
    event = read(json.dumps({"type": "audio-chunk", "data": {"rate": 16000}, "payload_length": 4}).encode()
                 + b"\n\x00\x01\x02\x03")
    assert event.type == "audio-chunk" and event.payload == b"\x00\x01\x02\x03" and event.data == {"rate": 16000}


@pytest.mark.parametrize("model", ["/etc", "../models/x", "/tmp/whisper", "~/m", "whisper-base.en/../../x"])
def test_transcription_requests_cannot_name_paths(model, tmp_path):
    from demod_voice import config
    from demod_voice.stt import SpeechToText

    cfg = config.load(environ={}, user_file=tmp_path / "none.yaml")
    with pytest.raises(InputError, match="unknown transcription model"):
        SpeechToText(cfg, lambda user: None).model_name(model)
    assert SpeechToText(cfg, lambda user: None).model_name("whisper-1") == cfg.get("stt.model")


def test_unix_socket_path_never_replaces_a_file(tmp_path):
    from demod_voice.wyoming.server import _clear_stale_socket

    victim = tmp_path / "important.txt"
    victim.write_text("data")
    with pytest.raises(UsageError, match="not a socket"):
        _clear_stale_socket(victim)
    assert victim.read_text() == "data"
