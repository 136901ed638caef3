//! Following a run: print its output as it is written, stop it on Ctrl-C, and exit
//! with the run's own exit status.
//!
//! The CLI is always on the daemon's machine (it talks over the Unix socket), so it
//! copies the run's own output files (`guild.d/stdout.log`, `stderr.log`) to the
//! terminal as they grow: the bytes the op wrote, progress bars and colours intact,
//! at no cost to the daemon. Where the run folder cannot be read, it streams the lines
//! from run.db through the API instead.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, anyhow};
use guild_proto::v1::{self as pb, RunStatus};
use tokio::signal::unix::Signal;
use tokio_stream::StreamExt;

use crate::out::{StdoutError, clean, clean_message};
use crate::rpc::{Client, rpc, status_error};

/// How often the output files are checked for new bytes while the run is quiet.
const POLL: Duration = Duration::from_millis(50);

/// Ctrl-C, caught from now on (a run being followed is stopped rather than orphaned).
pub fn sigint() -> anyhow::Result<Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).context("cannot catch Ctrl-C")
}

/// `sigint` is registered by the caller before it starts the run, so a Ctrl-C at any
/// moment stops the run rather than killing this process.
pub async fn follow(client: &Client, run: &pb::Run, sigint: &mut Signal) -> anyhow::Result<u8> {
    let guild_d = Path::new(&run.run_dir).join("guild.d");
    let mut interrupted = false;
    let outcome = if guild_d.is_dir() {
        follow_files(client, run, &guild_d, sigint, &mut interrupted).await?
    } else {
        follow_stream(client, &run.id, sigint, &mut interrupted).await?
    };
    Ok(exit_code(&outcome, interrupted))
}

fn is_final(status: RunStatus) -> bool {
    !matches!(
        status,
        RunStatus::Pending | RunStatus::Queued | RunStatus::Running | RunStatus::Unspecified
    )
}

/// Ctrl-C: ask the daemon to stop the run; a second Ctrl-C leaves at once.
async fn interrupt(client: &Client, run_id: &str) -> anyhow::Result<()> {
    eprintln!(
        "\nStopping run {} (Ctrl-C again to leave it stopping in the background)",
        clean(run_id)
    );
    rpc(client
        .runs()
        .stop_run(pb::StopRunRequest {
            run: run_id.to_string(),
        })
        .await)?;
    tokio::spawn(async {
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(130);
        }
    });
    Ok(())
}

struct Tail {
    path: std::path::PathBuf,
    file: Option<File>,
    offset: u64,
}

impl Tail {
    /// Copies what the file gained to `out`. Returns whether anything was copied; a
    /// failed write to `out` is the error.
    fn copy(&mut self, out: &mut dyn Write) -> std::io::Result<bool> {
        // Opened afresh each time: on a network filesystem (a run on a Slurm node), an
        // open is what makes another machine's writes visible.
        if let Ok(file) = File::open(&self.path) {
            self.file = Some(file);
        }
        let Some(file) = &self.file else { return Ok(false) };
        let mut buf = vec![0u8; 1 << 20];
        let mut copied = false;
        loop {
            match file.read_at(&mut buf, self.offset) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    out.write_all(&buf[..n])?;
                    self.offset += n as u64;
                    copied = true;
                }
            }
        }
        out.flush()?;
        Ok(copied)
    }
}

async fn follow_files(
    client: &Client,
    run: &pb::Run,
    guild_d: &Path,
    sigint: &mut Signal,
    interrupted: &mut bool,
) -> anyhow::Result<pb::Run> {
    let mut statuses = rpc(client
        .runs()
        .watch_runs(pb::WatchRunsRequest { run: run.id.clone() })
        .await)?;
    let mut out = Tail {
        path: guild_d.join("stdout.log"),
        file: None,
        offset: 0,
    };
    let mut err = Tail {
        path: guild_d.join("stderr.log"),
        file: None,
        offset: 0,
    };
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let last = loop {
        tokio::select! {
            event = statuses.next() => match event {
                Some(Ok(pb::RunEvent { run: Some(current), .. })) if is_final(current.status()) => break current,
                Some(Ok(_)) => {}
                Some(Err(status)) => return Err(status_error(status)),
                None => return Err(anyhow!("guildd went away while following run {}", clean(&run.id))),
            },
            _ = sigint.recv(), if !*interrupted => {
                *interrupted = true;
                interrupt(client, &run.id).await?;
            }
            _ = tick.tick() => {
                out.copy(&mut std::io::stdout().lock()).map_err(StdoutError)?;
                let _ = err.copy(&mut std::io::stderr().lock());
            }
        }
    };
    // The run has ended and its files are complete: copy the rest.
    out.copy(&mut std::io::stdout().lock()).map_err(StdoutError)?;
    let _ = err.copy(&mut std::io::stderr().lock());
    Ok(last)
}

async fn follow_stream(
    client: &Client,
    run_id: &str,
    sigint: &mut Signal,
    interrupted: &mut bool,
) -> anyhow::Result<pb::Run> {
    let mut stream = rpc(client
        .output()
        .read_output(pb::ReadOutputRequest {
            run: run_id.to_string(),
            from_seq: 0,
            follow: true,
        })
        .await)?;
    loop {
        tokio::select! {
            chunk = stream.next() => match chunk {
                Some(chunk) => print_chunk(chunk.map_err(status_error)?)?,
                None => break,
            },
            _ = sigint.recv(), if !*interrupted => {
                *interrupted = true;
                interrupt(client, run_id).await?;
            }
        }
    }
    rpc(client
        .runs()
        .get_run(pb::GetRunRequest {
            run: run_id.to_string(),
        })
        .await)?
    .run
    .ok_or_else(|| anyhow!("run {run_id} vanished"))
}

/// The run's lines as it printed them (its own output, so not escaped). A failed write
/// to stdout ends following (the run goes on); stderr is best effort.
fn print_chunk(chunk: pb::OutputChunk) -> Result<(), StdoutError> {
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    for line in chunk.lines {
        if line.stream == pb::Stream::Stderr as i32 {
            let _ = writeln!(err, "{}", line.text);
        } else {
            writeln!(out, "{}", line.text).map_err(StdoutError)?;
        }
    }
    out.flush().map_err(StdoutError)
}

/// The run's own exit status where it has one; 130 after Ctrl-C, as a shell would.
fn exit_code(run: &pb::Run, interrupted: bool) -> u8 {
    match run.status() {
        RunStatus::Completed => 0,
        RunStatus::Terminated if interrupted => 130,
        RunStatus::Failed => {
            eprintln!("guild: run {} failed: {}", clean(&run.id), clean_message(&run.reason));
            1
        }
        _ => match run.exit_status {
            Some(code) if code > 0 => code.min(255) as u8,
            Some(signal) if signal < 0 => (128 - signal).min(255) as u8,
            _ => 1,
        },
    }
}
