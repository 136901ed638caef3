#!/usr/bin/env bash
# `guild compare` over 10,000 runs × 10 flags × 10 scalars in the index (the whole
# command: start, connect, CompareRuns stream, format, print). Target: ≤ 150 ms for --csv.
#   cargo build --release --workspace && bench/compare.sh [COUNT]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${GUILD_BIN:-$root/target/release}
count=${1:-10000}
work=$(mktemp -d /tmp/guild-bench.XXXXXX)
trap '"$bin/guild" daemon stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
export GUILD_DATA_DIR=$work/data GUILD_SOCKET=$work/guildd.sock
"$bin/guild" daemon start --listen none >/dev/null   # creates index.db with its schema
"$bin/guild" daemon stop >/dev/null
python3 "$root/bench/fill_index.py" "$work/data/index.db" "$count"
"$bin/guild" daemon start --listen none >/dev/null
rows=$("$bin/guild" compare --csv | wc -l)
echo "== guild compare with $count runs ($((rows - 1)) rows, $("$bin/guild" compare --csv | head -1 | tr ',' '\n' | wc -l) columns)"
hyperfine -N --warmup 3 --runs 20 \
  -n "guild compare --csv ($count runs)" "$bin/guild compare --csv" \
  -n "guild compare --json ($count runs)" "$bin/guild compare --json" \
  -n "guild compare table, filtered ($count runs)" "$bin/guild compare --filter 'flag0 < 0.05 and tf/train/metric0 > 0.5'" \
  -n "guild compare --csv 1:20" "$bin/guild compare --csv 1:20"
# Right after the index changed (a label here), the daemon reads index.db again instead of
# answering from its last compare.
hyperfine -N --warmup 3 --runs 20 --prepare "$bin/guild label 1 bench" \
  -n "guild compare --csv ($count runs, index just changed)" "$bin/guild compare --csv"
