//! `guild watch RUN` (follow a run's output to its end and exit with its status) and
//! `guild stop RUN`.

use anyhow::anyhow;
use guild_proto::v1 as pb;

use crate::follow::{self, sigint};
use crate::out::clean;
use crate::rpc::{Client, rpc, run_arg};

pub async fn watch(client: &Client, run: &str) -> anyhow::Result<u8> {
    let run = rpc(client.runs().get_run(pb::GetRunRequest { run: run_arg(run) }).await)?
        .run
        .ok_or_else(|| anyhow!("no such run"))?;
    if run.op == crate::sweep::SWEEP_OP {
        return crate::sweep::follow(client, &run, &mut sigint()?).await;
    }
    follow::follow(client, &run, &mut sigint()?).await
}

pub async fn stop(client: &Client, run: &str) -> anyhow::Result<u8> {
    let stopped = rpc(client.runs().stop_run(pb::StopRunRequest { run: run_arg(run) }).await)?;
    eprintln!("Stopping {}", clean(&stopped.id));
    Ok(0)
}
