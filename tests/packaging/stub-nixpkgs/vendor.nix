# Where the real Nix libraries live: $DEMOD_NIX_VENDOR, else <repo>/../shared/nix-vendor
# (CI keeps a copy of shared/ beside the clone). tests/packaging/test_nix*.py skip when absent.
let
  fromEnv = builtins.getEnv "DEMOD_NIX_VENDOR";
in
if fromEnv != "" then /. + fromEnv else ../../../../shared/nix-vendor
