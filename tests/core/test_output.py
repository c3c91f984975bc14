"""Delivering audio chunk by chunk: the same bytes as encoding the whole audio, bounded memory, atomic files."""

from __future__ import annotations

import io
import os
import threading

import numpy as np
import pytest
import soundfile as sf

from demod_voice import audio as audio_mod
from demod_voice import output
from demod_voice.audio import Audio
from demod_voice.errors import InputError

RATE = 22050


def speechlike_chunks(n: int = 5, seconds: float = 0.7, rate: int = RATE) -> list[Audio]:
    """Sentences of a voiced, noisy signal with silence at their ends, of different lengths."""
    rng = np.random.default_rng(7)
    chunks = []
    for i in range(n):
        t = np.arange(int(rate * seconds * (1 + 0.3 * i))) / rate
        voiced = 0.4 * np.sin(2 * np.pi * (120 + 15 * i) * t) * np.sin(np.pi * t / t[-1]) ** 2
        chunks.append(Audio((voiced + rng.normal(0, 0.01, len(t))).astype(np.float32), rate))
    return chunks


def whole_bytes(chunks: list[Audio], fmt: str) -> bytes:
    return audio_mod.encode(audio_mod.concat(chunks), fmt)


@pytest.mark.parametrize("fmt", ["wav", "pcm", "flac", "mp3", "aac"])
def test_file_is_byte_identical_to_encoding_the_whole(tmp_path, fmt):
    chunks = speechlike_chunks()
    target = tmp_path / f"out.{fmt}"
    delivered = output.deliver(iter(chunks), output.Target(str(target), fmt))
    assert target.read_bytes() == whole_bytes(chunks, fmt)
    assert delivered.frames == sum(len(c.samples) for c in chunks) and delivered.sample_rate == RATE
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no temporary file left beside it


@pytest.mark.parametrize("fmt", ["ogg", "opus"])
def test_ogg_files_hold_the_same_audio_as_encoding_the_whole(tmp_path, fmt):
    """Ogg streams carry a random serial (two whole encodes differ too): compare the decoded audio."""
    chunks = speechlike_chunks()
    target = tmp_path / f"out.{fmt}"
    output.deliver(iter(chunks), output.Target(str(target), fmt))
    ours, rate = sf.read(target, dtype="float32")
    theirs, rate_whole = sf.read(io.BytesIO(whole_bytes(chunks, fmt)), dtype="float32")
    assert rate == rate_whole == (48000 if fmt == "opus" else RATE)
    assert abs(len(ours) - len(theirs)) <= 0.03 * rate  # within a codec frame or two
    n = min(len(ours), len(theirs))
    assert np.corrcoef(ours[:n], theirs[:n])[0, 1] > 0.99
    assert np.abs(ours[:n] - theirs[:n]).max() < 0.05


def test_chunks_at_another_rate_are_resampled_like_concat(tmp_path):
    chunks = speechlike_chunks(3)
    chunks[1] = audio_mod.resample(chunks[1], 16000)
    target = tmp_path / "mixed.wav"
    output.deliver(iter(chunks), output.Target(str(target), "wav"))
    assert target.read_bytes() == whole_bytes(chunks, "wav")


def test_standard_output_gets_the_file_bytes(monkeypatch, tmp_path):
    """Standard output cannot seek back to finish a header: a spool file is copied over at the end."""
    chunks = speechlike_chunks(3)
    sink = io.BytesIO()
    monkeypatch.setattr("sys.stdout", type("Out", (), {"buffer": sink})())
    output.deliver(iter(chunks), output.Target("-", "wav"))
    assert sink.getvalue() == whole_bytes(chunks, "wav")


def test_fifo_gets_the_file_bytes(tmp_path):
    chunks = speechlike_chunks(3)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    output.deliver(iter(chunks), output.Target(str(fifo), "flac"))
    reader.join(30)
    assert received == [whole_bytes(chunks, "flac")]


def test_dev_null_is_accepted(tmp_path):
    delivered = output.deliver(iter(speechlike_chunks(2)), output.Target(os.devnull, "wav"))
    assert delivered.duration > 1.0


def test_no_chunks_is_a_clear_error_and_leaves_nothing(tmp_path):
    target = tmp_path / "empty.wav"
    with pytest.raises(InputError, match="no speech"):
        output.deliver(iter([]), output.Target(str(target), "wav"))
    assert list(tmp_path.iterdir()) == []


def test_a_failure_midway_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "keep.wav"
    target.write_bytes(b"the user's earlier file")

    def failing():
        yield from speechlike_chunks(2)
        raise KeyboardInterrupt  # Ctrl-C in the middle of a long text

    with pytest.raises(KeyboardInterrupt):
        output.deliver(failing(), output.Target(str(target), "wav"))
    assert target.read_bytes() == b"the user's earlier file"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.wav"]
