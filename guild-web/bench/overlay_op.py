"""The overlay benchmark's op: prints `loss: x (step N)` and `acc: x (step N)` for
--steps steps as fast as it can, so guildd records them as it records any run's
output scalars."""
import argparse
import math
import random
import sys

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=100000)
p.add_argument("--learning_rate", type=float, default=0.01)
p.add_argument("--batch_size", type=int, default=64)
p.add_argument("--seed", type=int, default=0)
args = p.parse_args()
rng = random.Random(args.seed)
noise = rng.random() * 0.2
out = sys.stdout
lines = []
for s in range(1, args.steps + 1):
    loss = 2.0 * math.exp(-s * args.learning_rate / 500.0) + noise * math.sin(s / 50.0) + rng.random() * 0.05
    lines.append("loss: %f (step %d)\nacc: %f (step %d)\n" % (loss, s, 1.0 - loss / 2.5, s))
    if len(lines) == 1000:
        out.write("".join(lines))
        lines = []
out.write("".join(lines))
