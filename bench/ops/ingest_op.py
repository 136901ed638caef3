"""bench/ingest.sh's op: moves a pre-made event file into $RUNDIR/train/ (one rename,
so the whole file appears at once) and records when. With --wait 1 it then waits until
run.db's tail_offset for that file (committed in the same transaction as its rows) says
the whole file is in, and records that time too, so the figure is taken in a live run.
Times go to $RUNDIR/bench.json; nothing is printed (output lines can become scalars).
"""
import argparse
import json
import os
import sqlite3
import time

p = argparse.ArgumentParser()
p.add_argument("--src", required=True)
p.add_argument("--wait", type=int, default=0)
args, _ = p.parse_known_args()

rundir = os.environ["RUNDIR"]
name = os.path.basename(args.src)
size = os.path.getsize(args.src)
os.makedirs(os.path.join(rundir, "train"), exist_ok=True)
out = {"size": size}
out["appeared"] = time.time()
os.rename(args.src, os.path.join(rundir, "train", name))
if args.wait:
    db = sqlite3.connect(f"file:{rundir}/guild.d/run.db?mode=ro", uri=True)
    want = f"tfevents:train/{name}"
    while True:
        row = db.execute("SELECT offset FROM tail_offset WHERE file = ?", (want,)).fetchone()
        if row and row[0] >= size:
            out["committed"] = time.time()
            break
        time.sleep(0.002)
    db.close()
with open(os.path.join(rundir, "bench.json"), "w") as f:
    json.dump(out, f)
