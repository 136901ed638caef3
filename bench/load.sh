#!/usr/bin/env bash
# The full load: 20 concurrent runs printing and logging scalars fast, 50 WatchSeries /
# ReadOutput subscribers (a third deliberately slow), `guild runs` in a loop. Prints runs,
# subscribers, lines and samples written vs stored, and the daemon's peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace
GUILD_LOAD=full cargo test --release -p guild-tests --test e2e load -- --nocapture 2>&1 | grep -E "^load:|test result"
