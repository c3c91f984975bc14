"""Compressed formats stream as one valid file; word timings over JSON, SSE and OpenAI's SSE.

A real server (tests/server/conftest.py), real HTTP clients (httpx, the openai SDK),
decoders that need no system ffmpeg: PyAV (bundled ffmpeg libraries) and libsndfile.
"""

from __future__ import annotations

import base64
import io
import json
import uuid

import numpy as np
import pytest
import soundfile as sf

from demod_voice import streaming
from tests.server.conftest import KEYS

av = pytest.importorskip("av")

QUIET = {"noise_scale": 0.0, "noise_w": 0.0}
TEXT = ("The first sentence opens the stream. A second one follows it closely. "
        "And the very last sentence carries the ending.")
#: libmp3lame's encoder delay (576) plus the decoder's (529): a streamed MP3 cannot declare it,
#: because the Xing/LAME header that does is written at the end of a file.
MP3_DELAY = 1105


def unique(text: str) -> str:
    return f"{text} Take {uuid.uuid4().int % 997}."


def decode_av(data: bytes) -> tuple[np.ndarray, int]:
    """Samples and rate with PyAV, as any ffmpeg-based player decodes them."""
    parts, rate = [], None
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        for frame in container.decode(stream):
            rate = frame.sample_rate
            parts.append(frame.to_ndarray().mean(axis=0) if frame.format.is_planar else frame.to_ndarray().reshape(-1))
    return np.concatenate(parts).astype(np.float32), rate


def decode_sndfile(data: bytes, tmp_path) -> tuple[np.ndarray, int]:
    """libsndfile, block by block from a file (a streamed FLAC does not state its length)."""
    path = tmp_path / f"{uuid.uuid4().hex}.bin"
    path.write_bytes(data)
    parts = []
    with sf.SoundFile(str(path)) as fh:
        while len(block := fh.read(65536, dtype="float32")):
            parts.append(block)
        rate = fh.samplerate
    return np.concatenate(parts), rate


def tts(client, text: str, fmt: str, stream: bool, **extra):
    body = {"text": text, "voice": "en_US-joe-medium", "format": fmt, "stream": stream, "cache": False,
            "params": QUIET, **extra}
    res = client.post("/api/tts", json=body)
    assert res.status_code == 200, res.text
    return res


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if len(samples) else 0.0


@pytest.fixture(scope="module")
def reference(alice):
    """The utterance as 16-bit WAV (not streamed) and where its last sentence starts."""
    res = tts(alice, TEXT, "wav", False, timestamps=True)
    body = res.json()
    samples, rate = sf.read(io.BytesIO(base64.b64decode(body["audio"])), dtype="float32")
    last = next(w for w in body["words"] if w["word"] == "And")
    return {"samples": samples, "rate": rate, "last_start": last["start"], "words": body["words"]}


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac", "wav"])
def test_streamed_and_whole_decode_to_the_same_utterance(alice, reference, fmt, tmp_path):
    streamed = tts(alice, TEXT, fmt, True)
    whole = tts(alice, TEXT, fmt, False)
    assert streamed.headers["content-type"].startswith(whole.headers["content-type"].split(";")[0])
    source_seconds = len(reference["samples"]) / reference["rate"]
    frame = streaming.frame_seconds(fmt, reference["rate"])
    # libsndfile has no AAC; PyAV decodes it. FLAC is not streamed (a streamed STREAMINFO cannot state the
    # length, and libsndfile refuses that), so both FLAC answers are whole files.
    decoders = [decode_av] + ([lambda d: decode_sndfile(d, tmp_path)] if fmt != "aac" else [])
    if fmt == "flac":
        for res in (streamed, whole):
            samples, rate = decode_sndfile(res.content, tmp_path)
            assert abs(len(samples) - len(reference["samples"])) == 0 and rate == reference["rate"]
    for decoder in decoders:
        seconds = {}
        for name, res in (("streamed", streamed), ("whole", whole)):
            samples, rate = decoder(res.content)
            seconds[name] = len(samples) / rate
            # the last sentence is there: its energy matches the reference's
            tail = samples[int(reference["last_start"] * rate):]
            ref_tail = reference["samples"][int(reference["last_start"] * reference["rate"]):]
            assert rms(tail) > 0.6 * rms(ref_tail), (fmt, name, decoder)
        tolerance = frame + (MP3_DELAY / reference["rate"] if fmt == "mp3" else 0.0)
        assert abs(seconds["streamed"] - seconds["whole"]) <= tolerance + 1e-6, (fmt, seconds, tolerance)
        # and both hold the source's whole utterance (codec priming and padding at most a frame or two)
        assert source_seconds - 1e-3 <= seconds["streamed"] <= source_seconds + 2 * frame + MP3_DELAY / 22050, seconds


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["mp3", "opus"])
def test_first_compressed_bytes_leave_after_the_first_sentence(server, alice, fmt):
    import httpx

    text = unique(" ".join(f"Sentence {i} tells of a keeper who counts the ships at night." for i in range(8)))
    pieces, active_after_first = [], None
    with alice.stream("POST", "/api/tts", json={"text": text, "voice": "en_US-joe-medium", "format": fmt,
                                                 "stream": True, "cache": False}) as res:
        assert res.status_code == 200
        for piece in res.iter_raw():
            if active_after_first is None:
                active_after_first = httpx.get(server["url"] + "/health").json()["active_jobs"]
            pieces.append(piece)
    assert active_after_first >= 1  # bytes arrived while synthesis was still under way
    assert len(pieces) >= 4 and len(pieces[0]) < sum(map(len, pieces)) / 3
    samples, rate = decode_av(b"".join(pieces))
    assert len(samples) / rate > 15  # all eight sentences


@pytest.mark.slow
def test_timestamps_json(alice, reference):
    words = reference["words"]
    assert [w["word"] for w in words] == TEXT.split()
    assert all(0 <= w["start"] <= w["end"] for w in words)
    assert all(a["end"] <= b["start"] + 1e-3 for a, b in zip(words, words[1:], strict=False))
    assert words[-1]["end"] <= len(reference["samples"]) / reference["rate"] + 1e-3


@pytest.mark.slow
def test_native_sse_carries_audio_and_the_words_each_chunk_completes(alice, reference):
    body = {"text": TEXT, "voice": "en_US-joe-medium", "format": "mp3", "stream": True, "timestamps": True,
            "params": QUIET}
    events = []
    with alice.stream("POST", "/api/tts", json=body) as res:
        assert res.status_code == 200 and res.headers["content-type"].startswith("text/event-stream")
        for line in res.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    deltas = [e for e in events if e["type"] == "speech.audio.delta"]
    assert events[-1]["type"] == "speech.audio.done" and len(deltas) >= 3
    assert sum(1 for e in deltas if e["words"]) == 3  # one group of words per sentence
    streamed_words = [w for e in deltas for w in e["words"]]
    assert streamed_words == events[-1]["words"] == reference["words"]
    samples, rate = decode_av(b"".join(base64.b64decode(e["audio"]) for e in deltas))
    assert abs(len(samples) / rate - events[-1]["duration"]) < 0.1


@pytest.mark.slow
def test_openai_sdk_sse_and_streaming_response(server):
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=server["url"] + "/v1", api_key=KEYS["alice"])
    with client.audio.speech.with_streaming_response.create(
            model="tts-1", voice="alloy", input="Server sent events work too. Two sentences.",
            response_format="mp3", stream_format="sse") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        # the SDK's own SSE reader parses the events (and would raise on an error event)
        events = list(openai.Stream(cast_to=object, response=response.http_response, client=client))
    assert [e["type"] for e in events][-1] == "speech.audio.done"
    audio = b"".join(base64.b64decode(e["audio"]) for e in events if e["type"] == "speech.audio.delta")
    samples, rate = decode_av(audio)
    assert len(samples) / rate > 1.5 and np.abs(samples).max() > 0.05
    # plain streaming of a compressed format through the SDK
    with client.audio.speech.with_streaming_response.create(model="tts-1", voice="alloy", input="Opus streams.",
                                                            response_format="opus") as response:
        data = b"".join(response.iter_bytes())
    samples, rate = decode_av(data)
    assert rate == 48000 and len(samples) / rate > 0.5


@pytest.mark.slow
def test_sse_reports_errors_as_an_event(alice):
    res = alice.post("/v1/audio/speech", json={"model": "tts-1", "input": "hi", "voice": "nobody",
                                               "stream_format": "sse"})
    assert res.status_code == 404  # errors before audio starts keep their status
