//! `guild tensorboard`: TensorBoard on the selected runs, behind the dashboard's port
//! (under /tb/). guildd owns the TensorBoard process.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use clap::Args;
use clap_complete::ArgValueCompleter;
use guild_proto::v1 as pb;

use crate::candidates;
use crate::rpc::{self, Target, rpc, run_arg};

#[derive(Args)]
pub struct TensorBoardArgs {
    /// Runs to show (ids, id prefixes or indexes). Default: every run of this project.
    #[arg(add = ArgValueCompleter::new(candidates::run))]
    pub runs: Vec<String>,
    /// Stop TensorBoard.
    #[arg(long, conflicts_with_all = ["runs", "idle"])]
    pub stop: bool,
    /// Minutes without a request through the dashboard's port before TensorBoard stops
    /// (default 10).
    #[arg(long, value_name = "MINUTES")]
    pub idle: Option<u32>,
}

pub async fn run(target: &Target, project: &Path, args: TensorBoardArgs) -> anyhow::Result<u8> {
    let client = rpc::connect(target).await?;
    if args.stop {
        let stopped = rpc(client
            .tensorboards()
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
    let tb = rpc(client
        .tensorboards()
        .start_tensor_board(pb::StartTensorBoardRequest {
            runs: args.runs.iter().map(|r| run_arg(r)).collect(),
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
