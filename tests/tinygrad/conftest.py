"""Fixtures for the tinygrad backend: one kernel cache per test session, engines loaded once."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

# tinygrad reads CACHEDB when it is first imported: keep its kernel cache in a per-session
# folder (shared with the CLI subprocesses, whose XDG cache is isolated), not in ~/.cache.
_KERNELS = Path(tempfile.mkdtemp(prefix="demod-voice-tinygrad-"))
os.environ["CACHEDB"] = str(_KERNELS / "cache.db")


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_KERNELS, ignore_errors=True)


@pytest.fixture(scope="session")
def needs_tinygrad_cpu():
    pytest.importorskip("tinygrad")
    if shutil.which("clang") is None:
        pytest.skip("tinygrad's CPU device needs Debian's clang (.ci/apt-packages.txt installs it)")


@pytest.fixture(scope="session")
def tiny_engine(needs_tinygrad_cpu, joe_voice):
    from demod_voice.engines.piper import engine as piper

    return piper.load(joe_voice, "cpu", backend="tinygrad")


@pytest.fixture(scope="session")
def ort_engine(joe_voice):
    from demod_voice.engines.piper import engine as piper

    return piper.load(joe_voice, "cpu")
