//! What a new user hit (issue 14, item 8), daemon side: a run shorter than the stats
//! interval had no `op/*` series; `guild evaluate` recorded the project's flags rather
//! than the evaluated run's; a purged run's id was given again by `import --rename`.

use std::path::Path;

use crate::helpers::*;

/// `SELECT ... ` of a run's run.db, read as `(text, text)` rows.
fn run_db_rows(env: &Env, run_dir: &Path, sql: &str) -> Vec<(String, String)> {
    let path = run_dir.join("guild.d").join("run.db");
    let sql = sql.to_string();
    env.block_on(async move {
        use sqlx::Connection;
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .read_only(true);
        let mut conn = sqlx::sqlite::SqliteConnection::connect_with(&options)
            .await
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
        sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(sql.clone()))
            .fetch_all(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    })
}

#[test]
fn a_run_shorter_than_the_stats_interval_has_process_series() {
    let env = Env::new();
    // The default interval (2 s) is far longer than the run.
    env.write("Guild", "[model \"m\"]\ntrain = quick\n");
    env.write("quick.py", "import time\nprint('loss: 1.5')\ntime.sleep(0.2)\n");
    let out = env.guild(&["train"]).ok();
    let (id, run_dir) = out.started_run();
    let samples = run_db_rows(
        &env,
        &run_dir,
        "SELECT key, CAST(value AS TEXT) FROM scalar WHERE key LIKE 'op/%' ORDER BY key",
    );
    let keys: Vec<&str> = samples.iter().map(|(k, _)| k.as_str()).collect();
    assert!(
        keys.contains(&"op/mem/rss") && keys.contains(&"op/mem/vms"),
        "{samples:?}"
    );
    for (key, value) in &samples {
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("{key}: {value}"));
        assert!(value > 0.0, "{key} = {value}");
    }
    // The index's summaries (what `guild list-series` shows) have them too.
    let listed = env.guild(&["list-series", &id]).ok().stdout;
    assert!(listed.contains("op/mem/rss"), "{listed}");
}

const EVAL_GUILD: &str = r#"[model "m"]
train = train
evaluate = evaluate

[flags]
lr = 0.1
epochs = 3
"#;

const EVAL_TRAIN_PY: &str = "import argparse\np = argparse.ArgumentParser()\n\
p.add_argument('--lr')\np.add_argument('--epochs')\nprint('trained', p.parse_args())\n";

const EVAL_PY: &str = "import argparse\np = argparse.ArgumentParser()\n\
p.add_argument('--lr')\np.add_argument('--epochs')\na = p.parse_args()\n\
print(f'evaluated lr={a.lr} epochs={a.epochs}')\n";

#[test]
fn evaluate_records_the_evaluated_runs_flags() {
    let env = Env::new();
    env.write("Guild", EVAL_GUILD);
    env.write("train.py", EVAL_TRAIN_PY);
    env.write("evaluate.py", EVAL_PY);
    let (trained, _) = env.guild(&["train", "lr=0.5"]).ok().started_run();

    // --latest-run: the trained run's flags, as it ran with them, not the project's.
    let out = env.guild(&["evaluate", "--latest-run"]).ok();
    assert_eq!(out.stdout, "evaluated lr=0.5 epochs=3\n", "{out:?}");
    let (evaluated, eval_dir) = out.started_run();
    let flags =
        |id: &str| -> Vec<(String, String)> { env.get_run(id).flags.into_iter().map(|f| (f.name, f.value)).collect() };
    let want = [
        ("epochs".to_string(), "3".to_string()),
        ("lr".to_string(), "0.5".to_string()),
    ];
    assert_eq!(flags(&evaluated), want);
    assert_eq!(
        run_db_rows(&env, &eval_dir, "SELECT name, value FROM flag ORDER BY rowid"),
        [
            ("lr".to_string(), "0.5".to_string()),
            ("epochs".to_string(), "3".to_string())
        ]
    );
    let cmd = run_db_rows(&env, &eval_dir, "SELECT name, value FROM attr WHERE name = 'cmd'");
    assert!(cmd[0].1.contains(r#""--lr","0.5""#), "{cmd:?}");

    // Evaluating a named run, with a flag of the command line over the run's own.
    let out = env.guild(&["evaluate", &trained, "epochs=1"]).ok();
    assert_eq!(out.stdout, "evaluated lr=0.5 epochs=1\n", "{out:?}");
    let (evaluated, _) = out.started_run();
    assert_eq!(
        flags(&evaluated),
        [
            ("epochs".to_string(), "1".to_string()),
            ("lr".to_string(), "0.5".to_string())
        ]
    );
    // --preview says the same.
    let out = env.guild(&["evaluate", &trained, "--preview"]).ok();
    assert!(out.stdout.contains("--lr 0.5"), "{out:?}");
}

#[test]
fn a_purged_runs_id_is_never_given_again() {
    let env = Env::new();
    env.write("Guild", "[model \"m\"]\ntrain = ok\n");
    env.write("ok.py", OK_PY);
    let (id, _) = env.guild(&["train"]).ok().started_run();
    let exported = env.root.join("exported");
    env.guild(&["export", &id, exported.to_str().unwrap()]).ok();

    let import = |env: &Env| -> String {
        let out = env.guild(&["import", "--rename", exported.to_str().unwrap()]).ok();
        env.runs_json()[0]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{out:?}"))
            .to_string()
    };
    let second = import(&env);
    assert_eq!(second, format!("{id}-2"));
    env.guild(&["runs", "delete", &second]).ok();
    env.guild(&["runs", "purge", &second]).ok();
    // The purged id is not given again.
    assert_eq!(import(&env), format!("{id}-3"));

    // Nor by the next daemon: purged ids are kept in index.db.
    env.guild(&["daemon", "stop"]).ok();
    env.guild(&["runs", "delete", &format!("{id}-3")]).ok();
    env.guild(&["runs", "purge", &format!("{id}-3")]).ok();
    assert_eq!(import(&env), format!("{id}-4"));
    let ids: Vec<String> = env
        .runs_json()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, [format!("{id}-4"), id.clone()]);
}
