# The flake's inputs, made from the real libraries in the Nix inputs directory (see
# stub-nixpkgs/vendor.nix) plus the nixpkgs stand-in for stdenv and friends.
{
  pythonVersion ? "3.11.7",
}:
let
  V = import ./stub-nixpkgs/vendor.nix;
  lib = import (V.nixpkgsLib + "/lib");
  systems = [
    "x86_64-linux"
    "aarch64-linux"
  ];
  pyproject-nix = import V.pyproject-nix { inherit lib; };
  uv2nix = import V.uv2nix { inherit lib pyproject-nix; };
in
rec {
  inherit lib pyproject-nix uv2nix;
  nixpkgs = {
    outPath = ./stub-nixpkgs;
    inherit lib;
    legacyPackages = lib.genAttrs systems (system: import ./stub-nixpkgs { inherit system pythonVersion; });
  };
  pyproject-build-systems = {
    overlays = import V.build-system-pkgs { inherit lib pyproject-nix uv2nix; };
  };
  # `import nixpkgs { ... }` as the flake does it, with this Python version.
  importNixpkgs = args: import ./stub-nixpkgs (args // { inherit pythonVersion; });
}
