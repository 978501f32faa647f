#!/usr/bin/env bash
# Distillation + INT8 benchmark on Oxford 17 Flowers, CPU only (2 cores). Rerunnable: every
# step resumes or skips what is done. Numbers go to benchmarks/quantization.md.
# Teacher first:  .venv/bin/edge-fgic train -c train/oxford17flowers.yaml --out runs/o17-teacher
set -euo pipefail
E=.venv/bin/edge-fgic
T=runs/o17-teacher/best.pt
SMALL='model_kwargs={depths: [1, 1, 2, 1], dims: [32, 64, 128, 256]}'
EP=30  # student epochs (the teacher had 40): a CPU budget, the same for every student
resume() { [ -f "$1/last.pt" ] && echo --resume || true; }
step() { echo "== $(date +%T) $*"; }

step "student bn-relu, distilled"
$E distill --teacher $T --student convnext_atto --variant bn-relu --set "$SMALL" --epochs $EP --out runs/o17-bnrelu-kd $(resume runs/o17-bnrelu-kd)
step "student stock, distilled"
$E distill --teacher $T --student convnext_atto --variant stock --set "$SMALL" --epochs $EP --out runs/o17-stock-kd $(resume runs/o17-stock-kd)
step "student bn-relu, no teacher (same recipe, labels only)"
$E distill --teacher $T --student convnext_atto --variant bn-relu --set "$SMALL" --epochs $EP --set kd_weight=0 --out runs/o17-bnrelu-nokd $(resume runs/o17-bnrelu-nokd)
for s in bnrelu stock; do
  step "PTQ $s"
  [ -f runs/o17-$s-kd-ptq/best.pt ] || $E quantize --mode ptq -m runs/o17-$s-kd/best.pt --out runs/o17-$s-kd-ptq
  step "QAT $s (signed, TensorRT-legal)"
  $E quantize --mode qat --signed -m runs/o17-$s-kd/best.pt --out runs/o17-$s-kd-qat-signed $(resume runs/o17-$s-kd-qat-signed)
done
step "QAT bnrelu (unsigned after ReLU, CPU form)"
$E quantize --mode qat -m runs/o17-bnrelu-kd/best.pt --out runs/o17-bnrelu-kd-qat $(resume runs/o17-bnrelu-kd-qat)
step "student bn-hswish, distilled, and its signed QAT"
$E distill --teacher $T --student convnext_atto --variant bn-hswish --set "$SMALL" --epochs $EP --out runs/o17-bnhswish-kd $(resume runs/o17-bnhswish-kd)
$E quantize --mode qat --signed -m runs/o17-bnhswish-kd/best.pt --out runs/o17-bnhswish-kd-qat-signed $(resume runs/o17-bnhswish-kd-qat-signed)
step "latency + deployed accuracy (nothing else may run on the machine)"
.venv/bin/python benchmarks/quantization/int8_latency.py --teacher $T \
  --student runs/o17-bnrelu-kd/best.pt runs/o17-bnrelu-kd-qat runs/o17-bnrelu-kd-qat-signed runs/o17-bnrelu-kd-ptq \
  --student runs/o17-stock-kd/best.pt runs/o17-stock-kd-qat-signed runs/o17-stock-kd-ptq \
  --student runs/o17-bnhswish-kd/best.pt runs/o17-bnhswish-kd-qat-signed \
  --out benchmarks/quantization/oxford17.json
step done
