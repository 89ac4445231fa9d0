#!/usr/bin/env bash
# Every CUDA claim of the project in one run, printed as one table at the end (about 6-8 minutes on one H100).
#
#   IJEPA=~/src/ijepa VJEPA2=~/src/vjepa2 bash benchmarks/gpu_check.sh       # official checkouts beside ours
#   bash benchmarks/gpu_check.sh                                            # ours alone
#   bash benchmarks/gpu_check.sh --dry-run                                  # no GPU needed: every part on the
#                                                                           # CPU at tiny sizes (checks the script)
#
# What it runs, in order (each part writes its rows as JSON under $OUT, default runs/gpu_check):
#   1. I-JEPA ViT-B/16, 224 px, batch 128, bf16: the official step (with IJEPA) and ours, eager and compiled,
#      alternating rounds, MFU against the card's dense bf16 peak            (benchmarks/bench_step.py)
#   2. I-JEPA ViT-H/14, 224 px, batch 32: ours eager, with and without activation checkpointing: time and
#      peak memory                                                           (benchmarks/bench_step.py)
#   3. LeJEPA ViT-B/16, 224 px, batch 64: its step in bf16 and fp32         (benchmarks/bench_precision.py)
#   4. V-JEPA ViT-B/16, 16 frames of 224 px, batch 16, V-JEPA 2's predictor: the official V-JEPA 2 step
#      (with VJEPA2) and ours, bf16                                         (benchmarks/bench_video_step.py)
#   5. the CUDA tests of the suite                                           (tests/test_cuda.py and the rest)
#   6. the table                                                             (benchmarks/gpu_table.py)
# A part that fails is reported in the table; the others still run. The exit status is that of the worst part.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-runs/gpu_check}
DRY=0
[[ "${1:-}" == "--dry-run" ]] && DRY=1
mkdir -p "$OUT"
rm -f "$OUT"/*.json "$OUT"/status.txt
export JEPA_DATA=${JEPA_DATA:-$OUT/data}

official_ijepa=()
[[ -n "${IJEPA:-}" ]] && official_ijepa=(--official "$IJEPA")
official_vjepa=()
[[ -n "${VJEPA2:-}" ]] && official_vjepa=(--official "$VJEPA2")

if (( DRY )); then
  DEV=cpu
  STEP_B=(--config tiny --rounds 1 --per-round 1 --warmup 1 --mask-draws 1)
  STEP_H=(--config tiny --rounds 1 --per-round 1 --warmup 1 --mask-draws 1)
  LEJEPA=(--rounds 1 --per-round 1 --warmup 1 --batches 1)
  VIDEO=(--configs demo --rounds 1 --per-round 1 --warmup 0 --mask-draws 1)
  MODES_B=eager
else
  DEV=cuda
  STEP_B=(--config base224 --rounds 6 --per-round 3 --warmup 3)
  STEP_H=(--config huge14 --rounds 3 --per-round 2 --warmup 2)
  LEJEPA=(--rounds 6 --per-round 3 --warmup 3 --set model.preset=vit_base --set model.patch_size=16
          --set data.img_size=224 --set data.batch_size=64)
  VIDEO=(--configs base --rounds 4 --per-round 2 --warmup 2)
  MODES_B=eager,compiled
fi

worst=0
part() {  # part NAME COMMAND...: run it, record its exit status
  local name=$1; shift
  echo "== $name: $*"
  local t0=$SECONDS
  "$@"
  local rc=$?
  echo "$name $rc $((SECONDS - t0))" >> "$OUT/status.txt"
  (( rc > worst )) && worst=$rc
  return 0
}

"$PY" -c "import torch; print('torch', torch.__version__, '| CUDA', torch.version.cuda, '|',
torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU')"
part ijepa_b16 "$PY" benchmarks/bench_step.py "${official_ijepa[@]}" --device "$DEV" --modes "$MODES_B" \
  "${STEP_B[@]}" --json "$OUT/ijepa_b16.json"
part ijepa_h14 "$PY" benchmarks/bench_step.py --device "$DEV" --modes eager,recompute "${STEP_H[@]}" \
  --json "$OUT/ijepa_h14.json"
part lejepa "$PY" benchmarks/bench_precision.py --device "$DEV" --configs configs/digits_lejepa.yaml "${LEJEPA[@]}" \
  --json "$OUT/lejepa.json"
part vjepa "$PY" benchmarks/bench_video_step.py "${official_vjepa[@]}" --device "$DEV" "${VIDEO[@]}" \
  --json "$OUT/vjepa.json"
part cuda_tests "$PY" -m pytest tests/test_cuda.py tests/test_evaluation.py -k "cuda" -q -p no:cacheprovider
"$PY" benchmarks/gpu_table.py "$OUT"
exit $worst
