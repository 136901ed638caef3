"""The pipe baseline for bench/serve.sh: the same serve worker, fed through its stdin
and stdout directly, with N requests always outstanding (N concurrent clients, each
waiting for its own answer, paired first-in first-out as guildd pairs them).

    python3 bench/serve_pipe.py --project DIR --rundir RUN --body FILE --clients 8 --seconds 10

One thread, no handoffs: what it measures is the worker and the pipe."""

import argparse
import collections
import subprocess
import sys
import time


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--project", required=True)
    p.add_argument("--rundir", required=True)
    p.add_argument("--body", required=True)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--label", default="pipe")
    p.add_argument("--python", default=sys.executable)
    a = p.parse_args()
    with open(a.body, "rb") as f:
        line = f.read().replace(b"\n", b" ").strip() + b"\n"
    worker = subprocess.Popen(
        [a.python, "-um", "intro", "--serve", "--rundir", a.rundir],
        cwd=a.project, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, bufsize=1 << 16)
    send, recv = worker.stdin, worker.stdout
    # Warm up (and wait until the worker has loaded its model).
    for _ in range(50):
        send.write(line)
        send.flush()
        reply = recv.readline()
        if not reply.startswith(b"["):
            sys.exit("the worker answered %r" % reply)
    sent = collections.deque()
    latencies = []
    end = time.perf_counter() + a.seconds
    start = time.perf_counter()
    for _ in range(a.clients):
        sent.append(time.perf_counter())
        send.write(line)
    send.flush()
    while sent:
        recv.readline()
        now = time.perf_counter()
        latencies.append(now - sent.popleft())
        if now < end:
            sent.append(time.perf_counter())
            send.write(line)
            send.flush()
    elapsed = time.perf_counter() - start
    send.close()
    worker.wait()
    latencies.sort()
    n = len(latencies)

    def pct(q):
        return latencies[max(0, min(n - 1, -(-int(q * n * 1000) // 1000) - 1))] * 1000

    print("%-34s %8d requests  %9.1f req/s  p50 %7.3f ms  p99 %7.3f ms"
          % (a.label, n, n / elapsed, pct(0.50), pct(0.99)))


if __name__ == "__main__":
    main()
