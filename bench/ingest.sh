#!/usr/bin/env bash
# Ingest of a 1,000,000-scalar event file (10 tags x 100k steps, written by tensorboardX)
# into run.db, every sample kept, from the file's appearance in the run folder to all of
# its rows committed; side by side with TensorBoard's Rust data server loading the same
# file. Needs a release build, python3 with tensorboardX and tensorboard (pip install
# tensorboardX tensorboard) and sqlite3.
#   bench/ingest.sh [REPS]          # default 3 repetitions of each
# The event file is generated once and cached in $GUILD_BENCH_CACHE (default
# /tmp/guild-bench-cache).
#
# guild, live run: the op renames the file into $RUNDIR/train/ and polls run.db until
#   tail_offset (committed in the same transaction as the rows) covers the whole file.
#   Includes guildd's discovery of the new file (it searches the run folder every 1 s).
# guild, run ends: the op renames the file and exits; measured until `guild train`
#   returns, which is after the final drain has committed every row.
# data server: `server --logdir DIR --reload once`, its own "Finished load cycle"
#   figure and the wall time from process start; by default it keeps 1,000 samples per
#   scalar series (reservoir) and checks CRCs only when parsing fails; the second row asks
#   it to keep all samples and check every CRC, as guildd does.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${GUILD_BIN:-$root/target/release}
reps=${1:-3}
cache=${GUILD_BENCH_CACHE:-/tmp/guild-bench-cache}/events-10x100k
work=$(mktemp -d /tmp/guild-bench.XXXXXX)
trap '"$bin/guild" daemon stop --stop-runs >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
export GUILD_DATA_DIR=$work/data GUILD_SOCKET=$work/guildd.sock

if ! ls "$cache"/*tfevents* >/dev/null 2>&1; then
  echo "generating the event file in $cache (once; about a minute)..."
  rm -rf "$cache" && mkdir -p "$cache"
  python3 "$root/bench/make_scalar_events.py" "$cache" 10 100000 >/dev/null
fi
src=$(ls "$cache"/*tfevents* | head -n 1)
name=$(basename "$src")
echo "event file: $src ($(stat -c %s "$src") bytes)"

mkdir -p "$work/project" "$work/staged" "$work/tb/train"
cp "$root/bench/ops/ingest_op.py" "$work/project/"
cat > "$work/project/Guild" <<GUILD
[project]
name           = ingest-bench
# only the event file's scalars (a comment after a value would be part of it)
stats_interval = 0

[model "m"]
train          = ingest_op

[flags]
src            = $work/staged/$name
wait           = 0
GUILD
ln "$src" "$work/tb/train/$name" 2>/dev/null || cp "$src" "$work/tb/train/$name"
cd "$work/project"
"$bin/guild" daemon start >/dev/null

guild_once() { # $1: wait flag; prints seconds from appearance to all rows committed
  cp "$src" "$work/staged/$name"
  sync
  if ! "$bin/guild" train wait="$1" >/dev/null 2>"$work/train.err"; then
    echo "guild train wait=$1 failed:" >&2; cat "$work/train.err" >&2; exit 1
  fi
  local done=$(date +%s.%N)
  local run=$(ls -d "$work"/project/runs/*/ | tail -n 1)
  local rows=$(sqlite3 "$run/guild.d/run.db" "select count(*) from scalar where key like 'tf/%'")
  [ "$rows" = 1000000 ] || { echo "expected 1000000 rows, found $rows in $run" >&2; exit 1; }
  python3 - "$run/bench.json" "$done" <<'PY'
import json, sys
b = json.load(open(sys.argv[1]))
print(f"{b.get('committed', float(sys.argv[2])) - b['appeared']:.3f}")
PY
  rm -rf "$run"
}

declare -a live ended tb_def tb_all
for i in $(seq "$reps"); do
  live+=("$(guild_once 1)")
  ended+=("$(guild_once 0)")
  tb_def+=("$(python3 "$root/bench/tb_load.py" "$work/tb")")
  tb_all+=("$(python3 "$root/bench/tb_load.py" "$work/tb" --samples-per-plugin scalars=all --checksum)")
  echo "rep $i: guild live ${live[-1]} s, guild run-ends ${ended[-1]} s," \
       "data server (wall cycle) ${tb_def[-1]} s, keep-all+checksum ${tb_all[-1]} s  [$(uptime | sed 's/.*load/load/')]"
done

python3 - "${live[*]}" "${ended[*]}" "${tb_def[*]}" "${tb_all[*]}" <<'PY'
import statistics, sys
def pairs(s): v = s.split(); return [(float(v[j]), float(v[j+1])) for j in range(0, len(v), 2)]
live = [float(x) for x in sys.argv[1].split()]
ended = [float(x) for x in sys.argv[2].split()]
tbd, tba = pairs(sys.argv[3]), pairs(sys.argv[4])
rows = [
  ("guild, live run (appearance -> committed)", live),
  ("guild, run ends (appearance -> guild train returns)", ended),
  ("data server, default: wall", [w for w, _ in tbd]),
  ("data server, default: load cycle", [c for _, c in tbd]),
  ("data server, keep all + checksum: wall", [w for w, _ in tba]),
  ("data server, keep all + checksum: load cycle", [c for _, c in tba]),
]
print(f"\n{'1,000,000 scalars':55} {'min':>7} {'median':>7}  (s)")
for name, v in rows:
    print(f"{name:55} {min(v):7.3f} {statistics.median(v):7.3f}")
PY
