#!/bin/sh
# The README's bench table: teacher FP32, student FP32 (the reference) and every student export of
# benchmarks/export/run_oxford17.sh, on all 271 Oxford 17 val images, 2 threads, on this CPU.
# Writes runs/o17-bench/ and copies the report into benchmarks/bench/oxford17/.
set -e
cd "$(dirname "$0")/../.."
.venv/bin/edge-fgic bench runs/o17-teacher/best.pt runs/o17-export \
  --reference runs/o17-bnrelu-kd/best.pt --split val --threads 2 --runs 200 --rounds 3 --out runs/o17-bench || true  # exit 1 = a gate broke; the report says which
mkdir -p benchmarks/bench/oxford17
cp runs/o17-bench/bench.md runs/o17-bench/bench.json runs/o17-bench/drift.csv runs/o17-bench/pareto.png benchmarks/bench/oxford17/
