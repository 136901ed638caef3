//! One serve's worker process: started from the model's serve op, probed until it
//! answers, fed one request line at a time, and started again when it exits or hangs.
//!
//! The protocol: guildd writes one JSON request per line on the worker's stdin and the
//! worker writes exactly one JSON line per request on stdout, in the same order. Replies
//! are paired with requests strictly first-in first-out, so requests are pipelined: the
//! next line is written while the worker is still busy with the previous one. At start
//! guildd sends `[]` (an empty request) as a readiness probe; a worker that exits before
//! answering it has nothing to serve (its export is missing), and is not restarted.
//!
//! One task owns the process. Requests arrive on a bounded channel; a permit from the
//! serve's semaphore travels with each one until its reply is read, so the queue bound
//! covers requests waiting here and requests inside the worker alike.

use std::io::Write;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot, watch};
use tokio::time::Instant;

use super::plan::{WorkerSpec, display_argv};
use crate::process::kill_group;
use crate::runs::append_error;

/// The worker's stderr, appended to in the served run's `guild.d`.
pub const LOG_FILE: &str = "serve.log";
/// The readiness probe: an empty request, which a worker answers with an empty list.
const PROBE: &[u8] = b"[]\n";
/// Longest reply line read from a worker.
pub const MAX_REPLY: usize = 64 * 1024 * 1024;
/// Restart delays double from the first to the last; a worker that served this long
/// starts the sequence again.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const LAST_BACKOFF: Duration = Duration::from_secs(10);
const STABLE: Duration = Duration::from_secs(30);
/// A stopped worker gets this long to exit after its stdin closes, then SIGTERM, then
/// as long again before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(2);
/// A worker is taken for hung this long after a request it works on timed out, so the
/// request's client hears 504 (its timeout) before the worker is replaced.
const HANG_GRACE: Duration = Duration::from_secs(1);

#[derive(Clone, Debug, PartialEq)]
pub enum State {
    /// Started, not yet answered the probe.
    Starting {
        pid: u32,
    },
    Ready {
        pid: u32,
    },
    /// Exited or hung after serving; started again after a pause.
    Restarting {
        reason: String,
    },
    /// Nothing to serve: no serve op, or the worker exited before answering the probe.
    NoModel {
        reason: String,
    },
    Stopped,
}

impl State {
    pub fn pid(&self) -> u32 {
        match self {
            State::Starting { pid } | State::Ready { pid } => *pid,
            _ => 0,
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            State::Restarting { reason } | State::NoModel { reason } => reason,
            _ => "",
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            State::Starting { .. } => "starting",
            State::Ready { .. } => "ready",
            State::Restarting { .. } => "restarting",
            State::NoModel { .. } => "no_model",
            State::Stopped => "stopped",
        }
    }
}

/// One request on its way to the worker.
pub struct Job {
    /// One line of JSON, newline-terminated, with no other newline.
    pub line: Vec<u8>,
    pub reply: oneshot::Sender<Outcome>,
    pub permit: OwnedSemaphorePermit,
}

/// What became of a request.
#[derive(Debug)]
pub enum Outcome {
    /// The worker's reply line (without its newline) and the worker's time on it.
    Reply {
        line: Vec<u8>,
        batch: Duration,
    },
    /// The worker exited, hung or broke the protocol before answering.
    Lost(String),
    NoModel(String),
}

/// A request written to the worker, awaiting its reply.
struct Pending {
    reply: oneshot::Sender<Outcome>,
    _permit: OwnedSemaphorePermit,
    sent: Instant,
}

/// How one worker process ended.
enum End {
    Stopped,
    /// It never answered the probe (or could not start): nothing to serve.
    NoModel(String),
    /// It served, then exited, hung or broke the protocol.
    Failed(String),
}

/// Runs workers for `spec` until `stop` turns true: starts one, restarts it when it
/// fails after serving, and answers every request after a failed start with NoModel.
pub async fn supervise(
    spec: Result<WorkerSpec, String>,
    timeout: Duration,
    mut jobs: mpsc::Receiver<Job>,
    state: watch::Sender<State>,
    restarts: Arc<AtomicU32>,
    mut stop: watch::Receiver<bool>,
) {
    let reason = match spec {
        Err(reason) => reason,
        Ok(spec) => {
            let mut backoff = FIRST_BACKOFF;
            loop {
                let started = Instant::now();
                match run_once(&spec, timeout, &mut jobs, &state, &mut stop).await {
                    End::Stopped => {
                        let _ = state.send(State::Stopped);
                        return;
                    }
                    End::NoModel(reason) => {
                        append_error(&spec.guild_d, &format!("serve: {reason}"));
                        break reason;
                    }
                    End::Failed(reason) => {
                        if started.elapsed() >= STABLE {
                            backoff = FIRST_BACKOFF;
                        }
                        append_error(
                            &spec.guild_d,
                            &format!("serve: {reason}; starting it again in {:.1} s", backoff.as_secs_f64()),
                        );
                        tracing::warn!("serve worker failed: {reason}");
                        let _ = state.send(State::Restarting { reason });
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = super::stopped(&mut stop) => {
                                let _ = state.send(State::Stopped);
                                return;
                            }
                        }
                        backoff = (backoff * 2).min(LAST_BACKOFF);
                        restarts.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    };
    let _ = state.send(State::NoModel { reason: reason.clone() });
    loop {
        tokio::select! {
            job = jobs.recv() => match job {
                Some(job) => {
                    let _ = job.reply.send(Outcome::NoModel(reason.clone()));
                }
                None => break,
            },
            _ = super::stopped(&mut stop) => break,
        }
    }
    let _ = state.send(State::Stopped);
}

/// Starts one worker process and serves requests with it until it ends.
async fn run_once(
    spec: &WorkerSpec,
    timeout: Duration,
    jobs: &mut mpsc::Receiver<Job>,
    state: &watch::Sender<State>,
    stop: &mut watch::Receiver<bool>,
) -> End {
    let log_path = spec.guild_d.join(LOG_FILE);
    let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path);
    let mut log = match log {
        Ok(log) => log,
        Err(err) => return End::NoModel(format!("cannot open {}: {err}", log_path.display())),
    };
    let _ = writeln!(
        log,
        "--- {} guildd starts the serve worker: {}",
        guild_proto::time::display(guild_proto::time::now_ms()),
        display_argv(&spec.argv)
    );
    let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
    let Some((program, args)) = spec.argv.split_first() else {
        return End::NoModel("the serve op is empty".into());
    };
    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .envs(&spec.env)
        .current_dir(&spec.cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        // Never left behind.
        .kill_on_drop(true);
    // Its own group, so a stop reaches whatever it starts.
    crate::process::in_own_group(&mut command);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(err) => return End::NoModel(format!("cannot start the serve worker `{program}`: {err}")),
    };
    let pid = child.id().unwrap_or(0);
    let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        kill_group(pid);
        return End::NoModel("the serve worker has no stdin or stdout".into());
    };
    let mut stdout = BufReader::with_capacity(64 * 1024, stdout);
    let mut line = Vec::new();
    let _ = state.send(State::Starting { pid });

    // The probe: the first reply says the worker is ready.
    let probe = async {
        stdin.write_all(PROBE).await?;
        read_line(&mut stdout, &mut line).await
    };
    let probed = tokio::select! {
        answered = probe => Some(answered),
        _ = child.wait() => Some(Ok(0)),
        _ = super::stopped(stop) => None,
    };
    let Some(probed) = probed else {
        drop(stdin);
        stop_child(&mut child, pid).await;
        return End::Stopped;
    };
    match probed {
        Ok(n) if n > 0 && looks_like_reply(&line) => {}
        Ok(n) if n > 0 => {
            kill_group(pid);
            let _ = child.wait().await;
            return End::NoModel(format!(
                "the serve worker does not speak the serve protocol: its first line on stdout was {:?} \
                 (expected a JSON reply to the `[]` probe; print messages to stderr)",
                String::from_utf8_lossy(&line[..line.len().min(200)])
            ));
        }
        _ => {
            let status = exit_status(&mut child, pid).await;
            return End::NoModel(format!(
                "the serve worker exited ({status}) before it answered its first request{}",
                last_words(&log_path, log_start)
            ));
        }
    }
    let _ = state.send(State::Ready { pid });
    tracing::info!(pid, "serve worker ready");

    let (pending_tx, mut pending_rx) = mpsc::unbounded_channel::<Pending>();
    // Writes each request, after queueing its reply slot (so the reader always finds it).
    // None: the serve closed its end.
    let writer = async {
        while let Some(job) = jobs.recv().await {
            let _ = pending_tx.send(Pending {
                reply: job.reply,
                _permit: job.permit,
                sent: Instant::now(),
            });
            if let Err(err) = stdin.write_all(&job.line).await {
                return Some(format!("its stdin closed ({err})"));
            }
        }
        None
    };
    // Pairs each reply line with the oldest request; a request unanswered for `timeout`
    // (and a grace) since the worker could start on it means the worker hangs. Returns
    // why it stopped reading and whether the worker must be killed.
    let reader = async {
        let mut last_reply = Instant::now();
        while let Some(pending) = pending_rx.recv().await {
            let begun = pending.sent.max(last_reply);
            let deadline = begun + timeout + HANG_GRACE;
            let read = tokio::time::timeout_at(deadline, read_line(&mut stdout, &mut line)).await;
            match read {
                Err(_) => {
                    let reason = format!("it did not answer a request within {} s", timeout.as_secs_f64());
                    let _ = pending.reply.send(Outcome::Lost(reason.clone()));
                    return (reason, true);
                }
                Ok(Ok(0)) | Ok(Err(_)) => {
                    let _ = pending.reply.send(Outcome::Lost("the worker exited".into()));
                    return ("its stdout closed".to_string(), false);
                }
                Ok(Ok(_)) if !looks_like_reply(&line) => {
                    let reason = format!(
                        "it wrote a line on stdout that is not a JSON reply: {:?} (print messages to stderr)",
                        String::from_utf8_lossy(&line[..line.len().min(200)])
                    );
                    let _ = pending.reply.send(Outcome::Lost(reason.clone()));
                    return (reason, true);
                }
                Ok(Ok(_)) => {
                    let now = Instant::now();
                    let batch = now - begun;
                    last_reply = now;
                    let reply = std::mem::take(&mut line);
                    let _ = pending.reply.send(Outcome::Reply { line: reply, batch });
                }
            }
        }
        // The writer holds the sender for as long as this runs.
        ("the serve closed".to_string(), false)
    };
    enum Ended {
        Stop,
        Exited(Option<std::process::ExitStatus>),
        Broken(String, bool),
    }
    let ended = tokio::select! {
        closed = writer => match closed {
            Some(why) => Ended::Broken(why, false),
            None => Ended::Stop,
        },
        (why, kill) = reader => Ended::Broken(why, kill),
        status = child.wait() => Ended::Exited(status.ok()),
        _ = super::stopped(stop) => Ended::Stop,
    };
    // Closing stdin asks a worker that is stopping to finish.
    drop(stdin);
    let reason = match ended {
        Ended::Stop => {
            stop_child(&mut child, pid).await;
            drain(&mut pending_rx, "the serve was stopped");
            return End::Stopped;
        }
        Ended::Exited(status) => format!("the serve worker (pid {pid}) exited ({})", describe(status)),
        Ended::Broken(why, kill) => {
            if kill {
                kill_group(pid);
            }
            let status = exit_status(&mut child, pid).await;
            format!("the serve worker (pid {pid}) failed: {why} ({status})")
        }
    };
    let reason = format!("{reason}{}", last_words(&log_path, log_start));
    drain(&mut pending_rx, &reason);
    End::Failed(reason)
}

/// Reads one line (without its newline) into `line`; 0 at end of file. A line over
/// [`MAX_REPLY`] is an error.
async fn read_line(reader: &mut (impl AsyncBufRead + Unpin), line: &mut Vec<u8>) -> std::io::Result<usize> {
    line.clear();
    let mut total = 0;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            // End of file: a partial last line is no reply.
            return Ok(0);
        }
        let (used, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        line.extend_from_slice(&available[..if done { used - 1 } else { used }]);
        reader.consume(used);
        total += used;
        if done {
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(total);
        }
        if line.len() > MAX_REPLY {
            return Err(std::io::Error::other(format!("a reply line over {MAX_REPLY} bytes")));
        }
    }
}

/// A cheap check that a line is a JSON reply (a list or an object); the HTTP side parses
/// it fully. It catches a worker that prints messages on stdout.
fn looks_like_reply(line: &[u8]) -> bool {
    let trimmed = line.trim_ascii();
    matches!(
        (trimmed.first(), trimmed.last()),
        (Some(b'['), Some(b']')) | (Some(b'{'), Some(b'}'))
    )
}

/// Answers every request still waiting for a reply.
fn drain(pending: &mut mpsc::UnboundedReceiver<Pending>, reason: &str) {
    pending.close();
    while let Ok(p) = pending.try_recv() {
        let _ = p.reply.send(Outcome::Lost(reason.to_string()));
    }
}

/// Waits for a worker that is ending on its own (its stdout or stdin closed), killing it
/// if it lingers; returns its exit status for a message.
async fn exit_status(child: &mut Child, pid: u32) -> String {
    match tokio::time::timeout(STOP_GRACE, child.wait()).await {
        Ok(status) => describe(status.ok()),
        Err(_) => {
            kill_group(pid);
            describe(child.wait().await.ok())
        }
    }
}

/// Stops a worker whose stdin is closed: it gets a grace period, then SIGTERM, then SIGKILL.
async fn stop_child(child: &mut Child, pid: u32) {
    if tokio::time::timeout(STOP_GRACE, child.wait()).await.is_ok() {
        return;
    }
    crate::process::terminate(child, pid, STOP_GRACE).await;
}

fn describe(status: Option<std::process::ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Some(s) => match (s.code(), s.signal()) {
            (Some(code), _) => format!("exit status {code}"),
            (None, Some(signal)) => format!("killed by signal {signal}"),
            _ => s.to_string(),
        },
        None => "exit status unknown".into(),
    }
}

/// `: <the worker's last stderr line>` from this start's part of the log, or nothing.
fn last_words(log: &std::path::Path, from: u64) -> String {
    let text = std::fs::read(log).unwrap_or_default();
    let text = String::from_utf8_lossy(text.get(from as usize..).unwrap_or_default());
    match text.lines().rev().map(str::trim).find(|l| !l.is_empty()) {
        Some(line) => {
            let cut: String = line.chars().take(500).collect();
            format!(": {cut}")
        }
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_read_whole_and_bounded() {
        let data: &[u8] = b"[1, 2]\r\n{\"error\": \"x\"}\npartial";
        let mut reader = BufReader::with_capacity(4, data);
        let mut line = Vec::new();
        assert_eq!(read_line(&mut reader, &mut line).await.unwrap(), 8);
        assert_eq!(line, b"[1, 2]");
        assert!(read_line(&mut reader, &mut line).await.unwrap() > 0);
        assert_eq!(line, b"{\"error\": \"x\"}");
        assert_eq!(
            read_line(&mut reader, &mut line).await.unwrap(),
            0,
            "a partial last line is no reply"
        );
    }

    #[test]
    fn replies_are_lists_or_objects() {
        assert!(looks_like_reply(b"[]"));
        assert!(looks_like_reply(b" {\"error\": \"no\"} "));
        assert!(!looks_like_reply(b"loading model..."));
        assert!(!looks_like_reply(b""));
        assert!(!looks_like_reply(b"[1, 2"));
    }
}
