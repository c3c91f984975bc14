"""Training fixtures: an 8-utterance dataset spoken by the bundled Joe voice, and one small voice trained on it.

Both are made once per session (training is the expensive part): the dataset through the real
``piper-preprocess`` CLI, the voice through the real ``train piper`` CLI (small architecture, 2 steps).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import run_cli

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A journey of a thousand miles begins with a single step.",
    "She sells sea shells by the sea shore.",
    "Every good boy deserves fudge and a warm bed.",
    "The rain in Spain stays mainly in the plain.",
    "Peter Piper picked a peck of pickled peppers.",
    "How much wood would a woodchuck chuck?",
    "All that glitters is not gold, my friend.",
]
#: Arguments of every test training run: the small architecture, tiny batches, a couple of steps.
SMALL = ("--arch", "small", "--batch-size", "2", "--force")


def home_env(home: Path) -> dict:
    env = {"XDG_CONFIG_HOME": str(home / "config"), "XDG_DATA_HOME": str(home / "data"),
           "XDG_CACHE_HOME": str(home / "cache")}
    for path in env.values():
        Path(path).mkdir(parents=True, exist_ok=True)
    return env


def clean_env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEMOD_VOICE_")}
    env.update(home_env(home))
    return env


@pytest.fixture(scope="session")
def recordings(tmp_path_factory, joe_voice) -> Path:
    """LJSpeech-style folder: 8 Joe utterances (deterministic) + metadata.csv."""
    from demod_voice.audio import write
    from demod_voice.engines.piper import engine as piper

    src = tmp_path_factory.mktemp("recordings")
    (src / "wavs").mkdir()
    engine = piper.load(joe_voice, "cpu")
    rows = []
    for i, text in enumerate(SENTENCES):
        audio = engine.synthesize_all(text, piper.PiperOptions(noise_scale=0.0, noise_w=0.0))
        write(audio, src / "wavs" / f"utt_{i:02d}.wav")
        rows.append(f"utt_{i:02d}|{text}")
    (src / "metadata.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return src


@pytest.fixture(scope="session")
def dataset(tmp_path_factory, recordings) -> Path:
    """The recordings through the real ``piper-preprocess`` (piper1-gpl layout)."""
    out = tmp_path_factory.mktemp("dataset") / "ds"
    home = tmp_path_factory.mktemp("preprocess-home")
    proc = run_cli("piper-preprocess", "--input-dir", recordings, "--output-dir", out, "--trainer", "piper1", "-q",
                   env=clean_env(home))
    assert proc.returncode == 0, proc.stderr.decode()
    return out


@pytest.fixture(scope="session")
def trained(tmp_path_factory, dataset) -> dict:
    """``train piper --dataset ds --voice mine --max-steps 2`` (small) in its own home; the result's paths."""
    pytest.importorskip("lightning")
    home = tmp_path_factory.mktemp("train-home")
    proc = run_cli("train", "piper", "--dataset", dataset, "--voice", "mine", "--max-steps", "2", *SMALL,
                   env=clean_env(home), timeout=1200)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    folder = home / "data" / "demod-voice" / "voices" / "trained" / "mine"
    return {"home": home, "folder": folder, "stdout": proc.stdout.decode(), "stderr": proc.stderr.decode()}


@pytest.fixture
def trained_copy(trained, tmp_path) -> dict:
    """A private copy of the trained home (tests that train on must not change the session's voice)."""
    home = tmp_path / "home"
    shutil.copytree(trained["home"], home, symlinks=True)
    return {"home": home, "folder": home / "data" / "demod-voice" / "voices" / "trained" / "mine"}


def assert_speech(path: Path) -> np.ndarray:
    """Audio that a trained (2-step, random-ish) voice can give: finite, not silent, some length."""
    import soundfile as sf

    samples, rate = sf.read(path, dtype="float32")
    assert rate == 22050
    assert samples.size > rate // 10
    assert np.isfinite(samples).all()
    assert float(np.abs(samples).max()) > 1e-3
    return samples
