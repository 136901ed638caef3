"""Writes small TensorFlow event files with real writers, as fixtures for
guildd's tfevents collector (guildd/src/collectors/tfevents/).

    python3 bench/make_tfevents_fixtures.py OUT [--writers tensorboardx,torch,tf2] [--corrupt]

For each writer whose package imports, OUT/<writer>/{train,validation}/ gets one
event file with:
  - scalars `loss` and `acc` for steps 0..9:
      train:      loss = 1/(step+1), acc = step/10
      validation: loss = 2/(step+1), acc = step/10
  - one histogram `weights` and one image `sample` at step 0 (train and validation)
  - tensorboardx only: one text `note` at step 0
  - tf2 only: scalar `int_metric` = step, given to tf.summary.scalar as an int64
    tensor (tf.summary.scalar casts it to float32)

Writers: tensorboardx (`pip install tensorboardX pillow`), torch
(`pip install torch tensorboard pillow`, torch.utils.tensorboard), tf2
(`pip install tensorflow-cpu tensorboard`, tf.summary, which needs tensorboard).
The committed fixtures came from tensorboardX 2.6.5, torch 2.15.0 with
tensorboard 2.21.0, and tensorflow-cpu 2.21.0 with tensorboard 2.21.0 (one virtual
environment each). A writer whose package is missing is skipped with a message; run
the script once per Python environment if the writers live in different ones.

Each event file is renamed to a stable name, events.out.tfevents.0.<writer>-<split>,
so that reruns do not leave the host name or time in the fixture names.

--corrupt derives, from OUT/tensorboardx/train's file:
  OUT/corrupt/flipped/events.out.tfevents.flipped     one byte flipped in the middle
                                                      of the data of the 3rd record
  OUT/corrupt/truncated/events.out.tfevents.truncated cut in the middle of the last record
"""
import argparse
import os
import shutil
import struct
import sys

STEPS = range(10)
SPLITS = {"train": 1.0, "validation": 2.0}


def values(split, step):
    return SPLITS[split] / (step + 1), step / 10


def histogram_data():
    import numpy as np

    return np.linspace(-1.0, 1.0, 101, dtype=np.float32)


def image_hwc():
    import numpy as np

    img = np.zeros((8, 8, 3), dtype=np.uint8)
    img[:, :, 0] = np.arange(8, dtype=np.uint8)[None, :] * 32
    img[:, :, 1] = np.arange(8, dtype=np.uint8)[:, None] * 32
    return img


def only_event_file(folder):
    names = [n for n in os.listdir(folder) if "tfevents" in n]
    if len(names) != 1:
        raise SystemExit(f"expected one event file in {folder}, found {names}")
    return os.path.join(folder, names[0])


def settle(folder, writer, split):
    src = only_event_file(folder)
    dst = os.path.join(folder, f"events.out.tfevents.0.{writer}-{split}")
    os.replace(src, dst)
    print(f"  {dst} ({os.path.getsize(dst)} bytes)")


def fresh(folder):
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)


def write_summarywriter_style(SummaryWriter, out, name, text):
    """tensorboardX and torch.utils.tensorboard share the SummaryWriter API."""
    for split in SPLITS:
        folder = os.path.join(out, name, split)
        fresh(folder)
        w = SummaryWriter(folder)
        for step in STEPS:
            loss, acc = values(split, step)
            w.add_scalar("loss", loss, step)
            w.add_scalar("acc", acc, step)
        w.add_histogram("weights", histogram_data(), 0)
        w.add_image("sample", image_hwc(), 0, dataformats="HWC")
        if text:
            w.add_text("note", "hello from tensorboardX", 0)
        w.flush()
        w.close()
        settle(folder, name, split)


def write_tensorboardx(out):
    import tensorboardX
    from tensorboardX import SummaryWriter

    print(f"tensorboardX {tensorboardX.__version__}")
    write_summarywriter_style(SummaryWriter, out, "tensorboardx", text=True)


def write_torch(out):
    import torch
    from torch.utils.tensorboard import SummaryWriter

    print(f"torch {torch.__version__}")
    write_summarywriter_style(SummaryWriter, out, "torch", text=False)


def write_tf2(out):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    print(f"tensorflow {tf.__version__}")
    for split in SPLITS:
        folder = os.path.join(out, "tf2", split)
        fresh(folder)
        w = tf.summary.create_file_writer(folder)
        with w.as_default():
            for step in STEPS:
                loss, acc = values(split, step)
                tf.summary.scalar("loss", loss, step=step)
                tf.summary.scalar("acc", acc, step=step)
                tf.summary.scalar("int_metric", tf.constant(step, dtype=tf.int64), step=step)
            tf.summary.histogram("weights", histogram_data(), step=0)
            tf.summary.image("sample", image_hwc()[None].astype("float32") / 255.0, step=0)
        w.flush()
        w.close()
        settle(folder, "tf2", split)


WRITERS = {"tensorboardx": write_tensorboardx, "torch": write_torch, "tf2": write_tf2}


def record_spans(data):
    """(start, total length) of each TFRecord in data (framing only, no CRC checks)."""
    spans, pos = [], 0
    while pos + 12 <= len(data):
        (length,) = struct.unpack_from("<Q", data, pos)
        total = 12 + length + 4
        if pos + total > len(data):
            break
        spans.append((pos, total))
        pos += total
    return spans


def write_corrupt(out):
    src = only_event_file(os.path.join(out, "tensorboardx", "train"))
    with open(src, "rb") as f:
        data = f.read()
    spans = record_spans(data)
    if len(spans) < 4:
        raise SystemExit(f"{src}: too few records ({len(spans)})")

    start, total = spans[2]
    flipped = bytearray(data)
    data_len = total - 16
    flipped[start + 12 + data_len // 2] ^= 0xFF
    folder = os.path.join(out, "corrupt", "flipped")
    fresh(folder)
    path = os.path.join(folder, "events.out.tfevents.flipped")
    with open(path, "wb") as f:
        f.write(flipped)
    print(f"  {path}: byte {start + 12 + data_len // 2} flipped (3rd record at {start})")

    start, total = spans[-1]
    cut = start + total // 2
    folder = os.path.join(out, "corrupt", "truncated")
    fresh(folder)
    path = os.path.join(folder, "events.out.tfevents.truncated")
    with open(path, "wb") as f:
        f.write(data[:cut])
    print(f"  {path}: cut at {cut} of {len(data)} (last record at {start}, {total} bytes)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--writers", default=",".join(WRITERS))
    ap.add_argument("--corrupt", action="store_true", help="derive the corrupt fixtures from tensorboardx/train")
    args = ap.parse_args()
    for name in filter(None, args.writers.split(",")):
        if name not in WRITERS:
            raise SystemExit(f"unknown writer {name}; known: {', '.join(WRITERS)}")
        try:
            WRITERS[name](args.out)
        except ImportError as e:
            print(f"skipping {name}: {e}", file=sys.stderr)
    if args.corrupt:
        write_corrupt(args.out)


if __name__ == "__main__":
    main()
