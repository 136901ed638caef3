"""Fills a Guild index.db with COUNT synthetic completed runs (10 flags, 10 scalars each)
for the listing and compare benchmarks: python3 bench/fill_index.py INDEX_DB COUNT"""
import random
import sqlite3
import sys

path, count = sys.argv[1], int(sys.argv[2])
db = sqlite3.connect(path)
rng = random.Random(1)
base = 1_790_000_000_000
runs, flags, series = [], [], []
for i in range(count):
    started = base + i * 60_000
    rid = f"bench-{i:06d}-intro"
    runs.append((rid, "/tmp/bench-project", "bench", "intro", "train", "completed",
                 started, started, started + 30_000, 0, f"/tmp/bench-project/runs/{rid}", "", None, None, "", ""))
    for f in range(10):
        flags.append((rid, f"flag{f}", str(rng.choice([0.1, 0.01, 0.001, 32, 64, 128]))))
    for k in range(10):
        v = rng.random()
        series.append((rid, f"tf/train/metric{k}", v, v / 2, v * 2, 1000, 999, started + 30_000))
with db:
    db.executemany(
        "INSERT INTO run (id, project_dir, project_name, model, op, status, created_ms, started_ms, stopped_ms,"
        " exit_status, run_dir, label, pid, pid_start, reason, source_run) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        runs)
    db.executemany("INSERT INTO run_flag (run_id, name, value) VALUES (?,?,?)", flags)
    db.executemany("INSERT INTO run_series (run_id, key, last, min, max, count, last_step, last_time)"
                   " VALUES (?,?,?,?,?,?,?,?)", series)
print(f"{count} runs in {path}")
