"""Fixtures for the XTTS tests: one tiny random-weight checkpoint and one loaded engine per session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def xtts_checkpoint(tmp_path_factory) -> Path:
    """A tiny random-weight XTTS-v2 checkpoint in the genuine layout, built once per test run."""
    pytest.importorskip("TTS.tts.models.xtts")
    from demod_voice.tiny_models import build_xtts as build

    return build(tmp_path_factory.mktemp("xtts") / "tiny-xtts", max_audio_tokens=8)


@pytest.fixture(scope="session")
def xtts_engine(xtts_checkpoint):
    """The checkpoint loaded in this test process through the real engine (cached by the engine itself)."""
    from demod_voice.engines import xtts

    return xtts.load(xtts_checkpoint, "cpu", "fp32")


@pytest.fixture(scope="session")
def xtts_latents(xtts_engine, speech_wav):
    """Conditioning latents of the Joe reference, computed once."""
    return xtts_engine.conditioning([speech_wav], None)


@pytest.fixture(scope="session")
def second_speech_wav(tmp_path_factory, speech_wav) -> Path:
    """Another real-speech reference: the Joe clip pitched down by resampling (different content hash)."""
    from demod_voice import audio

    clip = audio.read(speech_wav)
    out = tmp_path_factory.mktemp("ref2") / "joe-low.flac"
    audio.write(audio.Audio(clip.samples, int(clip.sample_rate * 0.9)), out)
    return out


def write_wav(path: Path, samples: np.ndarray, sample_rate: int = 22050) -> Path:
    import soundfile as sf

    sf.write(str(path), samples.astype(np.float32), sample_rate)
    return path
