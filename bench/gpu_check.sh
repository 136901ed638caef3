#!/usr/bin/env bash
# GPU collector check on a machine with an NVIDIA GPU and PyTorch: runs a CUDA load as a
# guild run under guildd, then prints what run.db holds for sys/gpu0/* and op/gpu0/mem/used.
# Prepared for the device machine: one call, no network, builds guildd if needed.
#   bench/gpu_check.sh [SECONDS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${GUILD_BIN:-$root/target/release}
[ -x "$bin/guild" ] || (cd "$root" && cargo build --release -p guildd -p guild-cli)
work=$(mktemp -d /tmp/guild-gpu.XXXXXX)
export GUILD_DATA_DIR=$work/data GUILD_SOCKET=$work/guildd.sock GUILD_LISTEN=none
trap '"$bin/guild" daemon stop --stop-runs >/dev/null 2>&1 || true' EXIT
cp "$root"/bench/gpu/{Guild,cuda_load.py} "$work/"
cd "$work"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true
"$bin/guild" train seconds="${1:-20}" | tail -n 3
run=$(ls -d "$work"/runs/*/ | tail -n 1)
db=$run/guild.d/run.db
echo "== attrs"
sqlite3 "$db" "select name, value from attr where name like 'gpu%' or name in ('driver_version','cuda_version','gpus')"
echo "== GPU series (count, min, max, last)"
sqlite3 -column "$db" "select key, count(*) n, round(min(value),3) min, round(max(value),3) max,
  (select value from scalar s2 where s2.key = s.key order by time desc limit 1) last
  from scalar s where key like 'sys/gpu0/%' or key like 'op/gpu%' group by key order by key"
