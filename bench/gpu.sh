#!/usr/bin/env bash
# Every gpu-marked test and every GPU figure, in one go, printing one table at the end.
#
#   bench/gpu.sh            # on a machine with a CUDA GPU: < 8 min on one GPU
#   bench/gpu.sh --cpu      # force the CPU fallback (what runs where there is no GPU: small smoke sizes)
#
# Steps (each under its own time limit, so one stuck step cannot eat the budget):
#   tests      pytest -m gpu (XTTS batched identity on CUDA, RVC fp16, ...)
#   xtts       full-size XTTS fp32 and fp16: RTF and time to first chunk (bench/xtts_latents.py)
#   batch      batched XTTS, full size, concurrency 1/4/16 (bench/xtts_batch.py)
#   rvc        RVC conversion; on CUDA the synthesizer runs in fp16 (bench/rvc_convert.py)
#   piper      Piper on onnxruntime-gpu vs CPU (bench/backends.py --gpu)
#   train      'train piper' steps/s at batch 32, medium architecture (bench/train_piper.py)
# Logs go to $OUT (default: a fresh temp folder); the table quotes each step's key lines.
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=${OUT:-$(mktemp -d /tmp/demod-gpu-bench.XXXXXX)}
mkdir -p "$OUT"
if [ "${1:-}" != "--cpu" ] && "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  MODE=gpu
else
  MODE=cpu
fi
if [ "$MODE" = gpu ]; then
  "$PY" -c 'import torch; print("GPU:", torch.cuda.get_device_name(0))'
  "$PY" -c 'import onnxruntime as o; print("onnxruntime providers:", o.get_available_providers())'
  TESTS_S=150; XTTS=(--full-size --skip-modes --device gpu --tokens 100); XTTS_S=120
  BATCH=(--device gpu --concurrency 1 4 16 --tokens 100 --chunk 20); BATCH_S=150
  RVC=(--device gpu --methods rmvpe); RVC_S=60; PIPER=(--gpu --backends onnxruntime); PIPER_S=30
  TRAIN=(--device gpu --arch medium --batch-size 32 --steps 12); TRAIN_S=240
else
  echo "no CUDA GPU here: running the CPU fallback (small sizes; these are smoke runs, not GPU figures)"
  TESTS_S=120; XTTS=(--jobs 2); XTTS_S=300
  BATCH=(--tiny --device cpu --concurrency 1 4 --tokens 6 --chunk 3 --no-coqui); BATCH_S=300
  RVC=(--device cpu --methods harvest); RVC_S=400; PIPER=(--backends onnxruntime); PIPER_S=120
  TRAIN=(--device cpu --arch small --batch-size 2 --steps 3); TRAIN_S=600
fi
echo "mode $MODE; logs in $OUT; load average $(cut -d' ' -f1 /proc/loadavg)"

declare -a NAMES STATUS SECS
step() {  # step NAME LIMIT_S COMMAND...
  local name=$1 limit=$2; shift 2
  local started=$SECONDS rc
  echo "== $name (limit ${limit} s): $*"
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  rc=$?
  NAMES+=("$name"); SECS+=($((SECONDS - started)))
  case $rc in 0) STATUS+=(ok) ;; 124) STATUS+=(timeout) ;; *) STATUS+=("failed($rc)") ;; esac
  tail -n 3 "$OUT/$name.log" | sed 's/^/   /'
}

step tests "$TESTS_S" "$PY" -m pytest -m gpu -q -p no:cacheprovider tests
step xtts "$XTTS_S" "$PY" bench/xtts_latents.py "${XTTS[@]}"
step batch "$BATCH_S" "$PY" bench/xtts_batch.py "${BATCH[@]}"
step rvc "$RVC_S" "$PY" bench/rvc_convert.py "${RVC[@]}"
step piper "$PIPER_S" "$PY" bench/backends.py "${PIPER[@]}"
step train "$TRAIN_S" "$PY" bench/train_piper.py "${TRAIN[@]}"

# the key lines of each step, in one table
declare -A KEY=(
  [tests]='passed|failed|skipped|error'
  [xtts]='RTF|first|fp16|fp32|cache'
  [batch]='^ +[0-9]+ +[0-9.]+|vs|coqui'
  [rvc]='^(rmvpe|harvest|dio|crepe)|voice:'
  [piper]='onnxruntime|tinygrad|RTF'
  [train]='steps/s|dataset'
)
echo
echo "== demod-voice GPU figures ($MODE mode, $(date -u +%Y-%m-%dT%H:%MZ), load average $(cut -d' ' -f1 /proc/loadavg))"
printf '%-6s %-11s %6s  %s\n' step status seconds "key lines (full logs in $OUT)"
total=0
for i in "${!NAMES[@]}"; do
  n=${NAMES[$i]}
  total=$((total + SECS[i]))
  first=1
  while IFS= read -r line; do
    if [ $first = 1 ]; then
      printf '%-6s %-11s %6s  %s\n' "$n" "${STATUS[$i]}" "${SECS[$i]}" "$line"; first=0
    else
      printf '%-6s %-11s %6s  %s\n' "" "" "" "$line"
    fi
  done < <(grep -E "${KEY[$n]}" "$OUT/$n.log" | tail -n 8 | cut -c1-150)
  [ $first = 1 ] && printf '%-6s %-11s %6s  %s\n' "$n" "${STATUS[$i]}" "${SECS[$i]}" "(no key line; see $OUT/$n.log)"
done
echo "total ${total} s"
