"""uv.lock is the one pin set: it matches pyproject.toml, and the venv the tests run in holds exactly its versions.

The container and Nix worlds are compared with the same lock in test_containers.py and test_nix*.py.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "uv.lock"


def normalize(name: str) -> str:
    """PEP 503 name normalisation: huggingface_hub == huggingface-hub."""
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_versions() -> dict[str, str]:
    """Package name -> version for every package in uv.lock (the project itself excluded)."""
    lock = tomllib.loads(LOCK.read_text())
    return {normalize(p["name"]): p["version"] for p in lock["package"] if "version" in p and p["name"] != "demod-voice"}


def find_uv() -> str | None:
    for candidate in (ROOT / ".uv" / "bin" / "uv", Path(sys.prefix) / "bin" / "uv"):
        if candidate.exists():
            return str(candidate)
    return shutil.which("uv")


def test_lock_is_universal_for_both_linux_architectures():
    """uv checked that every package has a wheel or sdist for both (pyproject `required-environments`)."""
    lock = tomllib.loads(LOCK.read_text())
    for key in ("supported-markers", "required-markers"):
        markers = " ".join(lock.get(key, []))
        assert "x86_64" in markers and "aarch64" in markers, (key, markers)


def test_lock_matches_pyproject():
    """`uv lock --locked` fails when pyproject.toml changed without re-locking."""
    uv = find_uv()
    if uv is None:
        pytest.skip("uv is not installed (make bootstraps it into .uv/)")
    env = dict(os.environ, UV_NATIVE_TLS="1", UV_PYTHON_DOWNLOADS="never", UV_OFFLINE="1")
    proc = subprocess.run([uv, "lock", "--locked", "--python", sys.executable], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


def test_venv_holds_exactly_the_locked_versions():
    """Whatever is installed in the test environment and named in the lock has the lock's version."""
    locked = locked_versions()
    installed = {normalize(d.metadata["Name"]): d.version for d in md.distributions() if d.metadata["Name"]}
    common = sorted(set(locked) & set(installed))
    assert len(common) > 20, "the test venv does not look like it came from uv.lock"
    drift = {n: (installed[n], locked[n]) for n in common if installed[n] != locked[n]}
    assert not drift, f"installed != locked: {drift}"


def test_transformers_is_held_below_the_release_that_breaks_coqui_xtts():
    """transformers 5.24 broke coqui-tts 0.28's XTTS inference; the range keeps it out of every world.

    The XTTS tests (tests/xtts) run real inference on the locked version; this only keeps the
    range from being dropped by accident during a `uv lock --upgrade`.
    """
    from packaging.requirements import Requirement
    from packaging.version import Version

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = [Requirement(r) for r in project["optional-dependencies"]["xtts"]]
    transformers = next(r for r in specs if normalize(r.name) == "transformers")
    assert Version("5.24.0") not in transformers.specifier
    assert Version(locked_versions()["transformers"]) in transformers.specifier
