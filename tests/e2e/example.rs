//! The MNIST example end to end through the `guild` binary: prepare, train, list,
//! evaluate, and what the train run recorded in its run.db and guild.d.

use std::path::Path;

use crate::helpers::*;

#[test]
fn mnist_prepare_train_evaluate() {
    let env = Env::mnist();
    let project = env.project.clone();

    // prepare: writes the data set into the project.
    let prepare = env.guild(&["prepare"]).ok();
    let (prepare_id, _) = prepare.started_run();
    for (split, count) in [("train", 3000), ("validation", 500), ("test", 500)] {
        assert!(
            prepare
                .stdout
                .contains(&format!("wrote {count} examples to ./data/{split}.csv")),
            "{prepare:?}"
        );
        let csv = std::fs::read_to_string(project.join("data").join(format!("{split}.csv")))
            .unwrap_or_else(|e| panic!("prepare did not write data/{split}.csv: {e}"));
        assert_eq!(csv.lines().count(), count, "rows in data/{split}.csv");
        assert_eq!(csv.lines().next().unwrap().split(',').count(), 65);
    }

    // train with a flag override; a secret in the environment must not be recorded.
    let train = env
        .guild_env(
            &["train", "epochs=2"],
            &[
                ("SECRET_TOKEN", "x"),
                ("GUILD_E2E_MARKER", "visible"),
                ("USER", "e2e-user"),
            ],
        )
        .ok();
    let (id, run_dir) = train.started_run();
    assert!(
        train
            .stderr
            .contains(&format!("Run {id} (intro:train) in {}", run_dir.display())),
        "{train:?}"
    );
    assert_eq!(run_dir, project.join("runs").join(&id), "run dir");
    // STAMP-intro, or STAMP-intro-N when prepare started in the same second.
    assert!(id.len() >= 22 && id[16..].starts_with("-intro"), "run id {id}");
    let stdout = train.stdout_lines();
    assert_eq!(
        stdout.first().copied(),
        Some("Training intro: 3000 examples, batch 100, 2 epochs"),
        "{train:?}"
    );
    assert!(stdout.iter().any(|l| l.starts_with("step: ")), "{train:?}");
    let printed_losses: Vec<f64> = stdout
        .iter()
        .filter_map(|l| l.strip_prefix("loss: "))
        .map(|v| v.parse().expect("loss value"))
        .collect();
    assert!(printed_losses.len() >= 2, "{train:?}");
    assert_eq!(
        stdout.last().copied().unwrap_or_default(),
        format!("Saved model to {}/model/weights.json", run_dir.display())
    );
    assert!(run_dir.join("model/weights.json").is_file());

    // guild runs: the train run is index 1 and completed, prepare is index 2.
    let runs = env.guild(&["runs"]).ok();
    let rows: Vec<Vec<&str>> = runs.stdout.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 2, "{runs:?}");
    assert_eq!(
        rows[0][..5],
        ["1", id.as_str(), "intro", "train", "completed"],
        "{runs:?}"
    );
    assert_eq!(
        rows[1][..5],
        ["2", prepare_id.as_str(), "intro", "prepare", "completed"],
        "{runs:?}"
    );

    // guild list-series 1: the loss key with as many samples as were printed.
    let series = env.guild(&["list-series", "1"]).ok();
    let loss_row: Vec<&str> = series
        .stdout
        .lines()
        .find(|l| l.starts_with("loss "))
        .unwrap_or_else(|| panic!("no loss row in {series:?}"))
        .split_whitespace()
        .collect();
    assert_eq!(
        loss_row[4],
        printed_losses.len().to_string(),
        "loss count in {series:?}"
    );
    assert_eq!(
        loss_row[1].parse::<f64>().unwrap(),
        *printed_losses.last().unwrap(),
        "last loss in {series:?}"
    );

    // guild series --csv gives the samples with their steps.
    let csv = env.guild(&["series", "1", "loss", "--csv"]).ok();
    let csv_lines = csv.stdout_lines();
    assert_eq!(csv_lines[0], "step,time_ms,value");
    let csv_values: Vec<f64> = csv_lines[1..]
        .iter()
        .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(csv_values, printed_losses);

    // evaluate the latest train run.
    let evaluate = env.guild(&["evaluate", "--latest-run"]).ok();
    let (eval_id, _) = evaluate.started_run();
    assert!(evaluate.stderr.contains("(intro:evaluate)"), "{evaluate:?}");
    let acc: f64 = evaluate
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("test_acc: "))
        .unwrap_or_else(|| panic!("no test_acc in {evaluate:?}"))
        .parse()
        .unwrap();
    assert!((0.0..=1.0).contains(&acc), "test_acc {acc}");

    // guild runs --json: newest first, statuses and exit statuses.
    let json = env.runs_json();
    let summary: Vec<(&str, &str, &str)> = json
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap(),
                r["op"].as_str().unwrap(),
                r["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (eval_id.as_str(), "evaluate", "completed"),
            (id.as_str(), "train", "completed"),
            (prepare_id.as_str(), "prepare", "completed"),
        ]
    );
    for run in &json {
        assert_eq!(run["exit_status"], 0, "{run}");
        assert_eq!(run["project_dir"], project.to_str().unwrap(), "{run}");
        assert_eq!(run["project_name"], "MNIST", "{run}");
    }
    assert_eq!(json[0]["source_run"], id.as_str(), "evaluate's source run");

    check_run_db(&env, &id, &run_dir, &stdout);
    check_guild_d(&project, &run_dir);
}

/// What the train run recorded in its run.db, read with SQL.
fn check_run_db(env: &Env, id: &str, run_dir: &Path, printed: &[&str]) {
    let rundir = run_dir.to_str().unwrap();
    env.block_on(async {
        let mut db = open_run_db(run_dir).await;

        let flags = pairs(&mut db, "flag").await;
        let flags: Vec<(&str, &str)> = flags.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        assert_eq!(
            flags,
            [
                ("datadir", "./data"),
                ("rundir", "$RUNDIR"),
                ("batch_size", "100"),
                ("epochs", "2"),
                ("learning_rate", "0.5"),
            ],
            "flag table"
        );

        let attrs: std::collections::HashMap<String, String> = pairs(&mut db, "attr").await.into_iter().collect();
        let attr = |name: &str| {
            attrs
                .get(name)
                .unwrap_or_else(|| panic!("no attr {name} in {attrs:#?}"))
                .as_str()
        };
        assert_eq!(attr("id"), id);
        assert_eq!(attr("model"), "intro");
        assert_eq!(attr("op"), "train");
        assert_eq!(attr("exit_status"), "0");
        assert_eq!(attr("status"), "completed");
        assert!(attr("pid").parse::<u32>().unwrap() > 0, "pid attr");
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        assert_eq!(attr("host"), hostname.trim());
        assert_eq!(attr("user"), "e2e-user", "user comes from the client's USER");
        let started: i64 = attr("started").parse().unwrap();
        let stopped: i64 = attr("stopped").parse().unwrap();
        assert!(
            started > 0 && stopped >= started,
            "started {started}, stopped {stopped}"
        );

        let cmd: Vec<String> = serde_json::from_str(attr("cmd")).expect("cmd is a JSON array");
        assert_eq!(cmd[..3], ["python3", "-um", "intro"], "cmd {cmd:?}");
        assert!(
            cmd.windows(2).any(|w| w == ["--epochs", "2"]),
            "cmd {cmd:?} lacks --epochs 2"
        );
        assert!(
            cmd.windows(2).any(|w| w == ["--rundir", rundir]),
            "cmd {cmd:?} lacks --rundir {rundir}"
        );
        assert!(!cmd.iter().any(|a| a.contains("$RUNDIR")), "cmd {cmd:?}");

        let env_attr: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(attr("env")).expect("env is a JSON object");
        let secrets: Vec<&String> = env_attr
            .keys()
            .filter(|k| {
                let k = k.to_ascii_uppercase();
                k.contains("TOKEN") || k.contains("SECRET")
            })
            .collect();
        assert!(secrets.is_empty(), "env attr records secrets: {secrets:?}");
        assert_eq!(env_attr["GUILD_E2E_MARKER"], "visible", "client env recorded");
        assert_eq!(env_attr["RUNDIR"], rundir);
        assert_eq!(env_attr["GUILD_RUN_ID"], id);

        // output: every printed line, stdout, in order, with non-decreasing times.
        let rows =
            sqlx::query_as::<_, (i64, i64, String, String)>("SELECT seq, time, stream, line FROM output ORDER BY seq")
                .fetch_all(&mut db)
                .await
                .unwrap();
        let lines: Vec<&str> = rows.iter().map(|r| r.3.as_str()).collect();
        assert_eq!(lines, printed, "output rows are what guild train printed");
        assert!(rows.iter().all(|r| r.2 == "stdout"), "streams: {rows:?}");
        assert!(
            rows.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
            "seq must increase and time must not go back"
        );
        assert!(rows[0].1 >= started, "first line before the run started");

        // series: the loss samples with their steps, as printed.
        let loss = sqlx::query_as::<_, (Option<i64>, i64, Option<f64>)>(
            "SELECT step, time, value FROM scalar WHERE key = 'loss' ORDER BY time, step",
        )
        .fetch_all(&mut db)
        .await
        .unwrap();
        let printed_losses: Vec<f64> = printed
            .iter()
            .filter_map(|l| l.strip_prefix("loss: "))
            .map(|v| v.parse().unwrap())
            .collect();
        let values: Vec<f64> = loss.iter().map(|s| s.2.expect("loss value")).collect();
        assert_eq!(values, printed_losses, "loss samples");
        let steps: Vec<i64> = loss.iter().map(|s| s.0.expect("loss step")).collect();
        assert_eq!(steps[0], 1, "first loss is at step 1");
        assert!(steps.windows(2).all(|w| w[0] < w[1]), "steps {steps:?}");
        let printed_steps: Vec<i64> = printed
            .iter()
            .filter_map(|l| l.strip_prefix("step: "))
            .map(|v| v.parse().unwrap())
            .collect();
        assert!(
            steps.iter().all(|s| printed_steps.contains(s)),
            "loss steps {steps:?} are printed steps"
        );
        let keys: Vec<String> = sqlx::query_scalar("SELECT key FROM series_key ORDER BY key")
            .fetch_all(&mut db)
            .await
            .unwrap();
        // The output scalars; collectors add namespaced keys (sys/..., tf/...) beside them.
        let (collected, scalars): (Vec<&str>, Vec<&str>) =
            keys.iter().map(String::as_str).partition(|k| k.contains('/'));
        assert_eq!(
            scalars,
            ["acc", "loss", "step", "val_acc", "val_loss"],
            "series keys besides {collected:?}"
        );
    });
}

/// The run's guild.d: the Guild file, the source snapshot and errors.log.
fn check_guild_d(project: &Path, run_dir: &Path) {
    let guild_d = run_dir.join("guild.d");
    let same = |a: &Path, b: &Path| {
        assert_eq!(
            std::fs::read(a).unwrap_or_else(|e| panic!("{}: {e}", a.display())),
            std::fs::read(b).unwrap(),
            "{} differs from {}",
            a.display(),
            b.display()
        )
    };
    same(&guild_d.join("Guild"), &project.join("Guild"));
    let sources = guild_d.join("sources");
    for name in ["Guild", "intro.py", "digits.py", "expert.py"] {
        same(&sources.join(name), &project.join(name));
    }
    assert!(!sources.join("data").exists(), "sources holds the data");
    assert!(!sources.join("runs").exists(), "sources holds the runs");
    let errors = guild_d.join("errors.log");
    assert!(errors.is_file(), "no {}", errors.display());
    assert_eq!(std::fs::read_to_string(&errors).unwrap(), "", "errors.log");
    let exit: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(guild_d.join("exit")).unwrap()).unwrap();
    assert_eq!(exit["exit_code"], 0, "guild.d/exit");
}
