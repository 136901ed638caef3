"""Writes the media fixtures of guildd's event-file reader with real writers.

    python3 bench/make_media_fixtures.py OUT [--writers tensorboardx,tf2]

OUT/tensorboardx/events.out.tfevents.0.tensorboardx-media: what tests/e2e/media/tbx_media.py
writes with tensorboardX (images `sample` at steps 0..4, 8 x (8 + step) pixels;
histograms `weights` of 30 buckets, steps 0..4; text `note` at steps 0, 1; audio `tone`
at steps 0, 1; PR curves `pr` of 11 thresholds at steps 0..2; and `bad`, an image
summary whose bytes are no image, at step 3).

OUT/tf2/events.out.tfevents.0.tf2-media: TensorFlow 2's own summary writer
(tf.summary, `pip install tensorflow-cpu`):
  weights  tf.summary.histogram (tensor histograms, [30, 3]), steps 0..4
  note     tf.summary.text, steps 0, 1
  sample   tf.summary.image, two 6 x (4 + step) images a step (max_outputs=2), steps 0..2
  tone     tf.summary.audio, one 0.05 s clip at 8 kHz, steps 0, 1
  done     a bool scalar tensor (tf.summary.write, no plugin), steps 0..4
  u8       a uint8 scalar tensor (tf.summary.write, no plugin), steps 0..4

The committed files came from tensorboardX 2.6.5 and tensorflow-cpu 2.21.0 (with
tensorboard 2.21.0). Each file is renamed to a stable name so reruns leave no host name
or time in the fixtures.
"""
import argparse
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def settle(folder, name):
    names = [n for n in os.listdir(folder) if "tfevents" in n]
    if len(names) != 1:
        raise SystemExit(f"expected one event file in {folder}, found {names}")
    dst = os.path.join(folder, f"events.out.tfevents.0.{name}")
    os.replace(os.path.join(folder, names[0]), dst)
    print(f"  {dst} ({os.path.getsize(dst)} bytes)")


def fresh(folder):
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)


def write_tensorboardx(out):
    folder = os.path.join(out, "tensorboardx")
    fresh(folder)
    script = os.path.join(HERE, "..", "tests", "e2e", "media", "tbx_media.py")
    subprocess.run([sys.executable, script, "--out", folder], check=True, stdout=subprocess.DEVNULL)
    settle(folder, "tensorboardx-media")


def write_tf2(out):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf

    print(f"tensorflow {tf.__version__}")
    folder = os.path.join(out, "tf2")
    fresh(folder)
    w = tf.summary.create_file_writer(folder)
    rng = np.random.RandomState(1)
    t = np.arange(400) / 8000.0
    clip = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32).reshape(1, -1, 1)
    with w.as_default():
        for step in range(5):
            tf.summary.histogram("weights", rng.normal(step, 1.0, 500), step=step, buckets=30)
            tf.summary.write("done", tf.constant(step % 2 == 0), step=step)
            tf.summary.write("u8", tf.constant(step * 50, dtype=tf.uint8), step=step)
            if step < 2:
                tf.summary.text("note", f"*tf2* step {step}", step=step)
                tf.summary.audio("tone", clip, 8000, step=step)
            if step < 3:
                imgs = np.zeros((2, 4 + step, 6, 3), dtype=np.float32)
                imgs[1] = 0.5
                tf.summary.image("sample", imgs, step=step, max_outputs=2)
    w.flush()
    w.close()
    settle(folder, "tf2-media")


WRITERS = {"tensorboardx": write_tensorboardx, "tf2": write_tf2}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--writers", default=",".join(WRITERS))
    args = ap.parse_args()
    for name in filter(None, args.writers.split(",")):
        try:
            WRITERS[name](args.out)
        except ImportError as e:
            print(f"skipping {name}: {e}", file=sys.stderr)


if __name__ == "__main__":
    main()
