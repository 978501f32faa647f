#!/bin/sh
# SIGKILL in the student and QAT stages of `edge-fgic pipeline`, rerun, then compare with an uninterrupted run:
#   benchmarks/pipeline/kill_resume.sh && .venv/bin/python benchmarks/pipeline/compare_runs.py
cd "$(dirname "$0")/../.."
E=".venv/bin/edge-fgic"
export EDGE_FGIC_NO_PROGRESS=1
rm -rf runs/kill-base runs/kill-student runs/kill-qat; mkdir -p runs/kill-logs
date; $E pipeline --out runs/kill-base > runs/kill-logs/base.log 2>&1; echo base rc=$?
for S in student qat; do
  date
  $E pipeline --out runs/kill-$S > runs/kill-logs/$S-1.log 2>&1 &
  PID=$!
  while ! grep -q '"running"' runs/kill-$S/$S/stage.json 2>/dev/null; do sleep 1; done
  sleep 8
  kill -9 $PID; echo killed $S; sleep 1
  $E pipeline --out runs/kill-$S > runs/kill-logs/$S-2.log 2>&1; echo rerun $S rc=$?
done
date
