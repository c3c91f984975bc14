#!/usr/bin/env bash
# `make check-latest`: try the newest allowed upstream releases in a scratch copy of the
# project and say which release breaks what (details: .ci/check_latest.py). Not part of CI.
# Needs PyPI; never touches uv.lock or .venv. PYTHON and UV come from the Makefile.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHON=${PYTHON:-python3} UV=${UV:-.uv/bin/uv}
[ -x "$UV" ] || { echo "error: $UV missing; run 'make test' (or 'make .uv/bin/uv') first" >&2; exit 2; }
exec "$PYTHON" .ci/check_latest.py "$@"
