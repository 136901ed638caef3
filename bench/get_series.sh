#!/usr/bin/env bash
# GetSeries of a 1,000,000-sample key into 1,000 buckets, timed over guildd's Unix socket
# by a small Python gRPC client (bench/series_client.py; stubs generated from proto/ at
# run time). The run is made by ingesting a tensorboardX event file with one tag x 1M
# steps (generated once, cached in $GUILD_BENCH_CACHE, default /tmp/guild-bench-cache).
# Needs a release build, python3 with tensorboardX, grpcio and grpcio-tools.
#   bench/get_series.sh [REPS]      # default 20 timed calls per case
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${GUILD_BIN:-$root/target/release}
reps=${1:-20}
cache=${GUILD_BENCH_CACHE:-/tmp/guild-bench-cache}/events-1x1m
work=$(mktemp -d /tmp/guild-bench.XXXXXX)
trap '"$bin/guild" daemon stop --stop-runs >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
export GUILD_DATA_DIR=$work/data GUILD_SOCKET=$work/guildd.sock

if ! ls "$cache"/*tfevents* >/dev/null 2>&1; then
  echo "generating the event file in $cache (once; about a minute)..."
  rm -rf "$cache" && mkdir -p "$cache"
  python3 "$root/bench/make_scalar_events.py" "$cache" 1 1000000 >/dev/null
fi
src=$(ls "$cache"/*tfevents* | head -n 1)
name=$(basename "$src")
mkdir -p "$work/project" "$work/staged"
cp "$root/bench/ops/ingest_op.py" "$work/project/"
cp "$src" "$work/staged/$name"
cat > "$work/project/Guild" <<GUILD
[project]
name           = series-bench
stats_interval = 0

[model "m"]
train          = ingest_op

[flags]
src            = $work/staged/$name
wait           = 0
GUILD
cd "$work/project"
"$bin/guild" daemon start --listen none >/dev/null
"$bin/guild" train >/dev/null 2>&1
"$bin/guild" list-series 1

summarize() {
  python3 -c '
import statistics, sys
t = [float(l.split()[0]) * 1000 for l in sys.stdin if l.strip()]
print(f"  {len(t)} calls: min {min(t):.1f} ms, median {statistics.median(t):.1f} ms, max {max(t):.1f} ms")'
}
for axis in step time; do
  echo "== GetSeries tf/train/metric0, 1,000 buckets on the $axis axis  [$(uptime | sed 's/.*load/load/')]"
  python3 "$root/bench/series_client.py" "$GUILD_SOCKET" 1 tf/train/metric0 --buckets 1000 --axis $axis --reps "$reps" \
    | tee "$work/times.txt" | tail -n 1 | sed 's/^/  last call: /; s/$/ (seconds, samples, buckets)/'
  summarize < "$work/times.txt"
done
