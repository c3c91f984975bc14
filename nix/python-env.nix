# The Python environment, from uv.lock: uv2nix turns every locked package into a
# derivation that fetches exactly the file the lock names (by its sha256), and
# pyproject.nix installs them into one virtual environment. So `nix build` and
# `uv sync --locked` install the same versions of the same wheels; nixpkgs only
# gives the interpreter, stdenv and system libraries (./wheel-fixups.nix).
#
# The CUDA flavour adds the `gpu` extra (onnxruntime-gpu). torch's PyPI wheels
# are CUDA builds on x86_64 in both flavours; they run on the CPU when no GPU is
# there, exactly as they do on the pip path.
{
  lib,
  pkgs,
  callPackage,
  # The interpreter CI and `make test` use (3.11), named explicitly: nixpkgs' default python3
  # moves (3.13 near the pinned rev) and would select other wheels (numpy, av) than uv.lock's
  # .venv. tests/packaging/test_nix.py checks its minor version is CI's.
  python311,
  workspace, # uv2nix.lib.workspace.loadWorkspace { workspaceRoot = <repo>; }
  pyproject-nix,
  pyproject-build-systems,
  src, # the filtered source tree (flake.nix) for demod-voice itself
  cudaSupport ? false,
  # The extras to install; null for every engine (see below).
  extras ? null,
}:

let
  python = python311;

  # The extras a packaged demod-voice carries: pyproject's "all" (not the GPL
  # rvc-gpl one); "gpu" joins with CUDA.
  extras' = (if extras == null then [ "all" ] else extras) ++ lib.optional cudaSupport "gpu";

  fixups = import ./wheel-fixups.nix { inherit lib pkgs cudaSupport src; };

  pythonSet =
    (callPackage pyproject-nix.build.packages {
      inherit python;
    }).overrideScope
      (
        lib.composeManyExtensions [
          pyproject-build-systems.overlays.wheel
          (workspace.mkPyprojectOverlay { sourcePreference = "wheel"; })
          fixups
        ]
      );
in
{
  inherit python pythonSet;
  extras = extras';

  # What `nix run` ships: demod-voice and its locked dependencies.
  env = pythonSet.mkVirtualEnv "demod-voice-env" { demod-voice = extras'; };

  # The dev shell and testSuite.pytest: the same plus the `dev` extra (test tools) and the `parity`
  # dependency group (reference implementations the parity tests import), as `make test` installs.
  devEnv = pythonSet.mkVirtualEnv "demod-voice-dev-env" {
    demod-voice = extras' ++ [
      "dev"
      "parity"
    ];
  };
}
