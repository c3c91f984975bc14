#!/usr/bin/env bash
# `make test`: the whole suite, in two pytest processes at once. The slow tier (.ci/test-tiers.txt:
# tests that take minutes while using about one core, or wait on the network) runs beside the rest,
# which deselects exactly those node ids, so every test runs once. With arguments (PYTEST_ARGS:
# paths, -k, ...) it is one plain pytest run over what they name.
#
#   .ci/test-tiers.sh [pytest args]     PY=.venv/bin/python by default
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
if [ "$#" -gt 0 ]; then
  exec "$PY" -m pytest "$@"
fi
tier=()
while read -r line; do
  case "$line" in ''|'#'*) ;; *) tier+=("$line") ;; esac
done < .ci/test-tiers.txt
log=build/ci/pytest-slow-tier.log
mkdir -p build/ci
start=$(date +%s)
# Its own cache directory off: the two processes would both write .pytest_cache.
"$PY" -m pytest -p no:cacheprovider --durations=15 "${tier[@]}" >"$log" 2>&1 &
slow=$!
deselect=()
for id in "${tier[@]}"; do deselect+=(--deselect "$id"); done
"$PY" -m pytest --durations=40 "${deselect[@]}"
rest_rc=$?
echo "== make test: the rest took $(( $(date +%s) - start )) s; waiting for the slow tier (${#tier[@]} entries)"
wait "$slow"
slow_rc=$?
echo "== make test: slow tier (.ci/test-tiers.txt), its own pytest run (log: $log):"
if [ "$slow_rc" = 0 ]; then tail -n 15 "$log"; else cat "$log"; fi
echo "== make test: rest exit $rest_rc, slow tier exit $slow_rc, $(( $(date +%s) - start )) s in all"
[ "$rest_rc" = 0 ] && [ "$slow_rc" = 0 ]
