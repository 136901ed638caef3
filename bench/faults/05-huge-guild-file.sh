#!/usr/bin/env bash
# Case 5: Guild files of 4 MB and 50 MB (over the 1 MiB bound: refused before they are
# read whole), and one just under the bound with every key repeated (read in linear
# time, off the request workers), asked for while a run prints and guildd is probed.
CASE_NAME="5 huge Guild files"
source "$(dirname "$0")/lib.sh"
ticker_project
guild daemon start >/dev/null
start_run
wait_for "the run to print 200 lines" bash -c "[ \$(wc -l < '$RUN_DIR/guild.d/stdout.log') -ge 200 ]"
probe_start
answers=""
for size in 4000000 50000000 1040000; do
  dir="$CASE_DIR/g$size"
  mkdir -p "$dir"
  python3 - "$dir/Guild" "$size" <<'PY'
import sys
path, size = sys.argv[1], int(sys.argv[2])
with open(path, "w") as f:
    f.write('[model "m"]\ntrain = ok\n[flags]\n')
    n, i = 30, 0
    while n < size:
        line = "k%d = %d\n" % (i % 5000, i)
        f.write(line)
        n += len(line)
        i += 1
PY
  t0=$(date +%s%N)
  if out=$("$GUILD_BIN_DIR/guild" -C "$dir" list-models 2>&1); then what="read"; else what=$(cut -c1-48 <<< "${out#guild: }"); fi
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  answers="$answers$(( size / 1000000 )) MB: $what in $ms ms; "
done
touch "$CASE_DIR/go"
wait_for "the run's end" run_ended
probe_stop
lines_same && same="same lines" || same="lines DIFFER"
result "$(lines_written)" "$(lines_stored)" "$answers$same"
