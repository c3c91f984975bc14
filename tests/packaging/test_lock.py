"""uv.lock is the one pin set: it matches pyproject.toml, and the venv the tests run in holds exactly its versions.

The container and Nix worlds are compared with the same lock in test_containers.py and test_nix*.py.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.packaging.venv import installed_versions

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "uv.lock"


def normalize(name: str) -> str:
    """PEP 503 name normalisation: huggingface_hub == huggingface-hub."""
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_versions(name: str) -> set[str]:
    """Every version uv.lock holds for one package (one per Python-version split at most)."""
    lock = tomllib.loads(LOCK.read_text())
    return {p["version"] for p in lock["package"] if normalize(p["name"]) == normalize(name)}


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
    env = dict(os.environ, UV_PYTHON_DOWNLOADS="never", UV_OFFLINE="1")
    proc = subprocess.run([uv, "lock", "--locked", "--python", sys.executable], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


def expected_for_this_python(uv: str, extras: tuple[str, ...] = ("all", "dev"),
                             environment: dict | None = None) -> dict[str, str]:
    """The lock's pins for this interpreter and machine (or a PEP 508 ``environment``, e.g. a container
    image's) with these extras, markers evaluated.

    A package can be locked twice (e.g. numpy for Python < 3.12 and >= 3.12); `uv export` lists
    each with its marker and `packaging` evaluates it here.
    """
    from packaging.markers import Marker

    env = dict(os.environ, UV_OFFLINE="1", UV_PYTHON_DOWNLOADS="never")
    proc = subprocess.run([uv, "export", "--frozen", *[f"--extra={e}" for e in extras], "--no-hashes",
                           "--no-emit-project", "--no-header", "--python", sys.executable],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    pins = {}
    for line in proc.stdout.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "-")):
            continue
        spec, _, marker = line.partition(";")
        name, _, version = spec.strip().partition("==")
        if not marker.strip() or Marker(marker.strip()).evaluate(environment):
            pins[normalize(name)] = version.strip()
    return pins


def test_venv_holds_exactly_the_locked_versions():
    """Every package the lock pins for this Python is installed at exactly that version."""
    uv = find_uv()
    if uv is None:
        pytest.skip("uv is not installed (make bootstraps it into .uv/)")
    expected = expected_for_this_python(uv)
    installed = installed_versions()
    assert len(expected) > 100, "uv export returned too few pins"
    missing = sorted(set(expected) - set(installed))
    drift = {n: (installed[n], v) for n, v in expected.items() if n in installed and installed[n] != v}
    assert not missing, f"locked but not installed: {missing}"
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
    versions = locked_versions("transformers")
    assert versions and all(Version(v) in transformers.specifier for v in versions)
