#!/usr/bin/env bash
# Case 2: the run folder (run.db, errors.log, exit) is full for 5 s while the run prints;
# `guild stop` is asked in the middle. Every line the op wrote reaches run.db once, and
# the run's end is recorded once there is room.
CASE_NAME="2 run folder full 5 s, stop"
source "$(dirname "$0")/lib.sh"
mount_tmpfs "$PROJECT" 4m
ticker_project
start_run
wait_for "the run to print" test -s "$RUN_DIR/guild.d/stdout.log"
probe_start
filler=$(fill "$PROJECT")
wait_for "guild status to tell" bash -c "'$GUILD_BIN_DIR/guild' status | grep -q 'problem:.*run.db'"
sleep 2
guild stop "$RUN_ID" >/dev/null 2>&1 && stop="stop ok" || stop="stop REFUSED"
sleep 3
status_while_full=$(attr status)
rm -f "$filler"
wait_for "the run's end" run_ended
probe_stop
lines_same && same="same lines" || same="lines DIFFER"
grep -q "recording resumed" "$RUN_DIR/guild.d/errors.log" && told="errors.log tells" || told="errors.log SILENT"
result "$(lines_written)" "$(lines_stored)" "$stop, $status_while_full while full, then $(attr status); $told, $same"
