"""Hostile and mistaken input over Wyoming: an error event (and a clean close for broken frames), never a dead server."""

from __future__ import annotations

import asyncio
import json
import socket

import numpy as np
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStop, SynthesizeVoice

from tests.wyoming.conftest import MAX_AUDIO_S, MAX_TEXT, collect, run


async def exchange(port: int, *events: Event, until=("error",)) -> list:
    async with AsyncTcpClient("127.0.0.1", port) as client:
        for event in events:
            await client.write_event(event)
        return await collect(client, set(until))


def error_of(events) -> Error:
    assert events[-1] is not None and events[-1].type == "error", events[-1]
    return Error.from_event(events[-1])


def still_alive(port: int) -> None:
    events = run(exchange(port, Describe().event(), until=("info",)))
    assert events[-1].type == "info"


def test_unknown_voice_is_an_error_then_a_close(wyoming_server):
    """One-shot synthesis: error, then the connection closes (Home Assistant's loop waits for audio-stop or a close)."""
    port = wyoming_server["port"]

    async def go():
        async with AsyncTcpClient("127.0.0.1", port) as client:
            await client.write_event(Synthesize(text="Hi.", voice=SynthesizeVoice(name="no-such-voice")).event())
            return await collect(client, {"audio-stop"})

    events = run(go())
    assert events[-1] is None  # closed
    err = error_of(events[:-1])
    assert "unknown voice 'no-such-voice'" in err.text and err.code == "ModelNotFoundError"
    still_alive(port)


def test_errors_outside_one_shot_exchanges_keep_the_connection(wyoming_server):
    async def go():
        async with AsyncTcpClient("127.0.0.1", wyoming_server["port"]) as client:
            await client.write_event(Event(type="make-coffee"))
            first = await collect(client, {"error"})
            await client.write_event(Describe().event())  # same connection afterwards
            return first, await collect(client, {"info", "error"})

    first, after = run(go())
    assert first[-1].type == "error" and after[-1].type == "info"


def test_unknown_speaker_and_bad_names(wyoming_server):
    port = wyoming_server["port"]
    err = error_of(run(exchange(port, Synthesize(text="Hi.", voice=SynthesizeVoice(
        name="en_US-joe-medium", speaker="nobody")).event(), until=("error", "audio-stop"))))
    assert "single speaker" in err.text
    for name in ("../../etc/passwd", "en_US-joe-medium+../x"):
        err = error_of(run(exchange(port, Synthesize(text="Hi.", voice=SynthesizeVoice(name=name)).event(),
                                    until=("error", "audio-stop"))))
        assert err.code in ("ModelNotFoundError", "InputError"), err


def test_voice_by_language_only(wyoming_server):
    port = wyoming_server["port"]
    events = run(exchange(port, Synthesize(text="By language.", voice=SynthesizeVoice(language="en_US")).event(),
                          until=("error", "audio-stop")))
    assert events[-1].type == "audio-stop"
    err = error_of(run(exchange(port, Synthesize(text="Hallo.", voice=SynthesizeVoice(language="de")).event(),
                                until=("error", "audio-stop"))))
    assert "no voice speaks language 'de'" in err.text


def test_unknown_event_type(wyoming_server):
    err = error_of(run(exchange(wyoming_server["port"], Event(type="make-coffee", data={"sugar": 2}))))
    assert "unknown event type 'make-coffee'" in err.text
    still_alive(wyoming_server["port"])


def test_bad_text(wyoming_server):
    port = wyoming_server["port"]
    assert "empty" in error_of(run(exchange(port, Synthesize(text="   ").event(), until=("error", "audio-stop")))).text
    too_long = "word " * (MAX_TEXT // 5 + 10)
    assert "limit" in error_of(run(exchange(port, Synthesize(text=too_long).event(), until=("error", "audio-stop")))).text
    missing = error_of(run(exchange(port, Event(type="synthesize", data={}))))
    assert missing.code == "bad-event"


def test_stream_events_out_of_order(wyoming_server):
    port = wyoming_server["port"]
    assert "without synthesize-start" in error_of(run(exchange(port, SynthesizeChunk(text="Hi. ").event()))).text
    assert "without synthesize-start" in error_of(run(exchange(port, SynthesizeStop().event()))).text
    assert "without audio-start" in error_of(run(exchange(port, AudioChunk(rate=16000, width=2, channels=1,
                                                                           audio=b"\0\0").event()))).text
    assert "without audio-start" in error_of(run(exchange(port, AudioStop().event()))).text


def test_oversized_and_unsupported_audio(wyoming_server):
    port = wyoming_server["port"]
    rate = 16000
    chunk = np.zeros(rate, "<i2").tobytes()  # one second

    async def too_long():
        async with AsyncTcpClient("127.0.0.1", port) as client:
            await client.write_event(Transcribe(language="en").event())
            await client.write_event(AudioStart(rate=rate, width=2, channels=1).event())
            for _ in range(int(MAX_AUDIO_S) + 2):
                await client.write_event(AudioChunk(rate=rate, width=2, channels=1, audio=chunk).event())
            await client.write_event(AudioStop().event())
            return await collect(client, {"error", "transcript"})

    assert "longer than the limit" in error_of(run(too_long())).text
    bad = error_of(run(exchange(port, Transcribe().event(), AudioStart(rate=16000, width=4, channels=1).event(),
                                AudioChunk(rate=16000, width=4, channels=1, audio=b"\0" * 64).event(),
                                AudioStop().event(), until=("error", "transcript"))))
    assert "not supported" in bad.text
    lang = error_of(run(exchange(port, Transcribe(language="de").event(), AudioStart(rate=16000, width=2,
                                 channels=1).event(), AudioChunk(rate=16000, width=2, channels=1,
                                 audio=chunk).event(), AudioStop().event(), until=("error", "transcript"))))
    assert "language 'de'" in lang.text and "English-only" in lang.text
    still_alive(port)


def raw_exchange(port: int, data: bytes) -> tuple[list[dict], bool]:
    """Send raw bytes; return the JSON headers received and whether the server closed the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(data)
        received = b""
        closed = False
        while True:
            try:
                part = sock.recv(65536)
            except TimeoutError:
                break
            if not part:
                closed = True
                break
            received += part
    headers = []
    for line in received.split(b"\n"):
        try:
            headers.append(json.loads(line))
        except ValueError:
            continue
    return headers, closed


def test_broken_frames_get_an_error_and_a_clean_close(wyoming_server):
    port = wyoming_server["port"]
    cases = [
        b"this is not json\n",
        json.dumps({"type": "audio-chunk", "payload_length": 10 ** 12}).encode() + b"\n",
        json.dumps({"type": "synthesize", "data_length": 10 ** 9}).encode() + b"\n",
        json.dumps({"type": "synthesize", "data_length": 5}).encode() + b"\n[1,2]",
        json.dumps({"data": {}}).encode() + b"\n",
        b"{" + b" " * (128 * 1024) + b"\n",
    ]
    for data in cases:
        headers, closed = raw_exchange(port, data)
        assert closed, data[:60]
        assert [h["type"] for h in headers if "type" in h] == ["error"], (data[:60], headers)
    still_alive(port)


def test_clients_that_vanish_mid_synthesis(wyoming_server):
    port = wyoming_server["port"]
    long_text = " ".join(f"Sentence number {i} is here to keep the engine busy for a while." for i in range(30))

    async def vanish(read_some: bool):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        from wyoming.event import async_write_event

        await async_write_event(Synthesize(text=long_text).event(), writer)
        if read_some:
            await reader.read(4096)
        writer.transport.abort()

    run(vanish(False))
    run(vanish(True))
    # a half-sent frame, then gone
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(json.dumps({"type": "audio-chunk", "payload_length": 1000}).encode() + b"\n" + b"\0" * 10)
    still_alive(port)
    assert wyoming_server["proc"].poll() is None
