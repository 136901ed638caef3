"""bench/media.mjs's op: IMAGES image tags x STEPS steps of 64x64 PNG images (noise) and
HISTS histogram tags x STEPS steps of 30 buckets, written with tensorboardX into
$RUNDIR/train."""
import argparse
import os

import numpy as np
from tensorboardX import SummaryWriter

p = argparse.ArgumentParser()
p.add_argument("--images", type=int, default=10)
p.add_argument("--hists", type=int, default=20)
p.add_argument("--steps", type=int, default=1000)
a, _ = p.parse_known_args()
w = SummaryWriter(os.path.join(os.environ["RUNDIR"], "train"), flush_secs=60, max_queue=10_000)
rng = np.random.RandomState(0)
for step in range(a.steps):
    for t in range(a.images):
        img = rng.randint(0, 255, (64, 64, 3), dtype=np.uint8)
        img[: 1 + step * 63 // max(1, a.steps - 1), :4] = 0  # the step shows as a bar
        w.add_image(f"image{t}", img, step, dataformats="HWC")
    for t in range(a.hists):
        w.add_histogram(f"hist{t:02d}", rng.normal(step / a.steps + t, 1.0, 200), step, bins=30)
w.close()
