#!/usr/bin/env bash
# Per-trial overhead of a sweep: a sweep of N trivial trials (`guild train
# lines=uniform[1:2] --max-trials N`, one at a time) against the same N trivial scripts run
# one after another in a shell loop. Needs a release build.
#   bench/sweep_overhead.sh [N]            # N = 200; uses target/release (or GUILD_BIN)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${GUILD_BIN:-$root/target/release}
n=${1:-200}
work=$(mktemp -d /tmp/guild-bench.XXXXXX)
trap '"$bin/guild" daemon stop --stop-runs >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
export GUILD_DATA_DIR=$work/data GUILD_SOCKET=$work/guildd.sock
py=$(python3 -c 'import sys; print(sys.executable)')
export GUILD_PYTHON=$py
cp "$root"/bench/ops/{Guild,trivial.py,printer.py,gate.py} "$work/"
# The trials' stats sampling off, as the shell loop has none.
sed -i 's/^name        = bench/name        = bench\nstats_interval = 0/' "$work/Guild"
cd "$work"
"$bin/guild" daemon start >/dev/null
echo "uptime: $(uptime)"

loop() {
  for i in $(seq "$n"); do "$py" -um trivial --lines "1.$i" >/dev/null 2>&1; done
}
sweep() {
  "$bin/guild" train "lines=uniform[1:2]" --max-trials "$n" --seed 1 >/dev/null 2>&1
}
for round in 1 2 3; do
  t0=$(date +%s.%N); loop; t1=$(date +%s.%N); sweep; t2=$(date +%s.%N)
  python3 - "$n" "$t0" "$t1" "$t2" <<'PY'
import sys
n, t0, t1, t2 = int(sys.argv[1]), *map(float, sys.argv[2:])
loop, sweep = t1 - t0, t2 - t1
print(f"round: shell loop {loop:.2f} s ({loop / n * 1000:.1f} ms/script), sweep {sweep:.2f} s "
      f"({sweep / n * 1000:.1f} ms/trial): overhead {(sweep - loop) / n * 1000:.1f} ms per trial")
PY
done
trials=$("$bin/guild" runs --all --json | python3 -c 'import json,sys; print(sum(1 for r in json.load(sys.stdin) if r.get("trial")))')
echo "trials recorded: $trials (3 sweeps of $n)"
