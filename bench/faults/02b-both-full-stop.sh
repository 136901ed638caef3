#!/usr/bin/env bash
# Case 2, both folders: the data folder and the run folder are full for 5 s, and
# `guild stop` ends the op meanwhile. The run stays running until there is room, then
# its end is recorded: every line once, `terminated`.
CASE_NAME="2 both folders full 5 s, stop"
source "$(dirname "$0")/lib.sh"
mount_tmpfs "$GUILD_DATA_DIR" 4m
mount_tmpfs "$PROJECT" 4m
ticker_project
start_run
wait_for "500 lines" at_least 500
probe_start
fault_start
fillers=("$(fill "$GUILD_DATA_DIR")" "$(fill "$PROJECT")")
within 4 problem_shown && told="status told" || told="status SILENT"
guild stop "$RUN_ID" >/dev/null 2>&1 && stop="stop ok" || stop="stop REFUSED"
fault_hold 5
status_while_full=$(attr status)
rm -f "${fillers[@]}"
end=$(end_status)
probe_stop
lines_same && same="same lines" || same="lines DIFFER"
result "$(lines_written)" "$(lines_stored)" "$told, $stop, $status_while_full while full, then $end; $same"
