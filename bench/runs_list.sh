#!/usr/bin/env bash
# `guild runs` with 10,000 runs in the index (the whole command, table of every run).
#   bench/runs_list.sh [COUNT]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${GUILD_BIN:-$root/target/release}
count=${1:-10000}
work=$(mktemp -d /tmp/guild-bench.XXXXXX)
trap '"$bin/guild" daemon stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
export GUILD_DATA_DIR=$work/data GUILD_SOCKET=$work/guildd.sock
"$bin/guild" daemon start >/dev/null   # creates index.db with its schema
"$bin/guild" daemon stop >/dev/null
python3 "$root/bench/fill_index.py" "$work/data/index.db" "$count"
"$bin/guild" daemon start >/dev/null
echo "== guild runs with $count runs"
hyperfine -N --warmup 3 --runs 20 \
  -n "guild runs --all ($count rows)" "$bin/guild runs --all" \
  -n "guild runs (latest 20)" "$bin/guild runs" \
  -n "guild runs --json ($count)" "$bin/guild runs --json"
