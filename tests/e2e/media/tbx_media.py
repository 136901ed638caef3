"""A training op that writes media with tensorboardX into $RUNDIR/train (or the folder
given as the first argument): every kind guildd stores, at several steps.

  sample   images, 8 x (8 + step) pixels (so each step's natural size differs), steps 0..4
  weights  histograms of 30 buckets (TF1 HistogramProto), steps 0..4
  note     text (Markdown with a table and a <script>), steps 0, 1
  tone     audio (0.1 s of a 440 Hz sine at 8 kHz, WAV), steps 0, 1: the Summary.Audio
           tensorboardX's add_audio makes, built here with the standard library's wave
           module (add_audio needs the soundfile package)
  pr       PR curves, 11 thresholds, steps 0..2
  bad      an image summary whose bytes are no image (step 3): counted, not stored

With --wait FILE it stops after step 1 until FILE exists (a live test's cue: every item
of steps 0 and 1 is in the file by then, steps 2.. go to a second file); with
--copy_tf2 DIR it first copies DIR's event files into $RUNDIR/tf2/ ("none": neither).
"""
import argparse
import io
import os
import shutil
import time
import wave

import numpy as np
from tensorboardX import SummaryWriter
from tensorboardX.proto.summary_pb2 import Summary



def audio_summary(tag, samples, rate):
    buf = io.BytesIO()
    with wave.open(buf, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes((samples * 32767).astype("<i2").tobytes())
    clip = Summary.Audio(sample_rate=rate, num_channels=1, length_frames=len(samples), encoded_audio_string=buf.getvalue(), content_type="audio/wav")
    return Summary(value=[Summary.Value(tag=tag, audio=clip)])


p = argparse.ArgumentParser()
p.add_argument("--out", default=None)
p.add_argument("--wait", default="none")
p.add_argument("--copy_tf2", default="none")
a = p.parse_args()
out = a.out or os.path.join(os.environ["RUNDIR"], "train")
if a.copy_tf2 != "none":
    dest = os.path.join(os.environ["RUNDIR"], "tf2")
    os.makedirs(dest)
    for name in os.listdir(a.copy_tf2):
        if "tfevents" in name:
            shutil.copy(os.path.join(a.copy_tf2, name), dest)
w = SummaryWriter(out)
rng = np.random.RandomState(0)
t = np.arange(800) / 8000.0
tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
labels = np.array([0, 0, 1, 1, 0, 1, 1, 0, 1, 1])
scores = np.linspace(0.05, 0.95, 10)
for step in range(5):
    img = np.zeros((8 + step, 8, 3), dtype=np.uint8)
    img[:, :, 0] = 40 * step
    img[:, :, 1] = np.arange(8, dtype=np.uint8)[None, :] * 30
    w.add_image("sample", img, step, dataformats="HWC")
    w.add_histogram("weights", rng.normal(step * 0.5, 1.0, 1000), step, bins=30)
    if step < 2:
        w.add_text("note", "# Step %d\n\n| a | b |\n|---|---|\n| 1 | **2** |\n\n<script>window.pwned = 1</script>" % step, step)
        w._get_file_writer().add_summary(audio_summary("tone", tone, 8000), step)
    if step < 3:
        w.add_pr_curve("pr", labels, np.clip(scores + 0.1 * step, 0, 1), step, num_thresholds=11)
    if step == 3:
        bad = Summary(value=[Summary.Value(tag="bad", image=Summary.Image(height=1, width=1, colorspace=3, encoded_image_string=b"<svg onload=alert(1)>"))])
        w._get_file_writer().add_summary(bad, step)
    w.flush()
    print("wrote step %d" % step, flush=True)
    if step == 1 and a.wait != "none":
        # flush() does not wait for tensorboardX's writer thread: events it has not
        # written yet stay out of the file. Closing writes them all, so every item of
        # steps 0 and 1 is in the file while the op waits; steps 2.. go to a second file.
        w.close()
        deadline = time.time() + 60
        while not os.path.exists(a.wait) and time.time() < deadline:
            time.sleep(0.02)
        w = SummaryWriter(out, filename_suffix=".after-wait")
w.close()
