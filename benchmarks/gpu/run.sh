#!/usr/bin/env bash
# The one device check of the gpu work: at most ~9 minutes on one GPU. From the repository root:
#   bash benchmarks/gpu/run.sh                 # on the GPU machine: writes reports/gpu/
#   bash benchmarks/gpu/run.sh --cpu-check     # anywhere: every step at toy sizes on the CPU, CUDA parts skipped
# Options: --out DIR (default reports/gpu), --budget SECONDS (default 510: steps 1-4; rendering adds seconds),
#          --only RESULTS (step 4: a subset, e.g. table6,table3), --python PY.
# Steps: 1. card, driver, torch; 2. trainer img/s on WRN-40-2 with and without the GPU-resident data path (and
# compiled); 3. AugMix / RandAugment / PixMix img/s at 32 and 64 px against torchvision v2 on the same device;
# 4. as much of the `gpu` preset as the remaining budget allows (a rerun resumes it), its report copied to OUT.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=reports/gpu; BUDGET=510; CPU_CHECK=0; ONLY=; PY=${PYTHON:-}
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu-check) CPU_CHECK=1 ;;
    --out) OUT=$2; shift ;;
    --budget) BUDGET=$2; shift ;;
    --python) PY=$2; shift ;;
    --only) ONLY=$2; shift ;;
    *) echo "run.sh: unknown option $1 (use --cpu-check, --out DIR, --budget S, --only RESULTS, --python PY)" >&2; exit 2 ;;
  esac; shift
done
[ -n "$PY" ] || { [ -x .venv/bin/python ] && PY=.venv/bin/python || PY=python3; }
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
mkdir -p "$OUT"; START=$(date +%s)
left() { echo $(( BUDGET - ($(date +%s) - START) )); }
share() { local s=$(( $(left) / $1 )); [ $s -lt 10 ] && s=10; echo $s; }   # a step's time limit: 1/N of what is left
log() { echo "== $* ($(( $(date +%s) - START )) s)"; }

log "1. device"
if [ $CPU_CHECK = 1 ]; then
  echo "cpu check: CUDA parts skipped (no nvidia-smi, CPU at toy sizes)"; DEVICE=cpu
else
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || { echo "run.sh: no nvidia-smi: is this the GPU machine? (--cpu-check runs it on the CPU)" >&2; exit 1; }
  DEVICE=cuda
fi
"$PY" -c "import torch, json; from augflat.core import env_info; e = env_info('$DEVICE'); print(json.dumps(e)); \
assert '$DEVICE' == 'cpu' or torch.cuda.is_available(), 'torch sees no CUDA device'" | tee "$OUT/env.json" || exit 1

log "2. trainer img/s (WRN-40-2, resident vs host data path)"
if [ $CPU_CHECK = 1 ]; then TRAIN_ARGS="--n 64 --epochs 1 --batch-size 32"; else TRAIN_ARGS="--n 20000 --epochs 2 --compile"; fi
timeout $(share 3) "$PY" benchmarks/gpu/trainer.py --device $DEVICE $TRAIN_ARGS --json "$OUT/trainer.json" \
  || echo "run.sh: the trainer benchmark did not finish (rc $?)"

log "3. augmentation img/s (augflat vs torchvision v2, 32 and 64 px)"
if [ $CPU_CHECK = 1 ]; then AUG_ARGS="--batch 8 --repeats 1 --per-image-n 4"; else AUG_ARGS="--batch 512 --repeats 5 --per-image-n 128"; fi
timeout $(share 3) "$PY" benchmarks/gpu/augment.py --device $DEVICE $AUG_ARGS --json "$OUT/augment.json" \
  || echo "run.sh: the augmentation benchmark did not finish (rc $?)"

log "4. the gpu preset, for the $(left) s left"
"$PY" benchmarks/gpu/estimate.py --preset gpu --json "$OUT/estimate.json" | tail -1
RUNS=runs; PRESET_ARGS="--preset gpu"
if [ $CPU_CHECK = 1 ]; then RUNS="$OUT/runs"; PRESET_ARGS="--preset gpu --dry-run"; fi
[ -n "$ONLY" ] && PRESET_ARGS="$PRESET_ARGS --only $ONLY"
# SIGINT: the runner stops, keeping finished models, evaluations and result files (a rerun resumes)
timeout --signal=INT --kill-after=20 $(share 1) \
  "$PY" -m augflat.cli reproduce $PRESET_ARGS --runs "$RUNS" --device $DEVICE 2>&1 | tee "$OUT/reproduce.log"
NAME=$("$PY" -c "from augflat.reproduce import load_preset, dry_run; c = load_preset('gpu'); print((dry_run(c) if $CPU_CHECK else c)['name'])")
"$PY" -c "from augflat.reproduce import render_report; print(render_report('$RUNS/$NAME'))" || exit 1
for f in REPORT.md preset.json failures.json; do [ -f "$RUNS/$NAME/$f" ] && cp "$RUNS/$NAME/$f" "$OUT/"; done
for d in results tables figures; do [ -d "$RUNS/$NAME/$d" ] && rm -rf "$OUT/$d" && cp -r "$RUNS/$NAME/$d" "$OUT/"; done
log "done: $OUT"
ls "$OUT"
