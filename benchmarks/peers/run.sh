#!/bin/sh
# Peers in the harness: build what a user gets without edge-fgic from the same FP32 student and the same
# calibration images (onnxruntime quantize_static, NNCF PTQ on the OpenVINO IR, ai-edge-quantizer static INT8,
# Ultralytics' INT8 exports), then ONE `edge-fgic bench` over ours (FP32 + INT8 per runtime) and the peers,
# interleaved rounds, into benchmarks/peers/<name>/ (bench.md/json, drift.csv, pareto.png, peers.json, summary.md).
#
#   sh benchmarks/peers/run.sh                                              # the demo (after `make demo`)
#   sh benchmarks/peers/run.sh oxford17 runs/o17-bnrelu-kd/best.pt runs/o17-export
#
# NAME CKPT EXPORT: the report folder's name, our FP32 checkpoint, our export folder (student-fp32.* and
# student*-int8.*, e.g. student-int8.onnx or student-signed-int8.xml; the TensorRT-bound -trt.onnx is left out). Peers go to PEERS (default: <EXPORT>/../peers).
# Timing waits (up to WAIT_MIN minutes, polling every 60 s) for the 1-min load average to fall below MAX_LOAD.
set -e
cd "$(dirname "$0")/../.."
NAME=${1:-demo}
CKPT=${2:-runs/demo/student/best.pt}
EXPORT=${3:-runs/demo/export}
PEERS=${PEERS:-$(dirname "$EXPORT")/peers}
OUT=benchmarks/peers/$NAME
SITE=${ULTRALYTICS_SITE:-runs/.peers-ultralytics-site}
MAX_LOAD=${MAX_LOAD:-1.0}
WAIT_MIN=${WAIT_MIN:-20}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-5}
RUNS=${RUNS:-200}

# Ultralytics lives outside the venv (a pip --target folder; it is not a dependency of edge-fgic)
if [ ! -d "$SITE/ultralytics" ]; then
  .venv/bin/pip install -q --target "$SITE" --no-deps ultralytics==8.4.190 ultralytics-thop==2.2.3 || \
    echo "ultralytics could not be installed: its peers are skipped"
fi

.venv/bin/python benchmarks/peers/build_peers.py -m "$CKPT" -e "$EXPORT" -o "$PEERS" --ultralytics-site "$SITE" || \
  echo "some peer routes failed: see $PEERS/peers.json"

. benchmarks/wait_quiet.sh   # waits for a quiet machine, writes $OUT/load.txt

# per runtime: ours FP32, ours INT8, then the peers (bench's later rounds go through all of them in turn)
set --
for ext in onnx xml tflite; do
  for f in "$EXPORT/student-fp32.$ext" "$EXPORT"/student*-int8."$ext" "$PEERS"/peer-*."$ext"; do
    [ -f "$f" ] && set -- "$@" "$f"
  done
done
.venv/bin/edge-fgic bench "$@" --reference "$CKPT" --split val --threads "$THREADS" --rounds "$ROUNDS" \
  --runs "$RUNS" --out "$OUT" || true   # exit 1 = an artifact failed or broke the gate; the report says which
echo "end:   $(date -u +%FT%TZ) $(cat /proc/loadavg)" >> "$OUT/load.txt"

cp "$PEERS/peers.json" "$OUT/peers.json"
.venv/bin/python benchmarks/peers/report.py "$OUT/bench.json" > "$OUT/summary.md"
cat "$OUT/load.txt" "$OUT/summary.md"
