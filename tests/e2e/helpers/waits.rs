//! Waiting by asking: the daemon (WatchRuns, ReadOutput, GetStatus), a child process,
//! a pipe's lines, and, where nothing can be asked, a short backoff on a check.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ExitStatus};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use guild_proto::v1::{self as pb, RunStatus, run_service_client::RunServiceClient};

use super::env::Env;
use super::grpc::serve_of;

/// The longest any wait may take before the test fails. Runs here take well under a
/// second; the margin is for a loaded 2-core machine.
pub const TIMEOUT: Duration = Duration::from_secs(60);

impl Env {
    /// Asks the daemon (GetStatus, short backoff) until it follows no run. A run's end is
    /// in the index (what WatchRuns and GetRun report) a moment before the daemon drops
    /// its handle on the run; StopRun still accepts the run until then.
    #[track_caller]
    pub fn wait_idle(&self) {
        wait_until("the daemon to follow no run", || {
            self.try_status().is_some_and(|s| s.running_runs == 0)
        });
    }

    /// Waits (watching the daemon's WatchRuns stream) until the run has one of `want`.
    /// Reconnects if the stream breaks (a daemon restart); fails after [`TIMEOUT`].
    #[track_caller]
    pub fn wait_run(&self, id: &str, want: &[RunStatus]) -> pb::Run {
        self.wait_run_until(id, &format!("{want:?}"), TIMEOUT, |run| want.contains(&run.status()))
    }

    /// Waits (watching WatchRuns, as [`Env::wait_run`]) until the run satisfies `pred`;
    /// fails after `within`.
    #[track_caller]
    pub fn wait_run_until(&self, id: &str, what: &str, within: Duration, pred: impl Fn(&pb::Run) -> bool) -> pb::Run {
        let deadline = tokio::time::Instant::now() + within;
        self.block_on(async {
            let mut last: Option<pb::Run> = None;
            let mut problem: String;
            let mut pause = Duration::from_millis(5);
            loop {
                let attempt = async {
                    let channel = guild_proto::connect::connect_unix(&self.socket)
                        .await
                        .map_err(|e| format!("connect: {e}"))?;
                    let mut stream = RunServiceClient::new(channel)
                        .watch_runs(pb::WatchRunsRequest { run: id.to_string() })
                        .await
                        .map_err(|s| format!("WatchRuns: {s}"))?
                        .into_inner();
                    while let Some(event) = stream.message().await.map_err(|s| format!("WatchRuns stream: {s}"))? {
                        if let Some(run) = event.run {
                            if pred(&run) {
                                return Ok(run);
                            }
                            last = Some(run);
                        }
                    }
                    Err("the WatchRuns stream ended".to_string())
                };
                match tokio::time::timeout_at(deadline, attempt).await {
                    Ok(Ok(run)) => return run,
                    Ok(Err(err)) => problem = err,
                    Err(_) => problem = "timed out".into(),
                }
                if tokio::time::Instant::now() >= deadline {
                    panic!(
                        "run {id} did not reach {what} within {within:?} ({problem}); last seen: {last:#?}\n{}",
                        self.daemon_log()
                    );
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(100));
            }
        })
    }

    /// Follows the run's output (ReadOutput with follow) until a line satisfies `pred`.
    #[track_caller]
    pub fn wait_output(&self, id: &str, pred: impl Fn(&str) -> bool) -> String {
        let result = self.block_on(async {
            let read = async {
                let mut stream = self.read_output(id, true).await.map_err(|s| s.to_string())?;
                let mut seen = Vec::new();
                while let Some(chunk) = stream.message().await.map_err(|s| s.to_string())? {
                    for line in chunk.lines {
                        if pred(&line.text) {
                            return Ok(line.text);
                        }
                        seen.push(line.text);
                    }
                }
                Err(format!("the run ended without such a line; it printed {seen:?}"))
            };
            tokio::time::timeout(TIMEOUT, read)
                .await
                .unwrap_or_else(|_| Err(format!("no such line within {TIMEOUT:?}")))
        });
        result.unwrap_or_else(|e| panic!("waiting for output of run {id}: {e}"))
    }
}

/// Polls `check` with a short backoff until it holds; fails after [`TIMEOUT`]. Only for
/// things nothing can be asked about (another process's end, a file it writes).
#[track_caller]
pub fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    let mut pause = Duration::from_millis(2);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Sends each line a pipe gives to the returned channel (from a thread).
pub fn lines_of(pipe: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Takes lines from `rx` until one satisfies `pred`; fails after [`TIMEOUT`] or at EOF.
#[track_caller]
pub fn expect_line(rx: &Receiver<String>, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + TIMEOUT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if pred(&line) => return line,
            Ok(line) => seen.push(line),
            Err(RecvTimeoutError::Timeout) => {
                panic!("no {what} line within {TIMEOUT:?}; got {seen:?}")
            }
            Err(RecvTimeoutError::Disconnected) => {
                panic!("the stream closed without a {what} line; got {seen:?}")
            }
        }
    }
}

/// Waits for a child of this test to exit; kills it and fails after [`TIMEOUT`].
#[track_caller]
pub fn wait_child(mut child: Child, what: &str) -> ExitStatus {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    match rx.recv_timeout(TIMEOUT) {
        Ok(status) => status.expect("wait failed"),
        Err(_) => {
            // SAFETY: our own child.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            panic!("{what} did not exit within {TIMEOUT:?}")
        }
    }
}

/// Asks ListServes (bounded backoff) until the run's serve satisfies `pred`.
#[track_caller]
pub fn wait_serve(env: &Env, run: &str, what: &str, pred: impl Fn(&pb::Serve) -> bool) -> pb::Serve {
    let mut last = None;
    let deadline = Instant::now() + TIMEOUT;
    let mut pause = Duration::from_millis(2);
    loop {
        if let Some(serve) = serve_of(env, run) {
            if pred(&serve) {
                return serve;
            }
            last = Some(serve);
        }
        assert!(
            Instant::now() < deadline,
            "the serve of {run} did not become {what} within {TIMEOUT:?}; last: {last:#?}\n{}",
            env.daemon_log()
        );
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}
