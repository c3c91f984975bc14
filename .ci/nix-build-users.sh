#!/usr/bin/env bash
# Nix's sandboxed builds run as members of the `nixbld` group. Debian's nix-bin creates the group
# and users only in its maintainer scripts, which a minimal or container install may not have run:
# create them where they are missing (idempotent; root only). docs/nix.md, "The sandbox".
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "nix-build-users: not root; leaving users alone"; exit 0; }
getent group nixbld >/dev/null || groupadd --system nixbld
for i in $(seq 1 "${NIX_BUILD_USERS:-8}"); do
  getent passwd "nixbld$i" >/dev/null ||
    useradd --system --no-create-home --home-dir /var/empty --shell /usr/sbin/nologin \
      --gid nixbld --groups nixbld --comment "Nix build user $i" "nixbld$i"
done
echo "nix-build-users: group nixbld with $(getent group nixbld | cut -d: -f4 | tr ',' '\n' | grep -c .) build users"
