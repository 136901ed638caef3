"""Times commands run in turns (A, B, A, B, ...) so that a machine whose speed drifts
(other tenants, frequency changes) weighs on both sides alike. Prints min, median and
mean per command, and the median of the per-pair differences and ratios.
    python3 bench/interleave.py RUNS WARMUP 'NAME=COMMAND' 'NAME=COMMAND'
Each command runs through `sh -c`, output as the command redirects it."""
import statistics
import subprocess
import sys
import time

runs, warmup = int(sys.argv[1]), int(sys.argv[2])
cmds = [arg.split("=", 1) for arg in sys.argv[3:]]
times = {name: [] for name, _ in cmds}
for i in range(warmup + runs):
    for name, cmd in cmds:
        start = time.perf_counter()
        done = subprocess.run(["sh", "-c", cmd])
        took = time.perf_counter() - start
        if done.returncode != 0:
            sys.exit(f"{name}: exit {done.returncode}")
        if i >= warmup:
            times[name].append(took * 1000)
for name, v in times.items():
    print(f"{name:40} min {min(v):8.1f}  median {statistics.median(v):8.1f}  mean {statistics.mean(v):8.1f} ms  ({len(v)} runs)")
(a, va), (b, vb) = list(times.items())[:2]
diffs = [y - x for x, y in zip(va, vb)]
ratios = [y / x for x, y in zip(va, vb)]
print(f"{b} - {a}: median of pairs {statistics.median(diffs):+.1f} ms, "
      f"ratio median {statistics.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f})")
