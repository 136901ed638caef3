#!/usr/bin/env bash
# Case 1: the data folder (index.db) is full for 5 s while a run prints. guildd says so,
# keeps trying, and afterwards the run, a label and a new run all reach index.db.
CASE_NAME="1 data folder full 5 s"
source "$(dirname "$0")/lib.sh"
mount_tmpfs "$GUILD_DATA_DIR" 4m
ticker_project
start_run
wait_for "the run to print" test -s "$RUN_DIR/guild.d/stdout.log"
probe_start
filler=$(fill "$GUILD_DATA_DIR")
wait_for "guild status to tell" bash -c "'$GUILD_BIN_DIR/guild' status | grep -q 'problem:.*index.db'"
guild label "$RUN_ID" during-the-fill >/dev/null 2>&1 && label="label claimed" || label="label refused"
sleep 5
rm -f "$filler"
wait_for "the problem to clear" bash -c "! '$GUILD_BIN_DIR/guild' status | grep -q problem:"
guild label "$RUN_ID" after >/dev/null
touch "$CASE_DIR/go"
wait_for "the run's end" run_ended
probe_stop
guild prepare >/dev/null 2>&1 && next="new run ok" || next="new run FAILED"
lines_same && same="same lines" || same="lines DIFFER"
result "$(lines_written)" "$(lines_stored)" "$(attr status), label $(attr label) ($label during), $next, $same"
