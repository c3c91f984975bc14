"""RVC test assets: random weights in the genuine formats, built once per session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.rvc import assets


@pytest.fixture(scope="session")
def rvc_assets(tmp_path_factory) -> dict[str, Path]:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("faiss")
    d = tmp_path_factory.mktemp("rvc-assets")
    return {
        "v2": assets.make_voice(d / "v2-f0-40k.pth", "v2", True, 40000, seed=1),
        "v1": assets.make_voice(d / "v1-f0-48k.pth", "v1", True, 48000, seed=2),
        "v2_nof0": assets.make_voice(d / "v2-nof0-32k.pth", "v2", False, 32000, seed=3),
        "v1_nof0": assets.make_voice(d / "v1-nof0-40k.pth", "v1", False, 40000, seed=4),
        "hubert_dir": assets.make_hubert_folder(d / "hubert-hf"),
        "hubert_pt": assets.make_fairseq_hubert(d / "hubert_base.pt"),
        "index768": assets.make_index(d / "v2.index", 768),
        "index256": assets.make_index(d / "v1.index", 256),
        "rmvpe": assets.make_rmvpe(d / "rmvpe.pt"),
    }


def _excerpt(speech_wav: Path, out: Path, seconds: float) -> Path:
    from demod_voice import audio

    speech = audio.read(speech_wav)
    audio.write(audio.Audio(speech.samples[: int(seconds * speech.sample_rate)], speech.sample_rate), out)
    return out


@pytest.fixture(scope="session")
def short_speech(speech_wav, tmp_path_factory) -> Path:
    """The first 2 s of real Joe speech (22.05 kHz WAV): keeps each conversion short."""
    return _excerpt(speech_wav, tmp_path_factory.mktemp("short") / "joe-2s.wav", 2.0)


@pytest.fixture(scope="session")
def tiny_speech(speech_wav, tmp_path_factory) -> Path:
    """0.3 s of real speech, for full-size crepe (slow on CPU)."""
    return _excerpt(speech_wav, tmp_path_factory.mktemp("tiny") / "joe-0.3s.wav", 0.3)


@pytest.fixture
def run_main(isolated_home, capsys):
    """Run the real CLI entry point in this process (engines stay cached between calls)."""
    from demod_voice import cli

    def run(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        code = cli.main([str(a) for a in args])
        return code, capsys.readouterr().err

    return run


def expected_length(in_samples: int, in_rate: int, out_rate: int) -> float:
    return in_samples * out_rate / in_rate


def assert_converted(path: Path, source: Path, rate: int, hop: int) -> np.ndarray:
    """Output exists, is finite, not silent, at ``rate``, and within one hop of the input's length."""
    import soundfile as sf

    data, sr = sf.read(str(path), dtype="float32")
    src, src_sr = sf.read(str(source), dtype="float32")
    assert sr == rate
    assert np.isfinite(data).all()
    assert np.abs(data).max() > 1e-3
    assert abs(len(data) - expected_length(len(src), src_sr, rate)) <= hop
    return data
