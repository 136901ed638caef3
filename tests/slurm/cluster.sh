#!/usr/bin/env bash
# A one-node Slurm cluster for the tests: Debian's slurmctld, slurmd and munge, started
# by hand as root (no systemd), with its config and state in one folder.
#
#   tests/slurm/cluster.sh start DIR   # prints the SLURM_CONF to export; waits for the node
#   tests/slurm/cluster.sh stop DIR    # stops what `start DIR` started
#
# The node is this machine (`hostname -s`, `nproc` CPUs); the config is
# tests/slurm/slurm.conf.in. `start` is a no-op when the cluster of DIR already answers.
# munged is started only when none runs, and then stopped again by `stop`, which first
# cancels the jobs left on the cluster (its own cluster only: SLURM_CONF is DIR's).
set -euo pipefail

cmd=${1:-}
dir=${2:-}
if [[ -z "$cmd" || -z "$dir" ]]; then
    echo "usage: $0 start|stop DIR" >&2
    exit 2
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
conf="$dir/slurm.conf"

stop_pidfile() {
    local file=$1
    [[ -f "$file" ]] || return 0
    local pid
    pid=$(cat "$file" 2>/dev/null || true)
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$file"
}

case "$cmd" in
start)
    for tool in slurmctld slurmd sinfo munged; do
        command -v "$tool" >/dev/null || {
            echo "$tool is missing: apt-get install -y slurmctld slurmd slurm-client munge" >&2
            exit 3
        }
    done
    node=$(hostname -s)
    # SLURM_TEST_CPUS declares more CPUs than the machine has (bench/slurm.sh runs four
    # one-CPU jobs at once on two cores); the config then overrides what slurmd finds.
    cpus=${SLURM_TEST_CPUS:-$(nproc)}
    mkdir -p "$dir/state" "$dir/spool"
    sed -e "s|@NODE@|$node|g" -e "s|@CPUS@|$cpus|g" -e "s|@DIR@|$dir|g" \
        "$(dirname "$0")/slurm.conf.in" >"$conf"
    if [[ "$cpus" != "$(nproc)" ]]; then
        echo "SlurmdParameters=config_overrides" >>"$conf"
    fi
    export SLURM_CONF="$conf"
    if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        mkdir -p /run/munge
        chown munge:munge /run/munge
        su -s /bin/sh munge -c /usr/sbin/munged
        touch "$dir/munged.started"
        for _ in $(seq 1 100); do
            munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
            sleep 0.1
        done
    fi
    if ! sinfo -h >/dev/null 2>&1; then
        slurmctld -f "$conf"
        slurmd -f "$conf"
    fi
    # Ready when the node is idle (or mixed/allocated: jobs of a cluster already up).
    for _ in $(seq 1 300); do
        state=$(sinfo -h -N -o '%t' 2>/dev/null | head -n1 || true)
        case "$state" in
        idle | mix | alloc) echo "$conf"; exit 0 ;;
        esac
        sleep 0.1
    done
    echo "the Slurm node did not come up within 30 s; see $dir/slurmctld.log and $dir/slurmd.log" >&2
    exit 1
    ;;
stop)
    if [[ -f "$conf" && -f "$dir/slurmctld.pid" ]]; then
        export SLURM_CONF="$conf"
        scancel --full --user="$(id -un)" >/dev/null 2>&1 || true
        for _ in $(seq 1 100); do
            [[ -z "$(squeue -h -t running,completing -o %i 2>/dev/null)" ]] && break
            sleep 0.1
        done
    fi
    stop_pidfile "$dir/slurmd.pid"
    stop_pidfile "$dir/slurmctld.pid"
    if [[ -f "$dir/munged.started" ]]; then
        stop_pidfile /run/munge/munged.pid
        rm -f "$dir/munged.started"
    fi
    ;;
*)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac
