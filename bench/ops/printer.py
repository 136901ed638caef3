# Prints --lines lines (300,000 by default), as a chatty training script would.
import argparse
import sys

p = argparse.ArgumentParser()
p.add_argument("--lines", type=int, default=300000)
args, _ = p.parse_known_args()
write = sys.stdout.write
for i in range(args.lines):
    write(f"line {i} of the output, loss: {i * 0.001:.4f}\n")
