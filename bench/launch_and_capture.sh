#!/usr/bin/env bash
# Launch overhead and output capture of `guild` against running the same Python
# module directly. Needs a release build.
#   bench/launch_and_capture.sh            # uses target/release
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${GUILD_BIN:-$root/target/release}
work=$(mktemp -d /tmp/guild-bench.XXXXXX)
trap '"$bin/guild" daemon stop --stop-runs >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
export GUILD_DATA_DIR=$work/data GUILD_SOCKET=$work/guildd.sock
# The interpreter itself, for both sides: a version manager's `python3` shim (pyenv here:
# bash scripts that start a dozen processes) adds 60 ms and most of the spread to every
# start, which would drown what is measured.
py=$(python3 -c 'import sys; print(sys.executable)')
export GUILD_PYTHON=$py
echo "python: $py"
cp "$root"/bench/ops/{Guild,trivial.py,printer.py} "$work/"
cd "$work"
"$bin/guild" daemon start >/dev/null

# Each pair runs in turns (bench/interleave.py): this machine's speed drifts by tens
# of percent over a minute, which back-to-back series (hyperfine) charge to one side.
echo "== launch overhead: a trivial op"
python3 "$root/bench/interleave.py" 40 3 \
  "python3 -um trivial=$py -um trivial >/dev/null 2>&1" \
  "guild train (trivial)=$bin/guild train >/dev/null 2>&1"

echo "== output capture: 300,000 lines"
python3 "$root/bench/interleave.py" 16 1 \
  "python3 -um printer > file=$py -um printer > $work/bare.txt" \
  "guild prepare (printer) > file=$bin/guild prepare > $work/guild.txt 2>/dev/null"
last=$(ls -d "$work"/runs/*/ | tail -n 1)
echo "lines in the last capture's run.db: $(sqlite3 "$last/guild.d/run.db" 'select count(*) from output')"
