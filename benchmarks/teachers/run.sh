#!/bin/sh
# EfficientNet-Lite0 (ImageNet-pretrained, fine-tuned: the teacher) next to the distilled ConvNeXt student, on Oxford 17:
# the teacher gets the same route as the student (NNCF INT8 - PTQ here, it has no QAT stage -, every CPU export, each
# proved in its runtime), then ONE `edge-fgic bench` over both models' FP32 and INT8 artifacts per runtime, interleaved
# rounds, into benchmarks/teachers/oxford17/ (bench.md/json, pareto.png, summary.md).
#
#   edge-fgic pipeline -c train/pipeline-oxford17-pretrained.yaml --data imagefolder=../shared/datasets/oxford17flowers \
#       --out runs/o17-pretrained
#   sh benchmarks/teachers/run.sh runs/o17-pretrained ../shared/datasets/oxford17flowers
#
# Timing waits (up to WAIT_MIN minutes) for the 1-min load average to fall below MAX_LOAD.
set -e
cd "$(dirname "$0")/../.."
RUN=${1:-runs/o17-pretrained}
DATA=imagefolder=${2:-../shared/datasets/oxford17flowers}
OUT=benchmarks/teachers/${NAME:-oxford17}
TEX=$RUN/teacher-export
MAX_LOAD=${MAX_LOAD:-1.0}
WAIT_MIN=${WAIT_MIN:-20}
E=.venv/bin/edge-fgic

# the teacher's INT8: NNCF PTQ, signed activations like the student's QAT (TensorRT-legal), 300 train images
[ -f "$RUN/teacher-ptq/best.pt" ] || $E quantize --model "$RUN/teacher/best.pt" --mode ptq --signed --data "$DATA" \
  --out "$RUN/teacher-ptq"
for t in onnx openvino tflite; do
  $E export --model "$RUN/teacher/best.pt" --target "$t" --precision fp32 --data "$DATA" --out "$TEX" --name teacher || \
    echo "teacher fp32 $t export failed"
  $E export --model "$RUN/teacher-ptq/best.pt" --target "$t" --precision int8 --data "$DATA" --out "$TEX" --name teacher || \
    echo "teacher int8 $t export failed"
done

mkdir -p "$OUT"
load() { cut -d' ' -f1 /proc/loadavg; }
i=0
busy() { awk -v l="$(load)" -v m="$MAX_LOAD" 'BEGIN { exit !(l > m) }'; }
while busy && [ $i -lt "$WAIT_MIN" ]; do
  echo "load $(load) > $MAX_LOAD: waiting 60 s ($i/$WAIT_MIN min)"; sleep 60; i=$((i + 1))
done
echo "start: $(date -u +%FT%TZ) $(cat /proc/loadavg)" > "$OUT/load.txt"

# per runtime: student FP32, student INT8, teacher FP32, teacher INT8 (later rounds go through all of them in turn)
set --
for ext in onnx xml tflite; do
  for f in "$RUN/export/student-fp32.$ext" "$RUN"/export/student*-int8."$ext" "$TEX/teacher-fp32.$ext" "$TEX"/teacher*-int8."$ext"; do
    case "$f" in *-trt.onnx) continue ;; esac
    [ -f "$f" ] && set -- "$@" "$f"
  done
done
$E bench "$RUN/teacher/best.pt" "$@" --reference "$RUN/student/best.pt" --data "$DATA" --split val --threads 2 \
  --rounds "${ROUNDS:-3}" --runs "${RUNS:-100}" --out "$OUT" || true  # exit 1 = an artifact failed or broke the gate
echo "end:   $(date -u +%FT%TZ) $(cat /proc/loadavg)" >> "$OUT/load.txt"
.venv/bin/python benchmarks/teachers/report.py "$OUT/bench.json" > "$OUT/summary.md"
cat "$OUT/load.txt" "$OUT/summary.md"
