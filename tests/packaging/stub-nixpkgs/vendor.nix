# The real Nix libraries, from the Nix inputs directory (nix/ci/inputs.nix; `make nix-inputs`).
import ../../../nix/ci/inputs.nix { }
