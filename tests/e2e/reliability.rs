//! The daemon dies hard (SIGKILL) while a run prints as fast as it can: the run goes on,
//! the next daemon adopts it, and run.db ends up with every line and sample exactly once.

use guild_proto::v1::RunStatus;

use crate::helpers::*;

/// Prints 100,000 numbered lines and as many scalars, then exits 5.
const CHATTY: &str = "import sys\nw = sys.stdout.write\nfor i in range(100000):\n    w(f'line {i}\\n')\n    \
                      w(f'x: {i}\\n')\n    if i % 1000 == 0: sys.stdout.flush()\nsys.exit(5)\n";

#[test]
fn kill_9_of_the_daemon_loses_and_doubles_nothing() {
    let env = Env::new();
    env.write(
        "Guild",
        "[project]\nstats_interval = 0\n\n[model \"m\"]\ntrain = chatty\n",
    );
    env.write("chatty.py", CHATTY);
    let (id, run_dir) = env.guild(&["train", "--background"]).ok().started_run();
    let run = env.wait_run(&id, &[RunStatus::Running]);
    // Kill the daemon as soon as it has committed some of the output.
    env.wait_output(&id, |l| l == "line 10");
    let daemon = env.try_status().expect("the daemon answers").pid;
    // SAFETY: kill(2) of the daemon this test started (through the CLI).
    unsafe { libc::kill(daemon as libc::pid_t, libc::SIGKILL) };
    wait_until("the killed daemon to be gone", || !process_alive(daemon));
    assert!(
        process_alive(run.pid) || run_dir.join("guild.d/exit").exists(),
        "the run died with the daemon"
    );

    // The next command starts a daemon, which adopts the run (or records its end).
    env.guild(&["runs"]).ok();
    let done = env.wait_run(
        &id,
        &[
            RunStatus::Completed,
            RunStatus::Error,
            RunStatus::Failed,
            RunStatus::Terminated,
        ],
    );
    assert_eq!(done.status(), RunStatus::Error, "{done:?}");
    assert_eq!(done.exit_status, Some(5));

    env.block_on(async {
        let mut db = open_run_db(&run_dir).await;
        let lines: Vec<String> = sqlx::query_scalar("SELECT line FROM output WHERE line LIKE 'line %' ORDER BY seq")
            .fetch_all(&mut db)
            .await
            .unwrap();
        assert_eq!(lines.len(), 100_000, "lines lost or doubled");
        for (i, line) in lines.iter().enumerate() {
            assert_eq!(line, &format!("line {i}"), "out of order or doubled at {i}");
        }
        let (count, distinct, max): (i64, i64, f64) =
            sqlx::query_as("SELECT count(*), count(DISTINCT value), max(value) FROM scalar WHERE key = 'x'")
                .fetch_one(&mut db)
                .await
                .unwrap();
        assert_eq!((count, distinct, max), (100_000, 100_000, 99_999.0));
    });
    // The index's summary was rebuilt across the restart without double counting.
    let x = env
        .get_run(&id)
        .series
        .into_iter()
        .find(|k| k.key == "x")
        .expect("x summary");
    assert_eq!(x.count, 100_000);
}
