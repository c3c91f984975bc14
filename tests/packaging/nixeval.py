"""Run Nix evaluations of the flake with the real Nix libraries in ``../shared/nix-vendor``.

The vendored snapshots (nixpkgs ``lib``, pyproject.nix, uv2nix, build-system-pkgs)
let ``nix-instantiate`` evaluate flake.nix, nix/*.nix and the NixOS module offline;
only stdenv, fetchers, hooks and dockerTools are stand-ins (stub-nixpkgs/).
CI keeps a copy of ``shared/`` beside the clone; ``DEMOD_NIX_VENDOR`` points elsewhere.
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


def vendor_dir() -> Path | None:
    """The nix-vendor folder, or None when this checkout has none beside it."""
    candidates = [os.environ.get("DEMOD_NIX_VENDOR"), ROOT.parent / "shared" / "nix-vendor"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "nixpkgs-lib" / "lib").is_dir():
            return Path(candidate).resolve()
    return None


VENDOR = vendor_dir()

needs_nix = pytest.mark.skipif(shutil.which("nix-instantiate") is None,
                               reason="nix-instantiate not installed (Debian: nix-bin)")
needs_vendor = pytest.mark.skipif(
    VENDOR is None, reason="no ../shared/nix-vendor beside this checkout (real Nix library snapshots; "
                           "set DEMOD_NIX_VENDOR to use another copy)")


def nix_env() -> dict[str, str]:
    env = dict(os.environ)
    # Debian's nix-bin asks for a nixbld group that a CI machine may not have.
    env["NIX_CONFIG"] = "build-users-group =\n" + env.get("NIX_CONFIG", "")
    if VENDOR is not None:
        env["DEMOD_NIX_VENDOR"] = str(VENDOR)
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
