# Sourced by the benchmark scripts before timing: wait (up to WAIT_MIN minutes, polling every 60 s) for the 1-min load
# average to fall below MAX_LOAD, then record the load in $OUT/load.txt (the scripts append the end line).
load() { cut -d' ' -f1 /proc/loadavg; }
busy() { awk -v l="$(load)" -v m="${MAX_LOAD:-1.0}" 'BEGIN { exit !(l > m) }'; }
i=0
while busy && [ $i -lt "${WAIT_MIN:-20}" ]; do
  echo "load $(load) > ${MAX_LOAD:-1.0}: waiting 60 s ($i/${WAIT_MIN:-20} min)"; sleep 60; i=$((i + 1))
done
mkdir -p "$OUT"
echo "start: $(date -u +%FT%TZ) $(cat /proc/loadavg)" > "$OUT/load.txt"
