//! How every multi-run command names runs: ids, unique id prefixes, indexes (1 = latest),
//! index ranges (`1:5`, `:3`, `10:`) and run folders (`./runs/ID`), narrowed by
//! `--model`, `--status` and `--label`.
//! The daemon resolves them (SelectRuns), so every command agrees on what `3` means.

use anyhow::bail;
use clap::Args;
use clap_complete::ArgValueCompleter;
use guild_proto::v1::{self as pb, RunStatus};

use crate::candidates;
use crate::rpc::{Client, rpc, run_arg};

/// The filters every selector accepts.
#[derive(Args, Clone, Debug, Default)]
pub struct FilterArgs {
    /// Only runs of this model.
    #[arg(long, value_name = "MODEL", add = ArgValueCompleter::new(candidates::model))]
    pub model: Option<String>,
    /// Only runs with this status (several: comma-separated, e.g. error,failed).
    #[arg(long, value_name = "STATUS", add = ArgValueCompleter::new(candidates::status))]
    pub status: Option<String>,
    /// Only runs whose label or a tag contains TEXT (case-insensitive).
    #[arg(long = "label", value_name = "TEXT")]
    pub label: Option<String>,
}

impl FilterArgs {
    pub fn is_empty(&self) -> bool {
        self.model.is_none() && self.status.is_none() && self.label.is_none()
    }
}

/// RUNS... plus filters.
#[derive(Args, Clone, Debug, Default)]
pub struct SelectArgs {
    /// Runs: ids, id prefixes, indexes (1 = latest) or ranges like 1:5.
    #[arg(value_name = "RUNS", add = ArgValueCompleter::new(candidates::run))]
    pub runs: Vec<String>,
    #[command(flatten)]
    pub filter: FilterArgs,
}

impl SelectArgs {
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty() && self.filter.is_empty()
    }

    pub fn to_proto(&self, deleted: bool) -> pb::RunSelection {
        selection(&self.runs, &self.filter, deleted)
    }
}

pub fn selection(runs: &[String], filter: &FilterArgs, deleted: bool) -> pb::RunSelection {
    pb::RunSelection {
        runs: runs.iter().map(|r| run_arg(r)).collect(),
        model: filter.model.clone().unwrap_or_default(),
        status: filter.status.iter().cloned().collect(),
        label: filter.label.clone().unwrap_or_default(),
        deleted,
        project_dir: String::new(),
    }
}

/// The selected runs with their indexes, newest first.
pub async fn select(client: &Client, selection: pb::RunSelection) -> anyhow::Result<Vec<(u32, pb::Run)>> {
    let reply = rpc(client
        .runs()
        .select_runs(pb::SelectRunsRequest {
            selection: Some(selection),
        })
        .await)?;
    Ok(reply.indexes.into_iter().zip(reply.runs).collect())
}

/// Like [`select`], for commands that act on runs: names them or refuses to act on none.
pub async fn select_some(
    client: &Client,
    args: &SelectArgs,
    deleted: bool,
    verb: &str,
) -> anyhow::Result<Vec<pb::Run>> {
    if args.is_empty() {
        bail!(
            "name the runs to {verb}: ids, id prefixes, indexes, ranges like 1:5, or filters (--model, --status, --label){}",
            if deleted {
                "; `guild runs --deleted` lists them"
            } else {
                ""
            }
        );
    }
    let runs: Vec<pb::Run> = select(client, args.to_proto(deleted))
        .await?
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    if runs.is_empty() {
        bail!("no {}run matches", if deleted { "deleted " } else { "" });
    }
    Ok(runs)
}

pub fn is_active(run: &pb::Run) -> bool {
    matches!(run.status(), RunStatus::Running | RunStatus::Pending | RunStatus::Queued)
}
