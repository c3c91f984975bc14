"""The installed versions inside the CPU image equal uv.lock's.

.ci/containers.sh builds the image, writes what is installed inside it (with the image's
PEP 508 environment and the extras it was built with) to build/containers/image-cpu.json
(and image-piper.json for the slim `piper` image),
and runs this file. The expected set is what `uv export` says for those extras on that
environment (test_lock.py, which checks the project's .venv the same way): the same names,
the same versions, nothing more and nothing less.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

import demod_voice
from tests.packaging.test_lock import expected_for_this_python, find_uv, normalize

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "uv.lock"
REPORT = Path(os.environ.get("DEMOD_VOICE_IMAGE_REPORT", ROOT / "build" / "containers" / "image-cpu.json"))


def compare(installed: dict[str, str], wanted: dict[str, str]) -> list[str]:
    """Human-readable differences; empty when the two sets are identical."""
    installed = {normalize(k): v for k, v in installed.items()}
    problems = [f"{name}: installed {installed[name]}, uv.lock {wanted[name]}"
                for name in sorted(installed.keys() & wanted.keys()) if installed[name] != wanted[name]]
    problems += [f"{name} {wanted[name]}: in uv.lock, not installed" for name in sorted(wanted.keys() - installed.keys())]
    problems += [f"{name} {installed[name]}: installed, not in uv.lock" for name in sorted(installed.keys() - wanted.keys())]
    return problems


def test_image_installs_exactly_the_lock():
    if not REPORT.exists():
        pytest.skip(f"no container image has been built here ({REPORT} is missing): .ci/containers.sh builds the "
                    "CPU image, writes that report and runs this test (needs root and podman)")
    report = json.loads(REPORT.read_text())
    if report["lock_sha256"] != hashlib.sha256(LOCK.read_bytes()).hexdigest():
        pytest.skip(f"{REPORT} describes an image built from another uv.lock; rerun .ci/containers.sh")
    uv = find_uv()
    if uv is None:
        pytest.skip("uv is not installed (make bootstraps it into .uv/)")
    installed = dict(report["installed"])
    assert installed.pop("demod-voice", None) == demod_voice.__version__
    wanted = expected_for_this_python(uv, tuple(report["extras"]), report["environment"])
    if "all" in report["extras"]:  # the full image: every engine
        assert {"torch", "coqui-tts", "piper-tts", "onnxruntime", "fastapi"} <= wanted.keys()
    else:  # the slim `piper` image: Piper, the server, Wyoming and Whisper STT, and no torch
        assert {"piper-tts", "onnxruntime", "fastapi", "wyoming", "faster-whisper"} <= wanted.keys()
        assert "torch" not in wanted and "torch" not in installed
    assert compare(installed, wanted) == []


def test_compare_names_every_difference():
    problems = compare({"Torch": "2.9.1", "numpy": "2.4.6", "extra_thing": "1"},
                       {"torch": "2.9.1", "numpy": "2.5.5", "scipy": "1.17.1"})
    assert problems == ["numpy: installed 2.4.6, uv.lock 2.5.5", "scipy 1.17.1: in uv.lock, not installed",
                        "extra-thing 1: installed, not in uv.lock"]
