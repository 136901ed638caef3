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
# The project apart from the data folder, so no trial snapshots index.db; the trials'
# stats sampling off, as the shell loop has none.
mkdir "$work/project"
cp "$root"/bench/ops/{Guild,trivial.py,printer.py,gate.py} "$work/project/"
sed -i 's/^name        = bench/name        = bench\nstats_interval = 0/' "$work/project/Guild"
cd "$work/project"
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
# From guildd's own record, robust to the machine's drift: from each trial's end (the exit
# time its supervisor wrote) to the next trial's start (when guildd started its
# supervisor): everything a sweep adds between two trials.
"$bin/guild" runs --all --json | python3 -c '
import json, sys
trials = [r for r in json.load(sys.stdin) if r.get("trial")]
by_sweep = {}
for r in trials:
    by_sweep.setdefault(r["sweep"], []).append(r)
gaps = []
for runs in by_sweep.values():
    runs.sort(key=lambda r: r["trial"])
    gaps += [b["started_ms"] - a["stopped_ms"] for a, b in zip(runs, runs[1:])]
gaps.sort()
pick = lambda q: gaps[min(len(gaps) - 1, int(q * len(gaps)))]
print(f"trials recorded: {len(trials)}; from a trial end to the next start: p50 {pick(0.5)} ms, p90 {pick(0.9)} ms, p99 {pick(0.99)} ms")
' 
