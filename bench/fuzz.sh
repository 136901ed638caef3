#!/usr/bin/env bash
# Fuzzes each target for SECONDS (default 60) with cargo fuzz (libFuzzer; needs the
# nightly toolchain and `cargo install cargo-fuzz`). New corpus entries go to
# fuzz/corpus/<target>; a crash lands in fuzz/artifacts/<target>: copy it into
# fuzz/regressions/<target>/ so guildd/tests/fuzz_corpus.rs replays it forever.
#   bench/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(guild_file tfevents output)
for target in "${targets[@]}"; do
  echo "== $target ($seconds s)"
  cargo +nightly fuzz run "$target" "corpus/$target" -- -max_total_time="$seconds" -rss_limit_mb=2048 2>&1 \
    | grep -E "^#[0-9]+ +DONE|stat::number_of_executed_units|Done [0-9]+ runs|SUMMARY|crash-|ERROR" || true
done
