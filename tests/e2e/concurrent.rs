//! Five runs started at once (in the same second): distinct ids and folders, all
//! complete, each with its own output.

use std::collections::{BTreeMap, BTreeSet};

use guild_proto::v1::RunStatus;

use crate::helpers::*;

#[test]
fn five_runs_at_once() {
    let env = Env::new();
    env.write("Guild", "[model \"m\"]\ntrain = tagged\n\n[flags]\ntag = none\n");
    env.write(
        "tagged.py",
        r#"import argparse, time
p = argparse.ArgumentParser()
p.add_argument("--tag")
a = p.parse_args()
print("run tag " + a.tag)
time.sleep(0.3)
print("done " + a.tag)
"#,
    );
    env.guild(&["daemon", "start"]).ok();

    let tags: Vec<String> = (1..=5).map(|i| format!("t{i}")).collect();
    let started: Vec<(String, String, std::path::PathBuf)> = std::thread::scope(|s| {
        let handles: Vec<_> = tags
            .iter()
            .map(|tag| {
                let env = &env;
                s.spawn(move || {
                    let flag = format!("tag={tag}");
                    let out = env.guild(&["train", &flag, "--background"]).ok();
                    let (id, dir) = out.started_run();
                    assert_eq!(out.stdout.trim(), id, "{out:?}");
                    (tag.clone(), id, dir)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let ids: BTreeSet<&str> = started.iter().map(|(_, id, _)| id.as_str()).collect();
    let dirs: BTreeSet<_> = started.iter().map(|(_, _, dir)| dir.clone()).collect();
    assert_eq!(ids.len(), 5, "run ids are not distinct: {started:?}");
    assert_eq!(dirs.len(), 5, "run dirs are not distinct: {started:?}");
    // Ids that share a second are numbered: STAMP-m, STAMP-m-2, STAMP-m-3, ...
    let mut by_stamp: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for id in &ids {
        by_stamp.entry(&id[..16]).or_default().insert(id);
    }
    for (stamp, group) in &by_stamp {
        let expected: BTreeSet<String> = (1..=group.len())
            .map(|n| {
                if n == 1 {
                    format!("{stamp}-m")
                } else {
                    format!("{stamp}-m-{n}")
                }
            })
            .collect();
        let group: BTreeSet<String> = group.iter().map(|s| s.to_string()).collect();
        assert_eq!(group, expected, "ids started in second {stamp}");
    }

    for (tag, id, dir) in &started {
        let run = env.wait_run(id, &[RunStatus::Completed, RunStatus::Error, RunStatus::Failed]);
        assert_eq!(run.status(), RunStatus::Completed, "{run:?}");
        assert_eq!(run.run_dir, dir.to_str().unwrap());
        assert_eq!(dir.parent().unwrap(), env.project.join("runs"));
        let output = run_db_output(&env, dir);
        assert_eq!(
            output,
            [
                ("stdout".to_string(), format!("run tag {tag}")),
                ("stdout".to_string(), format!("done {tag}")),
            ],
            "output of {id}"
        );
        let flags = env.get_run(id).flags;
        assert_eq!(flags.len(), 1);
        assert_eq!((flags[0].name.as_str(), flags[0].value.as_str()), ("tag", tag.as_str()));
    }
    let json = env.runs_json();
    assert_eq!(json.len(), 5);
    assert!(json.iter().all(|r| r["status"] == "completed"), "{json:?}");
}
