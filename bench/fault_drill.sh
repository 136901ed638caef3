#!/usr/bin/env bash
# The fault drill: each case in bench/faults/ (NN-name.sh, one fault each; see
# bench/faults/lib.sh for what a case does) against a real guildd of its own, real
# Python ops and real tmpfs mounts (root). Prints a table: the case, the lines the op
# wrote (its raw stdout.log) and the lines run.db stored, whether guildd answered
# `guild status` within 1 s throughout the fault (asked every 50 ms; its slowest answer),
# and what else the case checked.
#   bench/fault_drill.sh [CASE...]     e.g. bench/fault_drill.sh 02 (default: all)
# Release build by default; GUILD_BIN_DIR=target/debug uses the debug one as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${GUILD_BIN_DIR:-}" ]; then
  cargo build --release --workspace
  GUILD_BIN_DIR=target/release
fi
GUILD_BIN_DIR=$(cd "$GUILD_BIN_DIR" && pwd)
export GUILD_BIN_DIR
results=$(mktemp)
trap 'rm -f "$results"' EXIT
cases=()
if [ $# -eq 0 ]; then
  cases=(bench/faults/[0-9]*.sh)
else
  for c in "$@"; do cases+=(bench/faults/"$c"*.sh); done
fi
for case in "${cases[@]}"; do
  dir=$(mktemp -d /tmp/guild-drill-XXXXXX)
  echo "== $case (in $dir)" >&2
  if ! CASE_DIR=$dir RESULT_FILE=$results bash "$case" > "$dir/case.log" 2>&1; then
    printf '%s\t-\t-\t-\tthe case failed: %s\n' "$(basename "$case" .sh)" \
      "$(tail -1 "$dir/case.log" | tr '\t' ' ')" >> "$results"
    echo "   failed; its log: $dir/case.log" >&2
    continue
  fi
  rm -rf "$dir"
done
{
  printf 'case\tlines written\tlines stored\tguildd answered within 1 s\tchecked\n'
  cat "$results"
} | column -t -s $'\t'
