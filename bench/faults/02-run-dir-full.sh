#!/usr/bin/env bash
# Case 2: the run folder (run.db, errors.log, exit) is full for 5 s while the run prints.
# Every line the op wrote reaches run.db once, and errors.log tells what happened.
CASE_NAME="2 run folder full 5 s"
source "$(dirname "$0")/lib.sh"
mount_tmpfs "$PROJECT" 4m
ticker_project
start_run
wait_for "500 lines" at_least 500
probe_start
fault_start
filler=$(fill "$PROJECT")
within 4 problem_shown run.db && told="status told" || told="status SILENT"
reason=$(attr reason | cut -c1-21)
fault_hold 5
rm -f "$filler"
before=$(lines_written)
wait_for "500 more lines" at_least $((before + 500))
touch "$CASE_DIR/go"
end=$(end_status)
probe_stop
lines_same && same="same lines" || same="lines DIFFER"
grep -q "recording resumed" "$RUN_DIR/guild.d/errors.log" && log="errors.log told" || log="errors.log SILENT"
result "$(lines_written)" "$(lines_stored)" "$told, reason \"${reason:-}...\", $log, $end, $same"
