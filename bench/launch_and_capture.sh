#!/usr/bin/env bash
# Launch overhead and output capture of `guild` against running the same Python
# module directly. Needs hyperfine (apt-get install hyperfine) and a release build.
#   bench/launch_and_capture.sh            # uses target/release
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${GUILD_BIN:-$root/target/release}
work=$(mktemp -d /tmp/guild-bench.XXXXXX)
trap '"$bin/guild" daemon stop --stop-runs >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
export GUILD_DATA_DIR=$work/data GUILD_SOCKET=$work/guildd.sock
cp "$root"/bench/ops/{Guild,trivial.py,printer.py} "$work/"
cd "$work"
"$bin/guild" daemon start >/dev/null

echo "== launch overhead: a trivial op"
hyperfine -N --warmup 3 --runs 30 \
  -n "python3 -um trivial" "python3 -um trivial" \
  -n "guild train (trivial)" "$bin/guild train"

echo "== output capture: 300,000 lines"
hyperfine --warmup 1 --runs 5 \
  -n "python3 -um printer > file" "python3 -um printer > $work/bare.txt" \
  -n "guild prepare (printer) > file" "$bin/guild prepare > $work/guild.txt 2>/dev/null"
last=$(ls -d "$work"/runs/*/ | tail -n 1)
echo "lines in the last capture's run.db: $(sqlite3 "$last/guild.d/run.db" 'select count(*) from output')"
