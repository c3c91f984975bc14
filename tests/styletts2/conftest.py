"""A tiny random-weight StyleTTS2 checkpoint in the official layout, built once per test run."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_styletts2(tmp_path_factory) -> Path:
    pytest.importorskip("transformers")
    pytest.importorskip("piper")
    from demod_voice.engines.styletts2.tiny import build_tiny_styletts2

    return build_tiny_styletts2(tmp_path_factory.mktemp("styletts2") / "tiny")


@pytest.fixture
def st2_cfg(isolated_home, tiny_styletts2):
    """The config (isolated home) with ``styletts2.model_dir`` set to the tiny checkpoint."""
    from demod_voice import config

    cfg = config.load()
    cfg.set("styletts2.model_dir", str(tiny_styletts2), "test")
    return cfg
