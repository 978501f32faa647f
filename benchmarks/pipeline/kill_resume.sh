#!/bin/sh
# Interrupt `edge-fgic pipeline` inside a stage (SIGKILL or SIGINT = Ctrl-C), rerun the same command, and compare
# with an uninterrupted run (weights bit for bit, export manifests but for timestamps/paths/hashes, bench accuracy):
#   benchmarks/pipeline/kill_resume.sh [STAGE:SIGNAL ...] && .venv/bin/python benchmarks/pipeline/compare_runs.py
# Default: every stage with both signals. KEEP_BASE=1 reuses runs/kill-base. Each case starts from a copy of the
# base's stages before the one interrupted (the pipeline skips them: same inputs), so only that stage and the
# ones after it run.
cd "$(dirname "$0")/../.."
E=".venv/bin/edge-fgic"
# a background job of a non-interactive shell starts with SIGINT ignored (POSIX), and Python then never raises
# KeyboardInterrupt: restore the default disposition before exec, as a terminal's Ctrl-C would find it
RESET="import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])"
export EDGE_FGIC_NO_PROGRESS=1
CASES=${*:-"teacher:KILL teacher:INT student:KILL student:INT qat:KILL qat:INT export:KILL export:INT bench:KILL bench:INT"}
mkdir -p runs/kill-logs
if [ -z "$KEEP_BASE" ] || [ ! -f runs/kill-base/bench/stage.json ]; then
  rm -rf runs/kill-base
  date; $E pipeline --out runs/kill-base > runs/kill-logs/base.log 2>&1; echo base rc=$?
fi
for C in $CASES; do
  S=${C%%:*}; SIG=${C##*:}; R=runs/kill-$S-$(echo $SIG | tr A-Z a-z)
  rm -rf $R
  mkdir -p $R
  for U in teacher student qat export; do  # the base's finished stages before S, as they were (the rerun skips them)
    [ $U = $S ] && break
    cp -r runs/kill-base/$U $R/
  done
  date
  .venv/bin/python -c "$RESET" $E pipeline --out $R > runs/kill-logs/$S-$SIG-1.log 2>&1 &
  PID=$!
  while ! grep -q '"running"' $R/$S/stage.json 2>/dev/null; do sleep 0.5; done
  case $S in teacher) sleep 45;; export|bench) sleep 5;; *) sleep 8;; esac
  kill -$SIG $PID; wait $PID; echo "$S: SIG$SIG, exit $?"
  ls -a $R/$S | tr '\n' ' '; echo
  $E pipeline --out $R > runs/kill-logs/$S-$SIG-2.log 2>&1; echo "  rerun exit $?"
  grep -E "up to date|resum|epoch 1/" runs/kill-logs/$S-$SIG-2.log | head -4
done
date
