#!/usr/bin/env bash
# INT8 on the embedded synthetic default (the demo model of `make demo`, runs/demo/best.pt), CPU.
# Rerunnable: every step resumes or skips what is done. Numbers go to benchmarks/quantization.md.
set -euo pipefail
E=.venv/bin/edge-fgic
M=runs/demo/best.pt
[ -f $M ] || $E train --out runs/demo
resume() { [ -f "$1/last.pt" ] && echo --resume || true; }
step() { echo "== $(date +%T) $*"; }
for sign in unsigned signed; do
  step "PTQ $sign"
  [ -f runs/demo-ptq-$sign/best.pt ] || $E quantize --mode ptq --$sign -m $M --out runs/demo-ptq-$sign
  step "QAT $sign, 2 epochs"
  $E quantize --mode qat --$sign --epochs 2 -m $M --out runs/demo-qat-$sign $(resume runs/demo-qat-$sign)
done
step "latency + deployed accuracy (nothing else may run on the machine)"
.venv/bin/python benchmarks/quantization/int8_latency.py --teacher $M \
  --student $M runs/demo-qat-unsigned runs/demo-qat-signed runs/demo-ptq-unsigned runs/demo-ptq-signed \
  --out benchmarks/quantization/synthetic.json
step done
