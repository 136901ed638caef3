//! Run management as a user does it: label and tag (shown where runs are listed and kept
//! in run.db), delete to the trash / restore / purge, refusing running runs, diff, and
//! export then import into a fresh data dir giving the same compare rows.

use std::path::{Path, PathBuf};

use guild_proto::v1::RunStatus;

use crate::compare::{csv_maps, train, train_env};
use crate::helpers::*;

fn attrs(env: &Env, run_dir: &Path) -> Vec<(String, String)> {
    env.block_on(async {
        let mut conn = open_run_db(run_dir).await;
        pairs(&mut conn, "attr").await
    })
}

fn attr(env: &Env, run_dir: &Path, name: &str) -> Option<String> {
    attrs(env, run_dir).into_iter().find(|(n, _)| n == name).map(|(_, v)| v)
}

fn run_dir(env: &Env, id: &str) -> PathBuf {
    PathBuf::from(env.get_run(id).run.unwrap().run_dir)
}

/// The rows of `guild runs` as whitespace-separated words.
fn runs_rows(env: &Env, args: &[&str]) -> Vec<Vec<String>> {
    let mut all = vec!["runs"];
    all.extend_from_slice(args);
    env.guild(&all)
        .ok()
        .stdout
        .lines()
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}

#[test]
fn label_and_tags_show_where_runs_are_listed() {
    let env = train_env();
    let a = train(&env, &["lr=0.1"]);
    let b = train(&env, &["lr=0.2", "--label", "first"]);

    let out = env.guild(&["label", "2", "best", "so", "far"]).ok();
    assert_eq!(out.stdout, format!("Labelled {a}: best so far\n"));
    let out = env.guild(&["tag", &a, "+good", "fast", "-nothing"]).ok();
    assert_eq!(out.stdout, format!("{a}: fast good\n"));
    let out = env.guild(&["tag", &a, "-fast", "+keep"]).ok();
    assert_eq!(out.stdout, format!("{a}: good keep\n"));
    env.guild(&["tag", "1:2", "x"]).ok();

    // guild runs: `label [tags]` in the label column; --json has both.
    let rows = runs_rows(&env, &[]);
    assert_eq!(rows[0][8..], ["first", "[x]"], "{rows:?}");
    assert_eq!(rows[1][8..], ["best", "so", "far", "[good,keep,x]"], "{rows:?}");
    let json = env.runs_json();
    assert_eq!(json[1]["label"], "best so far");
    assert_eq!(json[1]["tags"], serde_json::json!(["good", "keep", "x"]));
    assert_eq!(json[0]["tags"], serde_json::json!(["x"]));
    // WatchRuns (what the dashboard lists) carries them too.
    assert_eq!(env.wait_run(&a, &[RunStatus::Completed]).tags, ["good", "keep", "x"]);
    let info = env.guild(&["runs", "info", &a]).ok();
    assert!(
        info.stdout.contains("label: best so far\ntags: good,keep,x\n"),
        "{info:?}"
    );

    // compare shows them, and --label selects by label or tag.
    let out = env.guild(&["compare", "--csv", "--label", "KEEP"]).ok();
    let rows = csv_maps(&out.stdout);
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (
            rows[0]["id"].as_str(),
            rows[0]["label"].as_str(),
            rows[0]["tags"].as_str()
        ),
        (a.as_str(), "best so far", "good,keep,x")
    );

    // The run's own run.db keeps them (a run folder is self-contained).
    let dir = run_dir(&env, &a);
    assert_eq!(attr(&env, &dir, "label").as_deref(), Some("best so far"));
    assert_eq!(attr(&env, &dir, "tags").as_deref(), Some(r#"["good","keep","x"]"#));

    let out = env.guild(&["label", &b, "--clear"]).ok();
    assert_eq!(out.stdout, format!("Cleared the label of {b}\n"));
    assert_eq!(env.runs_json()[0]["label"], "");
    assert_eq!(attr(&env, &run_dir(&env, &b), "label").as_deref(), Some(""));

    let out = env.guild(&["tag", &a, "two words"]).exits(1);
    assert!(out.stderr.contains("a tag is one word"), "{out:?}");
    let out = env.guild(&["label", &a]).exits(1);
    assert!(out.stderr.contains("--clear"), "{out:?}");
}

#[test]
fn every_selector_form_works_for_runs_label_and_tag() {
    let env = train_env();
    let a = train(&env, &["lr=0.1"]);
    let b = train(&env, &["lr=0.2"]);
    let c = train(&env, &["other", "lr=0.3"]);
    let ids = |rows: Vec<Vec<String>>| rows.into_iter().map(|r| r[1].clone()).collect::<Vec<_>>();

    // guild runs RUNS: indexes, ranges, prefixes, narrowed by filters; rows keep their index.
    assert_eq!(ids(runs_rows(&env, &["2"])), std::slice::from_ref(&b));
    assert_eq!(ids(runs_rows(&env, &["2:3"])), [b.clone(), a.clone()]);
    assert_eq!(ids(runs_rows(&env, &[":", "--model", "m"])), [b.clone(), a.clone()]);
    assert_eq!(ids(runs_rows(&env, &[&c[..c.len() - 1]])), std::slice::from_ref(&c));
    let rows = runs_rows(&env, &["3", "1"]);
    assert_eq!(
        rows.iter().map(|r| (r[0].as_str(), r[1].as_str())).collect::<Vec<_>>(),
        [("1", c.as_str()), ("3", a.as_str())]
    );
    let out = env.guild(&["runs", "4"]).exits(1);
    assert!(out.stderr.contains("no run at index 4: there are 3"), "{out:?}");
    let json = env.guild(&["runs", "1:2", "--json"]).ok();
    let json: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(json.as_array().map(Vec::len), Some(2));

    // label and tag take the same selectors and filters.
    let out = env.guild(&["label", ":", "--model", "other", "the", "other"]).ok();
    assert_eq!(out.stdout, format!("Labelled {c}: the other\n"));
    let out = env.guild(&["tag", "1:3", "--model", "m", "+mm"]).ok();
    assert_eq!(out.stdout, format!("{b}: mm\n{a}: mm\n"));
    let out = env.guild(&["label", ":", "--label", "mm", "tagged", "mm"]).ok();
    assert_eq!(
        out.stdout,
        format!("Labelled {b}: tagged mm\nLabelled {a}: tagged mm\n")
    );
    let out = env.guild(&["tag", ":", "--status", "completed"]).ok();
    assert_eq!(out.stdout, format!("{c}: \n{b}: mm\n{a}: mm\n"));
    let out = env.guild(&["tag", "1", "+x", "--status", "completed"]).exits(1);
    assert!(out.stderr.contains("put --status before them"), "{out:?}");
    let out = env.guild(&["label", ":", "--status", "error", "bad"]).exits(1);
    assert!(out.stderr.contains("no run matches"), "{out:?}");
    let json = env.runs_json();
    let labels: Vec<&str> = json.iter().map(|r| r["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["the other", "tagged mm", "tagged mm"]);
}

#[test]
fn watch_runs_ends_its_snapshot_and_reports_deletes() {
    use guild_proto::v1 as pb;
    let env = train_env();
    let a = train(&env, &["lr=0.1"]);
    let b = train(&env, &["lr=0.2"]);
    env.block_on(async {
        let mut client = env.runs_client().await;
        let mut stream = client
            .watch_runs(pb::WatchRunsRequest::default())
            .await
            .expect("watch")
            .into_inner();
        let mut snapshot = Vec::new();
        loop {
            let ev = stream.message().await.expect("event").expect("stream open");
            if ev.snapshot_done {
                assert!(ev.run.is_none());
                break;
            }
            assert!(!ev.removed);
            snapshot.push(ev.run.expect("run").id);
        }
        assert_eq!(snapshot, [a.clone(), b.clone()], "oldest first");

        // The stream is driven by the runtime's worker thread meanwhile.
        let out = env.guild(&["runs", "delete", &a]);
        assert_eq!(out.ok().stdout, format!("Deleted {a}\n"));
        let ev = stream.message().await.expect("event").expect("stream open");
        assert!(ev.removed, "{ev:?}");
        assert_eq!(ev.run.map(|r| r.id), Some(a.clone()));

        let out = env.guild(&["runs", "restore", &a]);
        assert_eq!(out.ok().stdout, format!("Restored {a}\n"));
        let ev = stream.message().await.expect("event").expect("stream open");
        assert!(!ev.removed && !ev.snapshot_done, "{ev:?}");
        assert_eq!(
            ev.run.map(|r| (r.status(), r.id)),
            Some((RunStatus::Completed, a.clone()))
        );
    });
}

#[test]
fn label_set_while_running_survives_the_run_end() {
    let env = Env::new();
    env.write("Guild", "[model \"waiter\"]\ntrain = waiter\n\n[flags]\ncode = 0\n");
    env.write("waiter.py", WAITER_PY);
    let id = env.guild(&["train", "--background"]).ok().stdout.trim().to_string();
    env.wait_run(&id, &[RunStatus::Running]);
    env.guild(&["label", &id, "while", "running"]).ok();
    std::fs::write(env.project.join("go"), "").unwrap();
    env.wait_run(&id, &[RunStatus::Completed]);
    env.wait_idle();
    assert_eq!(env.runs_json()[0]["label"], "while running");
}

#[test]
fn delete_restore_purge_round_trip() {
    let env = train_env();
    let a = train(&env, &["lr=0.1"]);
    let b = train(&env, &["lr=0.2"]);
    let c = train(&env, &["other", "lr=0.3"]);
    let (dir_a, dir_b) = (run_dir(&env, &a), run_dir(&env, &b));
    let trash = env.project.join("runs").join(".trash");

    let out = env.guild(&["runs", "delete"]).exits(1);
    assert!(out.stderr.contains("name the runs to delete"), "{out:?}");

    // Delete by range and model: the folders move to the trash, the listing drops them.
    let out = env.guild(&["runs", "delete", "2:3", "--model", "m"]).ok();
    assert_eq!(out.stdout, format!("Deleted {b}\nDeleted {a}\n"));
    assert!(!dir_a.exists() && !dir_b.exists());
    assert!(trash.join(&a).join("guild.d").join("run.db").is_file());
    let ids: Vec<String> = env
        .runs_json()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, std::slice::from_ref(&c));
    let deleted = runs_rows(&env, &["--deleted"]);
    assert_eq!(
        deleted
            .iter()
            .map(|r| (r[0].as_str(), r[1].as_str()))
            .collect::<Vec<_>>(),
        [("1", b.as_str()), ("2", a.as_str())]
    );
    let out = env.guild(&["runs", "info", &a]).exits(1);
    assert!(out.stderr.contains("no run matches"), "{out:?}");
    let compared = csv_maps(&env.guild(&["compare", "--csv"]).ok().stdout);
    assert_eq!(compared.len(), 1);

    // Restore one by its index in the trash: back in its folder, with its flags and scalars.
    let out = env.guild(&["runs", "restore", "2"]).ok();
    assert_eq!(out.stdout, format!("Restored {a}\n"));
    assert!(dir_a.join("guild.d").join("run.db").is_file() && !trash.join(&a).exists());
    let compared = csv_maps(&env.guild(&["compare", "--csv", &a]).ok().stdout);
    assert_eq!(
        (compared[0]["lr"].as_str(), compared[0]["loss"].as_str()),
        ("0.1", "0.5")
    );
    let ids: Vec<String> = env
        .runs_json()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, [c.clone(), a.clone()], "restored at its old place in the listing");

    // Purge removes it for good.
    let out = env.guild(&["runs", "purge", &b]).ok();
    assert_eq!(out.stdout, format!("Purged {b}\n"));
    assert!(!trash.join(&b).exists());
    assert!(runs_rows(&env, &["--deleted"]).is_empty());
    let out = env.guild(&["runs", "restore", &b]).exits(1);
    assert!(out.stderr.contains("no deleted run matches"), "{out:?}");
    let out = env.guild(&["runs", "purge", "1"]).exits(1);
    assert!(out.stderr.contains("no run at index 1: there are 0"), "{out:?}");
}

#[test]
fn a_new_run_never_takes_the_id_of_a_deleted_one() {
    // Run ids carry the start's second: a run started in the second of one whose folder is
    // gone (deleted, or removed by hand) must still get an id of its own.
    let env = train_env();
    for _ in 0..50 {
        let a = train(&env, &["lr=0.1"]);
        std::fs::remove_dir_all(run_dir(&env, &a)).unwrap();
        let b = train(&env, &["lr=0.2"]);
        env.guild(&["runs", "delete", &b]).ok();
        let c = train(&env, &["lr=0.3"]);
        if a[..16] == c[..16] {
            // Three runs of one second: three ids, each run listed as itself.
            assert!(a != b && b != c && a != c, "{a} {b} {c}");
            assert_eq!(env.get_run(&c).run.unwrap().status, RunStatus::Completed as i32);
            let deleted = runs_rows(&env, &["--deleted"]);
            assert!(deleted.iter().any(|r| r[1] == b), "{deleted:?}");
            return;
        }
    }
    panic!("no two runs started in the same second in 50 tries");
}

#[test]
fn deleting_a_running_run_is_refused() {
    let env = Env::new();
    env.write("Guild", "[model \"waiter\"]\ntrain = waiter\n\n[flags]\ncode = 0\n");
    env.write("waiter.py", WAITER_PY);
    std::fs::write(env.project.join("go"), "").unwrap();
    env.guild(&["train"]).ok();
    let finished = env.runs_json()[0]["id"].as_str().unwrap().to_string();
    std::fs::remove_file(env.project.join("go")).unwrap();
    let id = env.guild(&["train", "--background"]).ok().stdout.trim().to_string();
    env.wait_run(&id, &[RunStatus::Running]);

    // Nothing moves when one of the runs is running.
    let out = env.guild(&["runs", "delete", "1:2"]).exits(1);
    assert_eq!(
        out.stderr,
        format!("guild: run {id} is running: stop it first (guild stop {id}); nothing was deleted\n")
    );
    assert_eq!(env.runs_json().len(), 2);
    // The daemon refuses it too (a script calling DeleteRun).
    let refused = env.block_on(async {
        env.runs_client()
            .await
            .delete_run(guild_proto::v1::DeleteRunRequest { run: id.clone() })
            .await
            .expect_err("DeleteRun of a running run")
    });
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("stop it first"), "{refused:?}");

    env.guild(&["stop", &id]).ok();
    env.wait_run(&id, &[RunStatus::Terminated]);
    env.wait_idle();
    let out = env.guild(&["runs", "delete", &id, &finished]).ok();
    assert_eq!(out.stdout, format!("Deleted {id}\nDeleted {finished}\n"));
}

#[test]
fn diff_two_runs() {
    let env = train_env();
    let a = train(&env, &["lr=0.1"]);
    env.write("train.py", &format!("{}# tuned\n", crate::compare::TRAIN_PY));
    let b = train(&env, &["lr=0.2", "batch=64", "--label", "tuned"]);
    let out = env.guild(&["diff", &a, &b]).ok();
    assert_eq!(
        out.stdout,
        format!(
            "diff {a} {b}\n\
             flags:\n  batch: 32 -> 64\n  lr: 0.1 -> 0.2\n\
             attrs:\n  label: (none) -> tuned\n\
             scalars:\n  loss: 0.5 -> 1\n  val/acc: 0.9 -> 0.8\n\
             sources:\n\
             --- a/train.py\n+++ b/train.py\n@@ -9,3 +9,4 @@\n \
             print(\"val/acc: %r\" % (1 - a.lr))\n \
             if a.lr > 1:\n     sys.exit(3)\n+# tuned\n"
        ),
        "{out:?}"
    );
    let out = env.guild(&["diff", &a, &a]).ok();
    assert_eq!(out.stdout, format!("diff {a} {a}\nno differences\n"));
    let all = env.guild(&["diff", "--all", &a, &b]).ok();
    assert!(all.stdout.contains("\n  pid: "), "{all:?}");
}

#[test]
fn export_then_import_into_a_fresh_data_dir_gives_the_same_rows() {
    let env = train_env();
    let a = train(&env, &["lr=0.1"]);
    let b = train(&env, &["lr=0.01", "batch=64", "--label", "best"]);
    train(&env, &["other", "lr=0.5"]);
    env.guild(&["tag", &b, "keep"]).ok();
    let before = env.guild(&["compare", "--csv"]).ok().stdout;

    let archive = env.root.join("runs.tar.gz");
    let folder = env.root.join("exported");
    let out = env.guild(&["export", "1:3", archive.to_str().unwrap()]).ok();
    assert_eq!(out.stdout.lines().count(), 3, "{out:?}");
    env.guild(&["export", &a, &b, folder.to_str().unwrap()]).ok();
    assert!(folder.join(&a).join("guild.d").join("run.db").is_file());
    assert!(
        folder
            .join(&b)
            .join("guild.d")
            .join("sources")
            .join("train.py")
            .is_file()
    );
    let out = env.guild(&["export", &a, folder.to_str().unwrap()]).exits(1);
    assert!(out.stderr.contains("exists; nothing was exported"), "{out:?}");

    // A fresh data dir and project: import the archive, compare gives the same rows.
    let fresh = train_env();
    let out = fresh.guild(&["import", archive.to_str().unwrap()]).ok();
    assert_eq!(out.stdout.lines().count(), 3, "{out:?}");
    let after = fresh.guild(&["compare", "--csv"]).ok().stdout;
    assert_eq!(after, before);
    assert!(
        fresh
            .project
            .join("runs")
            .join(&a)
            .join("guild.d")
            .join("run.db")
            .is_file()
    );
    let json = fresh.runs_json();
    assert_eq!(json[1]["tags"], serde_json::json!(["keep"]));
    assert_eq!(json[1]["project_dir"], fresh.project.to_str().unwrap());
    // The imported run's output and series are there too.
    let lines = fresh.output_lines(&a);
    assert!(lines.iter().any(|l| l.text == "loss: 0.5 (step 2)"), "{lines:?}");

    // A clash is refused (nothing imported), or renamed when asked.
    let out = fresh.guild(&["import", folder.to_str().unwrap()]).exits(1);
    assert!(
        out.stderr.contains("already indexed") && out.stderr.contains("--rename"),
        "{out:?}"
    );
    assert_eq!(fresh.runs_json().len(), 3);
    let out = fresh.guild(&["import", "--rename", folder.to_str().unwrap()]).ok();
    // "Imported OLD as NEW into DIR", oldest first; NEW is OLD-N (N from 2, free).
    let renamed: Vec<(String, String)> = out
        .stdout
        .lines()
        .map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            assert_eq!((words[0], words[2], words[4]), ("Imported", "as", "into"), "{l}");
            (words[1].to_string(), words[3].to_string())
        })
        .collect();
    assert_eq!(
        renamed.iter().map(|(old, _)| old.as_str()).collect::<Vec<_>>(),
        [a.as_str(), b.as_str()]
    );
    for (old, new) in &renamed {
        assert!(
            new.starts_with(&format!("{old}-")) && new != &a && new != &b,
            "{old} -> {new}"
        );
    }
    let new_b = &renamed[1].1;
    let rows = csv_maps(&fresh.guild(&["compare", "--csv", new_b]).ok().stdout);
    assert_eq!((rows[0]["lr"].as_str(), rows[0]["label"].as_str()), ("0.01", "best"));
    let dir = run_dir(&fresh, new_b);
    assert_eq!(attr(&fresh, &dir, "id").as_ref(), Some(new_b));
    assert_eq!(dir.file_name().unwrap().to_str(), Some(new_b.as_str()));

    // A single run folder imports too.
    let single = train_env();
    single.guild(&["import", folder.join(&a).to_str().unwrap()]).ok();
    assert_eq!(single.runs_json().len(), 1);
}
