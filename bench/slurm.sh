#!/usr/bin/env bash
# Runs on Slurm, on the tests' one-node cluster (tests/slurm/cluster.sh; root, Debian's
# slurmctld, slurmd and munge). Needs a release build.
#   bench/slurm.sh [WINDOW_SECONDS]        # default 60
# 1. Submission overhead: `guild train --slurm --background` against `sbatch --parsable`
#    of the same batch script with the same arguments, in turns (both submit held jobs,
#    --hold, so nothing runs meanwhile).
# 2. Polling latency: a job prints a line with its wall-clock time every 50-250 ms;
#    run.db's row time (when guildd read it) minus that: p50, p99, max.
# 3. guildd's CPU while it follows 4 Slurm runs (each printing a line every 10 s, node
#    stats every 2 s) for WINDOW seconds: its own, and with the Slurm commands it ran
#    (squeue, scontrol: its waited-for children).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${GUILD_BIN:-$root/target/release}
window=${1:-60}
work=$(mktemp -d /tmp/guild-bench.XXXXXX)
cluster=$work/cluster
# Eight CPUs declared on this node, so four one-CPU jobs run at once on a 2-core machine.
export SLURM_TEST_CPUS=8
stop() {
    "$bin/guild" daemon stop --stop-runs >/dev/null 2>&1 || true
    bash "$root/tests/slurm/cluster.sh" stop "$cluster" || true
    rm -rf "$work"
}
trap stop EXIT
export SLURM_CONF=$(bash "$root/tests/slurm/cluster.sh" start "$cluster")
export GUILD_DATA_DIR=$work/data GUILD_SOCKET=$work/guildd.sock
py=$(python3 -c 'import sys; print(sys.executable)')
export GUILD_PYTHON=$py
mkdir -p "$work/project"
cd "$work/project"
cat > Guild <<'GUILD'
[project]
name = slurm-bench

[model "trivial"]
train = trivial

[model "stamps"]
train = stamps

[model "sleeper"]
train = sleeper
GUILD
echo 'print("hello")' > trivial.py
cat > stamps.py <<'PY'
import random, time
random.seed(1)
for i in range(300):
    print(f"stamp {time.time_ns() // 1_000_000}", flush=True)
    time.sleep(random.uniform(0.05, 0.25))
PY
cat > sleeper.py <<'PY'
import time
for i in range(60):
    print(f"still here {i}", flush=True)
    time.sleep(10)
PY
"$bin/guild" daemon start --listen none >/dev/null
pid=$("$bin/guild" daemon status | sed -n 's/.* pid \([0-9]*\).*/\1/p' | head -n 1)
echo "guildd pid $pid; $(uptime | sed 's/.*load/load/')"

echo "== 1. submission overhead (held jobs)"
"$bin/guild" train trivial --slurm --background --sbatch=--hold >/dev/null 2>&1
first=$(ls -d runs/*/ | head -n 1)
cp "$first/guild.d/slurm.sh" "$work/same.sh"
python3 "$root/bench/interleave.py" 30 3 \
  "sbatch --parsable (same script)=sbatch --parsable --hold --job-name=bench --output=/dev/null $work/same.sh >/dev/null" \
  "guild train --slurm --background=$bin/guild train trivial --slurm --background --sbatch=--hold >/dev/null 2>&1"
scancel --full --user="$(id -un)" >/dev/null 2>&1 || true
"$bin/guild" runs --all >/dev/null
# Let the cancelled runs end before the next measurements.
for _ in $(seq 1 200); do
    [[ $("$bin/guild" status | grep -c ' queued ' || true) == 0 ]] && break
    sleep 0.1
done

echo "== 2. polling latency: a line written on the node to the line in run.db"
id=$("$bin/guild" train stamps --slurm --background 2>/dev/null)
"$bin/guild" watch "$id" >/dev/null 2>&1 || true
dir=$(ls -d runs/*-stamps/ | tail -n 1)
sqlite3 "$dir/guild.d/run.db" "select time - cast(substr(line, 7) as integer) from output where line like 'stamp %'" \
  | python3 -c '
import statistics, sys
v = sorted(int(x) for x in sys.stdin if x.strip())
q = statistics.quantiles(v, n=100)
print(f"  {len(v)} lines: p50 {q[49]:.0f} ms, p99 {q[98]:.0f} ms, max {v[-1]} ms, min {v[0]} ms")'

echo "== 3. guildd CPU following 4 Slurm runs for ${window} s"
for i in 1 2 3 4; do "$bin/guild" train sleeper --slurm --background >/dev/null 2>&1; done
for _ in $(seq 1 300); do
    [[ $("$bin/guild" runs --all 2>/dev/null | grep -c ' running ' || true) -ge 4 ]] && break
    sleep 0.1
done
sleep 5
ticks() { awk '{ s = $0; sub(/.*\) /, "", s); split(s, f, " "); print f[12] + f[13], f[14] + f[15] }' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
t0=$(date +%s.%N); read -r own0 kids0 < <(ticks)
sleep "$window"
t1=$(date +%s.%N); read -r own1 kids1 < <(ticks)
echo "  running on Slurm: $("$bin/guild" runs --all 2>/dev/null | grep -c ' running ' || true) runs  [$(uptime | sed 's/.*load/load/')]"
python3 - "$own0" "$own1" "$kids0" "$kids1" "$hz" "$t0" "$t1" <<'PY'
import sys
o0, o1, k0, k1, hz = (int(x) for x in sys.argv[1:6])
t0, t1 = float(sys.argv[6]), float(sys.argv[7])
own = (o1 - o0) / hz
kids = (k1 - k0) / hz
span = t1 - t0
print(f"  guildd: {own:.2f} s CPU in {span:.1f} s = {100 * own / span:.2f}% of one core")
print(f"  with the Slurm commands it ran: {own + kids:.2f} s = {100 * (own + kids) / span:.2f}% of one core")
PY
