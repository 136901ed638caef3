"""Writes a tensorboardX event file with media for bench/media_ingest.sh: IMAGE_TAGS x
IMAGE_STEPS 64x64 RGB PNG images (noise, so each PNG is about 12 KB, as real pictures
are) and HIST_TAGS x HIST_STEPS histograms of 30 buckets, interleaved step by step as a
training loop writes them; prints the file's path.
    python3 bench/make_media_events.py DIR [IMAGE_TAGS IMAGE_STEPS HIST_TAGS HIST_STEPS]
Defaults: 10 x 200 images (2,000) and 10 x 1,000 histograms (10,000).
"""
import os
import sys

import numpy as np
from tensorboardX import SummaryWriter

out = sys.argv[1]
it, isteps, ht, hsteps = (int(x) for x in (sys.argv[2:6] if len(sys.argv) > 5 else (10, 200, 10, 1000)))
w = SummaryWriter(out, flush_secs=60, max_queue=10_000)
rng = np.random.RandomState(0)
every = max(1, hsteps // isteps)
for step in range(hsteps):
    for t in range(ht):
        w.add_histogram(f"hist{t}", rng.normal(step / hsteps, 1.0, 200), step, bins=30)
    if step % every == 0 and step // every < isteps:
        for t in range(it):
            w.add_image(f"image{t}", rng.randint(0, 255, (64, 64, 3), dtype=np.uint8), step // every, dataformats="HWC")
w.close()
files = [f for f in os.listdir(out) if "tfevents" in f]
print(os.path.join(out, files[0]))
