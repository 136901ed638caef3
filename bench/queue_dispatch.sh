#!/usr/bin/env bash
# Queue dispatch: N trivial runs queued behind 2 runs that hold guildd's two slots
# (`--max-runs 2`); once those end, the time from each run's end to the start of the
# run that takes its slot, p50 and p99, from guildd's own record (the exit time the
# run's supervisor wrote, the start time guildd recorded; ms). Needs a release build.
#   bench/queue_dispatch.sh [N]            # N = 1000; uses target/release (or GUILD_BIN)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${GUILD_BIN:-$root/target/release}
n=${1:-1000}
work=$(mktemp -d /tmp/guild-bench.XXXXXX)
trap '"$bin/guild" daemon stop --stop-runs >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
export GUILD_DATA_DIR=$work/data GUILD_SOCKET=$work/guildd.sock GUILD_MAX_RUNS=2
py=$(python3 -c 'import sys; print(sys.executable)')
export GUILD_PYTHON=$py
# The project apart from the data folder, so no run snapshots index.db.
mkdir "$work/project"
cp "$root"/bench/ops/{Guild,trivial.py,printer.py,gate.py} "$work/project/"
sed -i 's/^name        = bench/name        = bench\nstats_interval = 0/' "$work/project/Guild"
cd "$work/project"
"$bin/guild" daemon start >/dev/null
echo "uptime: $(uptime)"
"$bin/guild" train gate --background >/dev/null 2>&1
"$bin/guild" train gate --background >/dev/null 2>&1
echo "queueing $n runs..."
for i in $(seq "$n"); do "$bin/guild" train --background >/dev/null 2>&1; done
queued=$("$bin/guild" runs --all --json | python3 -c 'import json,sys; print(sum(1 for r in json.load(sys.stdin) if r["status"] == "queued"))')
echo "queued: $queued"
touch gate
while [ "$("$bin/guild" runs --all --json | python3 -c 'import json,sys; print(sum(1 for r in json.load(sys.stdin) if r["status"] in ("queued", "pending", "running")))')" != 0 ]; do
  sleep 1
done
"$bin/guild" runs --all --json | python3 -c '
import json, sys
everything = json.load(sys.stdin)
runs = [r for r in everything if r["model"] == "bench"]
ends = sorted(r["stopped_ms"] for r in everything if r["stopped_ms"])
starts = sorted(r["started_ms"] for r in runs)
# Each start was let go by the latest end before it (two slots: the other end is older).
import bisect
all_ends = sorted(ends)
gaps = []
for s in starts:
    i = bisect.bisect_right(all_ends, s)
    if i:
        gaps.append(s - all_ends[i - 1])
gaps.sort()
statuses = {}
for r in runs:
    statuses[r["status"]] = statuses.get(r["status"], 0) + 1
pick = lambda q: gaps[min(len(gaps) - 1, int(q * len(gaps)))]
print(f"runs: {len(runs)} {statuses}; end-to-next-start gaps: {len(gaps)}")
print(f"p50 {pick(0.5)} ms, p90 {pick(0.9)} ms, p99 {pick(0.99)} ms, max {gaps[-1]} ms")
'
