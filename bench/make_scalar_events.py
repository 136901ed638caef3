"""Writes a tensorboardX event file with TAGS x STEPS scalars (add_scalar per sample,
as a training loop does) into DIR; prints the file's path. Used by bench/ingest.sh.
    python3 bench/make_scalar_events.py DIR [TAGS] [STEPS]
"""
import math
import os
import sys

from tensorboardX import SummaryWriter

out = sys.argv[1]
tags = int(sys.argv[2]) if len(sys.argv) > 2 else 10
steps = int(sys.argv[3]) if len(sys.argv) > 3 else 100_000
writer = SummaryWriter(out, flush_secs=60, max_queue=100_000)
names = [f"metric{i}" for i in range(tags)]
for step in range(steps):
    for i, name in enumerate(names):
        writer.add_scalar(name, math.sin(step * 0.001 + i) + i, step)
writer.close()
files = [f for f in os.listdir(out) if "tfevents" in f]
print(os.path.join(out, files[0]))
