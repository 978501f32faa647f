#!/bin/sh
# What closes the gap between the pretrained teacher and the 1 M-parameter ConvNeXt student (Oxford 17): the pipeline's
# student recipe (KD 0.7, 30 epochs, 112 px) against the same recipe without a teacher (kd_weight 0: labels only, same
# images and augmentation), 5x5 depthwise kernels (LiteRT's INT8 is 16x faster with them:
# benchmarks/quantization/kernel-sizes), "patient" function matching (Beyer et al., CVPR 2022: teacher-only targets on mixup/CutMix
# images, twice the epochs), feature KD, and 160 px. One `edge-fgic distill` each, from
# the pipeline's teacher; val top-1 of each best.pt into benchmarks/teachers/students.json.
#
#   sh benchmarks/teachers/run_students.sh runs/o17-pretrained ../shared/datasets/oxford17flowers [VARIANT ...]
set -e
cd "$(dirname "$0")/../.."
RUN=${1:-runs/o17-pretrained}
DATA=imagefolder=${2:-../shared/datasets/oxford17flowers}
shift 2 2>/dev/null || shift $#
VARIANTS=${*:-labels-only kernel-5 feature-kd patient input-160}
STUDENT='model_kwargs={depths: [1, 1, 2, 1], dims: [32, 64, 128, 256], conv_mlp: true, norm_layer: batchnorm2d, act_layer: relu}'
for v in $VARIANTS; do
  out=$RUN/students/$v
  STUDENT_K=""
  case $v in
    labels-only) extra="--kd-weight 0" ;;
    feature-kd)  extra="--feature-kd 0.5" ;;
    kernel-5)    extra="" ; STUDENT_K=", kernel_sizes: 5" ;;
    patient)     extra="--kd-weight 1.0 --set mixup=0.8 --set cutmix=1.0 --epochs 60" ;;
    input-160)   extra="--set input_size=160" ;;
    *) echo "unknown variant $v"; exit 2 ;;
  esac
  [ -f "$out/best.pt" ] && [ -f "$out/eval-val/metrics.json" ] && { echo "$v: done"; continue; }
  start=$(date +%s)
  # the pipeline's student section, spelled as flags (train/pipeline-oxford17-pretrained.yaml)
  # shellcheck disable=SC2086
  .venv/bin/edge-fgic distill --teacher "$RUN/teacher/best.pt" --student convnext_atto --variant bn-relu --data "$DATA" \
    --set "${STUDENT%\}}${STUDENT_K}}" --set input_size=112 --set auto_augment=trivialaugment --set drop_path_rate=0.0 --set warmup_epochs=2 \
    --set weight_decay=0.05 --epochs 30 --batch-size 32 --lr 0.002 --kd-weight 0.7 $extra --out "$out" \
    $( [ -f "$out/last.pt" ] && echo --resume )
  echo "$v $(( $(date +%s) - start ))" >> "$RUN/students/seconds.txt"
done
.venv/bin/python - "$RUN" <<'PY'
import json, sys
from pathlib import Path
run = Path(sys.argv[1])
secs = {}
f = run / "students" / "seconds.txt"
if f.exists():
    for line in f.read_text().split("\n"):
        if line.strip():
            k, v = line.split()
            secs[k] = int(v)
rows = {}
for d in sorted([run / "student", *sorted((run / "students").iterdir())]):
    m = d / "eval-val" / "metrics.json"
    if d.is_dir() and m.exists():
        j = json.loads(m.read_text())
        rows[d.name if d.name != "student" else "pipeline (KD 0.7, 30 epochs, 112 px)"] = {
            "val_top1": j.get("top1"), "val_top5": j.get("top5"), "seconds": secs.get(d.name)}
out = Path("benchmarks/teachers/students.json")
out.write_text(json.dumps(rows, indent=1) + "\n")
print(json.dumps(rows, indent=1))
PY
