#!/usr/bin/env bash
# Case 3: kill -9 of the run's supervisor (`guildd supervise`) while its op prints. The
# op's process group is the run: followed to its end, not deletable meanwhile, and the
# end says the exit status is unknown.
CASE_NAME="3 supervisor killed (kill -9)"
source "$(dirname "$0")/lib.sh"
ticker_project
start_run
wait_for "300 lines" at_least 300
supervisor=$(attr pid)
probe_start
kill -9 "$supervisor"
# The op goes on printing for 2 s.
sleep 2
status_after_kill=$(attr status)
guild runs delete "$RUN_ID" >/dev/null 2>&1 && delete="delete ALLOWED" || delete="delete refused"
touch "$CASE_DIR/go"
end=$(end_status)
probe_stop
lines_same && same="same lines" || same="lines DIFFER"
result "$(lines_written)" "$(lines_stored)" "$status_after_kill after the kill, $delete, then $end ($(attr reason | cut -c1-19)), $same"
