//! `guild status`: the daemon, its running runs, its serves and TensorBoard, and what it
//! cannot write now. Never starts a daemon.

use guild_proto::v1::{self as pb, RunStatus};

use crate::format::{daemon_status, serve_state_name};
use crate::out::clean;
use crate::rpc::{self, Client, Target, rpc};
use crate::table;

pub async fn run(target: &Target) -> anyhow::Result<u8> {
    let Some(client) = rpc::try_connect(target).await? else {
        outln!("guildd is not running (socket {})", target.locations.socket.display())?;
        return Ok(1);
    };
    out!("{}", daemon_status(&client.status))?;
    let list = rpc(client.runs().list_runs(pb::ListRunsRequest::default()).await)?;
    let running: Vec<&pb::Run> = list
        .runs
        .iter()
        .filter(|r| matches!(r.status(), RunStatus::Running | RunStatus::Pending | RunStatus::Queued))
        .collect();
    if running.is_empty() {
        outln!("No runs are running.")?;
    } else {
        out!("{}", table::runs(running.into_iter().map(|r| (None, r))))?;
    }
    serves(&client).await
}

/// The serves and TensorBoard.
async fn serves(client: &Client) -> anyhow::Result<u8> {
    let list = rpc(client.serves().list_serves(pb::ListServesRequest::default()).await)?;
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
                clean(&s.run),
                clean(&s.url),
                serve_state_name(s.state()),
                pid,
                s.requests,
                s.errors,
                s.restarts
            )?;
        }
    }
    let tb = rpc(client
        .tensorboards()
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
    Ok(0)
}
