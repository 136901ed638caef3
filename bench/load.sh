#!/usr/bin/env bash
# The full load: 20 concurrent runs printing and logging scalars fast, 50 WatchSeries /
# ReadOutput subscribers (a third deliberately slow), `guild runs` in a loop. Prints runs,
# subscribers, lines and samples written vs stored, and the daemon's peak RSS.
#   bench/load.sh                  # this tree's release build
#   GUILD_BIN=DIR bench/load.sh    # guild and guildd from DIR (another build), driven by
#                                  # this tree's test (tests/e2e/load.rs)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace
if [ -z "${GUILD_BIN:-}" ]; then
  GUILD_LOAD=full cargo test --release -p guild-tests --test e2e load -- --nocapture 2>&1 | grep -E "^load:|test result"
  exit
fi
# The test runs the guild and guildd beside its own executable: a copy of it goes next to
# copies of the other build's binaries.
exe=$(cargo test --release -p guild-tests --test e2e --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "e2e":
        print(m["executable"])')
dir=$(mktemp -d /tmp/guild-load.XXXXXX)
trap 'rm -rf "$dir"' EXIT
cp "$exe" "$dir/e2e"
cp "$GUILD_BIN/guild" "$GUILD_BIN/guildd" "$dir/"
(cd tests && GUILD_LOAD=full "$dir/e2e" load --nocapture 2>&1 | grep -E "^load:|test result")
