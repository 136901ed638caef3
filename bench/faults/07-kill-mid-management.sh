#!/usr/bin/env bash
# Case 7: kill -9 of guildd at random moments of export, import, delete and purge of a
# run of 2,000 files; each restart finishes or undoes what was left. Checked after every
# kill: no DEST.partial, no .import-* folder, no .purge-* folder, no listed run whose
# folder is missing or incomplete; the last import's copy has every line of the run.
CASE_NAME="7 kill -9 mid-management"
source "$(dirname "$0")/lib.sh"
printf '[project]\nstats_interval = 0\n\n[model "m"]\ntrain = many\n' > "$PROJECT/Guild"
cat > "$PROJECT/many.py" <<'PY'
import os
d = os.path.join(os.environ["RUNDIR"], "files")
os.makedirs(d)
for i in range(2000):
    with open(os.path.join(d, "f%04d.txt" % i), "w") as f:
        f.write("x" * 512)
    print(f"line {i}")
PY
guild daemon start >/dev/null
start_run
wait_for "the run's end" run_ended
source_dir=$RUN_DIR
source_id=$RUN_ID
kills=0; bad=0; slowest=0
daemon_pid() { "$GUILD_BIN_DIR/guild" daemon status 2>/dev/null | sed -n 's/.* pid \([0-9]*\)$/\1/p'; }
whole() { [ "$(find "$1/files" -type f 2>/dev/null | wc -l)" -eq 2000 ]; }
# kill_during COMMAND...: starts it, kills guildd 0-400 ms later, restarts guildd.
kill_during() {
  local pid; pid=$(daemon_pid)
  guild "$@" >/dev/null 2>&1 &
  local cli=$!
  sleep "0.$(printf '%03d' $((RANDOM % 400)))"
  kill -9 "$pid"; wait "$cli" 2>/dev/null || true
  # Its lock is free once its last thread is gone (one may finish an fsync first), unless
  # the command started a daemon of its own meanwhile.
  until flock -n "$GUILD_DATA_DIR/guildd.lock" true || "$GUILD_BIN_DIR/guild" daemon status >/dev/null 2>&1; do
    sleep 0.01
  done
  local t0; t0=$(date +%s%N)
  guild daemon start >/dev/null
  local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  [ "$ms" -gt "$slowest" ] && slowest=$ms
  kills=$((kills + 1))
}
check() {
  local leftovers
  leftovers=$(find "$CASE_DIR" "$PROJECT/runs" -maxdepth 3 \( -name '*.partial*' -o -name '.import-*' -o -name '.purge-*' \) | wc -l)
  [ "$leftovers" -eq 0 ] || { echo "leftovers after kill $kills" >&2; bad=$((bad + 1)); }
  [ -z "$(ls -A "$GUILD_DATA_DIR/journal" 2>/dev/null)" ] || { echo "journal left after kill $kills" >&2; bad=$((bad + 1)); }
  guild runs --json | python3 -c '
import json, os, sys
for r in json.load(sys.stdin):
    n = sum(len(f) for _, _, f in os.walk(os.path.join(r["run_dir"], "files")))
    if n != 2000: print("not whole:", r["id"], n); sys.exit(1)' || bad=$((bad + 1))
}
for i in 1 2 3; do
  rm -f "$CASE_DIR/out.tar.gz"; kill_during export "$source_id" "$CASE_DIR/out.tar.gz"; check
  rm -rf "$CASE_DIR/exported"; kill_during export "$source_id" "$CASE_DIR/exported"; check
done
rm -f "$CASE_DIR/out.tar.gz"; guild export "$source_id" "$CASE_DIR/out.tar.gz" >/dev/null
for i in 1 2 3; do kill_during import "$CASE_DIR/out.tar.gz" --rename; check; done
for i in 1 2 3; do
  if guild runs "$source_id" >/dev/null 2>&1; then kill_during runs delete "$source_id"; else kill_during runs restore "$source_id"; fi
  check
done
guild runs "$source_id" >/dev/null 2>&1 || guild runs restore "$source_id" >/dev/null
for i in 1 2 3; do
  copy=$(guild import "$CASE_DIR/out.tar.gz" --rename | awk '{print $4}')
  guild runs delete "$copy" >/dev/null
  kill_during runs purge "$copy"; check
  if guild runs --deleted "$copy" >/dev/null 2>&1; then
    guild runs restore "$copy" >/dev/null
    [ "$(guild runs info "$copy" | sed -n "s/^status: //p")" = completed ] || bad=$((bad + 1))
    check
  fi
done
probe_start
last=$(guild import "$CASE_DIR/out.tar.gz" --rename | awk '{print $4}')
RUN_ID=$last; RUN_DIR=$(guild runs info "$last" | sed -n 's/^run_dir: //p')
stored=$(lines_stored)
RUN_DIR=$source_dir
probe_stop
result "$(lines_written)" "$stored" "$kills kills at random moments, $bad checks failed; slowest restart ${slowest} ms"
