//! `guild serve`: a trained run over HTTP (POST /run, GET /stats), or stop serving it.
//! guildd owns the serve and its worker; this asks for it and reports the state it gets
//! back: a run with nothing to serve is an error.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::bail;
use clap::Args;
use clap_complete::ArgValueCompleter;
use guild_proto::v1::{self as pb, ServeState};

use crate::candidates;
use crate::follow::sigint;
use crate::format::serve_state_name;
use crate::out::{clean, clean_message};
use crate::rpc::{self, Client, Target, rpc, run_arg};

#[derive(Args)]
pub struct ServeArgs {
    /// The run to serve (id, id prefix or index).
    #[arg(add = ArgValueCompleter::new(candidates::run))]
    pub run: String,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port (default 6444, or a free one when 6444 is taken; 0 picks a free one).
    #[arg(long)]
    pub port: Option<u16>,
    /// Stop serving the run.
    #[arg(long, conflicts_with_all = ["foreground", "port", "timeout", "queue"])]
    pub stop: bool,
    /// Stay in the foreground and stop serving on Ctrl-C.
    #[arg(long)]
    pub foreground: bool,
    /// Seconds a request may wait for its reply (default 30).
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<f64>,
    /// Most requests waiting for the worker at once (default 256); more get 503.
    #[arg(long, value_name = "N")]
    pub queue: Option<u32>,
}

pub async fn run(target: &Target, args: ServeArgs) -> anyhow::Result<u8> {
    let client = rpc::connect(target).await?;
    if args.stop {
        let stopped = rpc(client
            .serves()
            .stop_serve(pb::StopServeRequest {
                run: run_arg(&args.run),
            })
            .await)?;
        eprintln!(
            "Stopped serving {} at {} ({} requests, {} errors)",
            clean(&stopped.run),
            clean(&stopped.url),
            stopped.requests,
            stopped.errors
        );
        return Ok(0);
    }
    let timeout_ms = match args.timeout {
        None => 0,
        Some(seconds) if seconds > 0.0 && seconds <= 3600.0 => (seconds * 1000.0).ceil() as u32,
        Some(seconds) => bail!("--timeout: expected seconds between 0 and 3600, got {seconds}"),
    };
    let started = rpc(client
        .serves()
        .start_serve(pb::StartServeRequest {
            run: run_arg(&args.run),
            host: args.host,
            port: args.port.map(u32::from),
            env: std::env::vars().collect::<HashMap<_, _>>(),
            timeout_ms,
            max_queue: args.queue.unwrap_or(0),
        })
        .await)?;
    let (run, model, url) = (clean(&started.run), clean(&started.model), clean(&started.url));
    // Nothing to serve (no serve op, or the worker exited before it was ready): the
    // command failed, whatever the port answers meanwhile.
    if started.state() == ServeState::NoModel {
        bail!(
            "run {run} has no model to serve: {}\n{url} answers 404 until it has one: train it, then run \
             `guild serve {run}` again (`guild serve --stop {run}` frees the port)",
            clean_message(&started.reason)
        );
    }
    outln!("{url}")?;
    if started.existing {
        eprintln!(
            "Run {run} ({model}) is already served at {url} ({})",
            serve_state_name(started.state())
        );
    } else {
        eprintln!("Serving run {run} ({model}) at {url}");
    }
    eprintln!("  POST {url}/run    a JSON list of instances -> a JSON list of outputs");
    eprintln!("  GET  {url}/stats  requests, errors, latency, predictions per second");
    if !started.address.starts_with("127.") && !started.address.starts_with("[::1]") {
        eprintln!(
            "note: {} is reachable from other hosts, without a token",
            clean(&started.address)
        );
    }
    if !args.foreground {
        eprintln!("Stop it with `guild serve --stop {run}`");
        return Ok(0);
    }
    foreground(&client, &started).await
}

/// Follows the serve until Ctrl-C (then stops it) or until something else stops it.
async fn foreground(client: &Client, serve: &pb::Serve) -> anyhow::Result<u8> {
    let mut sigint = sigint()?;
    eprintln!("Press Ctrl-C to stop serving");
    let mut last = (serve.state(), serve.pid);
    loop {
        tokio::select! {
            _ = sigint.recv() => {
                let stopped = rpc(client.serves().stop_serve(pb::StopServeRequest { run: serve.run.clone() }).await)?;
                eprintln!(
                    "Stopped serving {} ({} requests, {} errors)",
                    clean(&stopped.run),
                    stopped.requests,
                    stopped.errors
                );
                return Ok(130);
            }
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                let list = rpc(client.serves().list_serves(pb::ListServesRequest { run: serve.run.clone() }).await)?;
                let Some(now) = list.serves.into_iter().next() else {
                    eprintln!("The serve of {} was stopped", clean(&serve.run));
                    return Ok(0);
                };
                if (now.state(), now.pid) != last {
                    last = (now.state(), now.pid);
                    match now.reason.as_str() {
                        "" => eprintln!("{} (pid {})", serve_state_name(now.state()), now.pid),
                        reason => eprintln!("{}: {}", serve_state_name(now.state()), clean_message(reason)),
                    }
                }
            }
        }
    }
}
