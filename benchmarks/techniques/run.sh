#!/bin/sh
# Which fine-grained technique helps (issue 18): the recipe as is (baseline), + the auxiliary batch-hard triplet loss
# (P x K batches), + the channel/spatial attention head, + both; SEEDS seeds each, run interleaved (seed-major: a
# machine whose speed drifts hits every variant alike). One `edge-fgic train` per cell, from scratch; its final
# evaluation (eval-val/metrics.json: top-1, macro F1, recall@1/5, the confused pairs with their embedding distances)
# is what benchmarks/techniques/report.py tabulates into benchmarks/techniques.md.
#
#   sh benchmarks/techniques/run.sh [RECIPE] [OUT] [SEEDS]
#   sh benchmarks/techniques/run.sh train/synthetic.yaml runs/techniques/demo "0 1 2"      # the demo (default)
#   sh benchmarks/techniques/run.sh train/oxford17flowers.yaml runs/techniques/o17 "0 1 2" # --data given by the recipe
#
# Environment: TRIPLET (the triplet weight, default 0.5), PK_IMAGES (K of the P x K batches, default 8: P = 32 / 8 = 4
# classes per batch, which the demo's 6 classes can hold), EXTRA (more train flags for every cell, e.g. "--epochs 10").
# A finished cell (best.pt + eval-val/metrics.json) is skipped, so a rerun continues where it stopped.
set -e
cd "$(dirname "$0")/../.."
RECIPE=${1:-train/synthetic.yaml}
OUT=${2:-runs/techniques/demo}
SEEDS=${3:-0 1 2}
TRIPLET=${TRIPLET:-0.5}
PK_IMAGES=${PK_IMAGES:-8}
VARIANTS="baseline triplet attention both"
mkdir -p "$OUT"
. benchmarks/wait_quiet.sh
for seed in $SEEDS; do
  for v in $VARIANTS; do
    cell=$OUT/$v-s$seed
    [ -f "$cell/best.pt" ] && [ -f "$cell/eval-val/metrics.json" ] && { echo "$v seed $seed: done"; continue; }
    case $v in
      baseline)  extra="" ;;
      triplet)   extra="--triplet-weight $TRIPLET --pk-images $PK_IMAGES" ;;
      attention) extra="--attention-head" ;;
      both)      extra="--attention-head --triplet-weight $TRIPLET --pk-images $PK_IMAGES" ;;
    esac
    start=$(date +%s)
    # shellcheck disable=SC2086
    .venv/bin/edge-fgic train --config "$RECIPE" --seed "$seed" --set gradcam=0 $extra $EXTRA --out "$cell" \
      $( [ -f "$cell/last.pt" ] && echo --resume )
    echo "$v $seed $(( $(date +%s) - start ))" >> "$OUT/seconds.txt"
  done
done
echo "end: $(date -u +%FT%TZ) $(cat /proc/loadavg)" >> "$OUT/load.txt"
.venv/bin/python benchmarks/techniques/report.py "$OUT"
