//! Sweeps on the command line: the options of a start that sweeps (`--max-trials`,
//! `--optimizer`, `--minimize`/`--maximize`, `--seed`, `--parallel`), following a sweep
//! (a line per trial as it starts and ends, then its trials best first), and a sweep named
//! where runs are (`guild compare SWEEP` compares its trials).

use std::collections::{HashMap, HashSet};

use anyhow::{anyhow, bail};
use clap::Args;
use guild_proto::v1::{self as pb, RunStatus};
use tokio::signal::unix::Signal;
use tokio_stream::StreamExt;

use crate::format::{format_short, status_name};
use crate::out::clean;
use crate::rpc::{Client, rpc, status_error};
use crate::table::{Align, render};

/// The op of a sweep's own run.
pub const SWEEP_OP: &str = "sweep";

#[derive(Args, Clone, Default)]
pub struct SweepArgs {
    /// Most trials of a sweep (default: the whole grid; 20 for random and TPE).
    #[arg(long, value_name = "N")]
    pub max_trials: Option<u32>,
    /// grid, random or tpe (default: random when a flag is a range, else grid).
    #[arg(long, value_name = "NAME", value_parser = ["grid", "random", "tpe"])]
    pub optimizer: Option<String>,
    /// The objective: minimize this series key's last value (default: loss).
    #[arg(long, value_name = "KEY", conflicts_with = "maximize")]
    pub minimize: Option<String>,
    /// The objective: maximize this series key's last value.
    #[arg(long, value_name = "KEY")]
    pub maximize: Option<String>,
    /// Seed of random draws and TPE, for a sweep that can be run again as it was.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Trials at once (default 1), within the queue's limits.
    #[arg(long, value_name = "N")]
    pub parallel: Option<u32>,
}

impl SweepArgs {
    pub fn to_proto(&self) -> anyhow::Result<Option<pb::SweepOptions>> {
        if self.parallel == Some(0) {
            bail!("--parallel: at least 1");
        }
        if self.max_trials == Some(0) {
            bail!("--max-trials: at least 1");
        }
        Ok(Some(pb::SweepOptions {
            max_trials: self.max_trials.unwrap_or(0),
            optimizer: self.optimizer.clone().unwrap_or_default(),
            minimize: self.minimize.clone().unwrap_or_default(),
            maximize: self.maximize.clone().unwrap_or_default(),
            seed: self.seed,
            parallel: self.parallel.unwrap_or(0),
        }))
    }
}

fn is_final(status: RunStatus) -> bool {
    !matches!(
        status,
        RunStatus::Pending | RunStatus::Queued | RunStatus::Running | RunStatus::Unspecified
    )
}

/// The flags a sweep varies (their values are sweeps: `[..]`, `uniform[..]`, ...).
fn swept(sweep: &pb::Sweep) -> Vec<String> {
    sweep
        .space
        .iter()
        .filter(|f| f.value.contains('['))
        .map(|f| f.name.clone())
        .collect()
}

fn objective_text(value: Option<f64>) -> String {
    value.map(format_short).unwrap_or_else(|| "-".into())
}

/// `guild train` of a sweep: a line per trial as it starts and as it ends (its flags,
/// status and objective), then the trials best first. Exit 0 when every trial completed;
/// Ctrl-C stops the sweep.
pub async fn follow(client: &Client, sweep_run: &pb::Run, sigint: &mut Signal) -> anyhow::Result<u8> {
    let id = sweep_run.id.clone();
    let sweep = get(client, &id).await?;
    let names = swept(&sweep);
    eprintln!(
        "Sweep {}: {} over {}, {} trial{} at most, {} at once; objective: {} {}",
        clean(&id),
        sweep.optimizer,
        clean(&names.join(", ")),
        sweep.max_trials,
        if sweep.max_trials == 1 { "" } else { "s" },
        sweep.parallel,
        if sweep.maximize { "maximize" } else { "minimize" },
        clean(&sweep.objective)
    );
    let mut events = rpc(client.runs().watch_runs(pb::WatchRunsRequest::default()).await)?;
    let mut started: HashSet<String> = HashSet::new();
    let mut ended: HashSet<String> = HashSet::new();
    let mut interrupted = false;
    let last = loop {
        tokio::select! {
            event = events.next() => match event {
                Some(Ok(pb::RunEvent { run: Some(run), removed: false, .. })) => {
                    if run.id == id && is_final(run.status()) {
                        break run;
                    }
                    if run.sweep != id {
                        continue;
                    }
                    if started.insert(run.id.clone()) {
                        let flags = trial_flags(client, &run.id, &names).await;
                        let queued = match &run.queue {
                            Some(q) if q.position > 0 => format!(" (queued #{})", q.position),
                            _ => String::new(),
                        };
                        outln!("trial {} started{queued}: {}  {}", run.trial, clean(&flags), clean(&run.id))?;
                    }
                    if is_final(run.status()) && ended.insert(run.id.clone()) {
                        let objective = objective_of(client, &run.id, &sweep.objective).await;
                        outln!(
                            "trial {} {}: {} = {}  {}",
                            run.trial,
                            status_name(&run),
                            clean(&sweep.objective),
                            objective_text(objective),
                            clean(&run.id)
                        )?;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(status)) => return Err(status_error(status)),
                None => return Err(anyhow!("guildd went away while following sweep {}", clean(&id))),
            },
            _ = sigint.recv(), if !interrupted => {
                interrupted = true;
                eprintln!("\nStopping sweep {} (its queued trials are cancelled, running ones stopped)", clean(&id));
                rpc(client.runs().stop_run(pb::StopRunRequest { run: id.clone() }).await)?;
            }
        }
    };
    let sweep = get(client, &id).await?;
    out!("{}", trials_table(&sweep))?;
    if !last.reason.is_empty() {
        eprintln!("Sweep {} {}: {}", clean(&id), status_name(&last), clean(&last.reason));
    }
    Ok(match last.status() {
        RunStatus::Completed => 0,
        RunStatus::Terminated if interrupted => 130,
        _ => 1,
    })
}

async fn get(client: &Client, sweep: &str) -> anyhow::Result<pb::Sweep> {
    rpc(client
        .sweeps()
        .get_sweep(pb::GetSweepRequest {
            sweep: sweep.to_string(),
        })
        .await)
}

/// `lr=0.01 batch_size=50`: the swept flags of a trial.
async fn trial_flags(client: &Client, run: &str, names: &[String]) -> String {
    let Ok(detail) = rpc(client.runs().get_run(pb::GetRunRequest { run: run.to_string() }).await) else {
        return String::new();
    };
    let values: HashMap<&str, &str> = detail
        .flags
        .iter()
        .map(|f| (f.name.as_str(), f.value.as_str()))
        .collect();
    names
        .iter()
        .map(|n| format!("{n}={}", values.get(n.as_str()).copied().unwrap_or("")))
        .collect::<Vec<_>>()
        .join(" ")
}

async fn objective_of(client: &Client, run: &str, key: &str) -> Option<f64> {
    let detail = rpc(client.runs().get_run(pb::GetRunRequest { run: run.to_string() }).await).ok()?;
    detail
        .series
        .iter()
        .find(|s| s.key == key)
        .map(|s| s.last)
        .filter(|v| !v.is_nan())
}

/// The trials, best first: completed trials with an objective by the sweep's direction,
/// then the rest by trial number.
pub fn trials_table(sweep: &pb::Sweep) -> String {
    let names = swept(sweep);
    let mut trials: Vec<&pb::Trial> = sweep.trials.iter().collect();
    let key = |t: &pb::Trial| {
        let completed = t.run.as_ref().is_some_and(|r| r.status() == RunStatus::Completed);
        match t.objective.filter(|_| completed) {
            Some(v) => (0, if sweep.maximize { -v } else { v }),
            None => (1, f64::from(t.number)),
        }
    };
    trials.sort_by(|a, b| {
        let (ka, kb) = (key(a), key(b));
        ka.0.cmp(&kb.0).then(ka.1.total_cmp(&kb.1))
    });
    let mut rows = vec![{
        let mut head = vec![
            "trial".to_string(),
            "run".into(),
            "status".into(),
            sweep.objective.clone(),
        ];
        head.extend(names.iter().cloned());
        head
    }];
    for trial in trials {
        let Some(run) = &trial.run else { continue };
        let mut row = vec![
            if trial.number == sweep.best_trial {
                format!("{} (best)", trial.number)
            } else {
                trial.number.to_string()
            },
            run.id.clone(),
            status_name(run).to_string(),
            objective_text(trial.objective),
        ];
        for name in &names {
            row.push(
                trial
                    .flags
                    .iter()
                    .find(|f| &f.name == name)
                    .map(|f| f.value.clone())
                    .unwrap_or_default(),
            );
        }
        rows.push(row);
    }
    render(rows, &[Align::Left, Align::Left, Align::Left, Align::Right])
}

/// RUNS with each sweep named among them replaced by its trials (`guild compare SWEEP`).
pub async fn expand(client: &Client, runs: Vec<String>) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::with_capacity(runs.len());
    for arg in runs {
        let found = rpc(client.runs().get_run(pb::GetRunRequest { run: arg.clone() }).await)
            .ok()
            .and_then(|d| d.run)
            .filter(|r| r.op == SWEEP_OP);
        match found {
            Some(run) => {
                let sweep = get(client, &run.id).await?;
                if sweep.trials.is_empty() {
                    bail!("sweep {} has no trials yet", clean(&run.id));
                }
                out.extend(sweep.trials.iter().filter_map(|t| t.run.as_ref().map(|r| r.id.clone())));
            }
            None => out.push(arg),
        }
    }
    Ok(out)
}
