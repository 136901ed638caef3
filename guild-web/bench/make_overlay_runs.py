"""Adds COUNT completed runs with STEPS samples of `loss` and `acc` each to a Guild
index.db, with real run folders (guild.d/run.db made from migrations/run), for the
overlay-chart benchmark:

    python3 guild-web/bench/make_overlay_runs.py INDEX_DB RUNS_DIR COUNT STEPS

Prints the run ids, one a line."""
import glob
import math
import os
import random
import sqlite3
import sys

index_path, runs_dir, count, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
schema = "".join(open(p).read() for p in sorted(glob.glob(os.path.join(root, "migrations", "run", "*.sql"))))
index = sqlite3.connect(index_path)
rng = random.Random(7)
base = 1_800_000_000_000
ids = []
for r in range(count):
    rid = f"overlay-{r:03d}"
    run_dir = os.path.join(runs_dir, rid)
    os.makedirs(os.path.join(run_dir, "guild.d"), exist_ok=True)
    db_path = os.path.join(run_dir, "guild.d", "run.db")
    if os.path.exists(db_path):
        os.remove(db_path)
    db = sqlite3.connect(db_path)
    # As guildd makes them: WAL, so readers open them read-only.
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(schema)
    started = base + r * 3_600_000
    lr = rng.choice([0.1, 0.03, 0.01, 0.003])
    batch = rng.choice([32, 64, 128])
    flags = [("learning_rate", str(lr)), ("batch_size", str(batch)), ("epochs", "100")]
    attrs = [("id", rid), ("model", "overlay"), ("op", "train"), ("status", "completed"),
             ("started", str(started)), ("stopped", str(started + steps * 10))]
    db.executemany("INSERT INTO flag (name, value) VALUES (?, ?)", flags)
    db.executemany("INSERT INTO attr (name, value) VALUES (?, ?)", attrs)
    db.execute("INSERT INTO series_key (id, key) VALUES (1, 'loss'), (2, 'acc')")
    rows = []
    noise = rng.random() * 0.2
    last = {}
    for s in range(1, steps + 1):
        loss = 2.0 * math.exp(-s * lr / 500.0) + noise * math.sin(s / 50.0) + rng.random() * 0.05
        acc = 1.0 - loss / 2.5
        t = started + s * 10
        rows.append((1, s, t, loss))
        rows.append((2, s, t, acc))
        last = {"loss": loss, "acc": acc}
    db.executemany("INSERT INTO series (key_id, step, time, value) VALUES (?, ?, ?, ?)", rows)
    db.commit()
    db.close()
    index.execute("DELETE FROM run WHERE id = ?", (rid,))
    index.execute(
        "INSERT INTO run (id, project_dir, project_name, model, op, status, created_ms, started_ms, stopped_ms,"
        " exit_status, run_dir, label, pid, pid_start, reason, source_run) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (rid, runs_dir, "overlay", "overlay", "train", "completed", started, started, started + steps * 10,
         0, run_dir, f"lr={lr}", None, None, "", ""))
    index.executemany("INSERT OR REPLACE INTO run_flag (run_id, name, value) VALUES (?,?,?)", [(rid, n, v) for n, v in flags])
    for key, kid in (("loss", 1), ("acc", 2)):
        vals = [row[3] for row in rows if row[0] == kid]
        index.execute(
            "INSERT OR REPLACE INTO run_series (run_id, key, last, min, max, count, last_step, last_time) VALUES (?,?,?,?,?,?,?,?)",
            (rid, key, last[key], min(vals), max(vals), steps, steps, started + steps * 10))
    ids.append(rid)
index.commit()
print("\n".join(ids))
