-- wrk script for bench/serve.sh: POST the body in $BODY_FILE to /run and print one
-- summary line (throughput, p50/p99 latency, non-2xx answers).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
wrk.body = f:read("*a")
f:close()

done = function(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "%-34s %8d requests  %9.1f req/s  p50 %7.3f ms  p99 %7.3f ms  non-2xx %d  socket errors %d\n",
    os.getenv("LABEL") or "guildd", summary.requests, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.status, e.connect + e.read + e.write + e.timeout))
end
