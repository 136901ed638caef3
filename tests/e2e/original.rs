//! Project files of the original Guild (2016–17) run unchanged: their indented
//! attributes, continuations, resources, runtimes, sources and tags, their view (cards,
//! chart rows and compare columns), run folders as run selectors, and the original's
//! command forms (`-p`, `-F`, `--preview`, `guild train --help`), plus `guild init`.
//! The projects are in `tests/fixtures/guild-2017/`; their ops write real event files
//! with tensorboardX.

use std::path::{Path, PathBuf};

use guild_proto::v1::{self as pb, RunStatus};

use crate::helpers::*;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/guild-2017")
}

/// A project of the given fixture form: its Guild file and the scripts.
fn project(form: &str) -> Env {
    let env = Env::new();
    std::fs::copy(fixtures().join(form).join("Guild"), env.project.join("Guild")).expect("copy Guild");
    for script in ["digits.py", "samples.py"] {
        std::fs::copy(fixtures().join("scripts").join(script), env.project.join(script)).expect("copy script");
    }
    env.write("notes.txt", "not a source file\n");
    env
}

fn run_view(env: &Env, run: &str) -> pb::RunView {
    env.block_on(async {
        env.runs_client()
            .await
            .get_run_view(pb::GetRunViewRequest { run: run.to_string() })
            .await
            .unwrap_or_else(|s| panic!("GetRunView {run}: {s}"))
            .into_inner()
    })
}

fn attr<'a>(detail: &'a pb::RunDetail, name: &str) -> Option<&'a str> {
    detail.attrs.iter().find(|a| a.name == name).map(|a| a.value.as_str())
}

fn cards(view: &pb::RunView) -> Vec<(String, String)> {
    let fields = &view.view.as_ref().expect("a view").fields;
    fields
        .iter()
        .zip(&view.fields)
        .map(|(f, v)| (f.label.clone(), v.text.clone()))
        .collect()
}

#[test]
fn a_released_form_project_runs_unchanged_and_its_view_shapes_the_run() {
    if !tensorboardx_available() {
        return;
    }
    let env = project("classic");
    // The resource first: a run of its own, with its own flags and the project's.
    let out = env.guild(&["prepare", "samples"]).ok();
    let (samples_id, samples_dir) = out.started_run();
    assert!(samples_id.contains("Z-samples"), "{samples_id}");
    assert_eq!(std::fs::read_dir(env.project.join("samples")).unwrap().count(), 12);
    let detail = env.get_run(&samples_id);
    assert_eq!(detail.run.as_ref().unwrap().op, "prepare");
    assert!(detail.flags.iter().any(|f| f.name == "sample-count" && f.value == "12"));
    assert!(samples_dir.join("guild.d").is_dir());

    env.guild(&["prepare"]).ok();
    let out = env.guild(&["train"]).ok();
    let (id, run_dir) = out.started_run();
    assert!(id.contains("Z-softmax"), "{id}");
    let detail = env.get_run(&id);
    assert_eq!(attr(&detail, "runtime"), Some("tensorflow"));
    let run = detail.run.as_ref().unwrap();
    assert_eq!(run.tags, vec!["2017", "classic"]);
    assert!(
        detail
            .flags
            .iter()
            .any(|f| f.name == "learning_rate" && f.value == "0.5")
    );
    // `sources = *.py`: the scripts and the Guild file, not the notes.
    let sources = run_dir.join("guild.d/sources");
    assert!(sources.join("digits.py").is_file() && sources.join("Guild").is_file());
    assert!(!sources.join("notes.txt").exists());
    // Project tags filter like any tag.
    let listed = env.guild(&["runs", "--label", "classic"]).ok();
    assert!(
        listed.stdout.contains(&id) && listed.stdout.contains("[2017,classic]"),
        "{listed:?}"
    );

    // The view: cards in the file's order, formatted as it says.
    let view = run_view(&env, &id);
    let shown = cards(&view);
    let labels: Vec<&str> = shown.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(
        labels,
        vec!["Validation Accuracy", "Training Accuracy", "Steps", "Time"]
    );
    assert_eq!(shown[0].1, "90.00%");
    assert_eq!(shown[1].1, "80.00%");
    assert_eq!(shown[2].1, "390");
    assert!(
        shown[3].1.len() == 7 && shown[3].1.starts_with("0:00:"),
        "time card {:?}",
        shown[3].1
    );
    let v = view.view.as_ref().unwrap();
    assert_eq!(v.origin, "[view]");
    assert_eq!(
        (v.fields[0].color.as_str(), v.fields[0].icon.as_str()),
        ("green-700", "accuracy")
    );
    let rows: Vec<(&str, Vec<&str>)> = v
        .rows
        .iter()
        .map(|r| (r.name.as_str(), r.series.iter().map(|s| s.title.as_str()).collect()))
        .collect();
    assert_eq!(
        rows,
        vec![
            ("series-a", vec!["Accuracy"]),
            (
                "series-b",
                vec!["Cross Entropy", "Learning Rate", "Process CPU %", "Process Memory"]
            ),
        ]
    );
    // Each chart's pattern matches the run's keys: two accuracy lines, two losses.
    let keys: Vec<String> = detail.series.iter().map(|s| s.key.clone()).collect();
    let lines = |pattern: &str| -> Vec<&String> {
        let re = regex::Regex::new(&format!("^(?:{pattern})$")).unwrap();
        keys.iter().filter(|k| re.is_match(k)).collect()
    };
    assert_eq!(lines(&v.rows[0].series[0].pattern).len(), 2, "{keys:?}");
    assert_eq!(lines(&v.rows[1].series[0].pattern).len(), 2, "{keys:?}");
    assert_eq!(v.rows[1].series[0].format, "0.00");

    // Compare: the view's columns, the flag columns by their labels.
    let out = env.guild(&["compare", "--csv"]).ok();
    let mut csv = out.stdout.lines();
    let header = csv.next().unwrap();
    assert_eq!(
        header,
        "id,model,op,status,started,label,tags,Validation Accuracy,Training Accuracy,Batch Size,Epochs (flag),Steps,Time"
    );
    let row: Vec<&str> = out
        .stdout
        .lines()
        .find(|l| l.starts_with(&id))
        .expect("the train run's row")
        .split(',')
        .collect();
    // The view's six columns end the row (the tags cell before them is quoted: "2017,classic").
    let view = &row[row.len() - 6..];
    let number = |i: usize| view[i].parse::<f64>().unwrap_or_else(|_| panic!("cell {i} of {row:?}"));
    assert!(
        (number(0) - 0.9).abs() < 1e-6 && (number(1) - 0.8).abs() < 1e-6,
        "{row:?}"
    );
    assert_eq!(&view[2..5], &["50", "4", "390"]);
    assert!(number(5) >= 0.0, "{row:?}");
    let table = env.guild(&["compare"]).ok();
    assert!(
        table.stdout.contains("90.00%") && table.stdout.contains("Validation Accuracy"),
        "{table:?}"
    );
    // --all-columns: every flag and series, as without a view.
    let all = env.guild(&["compare", "--csv", "--all-columns"]).ok();
    assert!(all.stdout.lines().next().unwrap().contains("tf/validation/accuracy"));
}

#[test]
fn the_last_design_with_indented_attributes_and_templates() {
    if !tensorboardx_available() {
        return;
    }
    let env = project("sections");
    env.guild(&["prepare"]).ok();
    let out = env.guild(&["train", "epochs=2"]).ok();
    let (id, _) = out.started_run();
    let view = run_view(&env, &id);
    let v = view.view.as_ref().unwrap();
    assert_eq!(v.origin, "sections");
    let shown = cards(&view);
    assert_eq!(
        shown,
        vec![
            ("Validation Accuracy".to_string(), "90.00%".to_string()),
            ("Training Accuracy".to_string(), "80.00%".to_string()),
            ("Steps".to_string(), "190".to_string()),
            ("Time".to_string(), shown[3].1.clone()),
        ]
    );
    // Copied from a template of the file, which copied a built-in one.
    assert_eq!(v.fields[1].color, "teal-400");
    assert_eq!(v.fields[1].format, "0.00%");
    let titles: Vec<&str> = v.rows[0].series.iter().map(|s| s.title.as_str()).collect();
    assert_eq!(
        titles,
        vec![
            "Loss",
            "Accuracy",
            "Process CPU %",
            "Process Memory",
            "GPU %",
            "GPU Memory"
        ]
    );
    let out = env.guild(&["compare", "--csv"]).ok();
    assert!(
        out.stdout
            .starts_with("id,model,op,status,started,label,Validation Accuracy,Batch Size,Steps\n"),
        "{out:?}"
    );
    // The resource of this form has no runtime and runs as well.
    env.guild(&["prepare", "samples"]).ok();
    assert_eq!(std::fs::read_dir(env.project.join("samples")).unwrap().count(), 12);
}

#[test]
fn a_run_keeps_its_view_when_the_project_file_changes() {
    if !tensorboardx_available() {
        return;
    }
    let env = project("unnamed");
    env.guild(&["prepare"]).ok();
    let (id, _) = env.guild(&["train"]).ok().started_run();
    // The unnamed model is known by its train module.
    assert!(id.contains("Z-digits"), "{id}");
    let before = run_view(&env, &id);
    let labels: Vec<String> = cards(&before).into_iter().map(|(l, _)| l).collect();
    assert_eq!(labels, vec!["Loss", "Steps", "Time"]);
    // epochs is set twice in the file: the last value (3) wins, 30 steps.
    assert_eq!(cards(&before)[0].1, "0.067");
    assert_eq!(cards(&before)[1].1, "290");
    // The project's file changes; the run's view is the one it ran with.
    let changed = std::fs::read_to_string(env.project.join("Guild"))
        .unwrap()
        .replace("fields: loss steps time", "fields: validation-accuracy");
    env.write("Guild", &changed);
    assert_eq!(cards(&run_view(&env, &id)), cards(&before));
    let (later, _) = env.guild(&["train"]).ok().started_run();
    let after = cards(&run_view(&env, &later));
    assert_eq!(after, vec![("Validation Accuracy".to_string(), "90.00%".to_string())]);
    // A run without a view (a 2026-form project) has none.
    let plain = Env::mnist();
    plain.guild(&["prepare"]).ok();
    let prepared = plain.get_run("1").run.unwrap().id;
    let none = run_view(&plain, &prepared);
    assert!(none.view.is_none() && none.fields.is_empty(), "{none:?}");
}

#[test]
fn a_run_folder_path_selects_its_run() {
    let env = Env::mnist();
    env.guild(&["prepare"]).ok();
    let (id, dir) = env.guild(&["train", "epochs=1"]).ok().started_run();
    let relative = format!("./runs/{id}");
    for selector in [relative.as_str(), &format!("runs/{id}/"), &dir.to_string_lossy()] {
        let out = env
            .guild_command(&["runs", "info", selector])
            .current_dir(&env.project)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && text.contains(&id), "{selector}: {text}");
    }
    // From another folder, a relative path is relative to it.
    let out = env
        .guild_command(&["runs", "info", &format!("p/runs/{id}")])
        .current_dir(&env.root)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // evaluate and serve take it too (the seed's `guild serve ./runs/ID`).
    let out = env
        .guild_command(&["evaluate", &relative])
        .current_dir(&env.project)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("test_acc"));
    // A folder that is no run's is no run, even inside the run root or the run.
    for other in [
        env.project.join("runs").display().to_string(),
        dir.join("guild.d").display().to_string(),
        "/tmp".to_string(),
    ] {
        let out = env.guild(&["runs", "info", &other]).exits(1);
        assert!(out.stderr.contains("no run has the folder"), "{out:?}");
    }
    // Several at once, in selections.
    let out = env.guild(&["runs", &dir.to_string_lossy()]).ok();
    assert!(out.stdout.contains(&id) && out.stdout.lines().count() == 1, "{out:?}");
}

#[test]
fn the_original_command_forms() {
    let env = Env::mnist();
    env.guild(&["prepare"]).ok();
    // --preview starts nothing and says what would run.
    let before = std::fs::read_dir(env.project.join("runs")).unwrap().count();
    let out = env
        .guild(&[
            "train",
            "--preview",
            "-p",
            "fast",
            "-F",
            "learning_rate=0.2",
            "-F",
            "batch_size=10",
        ])
        .ok();
    assert!(out.stdout.contains("nothing was started"), "{out:?}");
    assert!(out.stdout.contains("-um intro"), "{out:?}");
    assert!(out.stdout.contains("--epochs 2"), "the profile's value: {out:?}");
    assert!(
        out.stdout.contains("--learning_rate 0.2") && out.stdout.contains("batch_size = 10"),
        "{out:?}"
    );
    assert!(
        out.stdout.contains("Run folder: ") && out.stdout.contains("RUNDIR="),
        "{out:?}"
    );
    assert_eq!(std::fs::read_dir(env.project.join("runs")).unwrap().count(), before);
    // -p and -F for real.
    let (id, _) = env
        .guild(&["train", "-p", "fast", "-F", "learning_rate=0.2"])
        .ok()
        .started_run();
    let detail = env.get_run(&id);
    let flag = |n: &str| detail.flags.iter().find(|f| f.name == n).map(|f| f.value.clone());
    assert_eq!(flag("epochs").as_deref(), Some("2"));
    assert_eq!(flag("learning_rate").as_deref(), Some("0.2"));
    // A flag the model does not have is an error, as with NAME=VALUE.
    let out = env.guild(&["train", "-F", "nope=1"]).exits(1);
    assert!(out.stderr.contains("unknown flag \"nope\""), "{out:?}");
    // --help lists the model's flags with their values (and the profile's).
    let out = env.guild(&["train", "--help"]).ok();
    assert!(out.stdout.contains("Usage: guild train"), "{out:?}");
    assert!(out.stdout.contains("Flags of intro"), "{out:?}");
    assert!(
        out.stdout
            .lines()
            .any(|l| l.trim_start().starts_with("epochs") && l.trim_end().ends_with("10")),
        "{out:?}"
    );
    let out = env.guild(&["train", "expert", "-p", "fast", "-h"]).ok();
    assert!(
        out.stdout.contains("Flags of expert") && out.stdout.contains("profile fast"),
        "{out:?}"
    );
    assert!(
        out.stdout
            .lines()
            .any(|l| l.trim_start().starts_with("hidden") && l.trim_end().ends_with("32")),
        "{out:?}"
    );
    assert!(
        out.stdout
            .lines()
            .any(|l| l.trim_start().starts_with("epochs") && l.trim_end().ends_with("2")),
        "{out:?}"
    );
}

#[test]
fn list_models_shows_resources_flags_and_tags() {
    let env = project("classic");
    let out = env.guild(&["list-models"]).ok();
    assert!(out.stdout.contains("tags: classic 2017"), "{out:?}");
    assert!(out.stdout.contains("model softmax (default) [tensorflow]"), "{out:?}");
    assert!(out.stdout.contains("resource samples [tensorflow]"), "{out:?}");
    assert!(out.stdout.contains("sample-count=12"), "{out:?}");
    assert!(out.stdout.contains("batch_size=50"), "{out:?}");
}

#[test]
fn original_form_mistakes_name_their_line() {
    let env = Env::new();
    env.write(
        "Guild",
        "#-*-conf-*-\n[project]\n  name = x\n\n[model \"m\"]\n  runtime = theano\n  train = m\n",
    );
    let out = env.guild(&["train"]).exits(1);
    assert!(
        out.stderr.contains(
            "Guild:6: unknown runtime \"theano\" in [model \"m\"] (known runtimes: tensorflow, tflearn, python)"
        ),
        "{out:?}"
    );
    env.write(
        "Guild",
        "[model \"m\"]\n  train = m\n[view]\n  fields = loss\n[field \"loss\"]\n  reduce = median\n",
    );
    let out = env.guild(&["list-models"]).exits(1);
    assert!(out.stderr.contains("Guild:6: unknown reduce \"median\""), "{out:?}");
    env.write("Guild", "[model \"m\"]\n  train = m \\\n");
    let out = env.guild(&["train"]).exits(1);
    assert!(out.stderr.contains("Guild:2: the value continues"), "{out:?}");
}

#[test]
fn a_huge_guild_file_is_refused_at_once_and_the_daemon_keeps_answering() {
    let env = Env::new();
    // 4 MB: over the 1 MiB bound, refused before it is parsed.
    let mut text = String::from("[model \"m\"]\ntrain = m\n[flags]\n");
    while text.len() < 4_000_000 {
        text.push_str(&format!("flag_{} = {}\n", text.len(), "x".repeat(40)));
    }
    env.write("Guild", &text);
    let out = env.guild(&["list-models"]).exits(1);
    assert!(
        out.stderr.contains("a Guild file may be at most 1048576 bytes"),
        "{out:?}"
    );
    // Just under the bound, with every key repeated: read in linear time, last value wins.
    let mut text = String::from("[model \"m\"]\ntrain = m\n[flags]\n");
    let mut i = 0;
    while text.len() < 1_000_000 {
        text.push_str(&format!("k{} = {i}\n", i % 5000));
        i += 1;
    }
    env.write("Guild", &text);
    let out = env.guild(&["list-models"]).ok();
    assert!(out.stdout.contains("model m (default)"), "{out:?}");
    env.guild(&["runs"]).ok();
}

#[test]
fn guild_init_writes_a_project_from_argparse_scripts() {
    let env = Env::new();
    env.write(
        "train.py",
        r#""""Trains a thing."""
import argparse
EPOCHS = 3
p = argparse.ArgumentParser(description="Train the thing")
p.add_argument("--lr", type=float, default=0.01, help="learning rate")
p.add_argument(
    "--epochs",
    type=int,
    default=EPOCHS,
)
p.add_argument("--name", default="run one")
p.add_argument("--verbose", action="store_true")
p.add_argument("--data", required=True)
p.add_argument("--seed", type=int)
args = p.parse_args()
print("epochs: %d" % args.epochs)
print("lr: %s" % args.lr)
print("data: %s" % args.data)
"#,
    );
    env.write("helper.py", "def f():\n    return 1\n");
    env.write("evaluate.py", "import argparse\np = argparse.ArgumentParser()\np.add_argument('--checkpoint', default='last')\np.parse_args()\n");
    env.write("broken.py", "def (:\n");
    let out = env.guild(&["init"]).ok();
    assert!(out.stdout.contains("2 models: train, evaluate"), "{out:?}");
    assert!(
        out.stderr.contains("skipped") && out.stderr.contains("broken.py"),
        "{out:?}"
    );
    let guild = std::fs::read_to_string(env.project.join("Guild")).unwrap();
    assert!(
        guild.contains("[model \"train\"]") && guild.contains("train = train"),
        "{guild}"
    );
    assert!(guild.contains("description = Train the thing"), "{guild}");
    assert!(
        guild.contains("  lr = 0.01\n") && guild.contains("  epochs = 3\n"),
        "{guild}"
    );
    assert!(guild.contains("  name = run one\n"), "{guild}");
    assert!(guild.contains("--verbose: left out"), "{guild}");
    assert!(guild.contains("  data =\n"), "{guild}");
    assert!(guild.contains("--seed: no default"), "{guild}");
    assert!(!guild.contains("helper"), "{guild}");
    // It runs: the defaults the script declares, a required flag given.
    let out = env.guild(&["train", "data=/tmp/d", "epochs=5"]).ok();
    assert!(
        out.stdout.contains("epochs: 5") && out.stdout.contains("lr: 0.01"),
        "{out:?}"
    );
    // A second init refuses to replace it.
    let out = env.guild(&["init"]).exits(1);
    assert!(out.stderr.contains("exists already"), "{out:?}");
    assert_eq!(env.get_run("1").run.unwrap().status(), RunStatus::Completed);
}
