"""Real Nix builds with the project's own package set (nix/ci/pkgs), as `make nix-check` uses it.

These build small derivations with nix-build (host gcc, patchelf, bash), so they also run where the
multi-GB flake build is not wanted. They need nix, the inputs directory (`make nix-inputs`: the
package set's lib is nixpkgs' own) and gcc/patchelf.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid

import pytest

from tests.packaging.nixeval import ROOT, needs_inputs, needs_nix, nix_env

pytestmark = [
    needs_nix,
    needs_inputs,
    pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("patchelf") is None,
                       reason="gcc and patchelf are needed (.ci/apt-packages.txt)"),
]
# The builds run in Nix's sandbox as nixbld users, as make nix-check's do.
needs_build_users = pytest.mark.skipif(
    subprocess.run(["getent", "group", "nixbld"], capture_output=True).returncode != 0,
    reason="no nixbld group for sandboxed builds (run .ci/nix-build-users.sh as root)")

# A shared library that links libdemodmissing.so, which is built beside it and then left out.
LINKED = r'''
let
  pkgs = import ROOT/nix/ci/pkgs { };
  provider = pkgs.stdenv.mkDerivation {
    name = "demod-provider-SALT";
    dontUnpack = true;
    installPhase = ''
      mkdir -p $out/lib
      echo 'int provided(void) { return 7; }' > p.c
      gcc -shared -fPIC -o $out/lib/libdemodmissing.so p.c
    '';
  };
in
pkgs.stdenv.mkDerivation ({
  name = "demod-autopatchelf-SALT";
  dontUnpack = true;
  nativeBuildInputs = [ pkgs.autoPatchelfHook ];
  installPhase = ''
    mkdir -p $out/lib build
    echo 'int provided(void) { return 7; }' > p.c
    echo 'int provided(void); int user(void) { return provided(); }' > u.c
    gcc -shared -fPIC -o build/libdemodmissing.so p.c
    gcc -shared -fPIC -o $out/lib/libuser.so u.c -Lbuild -ldemodmissing
  '';
} // EXTRA)
'''


def build(tmp_path, extra: str) -> subprocess.CompletedProcess:
    # A salt per test run, so each build really runs (its outcome is not a cached success).
    expr = LINKED.replace("ROOT", str(ROOT)).replace("SALT", uuid.uuid4().hex[:12]).replace("EXTRA", extra)
    env = nix_env()
    env["NIX_CONFIG"] = subprocess.run(["bash", str(ROOT / "nix/ci/nix-config.sh"), sys.base_prefix], check=True,
                                       capture_output=True, text=True).stdout  # sandboxed, as make nix-check
    env["DEMOD_NIX_PYTHON_PREFIX"] = sys.base_prefix
    return subprocess.run(["nix-build", "--no-out-link", "-E", expr], capture_output=True, text=True, env=env,
                          timeout=300, cwd=tmp_path)


@needs_build_users
def test_autopatchelf_fails_on_an_unresolvable_library_and_names_it(tmp_path):
    proc = build(tmp_path, "{ }")
    assert proc.returncode != 0, proc.stdout
    assert re.search(r"could not satisfy dependency libdemodmissing\.so wanted by /nix/store/\S+/lib/libuser\.so",
                     proc.stderr), proc.stderr[-3000:]


@needs_build_users
def test_autopatchelf_resolves_a_build_input_and_ignores_by_name(tmp_path):
    resolved = build(tmp_path, "{ buildInputs = [ provider ]; }")
    assert resolved.returncode == 0, resolved.stderr[-3000:]
    out = resolved.stdout.strip()
    rpath = subprocess.run(["patchelf", "--print-rpath", f"{out}/lib/libuser.so"], capture_output=True,
                           text=True).stdout.strip()
    assert re.fullmatch(r"/nix/store/[a-z0-9]{32}-demod-provider-[^/:]+/lib", rpath), rpath

    ignored = build(tmp_path, '{ autoPatchelfIgnoreMissingDeps = [ "libdemodmissing.so" ]; }')
    assert ignored.returncode == 0, ignored.stderr[-3000:]
    assert "ignoring missing libdemodmissing.so wanted by" in ignored.stderr + ignored.stdout


def test_the_flakes_interpreter_is_the_one_ci_runs():
    """The flake names python311; its minor version is the CI interpreter's (this one)."""
    python_env = (ROOT / "nix" / "python-env.nix").read_text()
    named = re.findall(r"^\s*python = (python3\d+);", python_env, re.M)
    assert named == [f"python{sys.version_info.major}{sys.version_info.minor}"]
    env = nix_env()
    env["DEMOD_NIX_PYTHON_PREFIX"] = sys.base_prefix
    proc = subprocess.run(["nix-instantiate", "--eval", "--json", "--read-write-mode", str(ROOT / "nix/ci/flake.nix"),
                           "-A", "packages.x86_64-linux.cpu.python.pythonVersion"], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == f'"{sys.version_info.major}.{sys.version_info.minor}"'


def test_make_nix_inputs_skips_clearly_without_a_source(tmp_path):
    """No mirror and no GitHub: `--if-available` prints one SKIP line naming why, and exits 0."""
    env = dict(os.environ, DEMOD_NIX_INPUTS=str(tmp_path / "inputs"), DEMOD_NIX_MIRRORS=str(tmp_path / "none"),
               https_proxy="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9")
    proc = subprocess.run([sys.executable, str(ROOT / "nix" / "ci" / "inputs.py"), "--if-available"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("SKIP nix-inputs: ") and "GitHub unreachable" in proc.stdout, proc.stdout
