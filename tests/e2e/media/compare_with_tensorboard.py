"""Checks a run.db's media against TensorBoard's own reader on the same event files.

    python3 compare_with_tensorboard.py EVENTS_DIR RUN_DB KEY_PREFIX [--not-stored TAG]...

TensorBoard's EventAccumulator loads EVENTS_DIR keeping every item (size guidance 0).
For each tag it read, the rows of run.db under KEY_PREFIX + tag must match, item for
item in step order: images (bytes, width, height), histograms (TF1 HistogramProto: the
buckets TensorBoard derives from it; TF2 tensors: the [k, 3] tensor), audio (bytes,
sample rate), text (the string), PR curves (precision and recall), TF2 images and audio
(each element's bytes), and bool/uint8 scalar tensors (as series). Wall times match to
the millisecond. Tags named with --not-stored must have items in the events and none in
run.db. Prints a JSON count per kind; exits 1 listing every difference.
"""
import argparse
import json
import math
import sqlite3
import sys

from tensorboard.backend.event_processing import event_accumulator as ea
from tensorboard.util import tensor_util

p = argparse.ArgumentParser()
p.add_argument("events")
p.add_argument("run_db")
p.add_argument("prefix")
p.add_argument("--not-stored", action="append", default=[])
a = p.parse_args()

acc = ea.EventAccumulator(a.events, size_guidance={k: 0 for k in (ea.IMAGES, ea.HISTOGRAMS, ea.AUDIO, ea.TENSORS, ea.SCALARS)})
acc.Reload()
tags = acc.Tags()
db = sqlite3.connect(a.run_db)
problems = []
counts = {"image": 0, "histogram": 0, "audio": 0, "text": 0, "pr_curve": 0, "scalar": 0}


def ms(wall):
    return math.floor(wall * 1000 + 0.5)


def rows(table, cols, tag):
    sql = "SELECT step, time, idx, %s FROM %s WHERE tag = ? ORDER BY step, idx, seq" % (cols, table)
    return db.execute(sql, (a.prefix + tag,)).fetchall()


def check(kind, tag, want, got):
    """want, got: lists of (step, time, idx, value...) in step order."""
    if tag in a.not_stored:
        if not want or got:
            problems.append("%s %s: expected items in the events (%d) and none stored (%d)" % (kind, tag, len(want), len(got)))
        return
    if len(want) != len(got):
        problems.append("%s %s: TensorBoard has %d items, run.db %d" % (kind, tag, len(want), len(got)))
        return
    for w, g in zip(want, got):
        if tuple(w) != tuple(g):
            problems.append("%s %s step %s: TensorBoard %r, run.db %r" % (kind, tag, w[0], short(w), short(g)))
            return
    counts[kind] += len(want)


def short(row):
    return [x[:16] + (b"..." if len(x) > 16 else b"") if isinstance(x, bytes) else x for x in row]


def buckets_of(json_text):
    return [tuple(b) for b in json.loads(json_text)]


for tag in tags["images"]:
    want = [(e.step, ms(e.wall_time), 0, e.encoded_image_string, e.width, e.height) for e in acc.Images(tag)]
    got = rows("image", "data, width, height", tag)
    check("image", tag, want, got)

for tag in tags["histograms"]:
    want = []
    for e in acc.Histograms(tag):
        h = e.histogram_value
        limits, n = list(h.bucket_limit), len(h.bucket)
        lefts = [h.min] + limits[:-1]
        rights = limits[:-1] + [h.max]
        want.append((e.step, ms(e.wall_time), 0, [(lefts[i], rights[i], h.bucket[i]) for i in range(n)]))
    got = [(s, t, i, buckets_of(b)) for s, t, i, b in rows("histogram", "buckets", tag)]
    check("histogram", tag, want, got)

for tag in tags["audio"]:
    want = [(e.step, ms(e.wall_time), 0, e.encoded_audio_string, e.sample_rate) for e in acc.Audio(tag)]
    got = rows("audio", "data, sample_rate", tag)
    check("audio", tag, want, got)

for tag in tags["tensors"]:
    # A tensor written without metadata (tf.summary.write) has none to look up.
    plugin = acc.summary_metadata[tag].plugin_data.plugin_name if tag in acc.summary_metadata else ""
    events = acc.Tensors(tag)
    arrays = [(e, tensor_util.make_ndarray(e.tensor_proto)) for e in events]
    if plugin == "text":
        want = [(e.step, ms(e.wall_time), 0, x.item().decode()) for e, x in arrays if x.size == 1]
        got = [r for r in rows("text", "value", tag) if "\n| --- |" not in r[3]]
        check("text", tag, want, got)
    elif plugin == "pr_curves":
        want = [(e.step, ms(e.wall_time), 0, [float(v) for v in x[4]], [float(v) for v in x[5]]) for e, x in arrays]
        got = [(s, t, i, json.loads(pr), json.loads(rc)) for s, t, i, pr, rc in rows("pr_curve", "precision, recall", tag)]
        check("pr_curve", tag, want, got)
    elif plugin == "histograms":
        want = [(e.step, ms(e.wall_time), 0, [tuple(float(v) for v in b) for b in x.reshape(-1, 3)]) for e, x in arrays]
        got = [(s, t, i, buckets_of(b)) for s, t, i, b in rows("histogram", "buckets", tag)]
        check("histogram", tag, want, got)
    elif plugin == "images":
        want = [(e.step, ms(e.wall_time), i, bytes(img)) for e, x in arrays for i, img in enumerate(x.reshape(-1)[2:])]
        got = rows("image", "data", tag)
        check("image", tag, want, got)
    elif plugin == "audio":
        want = [(e.step, ms(e.wall_time), i, bytes(clip)) for e, x in arrays for i, clip in enumerate(x.reshape(-1, x.shape[-1] if x.ndim == 2 else 1)[:, 0])]
        got = rows("audio", "data", tag)
        check("audio", tag, want, got)
    elif events and events[0].tensor_proto.dtype in (4, 10):  # uint8, bool scalars
        want = [(e.step, ms(e.wall_time), 0, float(x.item())) for e, x in arrays]
        got = db.execute(
            "SELECT step, time, 0, value FROM scalar WHERE key = ? ORDER BY step", (a.prefix + tag,)
        ).fetchall()
        check("scalar", tag, want, got)

if problems:
    print("\n".join(problems))
    sys.exit(1)
print(json.dumps(counts, sort_keys=True))
