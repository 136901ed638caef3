//! Issue 13, case 10: small things that went wrong. Output to a full device or a closed
//! pipe (no panic), errors that would quote a 1 MB selector, importing a device, the lock
//! holder's pid, and project answers over 4 MiB.

use std::process::Stdio;

use guild_proto::v1::{self as pb, run_service_client::RunServiceClient};

use crate::helpers::*;

fn one_run() -> Env {
    let env = Env::new();
    env.write("Guild", "[project]\nstats_interval = 0\n\n[model \"m\"]\ntrain = ok\n");
    env.write("ok.py", OK_PY);
    env.guild(&["train"]).ok();
    env
}

#[test]
fn stdout_on_a_full_device_or_a_closed_pipe_is_an_error_not_a_panic() {
    let env = one_run();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    for args in [
        vec!["runs"],
        vec!["runs", "--json"],
        vec!["runs", "info", "1"],
        vec!["list-attrs", "1"],
        vec!["list-series", "1"],
        vec!["compare"],
        vec!["daemon", "status"],
        vec!["watch", "1"],
    ] {
        let out = env
            .guild_command(&args)
            .stdout(full.try_clone().unwrap())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(
            stderr.contains("cannot write to") && stderr.contains("No space left on device"),
            "{args:?}: {stderr}"
        );
    }
    // A reader that goes away (`guild runs | head -0`): quiet, no panic.
    let mut fds = [0; 2];
    // SAFETY: pipe(2) fills two descriptors we own.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both descriptors are ours; the read end is closed at once.
    let (read, write) = unsafe {
        use std::os::fd::FromRawFd;
        (std::fs::File::from_raw_fd(fds[0]), std::fs::File::from_raw_fd(fds[1]))
    };
    drop(read);
    let out = env
        .guild_command(&["runs"])
        .stdout(write)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(out.status.code(), Some(0), "{stderr}");
}

#[test]
fn errors_quote_at_most_a_bounded_part_of_the_request() {
    let env = one_run();
    let huge = "x".repeat(1 << 20);
    env.block_on(async {
        let mut runs = RunServiceClient::new(env.channel().await);
        let err = runs
            .get_run(pb::GetRunRequest { run: huge.clone() })
            .await
            .expect_err("GetRun of a 1 MB selector");
        assert_eq!(
            err.code(),
            tonic::Code::NotFound,
            "{}",
            &err.message()[..200.min(err.message().len())]
        );
        assert!(err.message().len() < 300, "the error is {} bytes", err.message().len());
        assert!(err.message().contains("…"), "{}", err.message());
        let err = runs
            .select_runs(pb::SelectRunsRequest {
                selection: Some(pb::RunSelection {
                    runs: vec![huge.clone(), format!("1:{huge}")],
                    ..Default::default()
                }),
            })
            .await
            .expect_err("SelectRuns of 1 MB selectors");
        assert!(err.message().len() < 300, "the error is {} bytes", err.message().len());
        let err = runs
            .set_label(pb::SetLabelRequest {
                run: "1".into(),
                label: huge.clone(),
            })
            .await
            .expect_err("a 1 MB label");
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert!(err.message().len() < 300, "the error is {} bytes", err.message().len());
    });
    // From the command line too (an argument can be 128 KiB).
    let arg = "y".repeat(120 * 1024);
    let out = env.guild(&["runs", "info", &arg]).exits(1);
    assert!(out.stderr.len() < 300, "{} bytes on stderr", out.stderr.len());
}

#[test]
fn importing_a_device_is_a_clear_invalid_argument() {
    let env = one_run();
    let out = env.guild(&["import", "/dev/zero"]).exits(1);
    assert!(out.stderr.contains("/dev/zero is not a file or a folder"), "{out:?}");
    env.block_on(async {
        let err = RunServiceClient::new(env.channel().await)
            .import_runs(pb::ImportRunsRequest {
                src: "/dev/zero".into(),
                ..Default::default()
            })
            .await
            .expect_err("import of /dev/zero");
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    });
    // A file that is not an archive: the same code, and what was expected.
    let junk = env.root.join("junk.tar.gz");
    std::fs::write(&junk, b"not gzip at all").unwrap();
    let out = env.guild(&["import", junk.to_str().unwrap()]).exits(1);
    assert!(out.stderr.contains("not a .tar.gz of runs"), "{out:?}");
}

#[test]
fn a_refused_daemon_names_the_lock_holder_or_says_its_pid_is_unknown() {
    let env = Env::new();
    std::fs::create_dir_all(&env.data_dir).unwrap();
    // A holder that took the lock and has not written its pid yet.
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(env.data_dir.join("guildd.lock"))
        .unwrap();
    lock.try_lock().expect("the fresh lock file is free");
    let data_dir = env.data_dir.to_str().unwrap().to_string();
    let socket = env.socket.to_str().unwrap().to_string();
    let out = env
        .guildd(&["--data-dir", &data_dir, "--socket", &socket, "--listen", "none"])
        .exits(1);
    assert!(out.stderr.contains("another guildd (pid unknown"), "{out:?}");
    drop(lock);

    // Two daemons started together: the one refused names the other's pid, every time.
    for _ in 0..5 {
        let start = || {
            env.guildd_command(&["--data-dir", &data_dir, "--socket", &socket, "--listen", "none"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (start(), start());
        wait_until("one of the two to answer", || env.try_status().is_some());
        let winner = env.try_status().unwrap().pid;
        let (loser, survivor) = if winner == a.id() { (b, a) } else { (a, b) };
        let out = loser.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&format!("another guildd (pid {winner})")), "{stderr}");
        env.guild(&["daemon", "stop"]).ok();
        let _ = survivor.wait_with_output();
    }
}

#[test]
fn a_project_answer_over_4_mib_arrives() {
    let env = Env::new();
    // Guild files are bounded (1 MiB), but one view applies to every model: 120 models
    // sharing a view of 2,000 fields make an answer over tonic's default 4 MiB.
    let mut guild = String::from("[project]\nname = big\n\n[view]\nfields =");
    for f in 0..2000 {
        guild.push_str(&format!(" field_{f:04}"));
    }
    guild.push_str("\n\n");
    for m in 0..120 {
        guild.push_str(&format!("[model \"m{m}\"]\ntrain = ok\n\n"));
    }
    assert!(guild.len() < 1 << 20);
    env.write("Guild", &guild);
    env.write("ok.py", OK_PY);
    env.start_guildd(&["--listen", "none"]);
    // A client with tonic's default limit cannot take the answer: it is over 4 MiB.
    env.block_on(async {
        let err = pb::project_service_client::ProjectServiceClient::new(env.channel().await)
            .get_project(pb::GetProjectRequest {
                project_dir: env.project.to_string_lossy().into_owned(),
            })
            .await
            .expect_err("the answer fits in 4 MiB: the test needs a larger one");
        assert!(err.message().contains("message length too large"), "{err:?}");
    });
    let out = env.guild(&["list-models"]).ok();
    assert!(
        out.stdout.contains("model m0 (default)"),
        "{}",
        &out.stdout[..out.stdout.len().min(300)]
    );
    assert!(out.stdout.contains("model m119"), "the last model is missing");
}
