# What the fault drill's cases share (sourced by each bench/faults/NN-*.sh).
#
# bench/fault_drill.sh runs each case with GUILD_BIN_DIR (where guild and guildd are),
# CASE_DIR (an empty folder of the case's own) and RESULT_FILE set. A case sets up a
# project (under $PROJECT) and its own daemon (data folder $GUILD_DATA_DIR), calls
# probe_start, brings its fault and takes it away, waits for its run's end, calls
# probe_stop, and ends with `result CASE WRITTEN STORED NOTE`. Mounts and the daemon are
# cleaned up on exit, however the case ends.

set -euo pipefail
: "${GUILD_BIN_DIR:?set by bench/fault_drill.sh}" "${CASE_DIR:?}" "${RESULT_FILE:?}"
export GUILD_DATA_DIR=$CASE_DIR/data GUILD_SOCKET=$CASE_DIR/guildd.sock GUILD_LISTEN=none
PROJECT=$CASE_DIR/project
mkdir -p "$GUILD_DATA_DIR" "$PROJECT"
MOUNTS=()
PROBE_PID=

guild() { "$GUILD_BIN_DIR/guild" -C "$PROJECT" "$@"; }

cleanup() {
  [ -n "$PROBE_PID" ] && kill "$PROBE_PID" 2>/dev/null || true
  "$GUILD_BIN_DIR/guild" daemon stop --stop-runs >/dev/null 2>&1 || true
  for m in "${MOUNTS[@]}"; do umount -l "$m" 2>/dev/null || true; done
}
trap cleanup EXIT

# mount_tmpfs DIR SIZE: a small tmpfs on DIR (root only: otherwise the case is skipped).
mount_tmpfs() {
  mkdir -p "$1"
  if ! mount -t tmpfs -o "size=$2" tmpfs "$1" 2>/dev/null; then
    echo "skipped: cannot mount a tmpfs (needs root)" >&2
    printf '%s\t-\t-\t-\tskipped: needs root to mount a tmpfs\n' "$CASE_NAME" >> "$RESULT_FILE"
    exit 0
  fi
  MOUNTS+=("$1")
}

# fill DIR: fills DIR's file system; prints the file to remove to free it again.
fill() {
  dd if=/dev/zero of="$1/.filler" bs=64k 2>/dev/null || true
  dd if=/dev/zero of="$1/.filler" bs=512 oflag=append conv=notrunc 2>/dev/null || true
  echo "$1/.filler"
}

# wait_for WHAT COMMAND...: runs COMMAND until it succeeds (60 s at most).
wait_for() {
  local what=$1; shift
  local deadline=$((SECONDS + 60))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then echo "timed out waiting for $what" >&2; exit 1; fi
    sleep 0.05
  done
}

# within SECONDS COMMAND...: runs COMMAND until it succeeds, for SECONDS at most; fails
# (without ending the case) if it never did: for what a broken guildd never does.
within() {
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -ge $deadline ] && return 1
    sleep 0.05
  done
}

# fault_start / fault_hold SECONDS: the fault lasts SECONDS from fault_start, whatever
# was checked meanwhile.
fault_start() { FAULT_T0=$(date +%s%N); }
fault_hold() {
  local left=$(( $1 * 1000 - ($(date +%s%N) - FAULT_T0) / 1000000 ))
  if [ "$left" -gt 0 ]; then sleep "$(awk "BEGIN {print $left / 1000}")"; fi
}

# problem_shown [TEXT]: `guild status` lists a problem (containing TEXT).
# (The output is taken whole: grep -q stopping early would fail the pipe under pipefail.)
problem_shown() { local out; out=$("$GUILD_BIN_DIR/guild" status 2>/dev/null) || return 1; grep -q "problem:.*${1:-}" <<< "$out"; }
no_problem() { local out; out=$("$GUILD_BIN_DIR/guild" status 2>/dev/null) || return 1; ! grep -q "problem:" <<< "$out"; }

# start_run ARGS...: `guild train --background ARGS`; sets RUN_ID and RUN_DIR.
start_run() {
  local line
  line=$(guild train --background "$@" 2>&1 >/dev/null | grep '^Run ')
  RUN_ID=$(echo "$line" | awk '{print $2}')
  RUN_DIR=${line##*) in }
}

# attr NAME: the run's NAME as `guild runs info` prints it.
attr() { guild runs info "$RUN_ID" 2>/dev/null | sed -n "s/^$1: //p" | head -1; }
run_ended() { local s; s=$(attr status); [ -n "$s" ] && [ "$s" != running ] && [ "$s" != pending ]; }
# end_status: the run's status once it has ended (30 s at most), or what it still is.
end_status() { if within 30 run_ended; then attr status; else echo "STILL $(attr status) after 30 s"; fi; }
at_least() { local n; n=$(lines_written); [ "$n" != gone ] && [ "$n" -ge "$1" ]; }

# The probe: `guild status` every 50 ms from probe_start to probe_stop, each answer
# timed. probe_stop sets PROBE_N, PROBE_MAX_MS and PROBE_BAD (answers that failed or
# took over 1 s).
probe_start() {
  : > "$CASE_DIR/probe.log"
  (
    while :; do
      t0=$(date +%s%N)
      if timeout 10 "$GUILD_BIN_DIR/guild" status >/dev/null 2>&1; then ok=1; else ok=0; fi
      echo "$(( ($(date +%s%N) - t0) / 1000000 )) $ok" >> "$CASE_DIR/probe.log"
      sleep 0.05
    done
  ) &
  PROBE_PID=$!
}

probe_stop() {
  kill "$PROBE_PID" 2>/dev/null || true
  wait "$PROBE_PID" 2>/dev/null || true
  PROBE_PID=
  read -r PROBE_N PROBE_MAX_MS PROBE_BAD < <(awk '{n++; if ($1 > max) max = $1; if ($1 > 1000 || $2 == 0) bad++}
    END {print n + 0, max + 0, bad + 0}' "$CASE_DIR/probe.log")
}

# Lines the op wrote (its raw stdout.log) and lines in run.db ("gone": no run folder).
lines_written() { [ -d "$RUN_DIR" ] || { echo gone; return; }; python3 -c 'import sys; print(len(open(sys.argv[1], "rb").read().decode("utf-8", "replace").splitlines()))' "$RUN_DIR/guild.d/stdout.log"; }
lines_stored() { [ -d "$RUN_DIR" ] || { echo gone; return; }; sqlite3 "file:$RUN_DIR/guild.d/run.db?mode=ro" "select count(*) from output where stream = 'stdout'"; }
# The stored lines, in order, equal the written ones (none lost, doubled or reordered).
lines_same() {
  python3 - "$RUN_DIR" <<'EOF'
import sqlite3, sys
d = sys.argv[1] + "/guild.d/"
written = open(d + "stdout.log", "rb").read().decode("utf-8", "replace").splitlines()
db = sqlite3.connect(f"file:{d}run.db?mode=ro", uri=True)
stored = [r[0] for r in db.execute("select line from output where stream = 'stdout' order by seq")]
sys.exit(0 if stored == written else 1)
EOF
}

# result WRITTEN STORED NOTE: the case's row (its name is CASE_NAME).
result() {
  local answered="yes (slowest ${PROBE_MAX_MS} ms of ${PROBE_N})"
  [ "$PROBE_BAD" -gt 0 ] && answered="NO: $PROBE_BAD of $PROBE_N over 1 s or failed (slowest ${PROBE_MAX_MS} ms)"
  printf '%s\t%s\t%s\t%s\t%s\n' "$CASE_NAME" "$1" "$2" "$answered" "$3" >> "$RESULT_FILE"
}

# An op that prints `line N ...` and `x: N` every 10 ms until the file --go names exists,
# then `after go`; a line it cannot write (a full disk) is skipped.
TICKER='import argparse, os, time
p = argparse.ArgumentParser()
p.add_argument("--go", default="go")
a = p.parse_args()
i = 0
def say(text):
    try:
        print(text, flush=True)
    except OSError:
        pass
while not os.path.exists(a.go):
    say(f"line {i} " + "y" * 40)
    say(f"x: {i}")
    i += 1
    time.sleep(0.01)
say("after go")
'

# ticker_project: a Guild file whose train op is the ticker (go file: $CASE_DIR/go).
ticker_project() {
  printf '[project]\nstats_interval = 1\n\n[flags]\ngo = %s\n\n[model "m"]\ntrain = ticker\nprepare = hello\n' \
    "$CASE_DIR/go" > "$PROJECT/Guild"
  printf '%s' "$TICKER" > "$PROJECT/ticker.py"
  echo 'print("hello")' > "$PROJECT/hello.py"
}
