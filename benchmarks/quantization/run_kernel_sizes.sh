#!/bin/sh
# Is it the 7x7 depthwise convolution that makes INT8 slower than FP32 in LiteRT/XNNPACK (issue 13)? The Oxford 17
# student's shape (bn-relu, depths 1-1-2-1, dims 32-256, 112 px) with depthwise kernels 7, 5 and 3: each trained
# 3 epochs (latency needs real BN statistics, not accuracy), NNCF PTQ (signed, as the pipeline's QAT), exported FP32 +
# INT8 to every CPU runtime, then ONE interleaved `edge-fgic bench` (latency; the accuracy of a 3-epoch model means
# nothing here, so the round-trip gate is lowered to 50 % agreement: near-flat logits flip argmax on tiny
# differences) into benchmarks/quantization/kernel-sizes/.
#
#   sh benchmarks/quantization/run_kernel_sizes.sh ../shared/datasets/oxford17flowers
set -e
cd "$(dirname "$0")/../.."
DATA=imagefolder=${1:-../shared/datasets/oxford17flowers}
RUN=${RUN:-runs/kernel-sizes}
OUT=benchmarks/quantization/kernel-sizes
E=.venv/bin/edge-fgic
set --
for k in 7 5 3; do
  d=$RUN/k$k
  [ -f "$d/train/best.pt" ] || $E train -c train/oxford17flowers.yaml --data "$DATA" --epochs 3 --no-eval \
    --set "model_kwargs={depths: [1, 1, 2, 1], dims: [32, 64, 128, 256], conv_mlp: true, norm_layer: batchnorm2d, act_layer: relu, kernel_sizes: $k}" \
    --out "$d/train"
  [ -f "$d/ptq/best.pt" ] || $E quantize --model "$d/train/best.pt" --mode ptq --signed --data "$DATA" --out "$d/ptq"
  for t in onnx openvino tflite; do
    $E export --model "$d/train/best.pt" --target "$t" --precision fp32 --data "$DATA" --out "$d/export" --name "k$k" --check-images 32 --min-agreement 50
    $E export --model "$d/ptq/best.pt" --target "$t" --precision int8 --data "$DATA" --out "$d/export" --name "k$k" --check-images 32 --min-agreement 50
  done
done
set --
for ext in onnx xml tflite; do
  for k in 7 5 3; do
    for f in "$RUN/k$k/export/k$k-fp32.$ext" "$RUN/k$k/export/k$k-int8.$ext"; do [ -f "$f" ] && set -- "$@" "$f"; done
  done
done
mkdir -p "$OUT"
echo "start: $(date -u +%FT%TZ) $(cat /proc/loadavg)" > "$OUT/load.txt"
$E bench "$@" --reference "$RUN/k7/train/best.pt" --data "$DATA" --split val --threads 2 --rounds 3 --runs 100 \
  --max-images 64 --max-drop 100 --out "$OUT" || true
echo "end:   $(date -u +%FT%TZ) $(cat /proc/loadavg)" >> "$OUT/load.txt"
.venv/bin/python - "$OUT/bench.json" <<'PY' > "$OUT/summary.md"
import json, sys
import numpy as np
rep = json.load(open(sys.argv[1]))
rounds = int(rep["config"].get("rounds") or 1)
def p50s(r):
    s = r.get("latency_samples_ms") or []
    n = len(s) // rounds if rounds > 1 and s and len(s) % rounds == 0 else 0
    return [float(np.median(s[i * n:(i + 1) * n])) for i in range(rounds)] if n else [r["latency_ms"]["p50"]]
rows = {r["name"].replace("reference: ", ""): r for r in rep["rows"] if r.get("status") == "ok"}
cpu = (rep.get("machine") or {}).get("cpu") or {}
print(f"CPU: {cpu.get('model', '?')}, {cpu.get('logical_cores', '?')} cores; ISA {', '.join(cpu.get('isa') or []) or '?'}; "
      f"{rep['config'].get('threads')} threads, batch 1, {rounds} interleaved rounds of {rep['config'].get('runs')} runs.\n")
print("| runtime | depthwise kernel | FP32 p50 ms | INT8 p50 ms | INT8 speed-up (median of per-round ratios, range) |")
print("|---|---|---|---|---|")
for ext, rt in ((".onnx", "onnxruntime"), (".xml", "OpenVINO"), (".tflite", "LiteRT (XNNPACK)")):
    for k in (7, 5, 3):
        f, i = rows.get(f"k{k}-fp32{ext}"), rows.get(f"k{k}-int8{ext}")
        if not f or not i:
            continue
        a, b = p50s(f), p50s(i)
        ratios = [x / y for x, y in zip(a, b)]
        print(f"| {rt} | {k}x{k} | {np.median(a):.3f} | {np.median(b):.3f} | {np.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f}) |")
PY
cat "$OUT/load.txt" "$OUT/summary.md"
