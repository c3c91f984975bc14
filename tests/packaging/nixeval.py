"""Run Nix evaluations of the flake with the real Nix libraries from the Nix inputs directory.

`make nix-inputs` (nix/ci/inputs.py) puts nixpkgs' ``lib`` (nix-community/nixpkgs.lib),
pyproject.nix, uv2nix and build-system-pkgs there, each at flake.lock's revision with its narHash
checked; nothing from them is committed. The directory is ``$DEMOD_NIX_INPUTS``, else
``${XDG_CACHE_HOME:-~/.cache}/demod-voice/nix-inputs``. These evaluations use the stand-in package
set (stub-nixpkgs/) for speed; nix/ci/pkgs builds for real (make nix-check, test_nix_build.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def inputs_dir() -> Path:
    explicit = os.environ.get("DEMOD_NIX_INPUTS")
    if explicit:
        return Path(explicit)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "demod-voice" / "nix-inputs"


def inputs_problem() -> str | None:
    """Why the inputs directory cannot be used, or None when it holds flake.lock's inputs."""
    directory = inputs_dir()
    manifest_path = directory / "inputs.json"
    if not manifest_path.is_file():
        return f"no Nix inputs in {directory} (run `make nix-inputs`; offline: DEMOD_NIX_MIRRORS=<git mirrors>)"
    manifest = json.loads(manifest_path.read_text())
    nodes = json.loads((ROOT / "flake.lock").read_text())["nodes"]
    want = {name: nodes[name]["locked"] for name in ("pyproject-nix", "uv2nix", "pyproject-build-systems")}
    want["nixpkgs"] = json.loads((ROOT / "nix" / "ci" / "nixpkgs-lib.json").read_text())
    for name, locked in want.items():
        have = manifest.get(name, {})
        if (have.get("rev"), have.get("narHash")) != (locked["rev"], locked["narHash"]) or \
                not (directory / have.get("folder", "-")).is_dir():
            return f"Nix inputs in {directory} are not at flake.lock's revisions (run `make nix-inputs`)"
    return None


INPUTS_PROBLEM = inputs_problem()
INPUTS = None if INPUTS_PROBLEM else inputs_dir()

needs_nix = pytest.mark.skipif(shutil.which("nix-instantiate") is None,
                               reason="nix-instantiate not installed (Debian: nix-bin)")
needs_inputs = pytest.mark.skipif(INPUTS is None, reason=INPUTS_PROBLEM or "")


def input_folder(name: str) -> Path:
    """The folder of one flake.lock input in the inputs directory."""
    assert INPUTS is not None
    return INPUTS / json.loads((INPUTS / "inputs.json").read_text())[name]["folder"]


def nix_env() -> dict[str, str]:
    env = dict(os.environ)
    # Debian's nix-bin asks for a nixbld group that a CI machine may not have.
    env["NIX_CONFIG"] = "build-users-group =\n" + env.get("NIX_CONFIG", "")
    if INPUTS is not None:
        env["DEMOD_NIX_INPUTS"] = str(INPUTS)
    return env


def run_eval(file: Path, attr: str | None = None, args: dict[str, str] | None = None,
             expr: str | None = None) -> subprocess.CompletedProcess:
    # --read-write-mode: lib.fileset.toSource copies the source tree into the store.
    cmd = ["nix-instantiate", "--eval", "--strict", "--json", "--read-write-mode"]
    for name, value in (args or {}).items():
        cmd += ["--argstr", name, value]
    cmd += ["--expr", expr] if expr is not None else [str(file)]
    if attr:
        cmd += ["-A", attr]
    return subprocess.run(cmd, capture_output=True, text=True, env=nix_env(), timeout=300, cwd=ROOT)


def nix_eval(file: Path, attr: str | None = None, **args: str):
    """Strictly evaluate ``attr`` of ``file`` and return it as JSON data."""
    proc = run_eval(file, attr, args)
    assert proc.returncode == 0, f"nix evaluation of {attr} failed:\n{proc.stderr[-4000:]}"
    return json.loads(proc.stdout)
