#!/usr/bin/env bash
# `guild serve`: /run throughput and p50/p99 latency through guildd (wrk, keep-alive
# connections) against the same worker fed through a pipe directly (bench/serve_pipe.py),
# with 8 concurrent clients and with 1. The difference is what guildd adds.
# Needs wrk (apt-get install wrk) and a release build (cargo build --release --workspace).
#   bench/serve.sh                     # 10 s per measurement; SECONDS_EACH=30 for longer
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${GUILD_BIN:-$root/target/release}
seconds=${SECONDS_EACH:-10}
work=$(mktemp -d /tmp/guild-bench.XXXXXX)
trap '"$bin/guild" daemon stop --stop-runs >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
export GUILD_DATA_DIR=$work/data GUILD_SOCKET=$work/guildd.sock
cp "$root"/examples/mnist/{Guild,*.py} "$work/"
cd "$work"
"$bin/guild" daemon start >/dev/null
"$bin/guild" prepare >/dev/null 2>&1
"$bin/guild" train epochs=1 >/dev/null 2>"$work/train.err"
run=$(sed -n 's/^Run \([^ ]*\) .* in \(.*\)$/\2/p' "$work/train.err")
url=$("$bin/guild" serve 1 --port 0 2>/dev/null)
# Ask until the worker is ready (bounded backoff).
for pause in 0.01 0.02 0.05 0.1 0.2 0.5 1 1 2 2 5; do
  curl -s "$url/stats" | grep -q '"state":"ready"' && break
  sleep "$pause"
done
curl -s "$url/stats" | grep -q '"state":"ready"' || { echo "the serve did not become ready"; exit 1; }
# One instance per request, as in the README's curl example.
python3 - <<'PY' > "$work/request.json"
import json
row = open("data/test.csv").readline().strip().split(",")[1:]
print(json.dumps([[float(v) for v in row]]))
PY
export BODY_FILE=$work/request.json
echo "== /run, one 64-pixel instance per request, ${seconds}s each ($(nproc) cores)"
for clients in 8 1; do
  LABEL="guildd HTTP, $clients client(s)" wrk -t 1 -c "$clients" -d "${seconds}s" \
    -s "$root/bench/serve_post.lua" "$url/run" | tail -n 1
  python3 "$root/bench/serve_pipe.py" --project "$work" --rundir "$run" --body "$BODY_FILE" \
    --clients "$clients" --seconds "$seconds" --label "pipe, $clients client(s)"
done
echo "== guildd's own view (GET /stats)"
curl -s "$url/stats"; echo
