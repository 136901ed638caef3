//! The daemon's life: auto-start, status, stop, its socket's permissions, one daemon
//! per data dir, stale sockets, and runs that outlive the daemon.

use std::os::unix::fs::FileTypeExt;

use guild_proto::v1::RunStatus;

use crate::helpers::*;

/// `guildd VERSION (protocol N) pid PID` from `guild daemon status`.
#[track_caller]
fn status_pid(out: &Out) -> u32 {
    let first = out.stdout.lines().next().unwrap_or_default();
    let rest = first
        .strip_prefix(&format!(
            "guildd {} (protocol {}) pid ",
            guild_proto::VERSION,
            guild_proto::PROTOCOL
        ))
        .unwrap_or_else(|| panic!("unexpected daemon status {out:?}"));
    rest.parse().unwrap_or_else(|_| panic!("no pid in {out:?}"))
}

#[test]
fn auto_start_status_and_stop() {
    let env = Env::new();
    let not_running = format!("guildd is not running (socket {})\n", env.socket.display());

    let before = env.guild(&["daemon", "status"]).exits(1);
    assert_eq!(before.stdout, not_running);

    // Any command that needs the daemon starts one.
    let runs = env.guild(&["runs"]).ok();
    assert_eq!(runs.stdout, "", "no runs yet: {runs:?}");

    let status = env.guild(&["daemon", "status"]).ok();
    let pid = status_pid(&status);
    let lines = status.stdout_lines();
    assert_eq!(
        lines[1..3],
        [
            format!("  socket:   {}", env.socket.display()),
            format!("  data dir: {}", env.data_dir.display()),
        ],
        "{status:?}"
    );
    // TCP (dashboard, token required) is on by default: 127.0.0.1:6333, or a free port
    // when another daemon holds that one.
    assert!(lines[3].starts_with("  tcp:      127.0.0.1:"), "{status:?}");
    assert_eq!(lines[4], "  running:  0", "{status:?}");
    let lock = std::fs::read_to_string(env.data_dir.join("guildd.lock")).unwrap();
    assert_eq!(lock.trim(), pid.to_string(), "the lock file names the daemon");
    assert!(process_alive(pid));
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/exe")).unwrap(),
        guildd_exe().canonicalize().unwrap(),
        "pid {pid} is not guildd"
    );
    assert_eq!(env.try_status().unwrap().pid, pid, "GetStatus pid");

    // The socket is the daemon's alone: 0600 in a folder only its user may enter.
    let meta = std::fs::metadata(&env.socket).unwrap();
    assert!(meta.file_type().is_socket(), "not a socket");
    assert_eq!(mode(&env.socket), 0o600, "socket mode");
    let folder = env.socket.parent().unwrap();
    assert_eq!(
        mode(folder) & 0o077,
        0,
        "socket folder {} is open to others: {:o}",
        folder.display(),
        mode(folder)
    );
    assert_eq!(mode(&env.data_dir.join("guildd.lock")), 0o600, "lock mode");

    let stop = env.guild(&["daemon", "stop"]).ok();
    assert_eq!(stop.stdout, format!("Stopped guildd (pid {pid})\n"));
    let after = env.guild(&["daemon", "status"]).exits(1);
    assert_eq!(after.stdout, not_running);
    // `daemon stop` returns once the socket stops answering; the daemon then removes
    // the socket file and exits.
    wait_until("the stopped daemon to exit", || !process_alive(pid));
    assert!(!env.socket.exists(), "the daemon left its socket behind");
    let again = env.guild(&["daemon", "stop"]).ok();
    assert_eq!(again.stdout, "guildd is not running\n");
}

/// With only GUILD_DATA_DIR set, the socket lives in the data dir; that folder must be
/// private too, also when the CLI creates it to auto-start the daemon.
#[test]
fn default_socket_folder_is_private() {
    let env = Env::new();
    let socket = env.data_dir.join("guildd.sock");
    let guild = |args: &[&str]| {
        let mut cmd = env.guild_command(args);
        cmd.env_remove("GUILD_SOCKET");
        cmd.output().expect("cannot run guild")
    };
    assert!(guild(&["runs"]).status.success());
    let socket_mode = mode(&socket);
    let folder_mode = mode(&env.data_dir);
    assert!(guild(&["daemon", "stop"]).status.success());
    assert_eq!(socket_mode, 0o600, "socket mode");
    assert_eq!(
        folder_mode & 0o077,
        0,
        "data dir (the socket's folder) mode {folder_mode:o}"
    );
}

#[test]
fn one_daemon_per_data_dir() {
    let env = Env::new();
    let pid = status_pid(&env.guild(&["daemon", "start"]).ok());

    // Same data dir, another socket: the data dir's lock refuses it.
    let other_socket = env.root.join("other.sock");
    let second = env
        .guildd(&[
            "--data-dir",
            env.data_dir.to_str().unwrap(),
            "--socket",
            other_socket.to_str().unwrap(),
        ])
        .exits(1);
    assert_eq!(
        second.stderr,
        format!(
            "guildd: another guildd (pid {pid}) is running for data dir {}\n",
            env.data_dir.display()
        )
    );
    assert!(!other_socket.exists(), "the refused daemon bound a socket");

    // Another data dir, same socket: the live socket is not taken over.
    let third = env
        .guildd(&[
            "--data-dir",
            env.root.join("d2").to_str().unwrap(),
            "--socket",
            env.socket.to_str().unwrap(),
        ])
        .exits(1);
    assert_eq!(
        third.stderr,
        format!("guildd: another daemon is listening on {}\n", env.socket.display())
    );

    // The first daemon is untouched.
    let status = env.guild(&["daemon", "status"]).ok();
    assert_eq!(status_pid(&status), pid);
}

#[test]
fn stale_socket_is_replaced() {
    let env = Env::new();
    let folder = env.socket.parent().unwrap();
    std::fs::create_dir(folder).unwrap();
    std::fs::set_permissions(folder, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    // A socket file nobody listens on, as a killed daemon leaves.
    drop(std::os::unix::net::UnixListener::bind(&env.socket).unwrap());
    let stale = std::fs::metadata(&env.socket).expect("the stale socket file");
    assert!(stale.file_type().is_socket());
    assert!(env.try_status().is_none(), "something answers on the stale socket");

    env.guild(&["runs"]).ok();
    let pid = status_pid(&env.guild(&["daemon", "status"]).ok());
    let fresh = std::fs::metadata(&env.socket).unwrap();
    assert!(fresh.file_type().is_socket());
    assert_eq!(mode(&env.socket), 0o600);
    assert_eq!(env.try_status().unwrap().pid, pid);
}

/// A project whose op waits for the file `go` in the project, then exits with `code`.
fn waiter_project() -> Env {
    let env = Env::new();
    env.write("Guild", "[model \"waiter\"]\ntrain = waiter\n\n[flags]\ncode = 0\n");
    env.write("waiter.py", WAITER_PY);
    env
}

#[test]
fn next_daemon_adopts_a_run_left_running() {
    let env = waiter_project();
    let id = env.guild(&["train", "--background"]).ok().stdout.trim().to_string();
    let run = env.wait_run(&id, &[RunStatus::Running]);
    env.wait_output(&id, |l| l == "waiting for go");
    let first_pid = status_pid(&env.guild(&["daemon", "status"]).ok());

    // Stop the daemon but not its runs.
    let stop = env.guild(&["daemon", "stop"]).ok();
    assert_eq!(
        stop.stdout,
        format!(
            "Stopped guildd (pid {first_pid}); 1 run(s) keep running and are adopted by the \
             next daemon (use --stop-runs to stop them)\n"
        )
    );
    env.guild(&["daemon", "status"]).exits(1);
    wait_until("the stopped daemon to exit", || !process_alive(first_pid));
    assert!(process_alive(run.pid), "the run died with the daemon");
    let guild_d = std::path::Path::new(&run.run_dir).join("guild.d");
    assert!(!guild_d.join("exit").exists(), "the run ended early");

    // The next command starts a daemon that adopts the run.
    let runs = env.guild(&["runs"]).ok();
    let row: Vec<&str> = runs.stdout.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(row[..5], ["1", id.as_str(), "waiter", "train", "running"], "{runs:?}");
    let second_pid = status_pid(&env.guild(&["daemon", "status"]).ok());
    assert_ne!(second_pid, first_pid);
    assert!(process_alive(run.pid));

    std::fs::write(env.project.join("go"), "").unwrap();
    let done = env.wait_run(&id, &[RunStatus::Completed, RunStatus::Error, RunStatus::Failed]);
    assert_eq!(done.status(), RunStatus::Completed, "{done:?}");
    assert_eq!(done.exit_status, Some(0));
    // Every line exactly once, across the two daemons.
    assert_eq!(
        run_db_output(&env, std::path::Path::new(&run.run_dir)),
        [
            ("stdout".to_string(), "waiting for go".to_string()),
            ("stdout".to_string(), "exiting with 0".to_string()),
        ]
    );
    assert_eq!(env.runs_json()[0]["status"], "completed");
}

#[test]
fn run_that_ended_while_no_daemon_ran_keeps_its_exit_status() {
    let env = waiter_project();
    let id = env
        .guild(&["train", "code=4", "--background"])
        .ok()
        .stdout
        .trim()
        .to_string();
    let run = env.wait_run(&id, &[RunStatus::Running]);
    env.wait_output(&id, |l| l == "waiting for go");
    let daemon_pid = status_pid(&env.guild(&["daemon", "status"]).ok());
    env.guild(&["daemon", "stop"]).ok();
    env.guild(&["daemon", "status"]).exits(1);
    wait_until("the stopped daemon to exit", || !process_alive(daemon_pid));

    // Let the run finish while no daemon watches; its supervisor records the exit.
    std::fs::write(env.project.join("go"), "").unwrap();
    let guild_d = std::path::Path::new(&run.run_dir).join("guild.d");
    wait_until("the run's supervisor to exit", || {
        guild_d.join("exit").is_file() && !process_alive(run.pid)
    });
    let exit: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(guild_d.join("exit")).unwrap()).unwrap();
    assert_eq!(exit["exit_code"], 4, "guild.d/exit: {exit}");
    env.guild(&["daemon", "status"]).exits(1);

    // The next daemon records the true exit status.
    env.guild(&["runs"]).ok();
    let done = env.wait_run(&id, &[RunStatus::Completed, RunStatus::Error, RunStatus::Failed]);
    assert_eq!(done.status(), RunStatus::Error, "{done:?}");
    assert_eq!(done.exit_status, Some(4));
    assert_eq!(done.stopped_ms, exit["ended_ms"].as_i64().unwrap(), "stopped time");
    assert_eq!(
        run_db_output(&env, std::path::Path::new(&run.run_dir)),
        [
            ("stdout".to_string(), "waiting for go".to_string()),
            ("stdout".to_string(), "exiting with 4".to_string()),
        ]
    );
    let attrs = env.get_run(&id).attrs;
    let attr = |name: &str| attrs.iter().find(|a| a.name == name).map(|a| a.value.clone());
    assert_eq!(attr("exit_status").as_deref(), Some("4"));
    assert_eq!(attr("status").as_deref(), Some("error"));
    let json = env.runs_json();
    assert_eq!(
        (json[0]["status"].as_str(), json[0]["exit_status"].as_i64()),
        (Some("error"), Some(4))
    );
}

/// A dashboard's streams never end by themselves: the daemon still stops, after a short grace.
#[test]
fn daemon_stops_with_streams_open() {
    let env = Env::new();
    env.guild(&["daemon", "start", "--listen", "none"]).ok();
    let pid = env.try_status().expect("daemon").pid;
    let stopped = env.block_on(async {
        let mut runs = env.runs_client().await;
        let stream = runs
            .watch_runs(guild_proto::v1::WatchRunsRequest { run: String::new() })
            .await
            .expect("WatchRuns")
            .into_inner();
        let guild = env.guild_command(&["daemon", "stop"]);
        let out = tokio::task::spawn_blocking(move || {
            let mut guild = guild;
            guild.output()
        })
        .await
        .unwrap()
        .unwrap();
        drop(stream);
        out
    });
    assert!(stopped.status.success(), "{stopped:?}");
    assert!(!process_alive(pid));
}

/// `guild daemon stop` with stdin on a terminal (a pty here): asks, then does what the
/// answer says; `n` leaves the run running for the next daemon, `y` stops it.
#[test]
fn daemon_stop_asks_on_a_terminal() {
    use std::io::Write;
    use std::os::fd::{FromRawFd, OwnedFd};

    let env = waiter_project();
    for answer in ["n", "y"] {
        let id = env.guild(&["train", "--background"]).ok().stdout.trim().to_string();
        let run = env.wait_run(&id, &[RunStatus::Running]);
        env.wait_output(&id, |l| l == "waiting for go");
        let pid = status_pid(&env.guild(&["daemon", "status"]).ok());

        let (mut master, mut slave) = (-1, -1);
        // SAFETY: openpty writes two fds into the given ints; the other pointers may be null.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both fds were just opened by openpty and are owned here alone.
        let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let mut child = env
            .guild_command(&["daemon", "stop"])
            .stdin(std::process::Stdio::from(slave))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("guild daemon stop");
        let stderr = lines_of(child.stderr.take().unwrap());
        // The prompt has no newline: it is read whole once the answer ends its line.
        let mut master = std::fs::File::from(master);
        let stdout = child.stdout.take().unwrap();
        // Typed ahead: the answer waits in the terminal until guild reads it.
        writeln!(master, "{answer}").unwrap();
        let prompt = expect_line(&stderr, "the prompt", |l| l.contains("[y/N]"));
        assert_eq!(prompt, "1 run(s) are running. Stop them too? [y/N] ", "{prompt:?}");
        let status = wait_child(child, "guild daemon stop");
        assert!(status.success());
        let printed = std::io::read_to_string(stdout).unwrap();
        wait_until("the stopped daemon to exit", || !process_alive(pid));
        if answer == "n" {
            assert!(printed.contains("1 run(s) keep running"), "{printed:?}");
            assert!(process_alive(run.pid), "the run was left running");
            // The next daemon (started by the next command) adopts it; then it ends.
            env.guild(&["runs"]).ok();
            std::fs::write(env.project.join("go"), "").unwrap();
            let done = env.wait_run(&id, &[RunStatus::Completed, RunStatus::Error, RunStatus::Failed]);
            assert_eq!(done.status(), RunStatus::Completed, "{done:?}");
            std::fs::remove_file(env.project.join("go")).unwrap();
        } else {
            assert_eq!(printed, format!("Stopped guildd (pid {pid}) and 1 running run(s)\n"));
            wait_until("the run's process to end", || !process_alive(run.pid));
            env.guild(&["runs"]).ok();
            let stopped = env.wait_run(&id, &[RunStatus::Terminated, RunStatus::Error, RunStatus::Failed]);
            assert_eq!(stopped.status(), RunStatus::Terminated, "{stopped:?}");
        }
    }
}
