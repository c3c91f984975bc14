# The flake's outputs, evaluated with the real pyproject.nix, uv2nix and build-system-pkgs from
# the inputs directory (./inputs.nix) and this project's package set (./pkgs) in place of
# nixpkgs. `nix-build nix/ci/flake.nix -A packages.x86_64-linux.cpu` builds the flake's own
# expressions (nix/ci/check.sh). fileset.toSource copies into the store, so evaluation needs
# --read-write-mode under nix-instantiate; nix-build has it.
let
  paths = import ./inputs.nix { };
  lib = import (paths.nixpkgsLib + "/lib");
  systems = [
    "x86_64-linux"
    "aarch64-linux"
  ];
  pyproject-nix = import paths.pyproject-nix { inherit lib; };
  uv2nix = import paths.uv2nix { inherit lib pyproject-nix; };
  inputs = {
    nixpkgs = {
      outPath = ./pkgs;
      inherit lib;
      legacyPackages = lib.genAttrs systems (system: import ./pkgs { inherit system; });
    };
    inherit pyproject-nix uv2nix;
    pyproject-build-systems = import paths.build-system-pkgs { inherit lib pyproject-nix uv2nix; };
  };
  source = import ./source.nix ../..; # the checkout as a flake's store copy (no .venv)
  flake = import (source + "/flake.nix");
  self = flake.outputs (inputs // { inherit self; }) // {
    outPath = source;
  };
in
self
