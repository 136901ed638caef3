//! `guild serve` (a trained run over HTTP) and `guild tensorboard` (TensorBoard behind
//! the dashboard's port): both ask guildd, which owns the processes.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use guild_proto::v1::{
    self as pb, ServeState, serve_service_client::ServeServiceClient,
    tensor_board_service_client::TensorBoardServiceClient,
};
use tonic::transport::Channel;

use crate::client::{self, Client, Target};
use crate::commands::rpc;

#[derive(Args)]
pub struct ServeArgs {
    /// The run to serve (id, id prefix or index).
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

#[derive(Args)]
pub struct TensorBoardArgs {
    /// Runs to show (ids, id prefixes or indexes). Default: every run of this project.
    pub runs: Vec<String>,
    /// Stop TensorBoard.
    #[arg(long, conflicts_with_all = ["runs", "idle"])]
    pub stop: bool,
    /// Minutes without a request through the dashboard's port before TensorBoard stops
    /// (default 10).
    #[arg(long, value_name = "MINUTES")]
    pub idle: Option<u32>,
}

fn serves(client: &Client) -> ServeServiceClient<Channel> {
    ServeServiceClient::new(client.channel.clone())
}

fn tensorboards(client: &Client) -> TensorBoardServiceClient<Channel> {
    TensorBoardServiceClient::new(client.channel.clone())
}

pub async fn serve(target: &Target, args: ServeArgs) -> anyhow::Result<u8> {
    let client = client::connect(target).await?;
    if args.stop {
        let stopped = rpc(serves(&client).stop_serve(pb::StopServeRequest { run: crate::select::run_arg(&args.run) }).await)?;
        eprintln!(
            "Stopped serving {} at {} ({} requests, {} errors)",
            stopped.run, stopped.url, stopped.requests, stopped.errors
        );
        return Ok(0);
    }
    let timeout_ms = match args.timeout {
        None => 0,
        Some(seconds) if seconds > 0.0 && seconds <= 3600.0 => (seconds * 1000.0).ceil() as u32,
        Some(seconds) => bail!("--timeout: expected seconds between 0 and 3600, got {seconds}"),
    };
    let started = rpc(serves(&client)
        .start_serve(pb::StartServeRequest {
            run: crate::select::run_arg(&args.run),
            host: args.host,
            port: args.port.map(u32::from),
            env: std::env::vars().collect::<HashMap<_, _>>(),
            timeout_ms,
            max_queue: args.queue.unwrap_or(0),
        })
        .await)?;
    outln!("{}", started.url)?;
    if started.existing {
        eprintln!(
            "Run {} ({}) is already served at {} ({})",
            started.run,
            started.model,
            started.url,
            state_name(started.state())
        );
    } else {
        eprintln!("Serving run {} ({}) at {}", started.run, started.model, started.url);
    }
    eprintln!(
        "  POST {}/run    a JSON list of instances -> a JSON list of outputs",
        started.url
    );
    eprintln!(
        "  GET  {}/stats  requests, errors, latency, predictions per second",
        started.url
    );
    if started.state() == ServeState::NoModel {
        eprintln!(
            "warning: run {} has no model to serve: {}\nPOST /run answers 404; fix that, then run `guild serve {}` again",
            started.run, started.reason, started.run
        );
    }
    if !started.address.starts_with("127.") && !started.address.starts_with("[::1]") {
        eprintln!(
            "note: {} is reachable from other hosts, without a token",
            started.address
        );
    }
    if !args.foreground {
        eprintln!("Stop it with `guild serve --stop {}`", started.run);
        return Ok(0);
    }
    foreground(&client, &started).await
}

/// Follows the serve until Ctrl-C (then stops it) or until something else stops it.
async fn foreground(client: &Client, serve: &pb::Serve) -> anyhow::Result<u8> {
    let mut sigint =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).context("cannot catch Ctrl-C")?;
    eprintln!("Press Ctrl-C to stop serving");
    let mut last = (serve.state(), serve.pid);
    loop {
        tokio::select! {
            _ = sigint.recv() => {
                let stopped = rpc(serves(client).stop_serve(pb::StopServeRequest { run: serve.run.clone() }).await)?;
                eprintln!("Stopped serving {} ({} requests, {} errors)", stopped.run, stopped.requests, stopped.errors);
                return Ok(130);
            }
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                let list = rpc(serves(client).list_serves(pb::ListServesRequest { run: serve.run.clone() }).await)?;
                let Some(now) = list.serves.into_iter().next() else {
                    eprintln!("The serve of {} was stopped", serve.run);
                    return Ok(0);
                };
                if (now.state(), now.pid) != last {
                    last = (now.state(), now.pid);
                    match now.reason.as_str() {
                        "" => eprintln!("{} (pid {})", state_name(now.state()), now.pid),
                        reason => eprintln!("{}: {reason}", state_name(now.state())),
                    }
                }
            }
        }
    }
}

pub fn state_name(state: ServeState) -> &'static str {
    match state {
        ServeState::Starting => "starting",
        ServeState::Ready => "ready",
        ServeState::Restarting => "restarting",
        ServeState::NoModel => "no model",
        ServeState::Stopped => "stopped",
        ServeState::Unspecified => "unknown",
    }
}

/// The serves and TensorBoard, for `guild status`.
pub async fn print_status(client: &Client) -> anyhow::Result<()> {
    let list = rpc(serves(client).list_serves(pb::ListServesRequest::default()).await)?;
    if list.serves.is_empty() {
        outln!("No runs are served.")?;
    } else {
        outln!("Served runs:")?;
        for s in &list.serves {
            let pid = if s.pid > 0 {
                format!("pid {}", s.pid)
            } else {
                "no worker".into()
            };
            outln!(
                "  {}  {}  {}  {}  requests {}  errors {}  restarts {}",
                crate::out::clean(&s.run),
                crate::out::clean(&s.url),
                state_name(s.state()),
                pid,
                s.requests,
                s.errors,
                s.restarts
            )?;
        }
    }
    let tb = rpc(tensorboards(client)
        .get_tensor_board(pb::GetTensorBoardRequest {})
        .await)?;
    if tb.running {
        outln!(
            "TensorBoard: pid {}, {} run(s), http://{}{}",
            tb.pid,
            tb.runs.len(),
            tb.address,
            tb.path
        )?;
    }
    Ok(())
}

pub async fn tensorboard(target: &Target, project: &Path, args: TensorBoardArgs) -> anyhow::Result<u8> {
    let client = client::connect(target).await?;
    if args.stop {
        let stopped = rpc(tensorboards(&client)
            .stop_tensor_board(pb::StopTensorBoardRequest {})
            .await)?;
        if stopped.pid == 0 {
            eprintln!("TensorBoard is not running");
        } else {
            eprintln!("Stopped TensorBoard (pid {})", stopped.pid);
        }
        return Ok(0);
    }
    // Without RUNS: this project's runs, or every run outside a project.
    let project_dir = if args.runs.is_empty() && project.join("Guild").is_file() {
        project.to_string_lossy().into_owned()
    } else {
        String::new()
    };
    let tb = rpc(tensorboards(&client)
        .start_tensor_board(pb::StartTensorBoardRequest {
            runs: args.runs,
            project_dir,
            env: std::env::vars().collect::<HashMap<_, _>>(),
            idle_seconds: args.idle.map(|m| m.saturating_mul(60)).unwrap_or(0),
        })
        .await)?;
    if tb.proxy_address.is_empty() {
        eprintln!("(guildd serves no TCP port, so only TensorBoard's own address works)");
    } else {
        let token_file = Path::new(&client.status.data_dir).join("token");
        let token = std::fs::read_to_string(&token_file)
            .with_context(|| format!("cannot read the dashboard token {}", token_file.display()))?;
        outln!("http://{}{}?token={}", tb.proxy_address, tb.path, token.trim())?;
    }
    outln!("http://{}{}", tb.address, tb.path)?;
    eprintln!(
        "TensorBoard (pid {}{}) shows {} run(s); it stops after {} min without a request through the dashboard's port",
        tb.pid,
        if tb.reused { ", already running" } else { "" },
        tb.runs.len(),
        tb.idle_seconds / 60
    );
    Ok(0)
}
