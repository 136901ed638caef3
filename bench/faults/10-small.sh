#!/usr/bin/env bash
# Case 10: `guild runs > /dev/full`, a 120 KiB selector, `guild import /dev/zero`, a
# second daemon on the same data folder, and a project answer over 4 MiB, while guildd
# is probed.
CASE_NAME="10 small faults"
source "$(dirname "$0")/lib.sh"
ticker_project
guild daemon start >/dev/null
start_run
wait_for "the run to print 200 lines" bash -c "[ \$(wc -l < '$RUN_DIR/guild.d/stdout.log') -ge 200 ]"
probe_start
guild runs > /dev/full 2> "$CASE_DIR/full.err" && full="exit 0" || full="exit $?"
grep -q panicked "$CASE_DIR/full.err" && full="$full, PANIC" || full="$full: $(cut -c1-60 "$CASE_DIR/full.err")"
selector=$(head -c 122880 /dev/zero | tr '\0' x)
echo_bytes=$( (guild runs info "$selector" 2>&1 >/dev/null || true) | wc -c)
zero=$( (guild import /dev/zero 2>&1 || true) | cut -c1-60)
second=$( ("$GUILD_BIN_DIR/guildd" --data-dir "$GUILD_DATA_DIR" --socket "$CASE_DIR/other.sock" --listen none 2>&1 || true) | cut -c1-40)
mkdir -p "$CASE_DIR/big"
python3 - "$CASE_DIR/big/Guild" <<'PY'
import sys
# Under the 1 MiB bound on Guild files; one view shared by 120 models: an answer over 4 MiB.
with open(sys.argv[1], "w") as f:
    f.write("[project]\n\n[view]\nfields =" + "".join(f" field_{i:04}" for i in range(2000)) + "\n\n")
    f.write("".join(f'[model "m{m}"]\ntrain = ok\n\n' for m in range(120)))
PY
big=$(stat -c %s "$CASE_DIR/big/Guild")
"$GUILD_BIN_DIR/guild" -C "$CASE_DIR/big" list-models > /dev/null 2>&1 && project="answered" || project="FAILED"
touch "$CASE_DIR/go"
wait_for "the run's end" run_ended
probe_stop
lines_same && same="same lines" || same="lines DIFFER"
result "$(lines_written)" "$(lines_stored)" "runs > /dev/full: $full; 120 KiB selector: $echo_bytes bytes of error; /dev/zero: $zero; second daemon: $second; project of a $big-byte Guild file $project; $same"
