//! The `guild` command line itself: shell completions (through real bash, and through
//! clap_complete's protocol as fish and zsh call it) with candidates from a real daemon
//! and without one; usage lines that leave out what the environment set; a series key
//! the run lacks; and compare's CSV and JSON byte for byte.

use std::path::Path;
use std::process::Command;

use crate::helpers::*;

const GUILD: &str = r#"[project]
name = cli

[model "m"]
train = train

[model "other"]
train = train
evaluate = train --eval

[flags]
lr = 0.1
batch = 32

[flags "other"]
layers = 3

[flags "fast"]
lr = 0.5
"#;

/// Prints scalars that test every number form, and a loss.
const TRAIN_PY: &str = r#"import argparse
p = argparse.ArgumentParser()
p.add_argument("--lr", type=float)
p.add_argument("--batch")
p.add_argument("--layers")
p.add_argument("--note")
p.add_argument("--eval", action="store_true")
a, _ = p.parse_known_args()
print("loss: %r" % (a.lr * 10))
print("a: nan")
print("b: inf")
print("c: -inf")
print("d: 3")
print("e: 1e-07")
"#;

fn project() -> Env {
    let env = Env::new();
    env.write("Guild", GUILD);
    env.write("train.py", TRAIN_PY);
    env
}

/// Runs `guild train ARGS` to its end; returns the run id.
#[track_caller]
fn train(env: &Env, args: &[&str]) -> String {
    let mut all = vec!["train"];
    all.extend_from_slice(args);
    env.guild(&all).ok().started_run().0
}

/// `source <(guild completions bash)`, then what bash's completion function puts in
/// COMPREPLY for `guild -C PROJECT WORDS...` (the last word is the one being completed).
#[track_caller]
fn bash(env: &Env, script: &Path, words: &[&str]) -> Vec<String> {
    let project = env.project.to_str().unwrap();
    let mut all = vec!["guild", "-C", project];
    all.extend_from_slice(words);
    let quoted: Vec<String> = all.iter().map(|w| format!("'{}'", w.replace('\'', "'\\''"))).collect();
    let current = all.len() - 1;
    let program = format!(
        "source '{}'\n\
         COMP_WORDS=({})\n\
         COMP_CWORD={current}\n\
         COMP_TYPE=9\n\
         _clap_complete_guild guild {} {}\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        script.display(),
        quoted.join(" "),
        quoted[current],
        quoted[current - 1],
    );
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &program])
        .env("GUILD_DATA_DIR", &env.data_dir)
        .env("GUILD_SOCKET", &env.socket)
        .env_remove("COMPLETE")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("cannot run bash");
    assert!(out.status.success(), "bash failed: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Candidates that are not options.
fn values(found: Vec<String>) -> Vec<String> {
    found.into_iter().filter(|c| !c.starts_with('-')).collect()
}

#[track_caller]
fn has_all(found: &[String], wanted: &[&str]) {
    for want in wanted {
        assert!(found.iter().any(|f| f == want), "{want:?} is not among {found:?}");
    }
}

#[track_caller]
fn has_none(found: &[String], unwanted: &[&str]) {
    for not in unwanted {
        assert!(!found.iter().any(|f| f == not), "{not:?} is among {found:?}");
    }
}

#[test]
fn completions_offer_models_flags_and_runs_from_the_daemon() {
    let env = project();
    let first = train(&env, &[]);
    let second = train(&env, &["other", "layers=4"]);

    // The registration script, as a user installs it.
    let script = env.root.join("guild.bash");
    let out = env.guild(&["completions", "bash"]).ok();
    assert!(out.stdout.contains("complete -o nospace"), "{out:?}");
    std::fs::write(&script, &out.stdout).unwrap();
    for shell in ["zsh", "fish"] {
        let out = env.guild(&["completions", shell]).ok();
        assert!(
            out.stdout.contains("COMPLETE=") || out.stdout.contains("COMPLETE"),
            "{out:?}"
        );
        assert!(out.stdout.contains(&guild_exe().display().to_string()), "{out:?}");
    }
    let out = env.guild(&["completions", "tcsh"]).exits(2);
    assert!(out.stderr.contains("possible values: bash, zsh, fish"), "{out:?}");

    // Commands and options come from the argument definitions.
    has_all(&bash(&env, &script, &["tr"]), &["train"]);
    has_all(
        &bash(&env, &script, &["li"]),
        &["list-models", "list-attrs", "list-series"],
    );
    has_all(&bash(&env, &script, &["train", "--pr"]), &["--profile", "--preview"]);

    // Models and the default model's flags as NAME=, from the Guild file through the daemon.
    let found = bash(&env, &script, &["train", ""]);
    has_all(&found, &["m", "other", "lr=", "batch="]);
    has_none(&found, &["layers="]);
    // A named model: its own flags, and no second model.
    let found = bash(&env, &script, &["train", "other", ""]);
    has_all(&found, &["lr=", "batch=", "layers="]);
    has_none(&found, &["m", "other"]);
    assert_eq!(bash(&env, &script, &["train", "other", "la"]), ["layers="]);
    assert_eq!(bash(&env, &script, &["train", "-F", "ba"]), ["batch="]);
    assert_eq!(bash(&env, &script, &["train", "-p", ""]), ["fast"]);
    has_all(
        &bash(&env, &script, &["run", ""]),
        &["train", "m:train", "other:train", "other:evaluate"],
    );
    has_all(&bash(&env, &script, &["runs", "--model", ""]), &["m", "other"]);
    assert_eq!(
        bash(&env, &script, &["compare", "--status", "error,fa"]),
        ["error,failed"]
    );

    // Run ids wherever a run is named, newest first, each with its model and status.
    assert_eq!(
        values(bash(&env, &script, &["runs", "info", ""])),
        [second.clone(), first.clone()]
    );
    assert_eq!(
        values(bash(&env, &script, &["diff", &first, ""])),
        [second.clone(), first.clone()]
    );
    let prefix = &second[..second.len() - 3];
    assert_eq!(bash(&env, &script, &["watch", prefix]), [second.as_str()]);
    let lines = fish_lines(&env, &["serve", ""]);
    let (newer, older) = (
        format!("{second}\tother:train completed"),
        format!("{first}\tm:train completed"),
    );
    has_all(&lines, &[&newer, &older]);
    // A run's series keys.
    has_all(&fish(&env, &["series", &first, ""]), &["loss", "a", "d"]);
    assert_eq!(fish(&env, &["series", &first, "lo"]), ["loss"]);
}

#[test]
fn completions_without_a_daemon_complete_commands_and_start_none() {
    let env = project();
    let script = env.root.join("guild.bash");
    std::fs::write(&script, env.guild(&["completions", "bash"]).ok().stdout).unwrap();
    assert!(env.try_status().is_none(), "a daemon runs before the test");

    has_all(&bash(&env, &script, &["st"]), &["status", "stop"]);
    has_all(&bash(&env, &script, &["compare", "--c"]), &["--csv", "--columns"]);
    // Nothing the daemon would know, and no daemon started to ask.
    let found = bash(&env, &script, &["train", ""]);
    has_none(&found, &["m", "other", "lr="]);
    assert!(values(bash(&env, &script, &["runs", "info", ""])).is_empty());
    assert!(fish(&env, &["train", ""]).iter().all(|c| c.starts_with('-')));
    assert!(env.try_status().is_none(), "completing started a daemon");
    let out = env.guild(&["daemon", "status"]).exits(1);
    assert!(out.stdout.contains("guildd is not running"), "{out:?}");
}

#[test]
fn usage_lines_leave_out_options_set_by_the_environment() {
    let env = Env::new();
    let out = env.guild_env(&["series"], &[("GUILD_LISTEN", "none")]).exits(2);
    // Before: `Usage: guild series --data-dir <DATA_DIR> --socket <SOCKET> <RUN> <KEY>`.
    assert!(out.stderr.contains("\nUsage: guild series <RUN> <KEY>\n"), "{out:?}");
    for option in ["--data-dir", "--socket"] {
        assert!(!out.stderr.contains(option), "{option} in {out:?}");
    }
    let out = env
        .guild_env(&["daemon", "start", "--bogus"], &[("GUILD_LISTEN", "none")])
        .exits(2);
    assert!(
        out.stderr.contains("\nUsage: guild daemon start [OPTIONS]\n"),
        "{out:?}"
    );
    for option in ["--listen", "--data-dir", "--socket"] {
        assert!(!out.stderr.contains(option), "{option} in {out:?}");
    }
    // The variables still choose the daemon: this one's data folder.
    let out = env.guild(&["daemon", "start"]).ok();
    assert!(
        out.stdout.contains(&format!("data dir: {}", env.data_dir.display())),
        "{out:?}"
    );
    env.guild(&["daemon", "stop"]).ok();
}

#[test]
fn a_series_the_run_lacks_is_an_error_naming_both() {
    let env = project();
    let id = train(&env, &[]);
    let out = env.guild(&["series", "1", "nokey"]).exits(1);
    assert_eq!(
        out.stderr,
        format!("guild: run {id} has no series \"nokey\" (`guild list-series {id}` lists its keys)\n"),
        "{out:?}"
    );
    assert!(out.stdout.is_empty(), "{out:?}");
    let out = env.guild(&["series", "1", "loss", "--csv"]).ok();
    let lines = out.stdout_lines();
    assert_eq!(lines[0], "step,time_ms,value");
    assert!(lines[1].ends_with(",1"), "{out:?}");
}

#[test]
fn compare_writes_exact_csv_and_json() {
    let env = project();
    let plain = train(&env, &[]);
    let quoted = train(&env, &["lr=0.25", "--label", "say \"hi\", then"]);
    let columns = "id,label,lr,batch,loss,a,b,c,d,e";

    let out = env.guild(&["compare", "--csv", "--columns", columns]).ok();
    assert_eq!(
        out.stdout,
        format!(
            "id,label,lr,batch,loss,a,b,c,d,e\n\
             {quoted},\"say \"\"hi\"\", then\",0.25,32,2.5,nan,inf,-inf,3,1e-7\n\
             {plain},,0.1,32,1,nan,inf,-inf,3,1e-7\n"
        )
    );

    // JSON: one run a line; numbers exact, NaN and infinities as text, empty cells null.
    let out = env.guild(&["compare", "--json", "--columns", columns]).ok();
    assert_eq!(
        out.stdout,
        format!(
            "[\n  \
             {{\"id\": \"{quoted}\", \"label\": \"say \\\"hi\\\", then\", \"lr\": \"0.25\", \"batch\": \"32\", \
             \"loss\": 2.5, \"a\": \"nan\", \"b\": \"inf\", \"c\": \"-inf\", \"d\": 3, \"e\": 1e-7}},\n  \
             {{\"id\": \"{plain}\", \"label\": null, \"lr\": \"0.1\", \"batch\": \"32\", \
             \"loss\": 1, \"a\": \"nan\", \"b\": \"inf\", \"c\": \"-inf\", \"d\": 3, \"e\": 1e-7}}\n\
             ]\n"
        )
    );
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json[0]["e"].as_f64(), Some(1e-7));

    // Tags are a list; nothing selected is an empty array.
    env.guild(&["tag", "1", "+x", "+y"]).ok();
    let out = env.guild(&["compare", "--json", "--columns", "id,tags", "1"]).ok();
    assert_eq!(
        out.stdout,
        format!("[\n  {{\"id\": \"{quoted}\", \"tags\": [\"x\", \"y\"]}}\n]\n")
    );
    let out = env.guild(&["compare", "--json", "--filter", "lr > 5"]).ok();
    assert_eq!(out.stdout, "[]\n");
    let out = env
        .guild(&["compare", "--csv", "--columns", "id", "--filter", "lr > 5"])
        .ok();
    assert_eq!(out.stdout, "id\n");

    // The table: numbers right-aligned under their header, in short form.
    let out = env
        .guild_env(&["compare", "--columns", "id,lr,loss,e"], &[("COLUMNS", "200")])
        .ok();
    let width = quoted.len();
    assert_eq!(
        out.stdout,
        format!(
            "{:width$}  lr    loss     e\n{quoted}  0.25   2.5  1e-7\n{plain:width$}  0.1      1  1e-7\n",
            "id"
        )
    );
}
