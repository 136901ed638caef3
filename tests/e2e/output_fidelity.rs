//! Output scalars as the op printed them: Keras progress lines and several pairs on a
//! line give every pair, backspaced progress bars end as their last state, a NUL byte
//! is shown and ends nothing, and float32 values from event files read as the float32
//! they were, the same in `guild series` and `guild compare`, table, CSV and JSON.

use guild_proto::v1 as pb;

use crate::helpers::*;

const GUILD: &str = "[project]\nname = fidelity\n\n[model \"m\"]\ntrain = keras_like\n";

/// What a Keras 2 `fit(verbose=1)` prints when its output is not a terminal, plus a bar
/// drawn with backspaces, a line with a NUL byte and pairs after a `|`.
const OP: &str = r#"
import sys
out = sys.stdout
out.write("Epoch 1/2\n")
out.write("3/3 [==============================] - 1s 10ms/step - loss: 0.3000 - acc: 0.9000 - val_loss: 0.31\n")
bar = "1/2 [=====>......] - ETA: 0s - loss: 0.9"
out.write(bar + "\b" * len(bar) + "\r2/2 [============] - 0s 5ms/step - loss: 0.2500 - acc: 0.9500\n")
out.write("before\0after\n")
out.write("step: 7 | lr: 0.001, momentum: 0.9\n")
out.write("Epoch 3 loss: 5\n")
out.flush()
"#;

#[test]
fn every_pair_of_a_line_is_recorded_and_bars_end_as_drawn() {
    let env = Env::new();
    env.write("Guild", GUILD);
    env.write("keras_like.py", OP);
    let (id, _) = env.guild(&["train"]).ok().started_run();

    let text: Vec<String> = env.output_lines(&id).into_iter().map(|l| l.text).collect();
    assert!(
        text.iter().any(|l| l == "2/2 [============] - 0s 5ms/step - loss: 0.2500 - acc: 0.9500"),
        "the bar's last state: {text:?}"
    );
    assert!(!text.iter().any(|l| l.contains("=====>")), "the backspaced bar is gone: {text:?}");
    assert!(text.iter().any(|l| l == "before\u{2400}after"), "NUL shown: {text:?}");

    let csv = |key: &str| env.guild(&["series", &id, key, "--csv"]).ok().stdout;
    let values = |key: &str| -> Vec<String> {
        csv(key).lines().skip(1).map(|l| l.rsplit(',').next().unwrap_or_default().to_string()).collect()
    };
    assert_eq!(values("loss"), ["0.3", "0.25"]);
    assert_eq!(values("acc"), ["0.9", "0.95"]);
    assert_eq!(values("val_loss"), ["0.31"]);
    assert_eq!(values("lr"), ["0.001"]);
    assert_eq!(values("momentum"), ["0.9"]);
    // `step: 7` set the step of the pairs after it on its line.
    let lr = csv("lr");
    assert!(lr.lines().nth(1).is_some_and(|l| l.starts_with("7,")), "{lr}");
    // Free text before a pair keeps the line out: no `loss: 5`.
    assert_eq!(values("loss").len(), 2);
    let keys = env.guild(&["list-series", &id]).ok().stdout;
    assert!(!keys.contains("ETA"), "{keys}");
}

const TBX_OP: &str = r#"
import os
from tensorboardX import SummaryWriter
w = SummaryWriter(os.environ["RUNDIR"])
w.add_scalar("acc", 0.9, 1)
w.add_scalar("tiny", 1e-7, 1)
w.add_scalar("bad", float("nan"), 1)
w.close()
"#;

#[test]
fn float32_values_read_as_written_everywhere() {
    if !tensorboardx_available() {
        return;
    }
    let env = Env::new();
    env.write("Guild", "[project]\nname = f32\n\n[model \"m\"]\ntrain = writer\n");
    env.write("writer.py", TBX_OP);
    let (id, _) = env.guild(&["train"]).ok().started_run();

    let series = env.guild(&["series", &id, "tf/acc", "--csv"]).ok().stdout;
    assert!(series.lines().nth(1).is_some_and(|l| l.ends_with(",0.9")), "{series}");
    let table = env.guild(&["series", &id, "tf/acc"]).ok().stdout;
    assert!(table.trim_end().ends_with(" 0.9"), "{table}");
    let listed = env.guild(&["list-series", &id]).ok().stdout;
    assert!(listed.lines().any(|l| l.starts_with("tf/acc") && l.contains(" 0.9 ")), "{listed}");
    let info = env.guild(&["runs", "info", &id]).ok().stdout;
    assert!(info.contains("tf/acc: 0.9 (step 1)"), "{info}");

    // Numbers one way across series and compare: shortest float32, exponent form, nan.
    let tiny = env.guild(&["series", &id, "tf/tiny", "--csv"]).ok().stdout;
    assert!(tiny.lines().nth(1).is_some_and(|l| l.ends_with(",1e-7")), "{tiny}");
    let bad = env.guild(&["series", &id, "tf/bad", "--csv"]).ok().stdout;
    assert!(bad.lines().nth(1).is_some_and(|l| l.ends_with(",nan")), "{bad}");
    let compare = env
        .guild(&["compare", &id, "--csv", "--columns", "tf/acc,tf/tiny,tf/bad"])
        .ok()
        .stdout;
    let row = compare.lines().nth(1).unwrap_or_default();
    assert!(row.ends_with("0.9,1e-7,nan"), "{compare}");
    let json = env
        .guild(&["compare", &id, "--json", "--columns", "tf/acc,tf/tiny,tf/bad"])
        .ok()
        .stdout;
    assert!(
        json.contains("\"tf/acc\": 0.9") && json.contains("\"tf/tiny\": 1e-7") && json.contains("\"tf/bad\": \"nan\""),
        "{json}"
    );
}

/// stdout and stderr interleaved, a pause between each write: stored in the order
/// written, although they are two files.
const INTERLEAVED: &str = r#"
import sys, time
for i in range(3):
    print(f"out {i}")
    time.sleep(0.05)
    print(f"err {i}", file=sys.stderr)
    time.sleep(0.05)
print("out last")
"#;

#[test]
fn a_stderr_line_keeps_its_place_among_stdout_lines() {
    let env = Env::new();
    env.write("Guild", "[project]\nname = order\n\n[model \"m\"]\ntrain = interleaved\n");
    env.write("interleaved.py", INTERLEAVED);
    let (id, _) = env.guild(&["train"]).ok().started_run();
    let want = ["out 0", "err 0", "out 1", "err 1", "out 2", "err 2", "out last"];
    let stored: Vec<(i32, String)> = env.output_lines(&id).into_iter().map(|l| (l.stream, l.text)).collect();
    let texts: Vec<&str> = stored.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(texts, want, "{stored:?}");
    assert!(stored.iter().all(|(stream, text)| (*stream == pb::Stream::Stderr as i32) == text.starts_with("err")), "{stored:?}");
}
