#!/usr/bin/env bash
# GPU collector check on a machine with an NVIDIA GPU and PyTorch: runs a CUDA load as a
# guild run under guildd, then prints what run.db holds for sys/gpu0/* and op/gpu0/mem/used,
# next to what nvidia-smi read during the run.
# Prepared for the device machine: one call, no network. GUILD_BIN names a folder holding
# prebuilt guild and guildd (carried there); otherwise it builds them.
#   bench/gpu_check.sh [SECONDS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${GUILD_BIN:-$root/target/release}
[ -x "$bin/guild" ] || (cd "$root" && cargo build --release -p guildd -p guild-cli)
export PATH=$bin:$PATH
work=$(mktemp -d /tmp/guild-gpu.XXXXXX)
export GUILD_DATA_DIR=$work/data GUILD_SOCKET=$work/guildd.sock GUILD_LISTEN=none
trap 'guild daemon stop --stop-runs >/dev/null 2>&1 || true' EXIT
cp "$root"/bench/gpu/{Guild,cuda_load.py} "$work/"
cd "$work"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true
# nvidia-smi's own reading during the run, once a second, to set beside guildd's.
nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used,temperature.gpu,power.draw \
  --format=csv,noheader -l 1 >"$work/smi.csv" 2>/dev/null &
smi=$!
# Processes NVML lists on the GPU, once, mid-run (for op/gpu0/mem/used).
(sleep 8; echo "== nvidia-smi compute apps at 8 s"; nvidia-smi --query-compute-apps=pid,used_memory --format=csv) &
guild train seconds="${1:-20}" | tail -n 3
kill $smi 2>/dev/null || true
echo "== nvidia-smi during the run (util %, mem MiB, temp C, power W): first 3 and last 3"
head -n 3 "$work/smi.csv"; echo ...; tail -n 3 "$work/smi.csv"
run=$(ls -d "$work"/runs/*/ | tail -n 1)
echo "== guild list-series"
guild list-series "$(basename "$run")" | grep -E 'gpu' || true
python3 - "$run/guild.d/run.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
print("== attrs")
for name, value in db.execute(
    "select name, value from attr where name not in ('flags', 'cmd', 'env')"):
    print(f"{name} = {value}")
print("== GPU series from run.db: key, samples, min, max, last")
for row in db.execute("""
    select key, count(*), round(min(value),3), round(max(value),3),
      (select value from scalar s2 where s2.key = s.key order by time desc limit 1)
    from scalar s where key like 'sys/gpu0/%' or key like 'op/gpu%' group by key order by key"""):
    print("  ".join(str(x) for x in row))
PY
