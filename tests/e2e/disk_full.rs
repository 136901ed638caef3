//! Full disks (issue 13, cases 1 and 2), on real tmpfs mounts: the data folder (index.db)
//! or the run folder (run.db, errors.log, the exit file) fills while a run prints. guildd
//! says so (`guild status`, the run's reason, errors.log), keeps trying, and once there
//! is room every line is stored once and the run's end is recorded.

use guild_proto::v1::RunStatus;

use crate::helpers::*;

/// Prints `line N` and `x: N` until the file named by `--go` exists, then `after go`, and
/// exits 0. A line that cannot be written (the op's own disk is full) is skipped.
const TICKER: &str = r#"import argparse, os, time
p = argparse.ArgumentParser()
p.add_argument("--go", default="go")
a = p.parse_args()
i = 0
def say(text):
    try:
        print(text, flush=True)
    except OSError:
        pass
while not os.path.exists(a.go):
    say(f"line {i} " + "y" * 40)
    say(f"x: {i}")
    i += 1
    time.sleep(0.01)
say("after go")
"#;

const GUILD: &str =
    "[project]\nstats_interval = 0\n\n[flags]\ngo = go\n\n[model \"m\"]\ntrain = ticker\nprepare = ok\n";

fn project(env: &Env) {
    env.write("Guild", GUILD);
    env.write("ticker.py", TICKER);
    env.write("ok.py", OK_PY);
}

const ENDED: [RunStatus; 4] = [
    RunStatus::Completed,
    RunStatus::Error,
    RunStatus::Failed,
    RunStatus::Terminated,
];

/// Waits (asking the daemon) until `guild status` lists a problem that mentions `needle`,
/// or, with `None`, lists none.
#[track_caller]
fn wait_problem(env: &Env, needle: Option<&str>) -> Vec<String> {
    let mut problems = Vec::new();
    wait_until("guild status's problems", || {
        problems = env.try_status().map(|s| s.problems).unwrap_or_default();
        match needle {
            Some(needle) => problems.iter().any(|p| p.contains(needle)),
            None => problems.is_empty(),
        }
    });
    problems
}

/// The run's output lines, from run.db, in order.
fn stored_lines(env: &Env, run_dir: &std::path::Path) -> Vec<String> {
    run_db_output(env, run_dir).into_iter().map(|(_, line)| line).collect()
}

/// The lines the op wrote to stdout.log (the raw file), as the tailer splits them.
fn written_lines(run_dir: &std::path::Path) -> Vec<String> {
    let raw = std::fs::read(run_dir.join("guild.d/stdout.log")).expect("stdout.log");
    String::from_utf8_lossy(&raw).lines().map(str::to_string).collect()
}

#[track_caller]
fn assert_every_line_once(env: &Env, run_dir: &std::path::Path) -> usize {
    let written = written_lines(run_dir);
    let stored = stored_lines(env, run_dir);
    assert!(written.len() > 20, "the op wrote too little to test: {written:?}");
    assert_eq!(
        stored.len(),
        written.len(),
        "lines written {} vs stored {}",
        written.len(),
        stored.len()
    );
    assert!(
        stored == written,
        "stored lines differ from the written ones (lost, doubled or out of order)"
    );
    written.len()
}

#[test]
fn a_full_data_folder_delays_the_index_and_loses_nothing() {
    let env = Env::new();
    let Some(data) = Tmpfs::mount(&env.data_dir, "4m") else {
        return;
    };
    project(&env);
    let (id, run_dir) = env.guild(&["train", "--background"]).ok().started_run();
    env.wait_output(&id, |l| l.starts_with("line 3 "));

    let filler = data.fill();
    // A write the user asks for fails and says why; it does not claim success.
    let label = env.guild(&["label", &id, "while-full"]);
    assert_ne!(label.status.code(), Some(0), "{label:?}");
    assert!(label.stderr.contains("disk is full"), "{label:?}");
    // The run's summaries cannot reach the index: `guild status` says so.
    let problems = wait_problem(&env, Some(&id));
    assert!(
        problems.iter().any(|p| p.contains("index.db") && p.contains("full")),
        "{problems:?}"
    );

    std::fs::remove_file(&filler).unwrap();
    wait_problem(&env, None);
    env.guild(&["label", &id, "after"]).ok();
    std::fs::write(env.project.join("go"), "").unwrap();
    let done = env.wait_run(&id, &ENDED);
    assert_eq!(
        (done.status(), done.exit_status),
        (RunStatus::Completed, Some(0)),
        "{done:?}"
    );
    assert!(done.reason.is_empty(), "{done:?}");

    // The index took every write after the fill: the label, the end, a new run.
    let quick = env.guild(&["prepare"]).ok();
    assert!(quick.stdout.contains("hello from ok"), "{quick:?}");
    let runs = env.runs_json();
    let this = runs.iter().find(|r| r["id"] == id.as_str()).expect("the run is listed");
    assert_eq!(this["label"], "after", "{this}");
    assert_eq!(this["status"], "completed", "{this}");
    assert_eq!(
        runs.iter().filter(|r| r["status"] == "completed").count(),
        2,
        "{runs:?}"
    );

    // run.db has every line once, and the index's summary counts every sample.
    let lines = assert_every_line_once(&env, &run_dir);
    let x = env
        .get_run(&id)
        .series
        .into_iter()
        .find(|k| k.key == "x")
        .expect("x summary");
    assert_eq!(x.count as usize, (lines - 1) / 2, "x summary after the fill");
    let errors = std::fs::read_to_string(run_dir.join("guild.d/errors.log")).unwrap();
    assert!(
        errors.contains("cannot record the run") && errors.contains("recording resumed"),
        "{errors}"
    );
}

#[test]
fn a_full_run_folder_keeps_every_line_and_guild_stop_works() {
    let env = Env::new();
    let Some(disk) = Tmpfs::mount(&env.project, "4m") else {
        return;
    };
    project(&env);
    let (id, run_dir) = env.guild(&["train", "--background"]).ok().started_run();
    env.wait_output(&id, |l| l.starts_with("line 20 "));

    let filler = disk.fill();
    // The batch that cannot be committed is kept; the run's reason and `guild status`
    // say why.
    wait_until("the run's reason to tell of the full disk", || {
        env.get_run(&id)
            .run
            .is_some_and(|r| r.reason.contains("cannot record the run") && r.reason.contains("full"))
    });
    wait_problem(&env, Some("run.db"));
    // Stopped while the disk is full: the op goes; its supervisor waits for room to
    // write the exit status, and the run is not recorded as ended before that.
    env.guild(&["stop", &id]).ok();
    let run = env.get_run(&id).run.expect("run");
    wait_until("the op to be stopped", || run_processes(&run_dir) == [run.pid]);
    assert_eq!(env.get_run(&id).run.map(|r| r.status()), Some(RunStatus::Running));

    std::fs::remove_file(&filler).unwrap();
    let done = env.wait_run(&id, &ENDED);
    assert_eq!(done.status(), RunStatus::Terminated, "{done:?}");
    assert_eq!(done.exit_status, Some(-libc::SIGTERM), "{done:?}");
    assert!(done.reason.is_empty(), "{done:?}");
    assert_every_line_once(&env, &run_dir);
    let errors = std::fs::read_to_string(run_dir.join("guild.d/errors.log")).unwrap();
    assert!(
        errors.contains("cannot record the run") && errors.contains("recording resumed"),
        "{errors}"
    );
    wait_problem(&env, None);
}

#[test]
fn a_run_that_ends_while_both_folders_are_full_is_recorded_when_there_is_room() {
    let env = Env::new();
    let Some(data) = Tmpfs::mount(&env.data_dir, "4m") else {
        return;
    };
    let Some(disk) = Tmpfs::mount(&env.project, "4m") else {
        return;
    };
    project(&env);
    // The file that ends the op is outside both full disks.
    let go = env.root.join("go");
    let go_flag = format!("go={}", go.display());
    let (id, run_dir) = env.guild(&["train", "--background", &go_flag]).ok().started_run();
    env.wait_output(&id, |l| l.starts_with("line 20 "));

    let fillers = [data.fill(), disk.fill()];
    wait_problem(&env, Some(&id));
    std::fs::write(&go, "").unwrap();
    // The op ends while nothing can be written: the run stays running, and says why.
    wait_until("the op to end", || run_processes(&run_dir).len() <= 1);
    assert_eq!(env.get_run(&id).run.map(|r| r.status()), Some(RunStatus::Running));

    for filler in &fillers {
        std::fs::remove_file(filler).unwrap();
    }
    let done = env.wait_run(&id, &ENDED);
    assert_eq!(
        (done.status(), done.exit_status),
        (RunStatus::Completed, Some(0)),
        "{done:?}"
    );
    assert_every_line_once(&env, &run_dir);
    let listed = env.runs_json();
    assert_eq!(listed[0]["status"], "completed", "{listed:?}");
    wait_problem(&env, None);
}

#[test]
fn stats_taken_while_the_run_folder_is_full_are_stored_once_there_is_room() {
    let env = Env::new();
    let Some(disk) = Tmpfs::mount(&env.project, "4m") else {
        return;
    };
    project(&env);
    // Stats every 0.2 s (the shortest interval): the run task's channel holds 16 samples
    // (3.2 s of them), so a 5 s outage overflows it unless the retried batch takes them in.
    env.write("Guild", &GUILD.replace("stats_interval = 0", "stats_interval = 0.2"));
    let go = env.root.join("go");
    let go_flag = format!("go={}", go.display());
    let (id, run_dir) = env.guild(&["train", "--background", &go_flag]).ok().started_run();
    env.wait_output(&id, |l| l.starts_with("line 20 "));

    let filler = disk.fill();
    wait_until("the run's reason to tell of the full disk", || {
        env.get_run(&id)
            .run
            .is_some_and(|r| r.reason.contains("cannot record the run"))
    });
    // The outage itself is what is tested: it lasts 5 s by the clock.
    let full_since = std::time::Instant::now();
    wait_until("5 s of the full disk", || full_since.elapsed() >= std::time::Duration::from_secs(5));
    std::fs::remove_file(&filler).unwrap();
    std::fs::write(&go, "").unwrap();
    let done = env.wait_run(&id, &ENDED);
    assert_eq!(done.status(), RunStatus::Completed, "{done:?}");

    let times: Vec<i64> = env.block_on(async {
        let mut db = open_run_db(&run_dir).await;
        sqlx::query_scalar("SELECT time FROM scalar WHERE key = 'sys/cpu/util' ORDER BY time")
            .fetch_all(&mut db)
            .await
            .unwrap()
    });
    assert!(times.len() > 25, "{} samples: {times:?}", times.len());
    let gap = times.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    assert!(gap < 1000, "stats missing for {gap} ms of the run ({} samples)", times.len());
}
