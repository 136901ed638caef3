#!/usr/bin/env bash
# guildd's own cost while 4 runs are tracked with stats every second: CPU as a share of
# one core from /proc/PID/stat (utime + stime) over a measured window, and memory
# (VmRSS at the end, VmHWM: the peak). The runs sleep quietly (a line every 10 s).
#   bench/daemon_cost.sh [WINDOW_SECONDS]     # default 40
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${GUILD_BIN:-$root/target/release}
window=${1:-40}
nruns=${RUNS:-4}
work=$(mktemp -d /tmp/guild-bench.XXXXXX)
trap '"$bin/guild" daemon stop --stop-runs >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
export GUILD_DATA_DIR=$work/data GUILD_SOCKET=$work/guildd.sock
mkdir -p "$work/project"
cat > "$work/project/Guild" <<GUILD
[project]
name           = cost-bench
stats_interval = ${STATS_INTERVAL:-1}

[model "m"]
train          = sleeper
GUILD
cat > "$work/project/sleeper.py" <<'PY'
import time
for i in range(30):
    print(f"still here {i}", flush=True)
    time.sleep(10)
PY
cd "$work/project"
"$bin/guild" daemon start --listen none >/dev/null
pid=$("$bin/guild" daemon status | sed -n 's/.* pid \([0-9]*\).*/\1/p' | head -n 1)
for i in $(seq "$nruns"); do "$bin/guild" train --background >/dev/null 2>&1; done
sleep 5   # runs started, stats flowing
ticks() { awk '{ s = $0; sub(/.*\) /, "", s); split(s, f, " "); print f[12] + f[13] }' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
t0=$(date +%s.%N); c0=$(ticks)
sleep "$window"
t1=$(date +%s.%N); c1=$(ticks)
running=$("$bin/guild" status 2>/dev/null | grep -c running || true)
echo "guildd pid $pid, $nruns runs at stats_interval = ${STATS_INTERVAL:-1} s, window $(python3 -c "print(round($t1 - $t0, 1))") s  [$(uptime | sed 's/.*load/load/')]"
python3 - "$c0" "$c1" "$hz" "$t0" "$t1" <<'PY'
import sys
c0, c1, hz, t0, t1 = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
cpu = (c1 - c0) / hz
print(f"  CPU: {cpu:.2f} s in {t1 - t0:.1f} s = {100 * cpu / (t1 - t0):.2f}% of one core")
PY
grep -E 'VmRSS|VmHWM' "/proc/$pid/status" | sed 's/^/  /'
runs=$(ls -d runs/*/ | head -n 1)
echo "  samples per run so far: $(sqlite3 "$runs/guild.d/run.db" 'select count(*) from series') in $(sqlite3 "$runs/guild.d/run.db" 'select count(*) from series_key') keys"
