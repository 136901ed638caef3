//! Following a run: print its output as it commits, stop it on Ctrl-C, and exit with
//! the run's own exit status.

use std::io::Write;

use anyhow::anyhow;
use guild_proto::v1::{self as pb, RunStatus};
use tokio_stream::StreamExt;

use crate::client::Client;
use crate::commands::rpc;

pub async fn follow(client: &Client, run_id: &str) -> anyhow::Result<u8> {
    let mut stream = rpc(client
        .output()
        .read_output(pb::ReadOutputRequest {
            run: run_id.to_string(),
            from_seq: 0,
            follow: true,
        })
        .await)?;
    let mut interrupted = false;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            chunk = stream.next() => match chunk {
                Some(chunk) => print_chunk(chunk.map_err(|s| anyhow!("{}", s.message()))?),
                None => break,
            },
            _ = &mut ctrl_c, if !interrupted => {
                interrupted = true;
                eprintln!("\nStopping run {run_id} (Ctrl-C again to leave it stopping in the background)");
                rpc(client.runs().stop_run(pb::StopRunRequest { run: run_id.to_string() }).await)?;
                let again = tokio::signal::ctrl_c();
                tokio::spawn(async move {
                    if again.await.is_ok() {
                        std::process::exit(130);
                    }
                });
            }
        }
    }
    let run = rpc(client
        .runs()
        .get_run(pb::GetRunRequest {
            run: run_id.to_string(),
        })
        .await)?
    .run
    .ok_or_else(|| anyhow!("run {run_id} vanished"))?;
    Ok(exit_code(&run, interrupted))
}

fn print_chunk(chunk: pb::OutputChunk) {
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    for line in chunk.lines {
        let target: &mut dyn Write = if line.stream == pb::Stream::Stderr as i32 {
            &mut err
        } else {
            &mut out
        };
        let _ = writeln!(target, "{}", line.text);
    }
    let _ = out.flush();
}

/// The run's own exit status where it has one; 130 after Ctrl-C, as a shell would.
fn exit_code(run: &pb::Run, interrupted: bool) -> u8 {
    match run.status() {
        RunStatus::Completed => 0,
        RunStatus::Terminated if interrupted => 130,
        RunStatus::Failed => {
            eprintln!("guild: run {} failed: {}", run.id, run.reason);
            1
        }
        _ => match run.exit_status {
            Some(code) if code > 0 => code.min(255) as u8,
            Some(signal) if signal < 0 => (128 - signal).min(255) as u8,
            _ => 1,
        },
    }
}
