"""The installed versions equal uv.lock's: inside the CPU image, and in the project's own .venv.

.ci/containers.sh builds the image, writes what is installed inside it (with the image's
PEP 508 environment and the extras it was built with) to build/containers/image-cpu.json,
and runs this file. The expected set is what `uv export --locked` says for those extras on
that environment: the same names, the same versions, nothing more and nothing less.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import demod_voice

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "uv.lock"
REPORT = Path(os.environ.get("DEMOD_VOICE_IMAGE_REPORT", ROOT / "build" / "containers" / "image-cpu.json"))
UV = Path(os.environ.get("UV", ROOT / ".uv" / "bin" / "uv"))
#: The extras `make test` installs into .venv (Makefile TEST_EXTRAS).
TEST_EXTRAS = ("all", "dev")


def locked_versions(extras: list[str] | tuple[str, ...], environment: dict) -> dict[str, str]:
    """{name: version} that uv.lock installs with these extras on this PEP 508 environment."""
    if not UV.exists():
        pytest.skip(f"no uv at {UV}: `make test` bootstraps the pinned uv into .uv/")
    cmd = [str(UV), "export", "--locked", "--no-dev", "--no-emit-project", "--no-hashes", "--no-header",
           "--no-annotate", "--format", "requirements-txt", "--project", str(ROOT)]
    for extra in extras:
        cmd += ["--extra", extra]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=120).stdout
    wanted = {}
    for line in out.splitlines():
        if not line.strip() or line.lstrip().startswith(("#", "-")):
            continue
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate(environment):
            (spec,) = req.specifier
            assert spec.operator == "==", line
            wanted[canonicalize_name(req.name)] = spec.version
    return wanted


def compare(installed: dict[str, str], wanted: dict[str, str]) -> list[str]:
    """Human-readable differences; empty when the two sets are identical."""
    installed = {canonicalize_name(k): v for k, v in installed.items()}
    problems = [f"{name}: installed {installed[name]}, uv.lock {wanted[name]}"
                for name in sorted(installed.keys() & wanted.keys()) if installed[name] != wanted[name]]
    problems += [f"{name} {wanted[name]}: in uv.lock, not installed" for name in sorted(wanted.keys() - installed.keys())]
    problems += [f"{name} {installed[name]}: installed, not in uv.lock" for name in sorted(installed.keys() - wanted.keys())]
    return problems


def _image_report() -> dict:
    if not REPORT.exists():
        pytest.skip(f"no container image has been built here ({REPORT} is missing): .ci/containers.sh builds the "
                    "CPU image, writes that report and runs this test (needs root and podman)")
    report = json.loads(REPORT.read_text())
    if report["lock_sha256"] != hashlib.sha256(LOCK.read_bytes()).hexdigest():
        pytest.skip(f"{REPORT} describes an image built from another uv.lock; rerun .ci/containers.sh")
    return report


def test_image_installs_exactly_the_lock():
    report = _image_report()
    installed = dict(report["installed"])
    assert installed.pop("demod-voice", None) == demod_voice.__version__
    wanted = locked_versions(report["extras"], report["environment"])
    assert {"torch", "coqui-tts", "piper-tts", "onnxruntime", "fastapi"} <= wanted.keys()  # every engine
    assert compare(installed, wanted) == []


def test_project_venv_installs_exactly_the_lock():
    """What `make test` installed (uv sync --locked --extra all --extra dev) is the lock, nothing else."""
    if Path(sys.prefix).resolve() != (ROOT / ".venv").resolve():
        pytest.skip(f"not running in the project's .venv ({sys.prefix}); `make test` runs there")
    from packaging.markers import default_environment

    installed = {dist.metadata["Name"]: dist.version for dist in md.distributions()}
    installed.pop("demod-voice", None)
    assert compare(installed, locked_versions(TEST_EXTRAS, default_environment())) == []


def test_compare_names_every_difference():
    problems = compare({"Torch": "2.9.1", "numpy": "2.4.6", "extra-thing": "1"}, {"torch": "2.9.1", "numpy": "2.5.5",
                                                                                    "scipy": "1.17.1"})
    assert problems == ["numpy: installed 2.4.6, uv.lock 2.5.5", "scipy 1.17.1: in uv.lock, not installed",
                        "extra-thing 1: installed, not in uv.lock"]
