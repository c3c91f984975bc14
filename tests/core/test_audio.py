"""demod_voice.audio: reading, DSP, encoding, atomic writes."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from demod_voice import audio
from demod_voice.audio import Audio
from demod_voice.errors import InputError, UsageError
from demod_voice.quality import clipping_ratio


def tone(freq=440.0, seconds=1.0, sr=22050, amp=0.5) -> Audio:
    t = np.arange(int(seconds * sr)) / sr
    return Audio(amp * np.sin(2 * np.pi * freq * t), sr)


def test_read_stereo_mixdown_and_resample(tmp_path):
    stereo = np.stack([np.full(8000, 0.2), np.full(8000, 0.6)], axis=1)
    path = tmp_path / "s.flac"
    sf.write(str(path), stereo, 8000)
    got = audio.read(path)
    assert got.sample_rate == 8000 and got.samples.ndim == 1
    assert np.allclose(got.samples[100:-100], 0.4, atol=1e-3)
    up = audio.read(path, sample_rate=16000)
    assert up.sample_rate == 16000 and abs(len(up.samples) - 16000) <= 2


def test_read_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        audio.read(tmp_path / "missing.wav")
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF nope")
    with pytest.raises(InputError, match="cannot read"):
        audio.read(junk)


def test_resample_keeps_pitch():
    src = tone(440, 1.0, 22050)
    out = audio.resample(src, 16000)
    spectrum = np.abs(np.fft.rfft(out.samples))
    peak_hz = np.argmax(spectrum) * 16000 / len(out.samples)
    assert abs(peak_hz - 440) < 3


def test_peak_and_loudness_normalize():
    quiet = tone(amp=0.05)
    assert audio.peak_normalize(quiet, -1.0).peak == pytest.approx(10 ** (-1 / 20), rel=1e-4)
    target = audio.loudness_normalize(quiet, -20.0, peak_db=0.0)
    assert audio.loudness(target) == pytest.approx(-20.0, abs=0.3)
    silence = Audio(np.zeros(22050), 22050)
    assert audio.loudness_normalize(silence).peak == 0.0


def test_trim_silence():
    sr = 16000
    body = tone(300, 0.5, sr).samples
    padded = Audio(np.concatenate([np.zeros(sr), body, np.zeros(sr)]), sr)
    trimmed = audio.trim_silence(padded, pad=0.0)
    assert 0.45 < trimmed.duration < 0.6
    assert audio.trim_silence(Audio(np.zeros(sr), sr)).duration == 0.0


def test_clipping_and_silence_helpers():
    clipped = Audio(np.clip(tone(amp=2.0).samples, -1, 1), 22050)
    assert clipping_ratio(clipped) > 0.3
    assert clipping_ratio(tone()) == 0.0
    assert audio.is_silent(Audio(np.zeros(100), 8000))


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "opus", "mp3"])
def test_encode_roundtrip(fmt):
    import io

    src = tone(440, 1.0, 22050)
    data = audio.encode(src, fmt)
    decoded, sr = sf.read(io.BytesIO(data), dtype="float32")
    assert sr == (48000 if fmt == "opus" else 22050)
    assert abs(len(decoded) / sr - 1.0) < 0.1
    assert np.abs(decoded).max() > 0.3


def test_encode_pcm():
    data = audio.encode(Audio(np.array([0.0, 0.5, -1.0, 2.0]), 8000), "pcm")
    assert np.frombuffer(data, "<i2").tolist() == [0, 16384, -32767, 32767]


def test_format_for():
    assert audio.format_for("a/b.FLAC", None) == "flac"
    assert audio.format_for("a/b.wav", "mp3") == "mp3"
    assert audio.format_for("-", None, "ogg") == "ogg"
    with pytest.raises(UsageError, match="x.doc"):
        audio.format_for("x.doc", None)


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.wav"
    with pytest.raises(KeyboardInterrupt):
        with audio.atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    audio.write(tone(), target)
    assert sf.info(str(target)).samplerate == 22050
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]
