#!/usr/bin/env bash
# Case 6: GetSeries for 1,000 keys x 100,000 buckets (it peaked at 7 GB), then the widest
# requests allowed. Reports the answers and guildd's peak memory growth.
CASE_NAME="6 GetSeries 1,000 keys x 100,000 buckets"
source "$(dirname "$0")/lib.sh"
printf '[project]\nstats_interval = 0\n\n[model "m"]\ntrain = many\n' > "$PROJECT/Guild"
printf 'for step in range(1, 4):\n    print(f"step: {step}")\n    for k in range(1000):\n        print(f"k{k}: {k * step}")\n' > "$PROJECT/many.py"
line=$(guild train 2>&1 >/dev/null | grep '^Run ')
RUN_ID=$(echo "$line" | awk '{print $2}')
RUN_DIR=${line##*) in }
pid=$("$GUILD_BIN_DIR/guild" status | sed -n 's/.* pid \([0-9]*\)$/\1/p')
peak() { awk '/VmHWM/ {print $2}' "/proc/$pid/status"; }
before=$(peak)
probe_start
answers=$(python3 "$(dirname "$0")/get_series_wide.py" "$GUILD_SOCKET" "$RUN_ID")
probe_stop
lines_same && same="same lines" || same="lines DIFFER"
result "$(lines_written)" "$(lines_stored)" "$answers; peak RSS +$(( ($(peak) - before) / 1024 )) MiB, $same"
