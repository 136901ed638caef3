"""Shared code for the Guild MNIST example.

The real MNIST set needs a download and numpy; this example instead
generates a small, MNIST-like set of 8x8 grayscale digits from the
hand-drawn templates below, using only the Python standard library.

The helpers here are used by both models (intro.py and expert.py):

- prepare(datadir): write train.csv, validation.csv and test.csv
- load(datadir, split): read one of them back
- the argument parser, run-directory handling, progress logging,
  optional TensorBoard summaries, model save/load and the serve loop
"""

import argparse
import json
import math
import os
import random
import sys

SIZE = 8
PIXELS = SIZE * SIZE
CLASSES = 10
SEED = 20180611

SPLITS = (
    ("train", 3000),
    ("validation", 500),
    ("test", 500),
)

# 8x8 glyphs: '#' is a full stroke, '.' is background.
TEMPLATES = {
    0: (
        "..####..",
        ".##..##.",
        ".##..##.",
        ".##..##.",
        ".##..##.",
        ".##..##.",
        "..####..",
        "........",
    ),
    1: (
        "...##...",
        "..###...",
        "...##...",
        "...##...",
        "...##...",
        "...##...",
        "..####..",
        "........",
    ),
    2: (
        "..####..",
        ".##..##.",
        ".....##.",
        "....##..",
        "...##...",
        "..##....",
        ".######.",
        "........",
    ),
    3: (
        "..####..",
        ".##..##.",
        ".....##.",
        "...###..",
        ".....##.",
        ".##..##.",
        "..####..",
        "........",
    ),
    4: (
        "....##..",
        "...###..",
        "..#.##..",
        ".#..##..",
        ".######.",
        "....##..",
        "....##..",
        "........",
    ),
    5: (
        ".######.",
        ".##.....",
        ".#####..",
        ".....##.",
        ".....##.",
        ".##..##.",
        "..####..",
        "........",
    ),
    6: (
        "...###..",
        "..##....",
        ".##.....",
        ".#####..",
        ".##..##.",
        ".##..##.",
        "..####..",
        "........",
    ),
    7: (
        ".######.",
        ".....##.",
        "....##..",
        "...##...",
        "...##...",
        "..##....",
        "..##....",
        "........",
    ),
    8: (
        "..####..",
        ".##..##.",
        ".##..##.",
        "..####..",
        ".##..##.",
        ".##..##.",
        "..####..",
        "........",
    ),
    9: (
        "..####..",
        ".##..##.",
        ".##..##.",
        "..#####.",
        ".....##.",
        "....##..",
        "..###...",
        "........",
    ),
}


def _template_pixels(rows):
    assert len(rows) == SIZE and all(len(r) == SIZE for r in rows), rows
    return [[1.0 if c == "#" else 0.0 for c in row] for row in rows]


GLYPHS = {label: _template_pixels(rows) for label, rows in TEMPLATES.items()}


# ---------------------------------------------------------------------------
# Data generation and loading
# ---------------------------------------------------------------------------

# An example is its glyph moved by at most one pixel: left, right, up,
# down or not at all.
SHIFTS = ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))


def _example(label, rng):
    """One noisy, shifted rendering of the glyph for `label`."""
    glyph = GLYPHS[label]
    dx, dy = rng.choice(SHIFTS)
    intensity = rng.uniform(0.6, 1.0)
    pixels = []
    for r in range(SIZE):
        sr = r - dy
        for c in range(SIZE):
            sc = c - dx
            on = 0 <= sr < SIZE and 0 <= sc < SIZE and glyph[sr][sc] > 0
            if on:
                # Stroke intensity jitter, with the odd missing stroke pixel.
                v = 0.0 if rng.random() < 0.06 else intensity * rng.uniform(0.7, 1.0)
            else:
                # Blank background, with the odd speck.
                v = rng.uniform(0.3, 0.8) if rng.random() < 0.03 else 0.0
            v += rng.gauss(0.0, 0.10)
            pixels.append(min(1.0, max(0.0, v)))
    return pixels


def generate(count, rng):
    """Balanced, shuffled list of (label, pixels) pairs."""
    labels = [i % CLASSES for i in range(count)]
    rng.shuffle(labels)
    return [(label, _example(label, rng)) for label in labels]


def split_path(datadir, split):
    return os.path.join(datadir, split + ".csv")


def prepare(datadir, seed=SEED):
    """Write the train, validation and test splits to `datadir`."""
    os.makedirs(datadir, exist_ok=True)
    rng = random.Random(seed)
    for split, count in SPLITS:
        path = split_path(datadir, split)
        examples = generate(count, rng)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            for label, pixels in examples:
                f.write(str(label))
                f.write(",")
                f.write(",".join("%.3f" % v for v in pixels))
                f.write("\n")
        os.replace(tmp, path)
        print("wrote %d examples to %s" % (count, path))


def has_data(datadir, splits=("train", "validation")):
    return all(os.path.isfile(split_path(datadir, s)) for s in splits)


def load(datadir, split):
    """Returns (images, labels): a list of 64-float lists and a list of ints."""
    images = []
    labels = []
    with open(split_path(datadir, split)) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            values = line.split(",")
            labels.append(int(values[0]))
            images.append([float(v) for v in values[1:]])
    return images, labels


def require_data(datadir, splits):
    if not has_data(datadir, splits):
        sys.stderr.write(
            "no data in %s: run `guild prepare` first "
            "(or pass --prepare to write it)\n" % datadir
        )
        sys.exit(2)


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

def arg_parser(description):
    p = argparse.ArgumentParser(description=description, allow_abbrev=False)
    p.add_argument("--datadir", default="./data")
    p.add_argument("--rundir", default=None)
    p.add_argument("--batch_size", type=int, default=100)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--learning_rate", type=float, default=0.5)
    p.add_argument("--prepare", action="store_true", help="write the data set and exit")
    p.add_argument("--test", action="store_true", help="evaluate a trained model on the test set")
    p.add_argument("--serve", action="store_true", help="answer JSON prediction requests on stdin")
    return p


def parse_args(parser):
    """Parses known flags; anything else (`--x y`) is ignored."""
    args, _unknown = parser.parse_known_args()
    if args.batch_size < 1:
        parser.error("--batch_size must be at least 1")
    if args.epochs < 0:
        parser.error("--epochs must not be negative")
    return args


def resolve_rundir(args):
    """--rundir (with $VARS expanded), else $RUNDIR; exits if neither is set."""
    rundir = os.path.expandvars(args.rundir) if args.rundir else ""
    if not rundir or "$" in rundir:
        rundir = os.environ.get("RUNDIR", "")
    if not rundir:
        sys.stderr.write("no run directory: pass --rundir or set RUNDIR\n")
        sys.exit(2)
    return rundir


# ---------------------------------------------------------------------------
# Math helpers
# ---------------------------------------------------------------------------

def softmax(z):
    m = max(z)
    e = [math.exp(v - m) for v in z]
    s = sum(e)
    return [v / s for v in e]


def argmax(values):
    return values.index(max(values))


def batches(count, batch_size, rng):
    order = list(range(count))
    rng.shuffle(order)
    for start in range(0, count, batch_size):
        yield order[start:start + batch_size]


def evaluate(predict, images, labels):
    """Mean cross-entropy loss and accuracy of `predict` (image -> probs)."""
    loss = 0.0
    correct = 0
    for x, y in zip(images, labels):
        p = predict(x)
        loss -= math.log(max(p[y], 1e-12))
        correct += argmax(p) == y
    n = max(1, len(labels))
    return loss / n, correct / n


# ---------------------------------------------------------------------------
# Progress output and summaries
# ---------------------------------------------------------------------------

def fmt(v):
    return "%.6f" % v


class Progress:
    """Prints `step: N` followed by scalar lines, and writes optional
    TensorBoard summaries (only when tensorboardX is importable)."""

    def __init__(self, rundir, steps_per_epoch):
        # About ten training logs per epoch keeps output under ~50 lines
        # per epoch whatever the batch size.
        self.every = max(1, -(-steps_per_epoch // 10))
        self.writers = _summary_writers(rundir)

    def train(self, step, loss, acc, force=False):
        if step % self.every and not force:
            return
        print("step: %d" % step)
        print("loss: " + fmt(loss))
        print("acc: " + fmt(acc))
        self._scalars("train", step, loss, acc)

    def validation(self, step, loss, acc):
        print("step: %d" % step)
        print("val_loss: " + fmt(loss))
        print("val_acc: " + fmt(acc))
        self._scalars("validation", step, loss, acc)

    def _scalars(self, name, step, loss, acc):
        if self.writers:
            w = self.writers[name]
            w.add_scalar("loss", loss, step)
            w.add_scalar("acc", acc, step)

    def close(self):
        if self.writers:
            for w in self.writers.values():
                w.close()
            self.writers = None


def _summary_writers(rundir):
    try:
        from tensorboardX import SummaryWriter
    except Exception:
        return None
    return {
        "train": SummaryWriter(os.path.join(rundir, "train")),
        "validation": SummaryWriter(os.path.join(rundir, "validation")),
    }


# ---------------------------------------------------------------------------
# Model files
# ---------------------------------------------------------------------------

def model_path(rundir):
    return os.path.join(rundir, "model", "weights.json")


def save_model(rundir, model):
    path = model_path(rundir)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(model, f)
    os.replace(tmp, path)
    return path


def load_model(rundir, name):
    path = model_path(rundir)
    if not os.path.isfile(path):
        sys.stderr.write("no trained model at %s: train the %s model first\n" % (path, name))
        sys.exit(2)
    with open(path) as f:
        model = json.load(f)
    if model.get("model") != name:
        sys.stderr.write("%s holds the %r model, not %r\n" % (path, model.get("model"), name))
        sys.exit(2)
    return model


# ---------------------------------------------------------------------------
# Test and serve
# ---------------------------------------------------------------------------

def run_test(predict, datadir):
    require_data(datadir, ("test",))
    images, labels = load(datadir, "test")
    loss, acc = evaluate(predict, images, labels)
    print("test_acc: " + fmt(acc))
    print("test_loss: " + fmt(loss))


class BadRequest(Exception):
    pass


def _instance_pixels(i, instance):
    if isinstance(instance, dict):
        if "image" not in instance:
            raise BadRequest("instance %d: object has no \"image\" key" % i)
        instance = instance["image"]
    if not isinstance(instance, list):
        raise BadRequest("instance %d: expected a list of %d numbers" % (i, PIXELS))
    if len(instance) != PIXELS:
        raise BadRequest("instance %d: expected %d values, got %d" % (i, PIXELS, len(instance)))
    pixels = []
    for v in instance:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise BadRequest("instance %d: values must be finite numbers" % i)
        pixels.append(float(v))
    return pixels


def handle_request(predict, line):
    try:
        request = json.loads(line)
    except (ValueError, RecursionError) as e:
        raise BadRequest("invalid JSON: %s" % e)
    if not isinstance(request, list):
        raise BadRequest("request must be a JSON list of instances")
    images = [_instance_pixels(i, inst) for i, inst in enumerate(request)]
    return [{"prediction": predict(x)} for x in images]


def serve(predict, name):
    """One JSON request per stdin line, one JSON response per stdout line."""
    sys.stderr.write("serving %s model: one JSON list of instances per line\n" % name)
    sys.stderr.flush()
    out = sys.stdout
    while True:
        line = sys.stdin.readline()
        if not line:
            break
        if not line.strip():
            continue
        try:
            response = handle_request(predict, line)
        except BadRequest as e:
            response = {"error": str(e)}
        out.write(json.dumps(response))
        out.write("\n")
        out.flush()
