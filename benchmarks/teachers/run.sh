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

# the teacher's INT8: NNCF PTQ, 300 train images; signed activations like the student's QAT (TensorRT-legal), and
# unsigned (NNCF's uint8 after ReLU6: what onnxruntime on x86 needs to fuse a conv followed by ReLU6)
[ -f "$RUN/teacher-ptq/best.pt" ] || $E quantize --model "$RUN/teacher/best.pt" --mode ptq --signed --data "$DATA" \
  --out "$RUN/teacher-ptq"
[ -f "$RUN/teacher-ptq-unsigned/best.pt" ] || $E quantize --model "$RUN/teacher/best.pt" --mode ptq --unsigned \
  --data "$DATA" --out "$RUN/teacher-ptq-unsigned"
# EfficientNet-Lite0 fine-tuned at 128 px (the teacher's recipe, --input-size 128): a third point on the front
L=$RUN/lite0-128
[ -f "$L/teacher/best.pt" ] || $E train -c train/oxford17flowers-pretrained.yaml --data "$DATA" --input-size 128 \
  --out "$L/teacher"
[ -f "$L/ptq/best.pt" ] || $E quantize --model "$L/teacher/best.pt" --mode ptq --unsigned --data "$DATA" --out "$L/ptq"
# ex CKPT PRECISION NAME FOLDER: export to every CPU runtime, skipping artifacts a previous run left
ex() {
  for t in onnx openvino tflite; do
    case $t in onnx) ext=onnx ;; openvino) ext=xml ;; tflite) ext=tflite ;; esac
    [ -f "$4/$3-$2.$ext" ] && continue
    $E export --model "$1" --target "$t" --precision "$2" --data "$DATA" --out "$4" --name "$3" || echo "$3 $2 $t export failed"
  done
}
ex "$RUN/teacher/best.pt" fp32 teacher "$TEX"
ex "$RUN/teacher-ptq/best.pt" int8 teacher "$TEX"
ex "$RUN/teacher-ptq-unsigned/best.pt" int8 teacher-unsigned "$TEX"
ex "$L/teacher/best.pt" fp32 lite128 "$L/export"
ex "$L/ptq/best.pt" int8 lite128 "$L/export"

. benchmarks/wait_quiet.sh   # waits for a quiet machine, writes $OUT/load.txt

# per runtime: student FP32, student INT8, teacher FP32, teacher INT8 (later rounds go through all of them in turn)
set --
for ext in onnx xml tflite; do
  for f in "$RUN/export/student-fp32.$ext" "$RUN"/export/student*-int8."$ext" "$TEX/teacher-fp32.$ext" "$TEX"/teacher*-int8."$ext" \
           "$L/export/lite128-fp32.$ext" "$L/export/lite128-int8.$ext"; do
    case "$f" in *-trt.onnx) continue ;; esac
    [ -f "$f" ] && set -- "$@" "$f"
  done
done
$E bench "$RUN/teacher/best.pt" "$L/teacher/best.pt" "$@" --reference "$RUN/student/best.pt" --data "$DATA" --split val --threads 2 \
  --rounds "${ROUNDS:-3}" --runs "${RUNS:-100}" --out "$OUT" || true  # exit 1 = an artifact failed or broke the gate
echo "end:   $(date -u +%FT%TZ) $(cat /proc/loadavg)" >> "$OUT/load.txt"
.venv/bin/python benchmarks/teachers/report.py "$OUT/bench.json" > "$OUT/summary.md"
cat "$OUT/load.txt" "$OUT/summary.md"
