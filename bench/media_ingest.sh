#!/usr/bin/env bash
# Ingest of an event file with 2,000 64x64 PNG images (10 tags x 200 steps) and 10,000
# histograms of 30 buckets (10 tags x 1,000 steps), written by tensorboardX, into run.db,
# every item kept; side by side with TensorBoard's Rust data server loading the same file
# keeping every sample (and with its defaults: 10 images and 500 histograms a tag). Needs
# a release build, python3 with tensorboardX, numpy and tensorboard, and sqlite3.
#   bench/media_ingest.sh [REPS]        # default 3 repetitions of each
# The event file is generated once and cached in $GUILD_BENCH_CACHE (default
# /tmp/guild-bench-cache).
#
# guild, live run: bench/ops/ingest_op.py renames the file into $RUNDIR/train/ and polls
#   run.db until tail_offset (committed in the same transaction as the rows) covers it.
# data server: bench/tb_load.py, `server --logdir DIR --reload once`: wall time from
#   process start and its own "Finished load cycle" figure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${GUILD_BIN:-$root/target/release}
reps=${1:-3}
cache=${GUILD_BENCH_CACHE:-/tmp/guild-bench-cache}/media-2000img-10000hist
work=$(mktemp -d /tmp/guild-bench.XXXXXX)
trap '"$bin/guild" daemon stop --stop-runs >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
export GUILD_DATA_DIR=$work/data GUILD_SOCKET=$work/guildd.sock

if ! ls "$cache"/*tfevents* >/dev/null 2>&1; then
  echo "generating the event file in $cache (once)..."
  rm -rf "$cache" && mkdir -p "$cache"
  python3 "$root/bench/make_media_events.py" "$cache" >/dev/null
fi
src=$(ls "$cache"/*tfevents* | head -n 1)
name=$(basename "$src")
echo "event file: $src ($(stat -c %s "$src") bytes)"

mkdir -p "$work/project" "$work/staged" "$work/tb/train"
cp "$root/bench/ops/ingest_op.py" "$work/project/"
cat > "$work/project/Guild" <<GUILD
[project]
name           = media-ingest-bench
stats_interval = 0

[model "m"]
train          = ingest_op

[flags]
src            = $work/staged/$name
wait           = 1
GUILD
ln "$src" "$work/tb/train/$name" 2>/dev/null || cp "$src" "$work/tb/train/$name"
cd "$work/project"
"$bin/guild" daemon start >/dev/null

guild_once() { # prints seconds from appearance to all rows committed
  cp "$src" "$work/staged/$name"
  sync
  if ! "$bin/guild" train >/dev/null 2>"$work/train.err"; then
    echo "guild train failed:" >&2; cat "$work/train.err" >&2; exit 1
  fi
  local run=$(ls -d "$work"/project/runs/*/ | tail -n 1)
  local counts=$(sqlite3 "$run/guild.d/run.db" "select (select count(*) from image) || ' ' || (select count(*) from histogram)")
  [ "$counts" = "2000 10000" ] || { echo "expected 2000 images and 10000 histograms, found $counts in $run" >&2; exit 1; }
  python3 -c 'import json,sys; b=json.load(open(sys.argv[1])); print("%.3f" % (b["committed"] - b["appeared"]))' "$run/bench.json"
  rm -rf "$run"
}

declare -a live tb_def tb_all
for i in $(seq "$reps"); do
  live+=("$(guild_once)")
  tb_def+=("$(python3 "$root/bench/tb_load.py" "$work/tb")")
  tb_all+=("$(python3 "$root/bench/tb_load.py" "$work/tb" --samples-per-plugin images=all,histograms=all --checksum)")
  echo "rep $i: guild live ${live[-1]} s, data server default ${tb_def[-1]} s, keep-all+checksum ${tb_all[-1]} s  [$(uptime | sed 's/.*load/load/')]"
done

python3 - "${live[*]}" "${tb_def[*]}" "${tb_all[*]}" <<'PY'
import statistics, sys
def pairs(s): v = s.split(); return [(float(v[j]), float(v[j+1])) for j in range(0, len(v), 2)]
live = [float(x) for x in sys.argv[1].split()]
tbd, tba = pairs(sys.argv[2]), pairs(sys.argv[3])
rows = [
  ("guild, live run (appearance -> committed)", live),
  ("data server, default (10 images, 500 histograms a tag): wall", [w for w, _ in tbd]),
  ("data server, default: load cycle", [c for _, c in tbd]),
  ("data server, keep all + checksum: wall", [w for w, _ in tba]),
  ("data server, keep all + checksum: load cycle", [c for _, c in tba]),
]
print(f"\n{'2,000 images + 10,000 histograms':62} {'min':>7} {'median':>7}  (s)")
for name, v in rows:
    print(f"{name:62} {min(v):7.3f} {statistics.median(v):7.3f}")
PY
