//! `guild runs`: the list (with filters, or the trash), `runs info`, `list-attrs`, and
//! the trash itself: `runs delete` (to the trash), `restore` and `purge`.

use anyhow::bail;
use guild_proto::time;
use guild_proto::v1 as pb;

use crate::format::{format_exact, run_time, status_name};
use crate::out::clean;
use crate::rpc::{Client, rpc, run_arg};
use crate::select::{self, SelectArgs};
use crate::table;

/// `guild runs [--all] [--json] [--deleted] [filters]`.
pub async fn list(client: &Client, all: bool, json: bool, deleted: bool, args: &SelectArgs) -> anyhow::Result<u8> {
    let (runs, total): (Vec<(u32, pb::Run)>, usize) = if deleted || !args.is_empty() {
        let picked = select::select(client, args.to_proto(deleted)).await?;
        let total = picked.len();
        (picked, total)
    } else {
        let limit = if all || json { 0 } else { 20 };
        let list = rpc(client
            .runs()
            .list_runs(pb::ListRunsRequest {
                limit,
                offset: 0,
                project_dir: String::new(),
            })
            .await)?;
        let runs = list
            .runs
            .into_iter()
            .enumerate()
            .map(|(i, r)| (i as u32 + 1, r))
            .collect();
        (runs, list.total as usize)
    };
    let shown: Vec<(u32, pb::Run)> = if all || json {
        runs
    } else {
        runs.into_iter().take(20).collect()
    };
    if json {
        outln!(
            "{}",
            serde_json::Value::Array(shown.iter().map(|(_, r)| run_json(r)).collect())
        )?;
        return Ok(0);
    }
    let grouped = group_sweeps(&shown);
    out!("{}", table::runs(grouped.into_iter().map(|(i, r)| (Some(*i), r))))?;
    if shown.len() < total {
        eprintln!("Showing {} of {} runs (use --all to show all)", shown.len(), total);
    }
    if deleted && shown.is_empty() {
        eprintln!("The trash is empty.");
    }
    Ok(0)
}

/// Each sweep's trials right under it (newest first); trials whose sweep is not listed
/// stay where they are.
fn group_sweeps(runs: &[(u32, pb::Run)]) -> Vec<(&u32, &pb::Run)> {
    let listed: std::collections::HashSet<&str> = runs
        .iter()
        .filter(|(_, r)| r.op == crate::sweep::SWEEP_OP)
        .map(|(_, r)| r.id.as_str())
        .collect();
    let mut out = Vec::with_capacity(runs.len());
    for (i, run) in runs {
        if listed.contains(run.sweep.as_str()) {
            continue;
        }
        out.push((i, run));
        if listed.contains(run.id.as_str()) {
            out.extend(runs.iter().filter(|(_, t)| t.sweep == run.id).map(|(i, t)| (i, t)));
        }
    }
    out
}

pub async fn delete(client: &Client, args: &SelectArgs) -> anyhow::Result<u8> {
    let runs = select::select_some(client, args, false, "delete").await?;
    // Refuse before anything moves: a half-done delete surprises more than none.
    let active: Vec<&pb::Run> = runs.iter().filter(|r| select::is_active(r)).collect();
    if let Some(first) = active.first() {
        let ids: Vec<&str> = active.iter().map(|r| r.id.as_str()).collect();
        bail!(
            "{} {} {} running: stop it first (guild stop {}); nothing was deleted",
            if ids.len() == 1 { "run" } else { "runs" },
            clean(&ids.join(", ")),
            if ids.len() == 1 { "is" } else { "are" },
            clean(&first.id)
        );
    }
    for run in &runs {
        let deleted = rpc(client
            .runs()
            .delete_run(pb::DeleteRunRequest { run: run.id.clone() })
            .await)?;
        outln!("Deleted {}", clean(&deleted.id))?;
    }
    eprintln!(
        "Moved {} run{} to the trash: `guild runs restore` brings {} back, `guild runs purge` removes {} for good",
        runs.len(),
        if runs.len() == 1 { "" } else { "s" },
        if runs.len() == 1 { "it" } else { "them" },
        if runs.len() == 1 { "it" } else { "them" },
    );
    Ok(0)
}

pub async fn restore(client: &Client, args: &SelectArgs) -> anyhow::Result<u8> {
    let runs = select::select_some(client, args, true, "restore").await?;
    for run in runs {
        let restored = rpc(client.runs().restore_run(pb::RestoreRunRequest { run: run.id }).await)?;
        outln!("Restored {}", clean(&restored.id))?;
    }
    Ok(0)
}

pub async fn purge(client: &Client, args: &SelectArgs) -> anyhow::Result<u8> {
    let runs = select::select_some(client, args, true, "purge").await?;
    for run in runs {
        let purged = rpc(client.runs().purge_run(pb::PurgeRunRequest { run: run.id }).await)?;
        outln!("Purged {}", clean(&purged.id))?;
    }
    Ok(0)
}

/// `guild runs priority RUN N`: a queued run moves to its place for priority N.
pub async fn priority(client: &Client, run: &str, priority: i32) -> anyhow::Result<u8> {
    let moved = rpc(client
        .queue()
        .set_priority(pb::SetPriorityRequest {
            run: run_arg(run),
            priority,
        })
        .await)?;
    let position = moved.queue.as_ref().map_or(0, |q| q.position);
    outln!("{}: priority {priority}, queued #{position}", clean(&moved.id))?;
    Ok(0)
}

/// `guild runs info RUN`: everything about one run.
pub async fn info(client: &Client, run: &str) -> anyhow::Result<u8> {
    let detail = rpc(client.runs().get_run(pb::GetRunRequest { run: run_arg(run) }).await)?;
    out!("{}", info_text(&detail))?;
    Ok(0)
}

/// `guild list-attrs RUN`: the run's attrs as run.db has them.
pub async fn attrs(client: &Client, run: &str) -> anyhow::Result<u8> {
    let detail = rpc(client.runs().get_run(pb::GetRunRequest { run: run_arg(run) }).await)?;
    for attr in detail.attrs {
        outln!("{}: {}", clean(&attr.name), clean(&attr.value))?;
    }
    Ok(0)
}

fn run_json(run: &pb::Run) -> serde_json::Value {
    serde_json::json!({
        "id": run.id,
        "project_dir": run.project_dir,
        "project_name": run.project_name,
        "model": run.model,
        "op": run.op,
        "status": status_name(run),
        "created_ms": run.created_ms,
        "started_ms": (run.started_ms > 0).then_some(run.started_ms),
        "stopped_ms": (run.stopped_ms > 0).then_some(run.stopped_ms),
        "exit_status": run.exit_status,
        "run_dir": run.run_dir,
        "label": run.label,
        "tags": run.tags,
        "pid": (run.pid > 0).then_some(run.pid),
        "reason": run.reason,
        "source_run": run.source_run,
        "queue_position": run.queue.as_ref().map(|q| q.position).filter(|p| *p > 0),
        "priority": run.queue.as_ref().map(|q| q.priority),
        "gpus": run.queue.as_ref().map(|q| q.gpus.clone()).unwrap_or_default(),
        "sweep": (!run.sweep.is_empty()).then_some(&run.sweep),
        "trial": (run.trial > 0).then_some(run.trial),
    })
}

fn info_text(detail: &pb::RunDetail) -> String {
    let mut out = String::new();
    if let Some(run) = &detail.run {
        let mut fields = vec![
            ("id", run.id.clone()),
            ("model", run.model.clone()),
            ("op", run.op.clone()),
            ("status", status_name(run).to_string()),
            (
                "exit_status",
                run.exit_status.map(|c| c.to_string()).unwrap_or_default(),
            ),
            ("started", time::display(run.started_ms)),
            ("stopped", time::display(run.stopped_ms)),
            ("time", run_time(run)),
            ("run_dir", run.run_dir.clone()),
            ("project", run.project_dir.clone()),
            ("label", run.label.clone()),
            ("tags", run.tags.join(",")),
            (
                "pid",
                if run.pid > 0 {
                    run.pid.to_string()
                } else {
                    String::new()
                },
            ),
        ];
        if !run.source_run.is_empty() {
            fields.push(("source_run", run.source_run.clone()));
        }
        if let Some(queue) = &run.queue {
            if queue.position > 0 {
                fields.push(("queue_position", queue.position.to_string()));
                fields.push(("priority", queue.priority.to_string()));
            }
            if let Some(gpus) = queue.gpus_requested {
                fields.push(("gpus_requested", gpus.to_string()));
            }
            if !queue.gpus.is_empty() {
                fields.push(("gpus", queue.gpus.join(",")));
            }
        }
        if !run.sweep.is_empty() {
            fields.push(("sweep", format!("{} (trial {})", run.sweep, run.trial)));
        }
        if !run.reason.is_empty() {
            fields.push(("reason", run.reason.clone()));
        }
        // A run on Slurm: its job, and where it ran.
        for name in ["slurm_job_id", "slurm_node", "slurm_state"] {
            if let Some(attr) = detail.attrs.iter().find(|a| a.name == name) {
                fields.push((name, attr.value.clone()));
            }
        }
        for (name, value) in fields {
            out.push_str(&format!("{name}: {}\n", clean(&value)));
        }
    }
    out.push_str("flags:\n");
    for flag in &detail.flags {
        out.push_str(&format!("  {}: {}\n", clean(&flag.name), clean(&flag.value)));
    }
    if !detail.series.is_empty() {
        out.push_str("scalars:\n");
        for key in &detail.series {
            out.push_str(&format!(
                "  {}: {} (step {})\n",
                clean(&key.key),
                format_exact(key.last),
                key.last_step
            ));
        }
    }
    out
}
