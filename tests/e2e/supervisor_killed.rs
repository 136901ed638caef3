//! The run's supervisor killed (`kill -9` of `guildd supervise`) while its op runs
//! (issue 13, case 3): the op's process group is the run. guildd follows its output to
//! the end, records that the exit status is unknown, `guild stop` stops the group, and
//! the folder cannot be deleted under the op, across a daemon restart too.

use guild_proto::v1::RunStatus;

use crate::helpers::*;

/// Prints a numbered line every 10 ms until the file `go` exists, then `after go`, and
/// exits 0.
const TICKER: &str = r#"import os, time
i = 0
while not os.path.exists("go"):
    print(f"line {i}", flush=True)
    i += 1
    time.sleep(0.01)
print("after go", flush=True)
"#;

const ENDED: [RunStatus; 4] = [
    RunStatus::Completed,
    RunStatus::Error,
    RunStatus::Failed,
    RunStatus::Terminated,
];

fn project() -> Env {
    let env = Env::new();
    env.write(
        "Guild",
        "[project]\nstats_interval = 0\n\n[model \"m\"]\ntrain = ticker\n",
    );
    env.write("ticker.py", TICKER);
    env
}

/// Starts a run, waits for its output, kills its supervisor and waits until guildd has
/// noticed (errors.log says so). Returns the run's id, folder and supervisor pid.
fn start_and_kill_supervisor(env: &Env) -> (String, std::path::PathBuf, u32) {
    let (id, run_dir) = env.guild(&["train", "--background"]).ok().started_run();
    let supervisor = env.wait_run(&id, &[RunStatus::Running]).pid;
    env.wait_output(&id, |l| l == "line 3");
    // SAFETY: kill(2) of the run's supervisor, a process this test's daemon started.
    unsafe { libc::kill(supervisor as libc::pid_t, libc::SIGKILL) };
    let errors = run_dir.join("guild.d/errors.log");
    wait_until("guildd to notice the supervisor's death", || {
        std::fs::read_to_string(&errors).is_ok_and(|e| e.contains("supervisor (pid"))
    });
    (id, run_dir, supervisor)
}

#[test]
fn a_killed_supervisor_leaves_the_op_followed_to_its_end() {
    let env = project();
    let (id, run_dir, supervisor) = start_and_kill_supervisor(&env);
    assert!(!process_alive(supervisor));
    let ops = run_processes(&run_dir);
    assert!(!ops.is_empty(), "the op died with its supervisor");

    // Still a running run: listed so, and its folder stays where the op writes.
    assert_eq!(env.get_run(&id).run.map(|r| r.status()), Some(RunStatus::Running));
    let delete = env.guild(&["runs", "delete", &id]);
    assert_ne!(delete.status.code(), Some(0), "{delete:?}");
    assert!(delete.stderr.contains("stop it first"), "{delete:?}");
    assert!(run_dir.join("guild.d/run.db").is_file());

    // Output written after the supervisor died is captured to the end.
    std::fs::write(env.project.join("go"), "").unwrap();
    env.wait_output(&id, |l| l == "after go");
    let done = env.wait_run(&id, &ENDED);
    assert_eq!(done.status(), RunStatus::Failed, "{done:?}");
    assert_eq!(done.exit_status, None, "{done:?}");
    assert!(done.reason.contains("exit status unknown"), "{done:?}");
    assert!(run_processes(&run_dir).is_empty());
    // Every line, once, in order.
    let lines: Vec<String> = run_db_output(&env, &run_dir).into_iter().map(|(_, l)| l).collect();
    let n = lines.len() - 1;
    assert!(n > 3, "{lines:?}");
    assert!(
        lines[..n].iter().enumerate().all(|(i, l)| *l == format!("line {i}")),
        "{lines:?}"
    );
    assert_eq!(lines[n], "after go");
    let attrs = env.get_run(&id).attrs;
    assert!(
        attrs
            .iter()
            .any(|a| a.name == "reason" && a.value.contains("exit status unknown")),
        "{attrs:?}"
    );
    // Now it can be deleted.
    env.guild(&["runs", "delete", &id]).ok();
}

#[test]
fn guild_stop_stops_the_group_of_a_killed_supervisor_across_a_restart() {
    let env = project();
    let (id, run_dir, _) = start_and_kill_supervisor(&env);
    // The daemon goes away and comes back: it adopts the run by its group.
    env.guild(&["daemon", "stop", "--leave-runs"]).ok();
    wait_until("the daemon to be gone", || env.try_status().is_none());
    assert!(!run_processes(&run_dir).is_empty(), "the op died with the daemon");
    env.guild(&["runs"]).ok();
    assert_eq!(env.get_run(&id).run.map(|r| r.status()), Some(RunStatus::Running));
    assert_eq!(env.try_status().map(|s| s.running_runs), Some(1));

    env.guild(&["stop", &id]).ok();
    let done = env.wait_run(&id, &ENDED);
    assert_eq!(done.status(), RunStatus::Terminated, "{done:?}");
    assert!(run_processes(&run_dir).is_empty(), "the op outlived `guild stop`");
    env.wait_idle();
}
