//! Every way a run ends: completed, error (exit status), terminated (stop, Ctrl-C),
//! error (missing Python module) and failed (a program that cannot start).

use std::process::Stdio;

use guild_proto::v1::{self as pb, RunStatus};

use crate::helpers::*;

/// A project with one model per behaviour.
fn status_project() -> Env {
    let env = Env::new();
    env.write(
        "Guild",
        r#"[project]
name = statuses

[model "ok"]
train = ok

[model "exit3"]
train = exit3

[model "sleeper"]
train = sleeper

[model "nomodule"]
train = no_such_module_e2e

[model "missing"]
train = !./missing-program
"#,
    );
    env.write("ok.py", OK_PY);
    env.write("exit3.py", EXIT3_PY);
    env.write("sleeper.py", SLEEPER_PY);
    env
}

#[test]
fn watch_runs_sees_pending_running_completed() {
    let env = status_project();
    env.guild(&["daemon", "start"]).ok();
    let (events, id) = env.block_on(async {
        // Subscribe first: the snapshot (no runs yet), then every change.
        let mut stream = env
            .runs_client()
            .await
            .watch_runs(pb::WatchRunsRequest::default())
            .await
            .expect("WatchRuns")
            .into_inner();
        let start = tokio::task::spawn_blocking({
            let cmd = env.guild_command(&["train", "ok", "--background"]);
            move || {
                let mut cmd = cmd;
                cmd.output().expect("cannot run guild")
            }
        });
        let output = start.await.unwrap();
        assert!(output.status.success(), "{output:?}");
        let id = String::from_utf8(output.stdout).unwrap().trim().to_string();
        let mut events = Vec::new();
        let collect = async {
            let mut snapshot_done = false;
            while let Some(event) = stream.message().await.expect("WatchRuns stream") {
                if event.snapshot_done {
                    // The (empty) snapshot ends before any change.
                    assert!(!snapshot_done && events.is_empty() && event.run.is_none(), "{event:?}");
                    snapshot_done = true;
                    continue;
                }
                assert!(snapshot_done, "a change before the snapshot's end: {event:?}");
                let run = event.run.expect("event without run");
                assert_eq!(run.id, id, "an event for another run");
                let status = run.status();
                events.push(run);
                if status == RunStatus::Completed {
                    break;
                }
            }
        };
        tokio::time::timeout(TIMEOUT, collect)
            .await
            .unwrap_or_else(|_| panic!("run {id} did not complete; events: {events:#?}"));
        (events, id)
    });
    let statuses: Vec<RunStatus> = events.iter().map(|r| r.status()).collect();
    assert_eq!(
        statuses,
        [RunStatus::Pending, RunStatus::Running, RunStatus::Completed],
        "status changes of {id}"
    );
    let (running, done) = (&events[1], &events[2]);
    assert!(running.pid > 0 && running.started_ms > 0, "{running:?}");
    assert_eq!(done.exit_status, Some(0));
    assert!(done.stopped_ms >= done.started_ms, "{done:?}");
    let lines: Vec<String> = env.output_lines(&id).into_iter().map(|l| l.text).collect();
    assert_eq!(lines, ["hello from ok", "step: 1", "loss: 0.5"]);
}

#[test]
fn exit_status_3_is_an_error() {
    let env = status_project();
    let out = env.guild(&["train", "exit3"]).exits(3);
    assert_eq!(out.stdout, "about to exit 3\n", "{out:?}");
    let (id, run_dir) = out.started_run();
    let run = env.get_run(&id).run.unwrap();
    assert_eq!(run.status(), RunStatus::Error, "{run:?}");
    assert_eq!(run.exit_status, Some(3));
    let json = env.runs_json();
    assert_eq!(json[0]["status"], "error");
    assert_eq!(json[0]["exit_status"], 3);
    let attrs = env.get_run(&id).attrs;
    let attr = |name: &str| attrs.iter().find(|a| a.name == name).map(|a| a.value.as_str());
    assert_eq!(attr("exit_status"), Some("3"));
    assert_eq!(attr("status"), Some("error"));
    assert_eq!(
        run_db_output(&env, &run_dir),
        [("stdout".to_string(), "about to exit 3".to_string())]
    );
}

#[test]
fn stop_terminates_a_running_run() {
    let env = status_project();
    let out = env.guild(&["train", "sleeper", "--background"]).ok();
    let id = out.stdout.trim().to_string();
    assert_eq!(out.started_run().0, id, "{out:?}");
    env.wait_run(&id, &[RunStatus::Running]);
    env.wait_output(&id, |l| l == "ready");

    let stop = env.guild(&["stop", &id]).ok();
    assert_eq!(stop.stderr, format!("Stopping {id}\n"), "{stop:?}");
    let run = env.wait_run(
        &id,
        &[
            RunStatus::Terminated,
            RunStatus::Completed,
            RunStatus::Error,
            RunStatus::Failed,
        ],
    );
    assert_eq!(run.status(), RunStatus::Terminated, "{run:?}");
    assert_eq!(run.exit_status, Some(-libc::SIGTERM), "killed by SIGTERM: {run:?}");
    assert!(!process_alive(run.pid), "the supervisor still runs");

    env.wait_idle();
    let again = env.guild(&["stop", &id]).exits(1);
    assert_eq!(
        again.stderr,
        format!("guild: run {id} is not running (status terminated)\n")
    );
    let runs = env.guild(&["runs"]).ok();
    assert!(
        runs.stdout.lines().next().unwrap_or_default().contains(" terminated "),
        "{runs:?}"
    );
}

#[test]
fn missing_python_module_is_an_error() {
    let env = status_project();
    let out = env.guild(&["train", "nomodule"]).exits(1);
    assert!(out.stderr.contains("No module named no_such_module_e2e"), "{out:?}");
    let (id, run_dir) = out.started_run();
    let run = env.get_run(&id).run.unwrap();
    assert_eq!(run.status(), RunStatus::Error, "{run:?}");
    assert_eq!(run.exit_status, Some(1));
    let rows = run_db_output(&env, &run_dir);
    assert!(
        rows.iter()
            .any(|(stream, line)| stream == "stderr" && line.contains("No module named")),
        "{rows:?}"
    );
}

#[test]
fn program_that_cannot_start_fails() {
    let env = status_project();
    let out = env.guild(&["train", "missing"]).exits(1);
    let (id, run_dir) = out.started_run();
    let run = env.get_run(&id).run.unwrap();
    assert_eq!(run.status(), RunStatus::Failed, "{run:?}");
    // The program is the project folder joined with `./missing-program`.
    assert!(
        run.reason
            .starts_with(&format!("cannot start {}/", env.project.display()))
            && run
                .reason
                .ends_with("missing-program: No such file or directory (os error 2)"),
        "reason {:?}",
        run.reason
    );
    assert_eq!(run.exit_status, None);
    assert!(
        out.stderr.contains(&format!("guild: run {id} failed: {}", run.reason)),
        "{out:?}"
    );
    let errors = std::fs::read_to_string(run_dir.join("guild.d/errors.log")).unwrap();
    assert!(errors.contains(&run.reason), "errors.log: {errors:?}");
    assert_eq!(env.runs_json()[0]["status"], "failed");
}

#[test]
fn ctrl_c_stops_the_run_and_exits_130() {
    let env = status_project();
    let mut cmd = env.guild_command(&["train", "sleeper"]);
    // Its own process group, as a shell gives a foreground job: Ctrl-C signals the group.
    cmd.process_group(0).stdout(Stdio::piped()).stderr(Stdio::piped());
    use std::os::unix::process::CommandExt;
    let mut child = cmd.spawn().expect("cannot start guild train");
    let cli_pid = child.id();
    let stdout = lines_of(child.stdout.take().unwrap());
    let stderr = lines_of(child.stderr.take().unwrap());

    let run_line = expect_line(&stderr, "Run ID", |l| l.starts_with("Run "));
    let id = run_line.split(' ').nth(1).unwrap().to_string();
    env.wait_run(&id, &[RunStatus::Running]);
    expect_line(&stdout, "ready", |l| l == "ready");
    // The CLI installs its Ctrl-C handler once it follows the output: ask the kernel.
    wait_until("guild to catch SIGINT", || catches_signal(cli_pid, libc::SIGINT));

    // SAFETY: signals the process group of our own child.
    assert_eq!(unsafe { libc::kill(-(cli_pid as libc::pid_t), libc::SIGINT) }, 0);
    let status = wait_child(child, "guild train after Ctrl-C");
    assert_eq!(status.code(), Some(130), "guild train exit after Ctrl-C");
    expect_line(&stderr, "Stopping run", |l| {
        l == format!("Stopping run {id} (Ctrl-C again to leave it stopping in the background)")
    });

    let run = env.get_run(&id).run.unwrap();
    assert_eq!(run.status(), RunStatus::Terminated, "{run:?}");
    assert_eq!(run.exit_status, Some(-libc::SIGTERM));
    assert!(!process_alive(run.pid), "the run's supervisor still runs");
}

/// When `guild train` returns, run.db is closed and whole: a reader that waits for nothing
/// (busy timeout 0), opened at once, reads every line, never "database is locked".
#[test]
fn run_db_is_readable_the_moment_train_returns() {
    use sqlx::Connection;
    let env = Env::new();
    env.write("Guild", "[model \"m\"]\ntrain = chatty\n");
    env.write("chatty.py", "for i in range(200000):\n    print(f'line {i}')\n");
    for _ in 0..3 {
        let out = env.guild(&["train"]).ok();
        let (_, run_dir) = out.started_run();
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(run_dir.join("guild.d").join("run.db"))
            .busy_timeout(std::time::Duration::ZERO);
        let count: i64 = env.block_on(async {
            let mut conn = sqlx::sqlite::SqliteConnection::connect_with(&options)
                .await
                .expect("open run.db");
            sqlx::query_scalar("SELECT count(*) FROM output")
                .fetch_one(&mut conn)
                .await
                .expect("read run.db the moment train returned")
        });
        assert_eq!(count, 200_000);
    }
}
