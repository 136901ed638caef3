#!/usr/bin/env bash
# Case 1: the data folder (index.db) is full for 5 s while a run prints. guildd says so,
# keeps trying, and afterwards the run's end, a label and a new run all reach index.db.
CASE_NAME="1 data folder full 5 s"
source "$(dirname "$0")/lib.sh"
mount_tmpfs "$GUILD_DATA_DIR" 4m
ticker_project
start_run
wait_for "300 lines" at_least 300
probe_start
fault_start
filler=$(fill "$GUILD_DATA_DIR")
within 4 problem_shown index.db && told="status told" || told="status SILENT"
guild label "$RUN_ID" during-the-fill >/dev/null 2>&1 && during="label claimed" || during="label refused"
fault_hold 5
rm -f "$filler"
within 10 no_problem || told="$told, problem NOT cleared"
guild label "$RUN_ID" after >/dev/null 2>&1 || true
touch "$CASE_DIR/go"
end=$(end_status)
probe_stop
guild prepare >/dev/null 2>&1 && next="new run ok" || next="new run FAILED"
lines_same && same="same lines" || same="lines DIFFER"
result "$(lines_written)" "$(lines_stored)" "$told, $end, label \"$(attr label)\" ($during while full), $next, $same"
