"""Fill the Nix inputs directory: one folder per flake.lock input, at exactly the locked revision.

`make nix-inputs` runs this. The builds and evaluations under nix/ci/ and tests/packaging/ read
the real nixpkgs lib, pyproject.nix, uv2nix and build-system-pkgs from here; nothing from those
repositories is ever committed to this project.

- Where: $DEMOD_NIX_INPUTS, else ${XDG_CACHE_HOME:-~/.cache}/demod-voice/nix-inputs.
- From: local git mirrors under $DEMOD_NIX_MIRRORS (layout `owner+name/repo`, a git directory
  with history), else GitHub's tarball of the revision.
- nixpkgs: its repository is too large for an offline machine; the folder holds
  nix-community/nixpkgs.lib (nixpkgs' `lib/`) at the commit pinned in nix/ci/nixpkgs-lib.json,
  the newest one not later than flake.lock's nixpkgs revision. It is named `nixpkgs-lib-<rev>`.
- Each folder's `nix hash path` must equal flake.lock's narHash (nixpkgs-lib.json's for nixpkgs).
- Nix before 2.14 has no builtins.readFileType, which lib.filesystem.pathType is; where the
  running Nix lacks it, a one-line fallback to readDir is applied to the extracted copy (after the
  hash check) and announced.

A manifest `inputs.json` in the directory records what was verified; readers (nix/ci/inputs.nix via
tests/packaging/nixeval.py and nix/ci/check.sh) use a folder only when the manifest's revision
and hash are flake.lock's.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NIX_FEATURES = ["--extra-experimental-features", "nix-command flakes"]
FALLBACK_FROM = "  pathType = builtins.readFileType;\n"
FALLBACK_TO = ("  pathType = builtins.readFileType or (path: if dirOf path == path then \"directory\" "
               "else (builtins.readDir (dirOf path)).${baseNameOf path});"
               "  # demod-voice nix/ci/inputs.py: Nix < 2.14 fallback\n")


class InputError(Exception):
    """An input that cannot be obtained or does not match flake.lock."""


def inputs_dir() -> Path:
    explicit = os.environ.get("DEMOD_NIX_INPUTS")
    if explicit:
        return Path(explicit)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "demod-voice" / "nix-inputs"


def wanted() -> dict[str, dict]:
    """flake.lock input name -> what its folder must hold."""
    nodes = json.loads((ROOT / "flake.lock").read_text())["nodes"]
    out = {}
    for name in ("pyproject-nix", "uv2nix", "pyproject-build-systems"):
        locked = nodes[name]["locked"]
        out[name] = {k: locked[k] for k in ("owner", "repo", "rev", "narHash")}
        out[name]["folder"] = f"{name}-{locked['rev']}"
    pin = json.loads((ROOT / "nix" / "ci" / "nixpkgs-lib.json").read_text())
    nixpkgs = nodes["nixpkgs"]["locked"]
    if pin["lastModified"] > nixpkgs["lastModified"]:
        raise InputError(f"nix/ci/nixpkgs-lib.json: nixpkgs.lib {pin['rev'][:8]} is later than flake.lock's "
                         f"nixpkgs {nixpkgs['rev'][:8]}; pin an older commit")
    out["nixpkgs"] = {k: pin[k] for k in ("owner", "repo", "rev", "narHash")}
    out["nixpkgs"]["folder"] = f"nixpkgs-lib-{pin['rev']}"
    out["nixpkgs"]["lockedNixpkgsRev"] = nixpkgs["rev"]
    return out


def nix_hash(path: Path) -> str:
    proc = subprocess.run(["nix", *NIX_FEATURES, "hash", "path", str(path)], capture_output=True, text=True,
                          env={**os.environ, "NIX_CONFIG": "build-users-group ="})
    if proc.returncode != 0:
        raise InputError(f"nix hash path {path} failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


def from_mirror(spec: dict, dest: Path) -> str | None:
    mirrors = os.environ.get("DEMOD_NIX_MIRRORS")
    if not mirrors:
        return None
    git_dir = Path(mirrors) / f"{spec['owner']}+{spec['repo']}" / "repo"
    if not git_dir.is_dir():
        return None
    has = subprocess.run(["git", f"--git-dir={git_dir}", "cat-file", "-e", f"{spec['rev']}^{{commit}}"],
                         capture_output=True)
    if has.returncode != 0:
        raise InputError(f"mirror {git_dir} has no commit {spec['rev']}")
    archive = subprocess.run(["git", f"--git-dir={git_dir}", "archive", spec["rev"]], capture_output=True, check=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(dest, filter="tar")
    return f"mirror {git_dir}"


def from_github(spec: dict, dest: Path) -> str:
    url = f"https://codeload.github.com/{spec['owner']}/{spec['repo']}/tar.gz/{spec['rev']}"
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            data = response.read()
    except OSError as exc:
        raise InputError(f"{spec['owner']}/{spec['repo']}: GitHub unreachable ({exc}) and no mirror "
                         "(set DEMOD_NIX_MIRRORS to a folder of owner+name/repo git directories)") from exc
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(dest, filter="tar")
    (top,) = dest.iterdir()  # GitHub wraps the tree in one folder
    for child in top.iterdir():
        child.rename(dest / child.name)
    top.rmdir()
    return url


def needs_fallback() -> bool:
    proc = subprocess.run(["nix-instantiate", "--eval", "--expr", "builtins ? readFileType"], capture_output=True,
                          text=True, env={**os.environ, "NIX_CONFIG": "build-users-group ="})
    return proc.stdout.strip() != "true"


def apply_fallback(folder: Path) -> str:
    target = folder / "lib" / "filesystem.nix"
    text = target.read_text()
    if FALLBACK_FROM not in text:
        raise InputError(f"{target}: the line to patch (`pathType = builtins.readFileType;`) is not there")
    target.chmod(0o644)
    target.write_text(text.replace(FALLBACK_FROM, FALLBACK_TO, 1))
    return "lib/filesystem.nix: pathType falls back to builtins.readDir (this Nix has no builtins.readFileType)"


def fill(directory: Path) -> dict:
    manifest_path = directory / "inputs.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    fallback = needs_fallback()
    for name, spec in wanted().items():
        folder = directory / spec["folder"]
        old = manifest.get(name, {})
        if folder.is_dir() and old.get("rev") == spec["rev"] and old.get("narHash") == spec["narHash"]:
            print(f"nix-inputs: {name} {spec['rev'][:8]} present ({folder})")
            if fallback and name == "nixpkgs":
                if not old.get("patched"):
                    raise InputError(f"{folder} has no readFileType fallback: delete it and run make nix-inputs again")
                print(f"nix-inputs: applied to {name} (when extracted): {old['patched']}")
            continue
        directory.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=directory))
        try:
            source = from_mirror(spec, tmp) or from_github(spec, tmp)
            got = nix_hash(tmp)
            if got != spec["narHash"]:
                raise InputError(f"{name} {spec['rev'][:8]} from {source}: narHash {got}, flake.lock says "
                                 f"{spec['narHash']}")
            patched = apply_fallback(tmp) if fallback and name == "nixpkgs" else None
            if patched:
                print(f"nix-inputs: applied to {name}: {patched}")
            if folder.exists():
                shutil.rmtree(folder)
            tmp.rename(folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        print(f"nix-inputs: {name} {spec['rev'][:8]} from {source}, narHash {got} = flake.lock's")
        manifest[name] = {"rev": spec["rev"], "narHash": spec["narHash"], "folder": spec["folder"],
                          "patched": patched}
        if name == "nixpkgs":
            manifest[name]["source"] = f"{spec['owner']}/{spec['repo']} (nixpkgs' lib/ only)"
            manifest[name]["lockedNixpkgsRev"] = spec["lockedNixpkgsRev"]
        tmp_manifest = manifest_path.with_suffix(".tmp")
        tmp_manifest.write_text(json.dumps(manifest, indent=2) + "\n")
        tmp_manifest.replace(manifest_path)
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--if-available", action="store_true",
                        help="print SKIP and exit 0 when an input cannot be obtained (no mirror, no GitHub)")
    args = parser.parse_args(argv)
    if shutil.which("nix") is None:
        print("SKIP nix-inputs: nix is not installed (Debian: nix-bin)")
        return 0 if args.if_available else 2
    directory = inputs_dir()
    try:
        fill(directory)
    except InputError as exc:
        unobtainable = "unreachable" in str(exc) or "has no commit" in str(exc)
        if args.if_available and unobtainable:
            print(f"SKIP nix-inputs: {exc}")
            return 0
        print(f"error: nix-inputs: {exc}", file=sys.stderr)
        return 1
    print(f"nix-inputs: {directory} holds flake.lock's inputs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
