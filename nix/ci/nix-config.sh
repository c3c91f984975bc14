#!/usr/bin/env bash
# The Nix configuration CI's builds use (nix/ci/check.sh, tests/packaging/test_nix_build.py), printed
# for NIX_CONFIG, so no /etc/nix/nix.conf is needed or changed:
#
#   NIX_CONFIG=$(bash nix/ci/nix-config.sh "$PYTHON_PREFIX") nix-build ...
#
# Every build runs in Nix's sandbox, as a nixbld user (.ci/nix-build-users.sh creates them), with no
# network (fixed-output fetches aside) and nothing of the host but the store and sandbox-paths:
#   /bin /usr /lib /lib64   nix/ci/pkgs builds with the host's bash, coreutils, gcc, patchelf and
#                           unzip, links the host's glibc, libstdc++ and zlib, and its hostTool
#                           programs (clang, ffmpeg, espeak-ng, chromium) are the host's;
#   /etc/alternatives       Debian's alternatives: /usr/bin/cc (pyproject.nix's venv builder
#                           compiles its python wrapper with cc), c++, awk point in here;
#   PYTHON_PREFIX           the CI interpreter (.venv's sys.base_prefix): nix/ci/pkgs' python3
#                           links it, and every Python build step runs it.
# keep-outputs: a garbage collection keeps the GC roots' build inputs too (the downloaded wheels).
set -euo pipefail
prefix=${1:?usage: nix-config.sh PYTHON_PREFIX}
cat <<CONF
build-users-group = nixbld
sandbox = true
sandbox-fallback = false
sandbox-paths = /bin /usr /lib /lib64 /etc/alternatives $prefix
substituters =
warn-dirty = false
keep-outputs = true
CONF
