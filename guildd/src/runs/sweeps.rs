//! Sweeps: a run of op `sweep` whose trials are runs. `Manager::start` hands a start
//! whose flags hold a sweep (`lr=[0.1,0.01]`, `uniform[0:1]`, ...) to `start_sweep`,
//! which records the sweep (its own run folder and run.db, its spec in index.db) and
//! starts its driver: a task that asks the optimizer (`crate::sweep`) for each trial's
//! flags, starts trials through the queue like any run (at most `parallel` at once),
//! follows them through the watchers' broadcast, and records the sweep's end. The
//! optimizer is a function of the seed and the trials so far, so a restarted daemon picks
//! a sweep up again from its trials (`resume_sweep`).

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use tokio::sync::{broadcast::error::RecvError, watch};

use super::owner::{Ask, Message, RunEvent};
use super::prepare::{self, Plan};
use super::{Manager, StartSpec, Starting, append_error, user_name};
use crate::error::{Error, Result};
use crate::store::{Index, RunDb, RunRecord, Status};
use crate::sweep::{Optimizer, OptimizerKind, Params, Space};

/// The op of a sweep's own run.
pub const SWEEP_OP: &str = "sweep";
/// Trials of random search and TPE when `--max-trials` is not given.
pub const DEFAULT_MAX_TRIALS: u32 = 20;
/// The most trials one sweep may have.
pub const MAX_TRIALS: u32 = 100_000;
/// The objective when neither `--minimize` nor `--maximize` names one.
pub const DEFAULT_OBJECTIVE: &str = "loss";

/// What a sweep was started with: enough to start its trials, now or after a restart
/// (index.db `sweep.spec`, JSON).
#[derive(Clone, Debug, PartialEq)]
pub struct SweepSpec {
    pub project_dir: PathBuf,
    pub model: String,
    /// The trials' op (`train`).
    pub op: String,
    pub profile: Option<String>,
    /// Every resolved flag, the swept ones as written.
    pub flags: Vec<(String, String)>,
    pub env: BTreeMap<String, String>,
    pub gpus: Option<u32>,
    pub priority: i32,
    pub label: String,
    pub optimizer: OptimizerKind,
    pub seed: u64,
    pub max_trials: u32,
    pub parallel: u32,
    pub objective: String,
    pub maximize: bool,
    /// Set: each trial is a Slurm job, with these `--sbatch` arguments (`--slurm`).
    pub slurm: Option<Vec<String>>,
}

impl SweepSpec {
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "project_dir": self.project_dir.to_string_lossy(),
            "model": self.model,
            "op": self.op,
            "profile": self.profile,
            "flags": self.flags,
            "env": self.env,
            "gpus": self.gpus,
            "priority": self.priority,
            "label": self.label,
            "optimizer": self.optimizer.to_string(),
            "seed": self.seed.to_string(),
            "max_trials": self.max_trials,
            "parallel": self.parallel,
            "objective": self.objective,
            "maximize": self.maximize,
            "slurm": self.slurm,
        })
        .to_string()
    }

    pub fn from_json(text: &str) -> Option<SweepSpec> {
        let v: serde_json::Value = serde_json::from_str(text).ok()?;
        let text = |key: &str| v[key].as_str().map(str::to_string);
        Some(SweepSpec {
            project_dir: PathBuf::from(text("project_dir")?),
            model: text("model")?,
            op: text("op")?,
            profile: text("profile"),
            flags: v["flags"]
                .as_array()?
                .iter()
                .map(|pair| Some((pair[0].as_str()?.to_string(), pair[1].as_str()?.to_string())))
                .collect::<Option<Vec<_>>>()?,
            env: v["env"]
                .as_object()?
                .iter()
                .map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect::<Option<BTreeMap<_, _>>>()?,
            gpus: v["gpus"].as_u64().map(|g| g.min(u32::MAX as u64) as u32),
            priority: v["priority"]
                .as_i64()
                .unwrap_or(0)
                .clamp(i32::MIN as i64, i32::MAX as i64) as i32,
            label: text("label").unwrap_or_default(),
            optimizer: text("optimizer")?.parse().ok()?,
            seed: text("seed")?.parse().ok()?,
            max_trials: v["max_trials"].as_u64()?.min(MAX_TRIALS as u64) as u32,
            parallel: v["parallel"].as_u64()?.clamp(1, 10_000) as u32,
            objective: text("objective")?,
            maximize: v["maximize"].as_bool()?,
            slurm: match &v["slurm"] {
                serde_json::Value::Null => None,
                args => Some(args.as_array()?.iter().map(|a| a.as_str().map(str::to_string)).collect::<Option<_>>()?),
            },
        })
    }

    pub fn space(&self) -> Result<Space> {
        Space::parse(&self.flags).map_err(|e| Error::Invalid(e.to_string()))
    }
}

/// A sweep as the API shows it.
pub struct SweepView {
    pub run: RunRecord,
    pub spec: SweepSpec,
    pub trials: Vec<TrialView>,
    /// The best completed trial's number.
    pub best: Option<u32>,
}

pub struct TrialView {
    pub number: u32,
    pub run: RunRecord,
    pub flags: Vec<(String, String)>,
    pub objective: Option<f64>,
}

/// The last value of the objective's key in a run (None: it has none, or NaN).
async fn objective_of(index: &Index, run_id: &str, key: &str) -> Option<f64> {
    let summaries = index.summaries(run_id).await.ok()?;
    summaries
        .into_iter()
        .find(|s| s.key == key)
        .map(|s| s.last)
        .filter(|v| !v.is_nan())
}

/// The best of these (number, objective, completed) by the sweep's direction.
fn best_of(trials: impl Iterator<Item = (u32, Option<f64>, bool)>, maximize: bool) -> Option<u32> {
    trials
        .filter_map(|(n, objective, completed)| Some((n, objective.filter(|_| completed)?)))
        .min_by(|a, b| {
            let (a, b) = if maximize { (-a.1, -b.1) } else { (a.1, b.1) };
            a.total_cmp(&b)
        })
        .map(|(n, _)| n)
}

/// A sweep (named by its run, or by one of its trials) with its trials now.
pub async fn sweep_view(index: &Index, selector: &str) -> Result<SweepView> {
    let mut run = index.resolve(selector).await?;
    if run.op != SWEEP_OP {
        let of = index.trial_sweeps().await?.remove(&run.id);
        match of {
            Some(of) => run = index.resolve(&of.sweep_id).await?,
            None => {
                return Err(Error::Invalid(format!(
                    "run {} is not a sweep (op {}) nor one of a sweep's trials",
                    run.id, run.op
                )));
            }
        }
    }
    let spec = index
        .sweep_spec(&run.id)
        .await?
        .and_then(|s| SweepSpec::from_json(&s))
        .ok_or_else(|| Error::NotFound(format!("sweep {} has no spec in index.db", run.id)))?;
    let mut trials = Vec::new();
    for (run_id, number) in index.trials(&run.id).await? {
        let Some(trial) = index.get_run(&run_id).await? else {
            continue;
        };
        let flags = index.run_flags(&run_id).await?;
        let objective = objective_of(index, &run_id, &spec.objective).await;
        trials.push(TrialView {
            number,
            run: trial,
            flags,
            objective,
        });
    }
    // Swept flags first, in the space's order.
    let order: Vec<&str> = spec.flags.iter().map(|(n, _)| n.as_str()).collect();
    for trial in &mut trials {
        trial
            .flags
            .sort_by_key(|(name, _)| order.iter().position(|o| o == name).unwrap_or(usize::MAX));
    }
    let best = best_of(
        trials
            .iter()
            .map(|t| (t.number, t.objective, t.run.status == Status::Completed)),
        spec.maximize,
    );
    Ok(SweepView {
        run,
        spec,
        trials,
        best,
    })
}

/// One trial as the driver follows it.
struct Trial {
    run_id: String,
    /// Its point (None: its flags are not a point of the space; the optimizer leaves it out).
    params: Option<Params>,
    status: Status,
    objective: Option<f64>,
}

type StartFuture = Pin<Box<dyn Future<Output = Result<RunRecord>> + Send>>;

impl Manager {
    /// Records a sweep and starts its driver; the sweep's run is returned at once.
    pub(super) async fn start_sweep(&self, spec: StartSpec, plan: Plan, space: Space) -> Result<RunRecord> {
        let invalid = |e: crate::sweep::OptimizerError| Error::Invalid(e.to_string());
        let kind = match &spec.sweep.optimizer {
            Some(name) => name.parse::<OptimizerKind>().map_err(invalid)?,
            None => OptimizerKind::default_for(&space),
        };
        let seed = match spec.sweep.seed {
            Some(seed) => seed,
            None => getrandom::u64().unwrap_or(guild_proto::time::now_ms() as u64),
        };
        Optimizer::new(kind, space.clone(), seed).map_err(invalid)?;
        let max_trials = match (spec.sweep.max_trials, space.grid_len()) {
            (0, Some(points)) if kind == OptimizerKind::Grid => {
                if points > u64::from(MAX_TRIALS) {
                    return Err(Error::Invalid(format!(
                        "the grid has {points} combinations, more than a sweep runs ({MAX_TRIALS}); pass --max-trials N"
                    )));
                }
                points as u32
            }
            (0, _) => DEFAULT_MAX_TRIALS,
            (n, Some(points)) if kind == OptimizerKind::Grid => n.min(points.min(u64::from(MAX_TRIALS)) as u32),
            (n, _) if n > MAX_TRIALS => {
                return Err(Error::Invalid(format!(
                    "--max-trials {n}: a sweep runs at most {MAX_TRIALS} trials"
                )));
            }
            (n, _) => n,
        };
        let gpus = spec.gpus.or(plan.gpus);
        crate::queue::Queue::check(&self.inner.settings.resources, gpus).map_err(Error::Invalid)?;
        let sweep = SweepSpec {
            project_dir: plan.project_dir.clone(),
            model: plan.model.clone(),
            op: plan.op.clone(),
            profile: spec.profile.clone(),
            flags: plan.flags.clone(),
            env: if spec.env.is_empty() {
                std::env::vars().collect()
            } else {
                spec.env.clone()
            },
            gpus,
            priority: spec.priority,
            label: spec.label.clone(),
            optimizer: kind,
            seed,
            max_trials,
            parallel: spec.sweep.parallel.max(1),
            slurm: spec.slurm.as_ref().map(|slurm| slurm.sbatch.clone()),
            objective: spec
                .sweep
                .objective
                .clone()
                .filter(|o| !o.trim().is_empty())
                .unwrap_or_else(|| DEFAULT_OBJECTIVE.to_string()),
            maximize: spec.sweep.maximize,
        };

        let created_ms = guild_proto::time::now_ms();
        let (id, run_dir) = self.new_run_dir(&plan, created_ms).await?;
        let _starting = Starting {
            owner: self.inner.owner.clone(),
            id: id.clone(),
        };
        let record = RunRecord {
            id: id.clone(),
            project_dir: plan.project_dir.to_string_lossy().into_owned(),
            project_name: plan.project_name.clone(),
            model: plan.model.clone(),
            op: SWEEP_OP.to_string(),
            status: Status::Running,
            created_ms,
            started_ms: Some(created_ms),
            stopped_ms: None,
            exit_status: None,
            run_dir: run_dir.clone(),
            label: spec.label.clone(),
            pid: None,
            pid_start: None,
            reason: String::new(),
            source_run: String::new(),
        };
        let guild_d = run_dir.join("guild.d");
        let setup = async {
            std::fs::File::create(guild_d.join("errors.log"))
                .map_err(|e| Error::io("cannot create", guild_d.join("errors.log"), e))?;
            let data_dir = self.inner.index.db_path().parent().unwrap_or(std::path::Path::new("."));
            let mut db = RunDb::create(&guild_d.join("run.db"), data_dir).await?;
            db.put_flags(&plan.flags).await?;
            let mut attrs = vec![
                ("id".to_string(), id.clone()),
                ("model".to_string(), plan.model.clone()),
                ("op".to_string(), SWEEP_OP.to_string()),
                ("trial_op".to_string(), sweep.op.clone()),
                ("created".to_string(), created_ms.to_string()),
                ("started".to_string(), created_ms.to_string()),
                ("status".to_string(), Status::Running.as_str().to_string()),
                ("host".to_string(), whoami::hostname().unwrap_or_default()),
                (
                    "user".to_string(),
                    sweep.env.get("USER").cloned().unwrap_or_else(user_name),
                ),
                ("project".to_string(), plan.project_dir.to_string_lossy().into_owned()),
                ("project_name".to_string(), plan.project_name.clone()),
                ("guild_version".to_string(), guild_proto::VERSION.to_string()),
                ("optimizer".to_string(), kind.to_string()),
                ("seed".to_string(), seed.to_string()),
                ("max_trials".to_string(), max_trials.to_string()),
                ("parallel".to_string(), sweep.parallel.to_string()),
                ("objective".to_string(), sweep.objective.clone()),
                (
                    "direction".to_string(),
                    if sweep.maximize { "maximize" } else { "minimize" }.to_string(),
                ),
            ];
            if let Some(profile) = &spec.profile {
                attrs.push(("profile".to_string(), profile.clone()));
            }
            if !spec.label.is_empty() {
                attrs.push(("label".to_string(), spec.label.clone()));
            }
            db.put_attrs(&attrs).await?;
            db.close().await;
            std::fs::copy(&plan.guild_file, guild_d.join("Guild"))
                .map_err(|e| Error::io("cannot copy", &plan.guild_file, e))?;
            self.inner.index.insert_run(&record, &plan.flags).await?;
            self.inner.index.put_sweep(&id, &sweep.to_json()).await?;
            Ok::<_, Error>(())
        };
        if let Err(err) = setup.await {
            let _ = std::fs::remove_dir_all(&run_dir);
            return Err(err);
        }
        self.publish(&record).await;
        self.drive(record.clone(), sweep, space).await;
        Ok(record)
    }

    /// At start-up: a sweep an earlier daemon was running goes on from its trials.
    pub(super) async fn resume_sweep(&self, mut record: RunRecord) {
        let spec = self
            .inner
            .index
            .sweep_spec(&record.id)
            .await
            .ok()
            .flatten()
            .and_then(|s| SweepSpec::from_json(&s));
        let space = spec.as_ref().map(SweepSpec::space);
        match (spec, space) {
            (Some(spec), Some(Ok(space))) => {
                tracing::info!(sweep = %record.id, "picking the sweep up again");
                self.drive(record, spec, space).await;
            }
            _ => {
                record.status = Status::Failed;
                record.reason = "the sweep's spec is missing from index.db".into();
                record.stopped_ms = Some(guild_proto::time::now_ms());
                append_error(&record.run_dir.join("guild.d"), &record.reason);
                if self.inner.index.update_run(&record).await.is_ok() {
                    self.publish(&record).await;
                }
            }
        }
    }

    /// `guild stop SWEEP`: no new trials; queued ones are cancelled, running ones stopped.
    pub(super) async fn stop_sweep(&self, run: RunRecord) -> Result<RunRecord> {
        let id = run.id.clone();
        let found = self
            .ask(|reply| Ask::StopSweep { id, reply })
            .await
            .ok_or(Error::ShuttingDown)?;
        if !found {
            return Err(Error::Conflict(format!(
                "sweep {} has no driver (it is ending); see `guild runs`",
                run.id
            )));
        }
        Ok(run)
    }

    async fn drive(&self, record: RunRecord, spec: SweepSpec, space: Space) {
        let (stop_tx, stop) = watch::channel(false);
        let id = record.id.clone();
        let _ = self
            .inner
            .owner
            .send(Message::Ask(Ask::TrackSweep { id, stop: stop_tx }))
            .await;
        let optimizer = match Optimizer::new(spec.optimizer, space, spec.seed) {
            Ok(optimizer) => optimizer,
            Err(err) => {
                let driver = Driver::new(self.clone(), record, spec, None, stop);
                driver.end(Vec::new(), Some(err.to_string()), false).await;
                return;
            }
        };
        let driver = Driver::new(self.clone(), record, spec, Some(optimizer), stop);
        tokio::spawn(driver.run());
    }
}

struct Driver {
    manager: Manager,
    record: RunRecord,
    spec: SweepSpec,
    optimizer: Option<Optimizer>,
    stop: watch::Receiver<bool>,
    shutdown: watch::Receiver<bool>,
}

impl Driver {
    fn new(
        manager: Manager,
        record: RunRecord,
        spec: SweepSpec,
        optimizer: Option<Optimizer>,
        stop: watch::Receiver<bool>,
    ) -> Driver {
        let shutdown = manager.inner.shutdown.subscribe();
        Driver {
            manager,
            record,
            spec,
            optimizer,
            stop,
            shutdown,
        }
    }

    fn index(&self) -> &Index {
        &self.manager.inner.index
    }

    /// The trials an earlier daemon started (none for a new sweep).
    async fn load_trials(&self) -> Vec<Trial> {
        let mut trials = Vec::new();
        let Ok(known) = self.index().trials(&self.record.id).await else {
            return trials;
        };
        for (run_id, _) in known {
            let run = self.index().get_run(&run_id).await.ok().flatten();
            let flags = self.index().run_flags(&run_id).await.unwrap_or_default();
            let params = self
                .optimizer
                .as_ref()
                .and_then(|o| o.space().params_from_flags(&flags).ok());
            let status = run.map_or(Status::Failed, |r| r.status);
            let objective = if status.is_active() {
                None
            } else {
                objective_of(self.index(), &run_id, &self.spec.objective).await
            };
            trials.push(Trial {
                run_id,
                params,
                status,
                objective,
            });
        }
        trials
    }

    async fn run(mut self) {
        let mut events = self.manager.subscribe();
        let mut trials = self.load_trials().await;
        let mut exhausted = false;
        let mut stopping = false;
        let mut start_error: Option<String> = None;
        loop {
            if *self.stop.borrow() && !stopping {
                stopping = true;
                for trial in trials.iter().filter(|t| t.status.is_active()) {
                    if let Err(err) = self.manager.stop(&trial.run_id).await {
                        tracing::info!(sweep = %self.record.id, trial = %trial.run_id, "stopping the trial: {err}");
                    }
                }
            }
            while !stopping && start_error.is_none() && !exhausted {
                let active = trials.iter().filter(|t| t.status.is_active()).count() as u32;
                if active >= self.spec.parallel || trials.len() as u32 >= self.spec.max_trials {
                    break;
                }
                let Some(optimizer) = &self.optimizer else { break };
                let finished: Vec<(Params, Option<f64>)> = trials
                    .iter()
                    .filter(|t| !t.status.is_active())
                    .filter_map(|t| {
                        let objective = t
                            .objective
                            .filter(|_| t.status == Status::Completed)
                            .map(|v| if self.spec.maximize { -v } else { v });
                        Some((t.params.clone()?, objective))
                    })
                    .collect();
                let pending: Vec<Params> = trials
                    .iter()
                    .filter(|t| t.status.is_active())
                    .filter_map(|t| t.params.clone())
                    .collect();
                let Some(params) = optimizer.propose(&finished, &pending) else {
                    exhausted = true;
                    break;
                };
                let flags = optimizer.space().flags(&params);
                let number = trials.len() as u32 + 1;
                match self.start_trial(number, flags).await {
                    Ok(run) => trials.push(Trial {
                        run_id: run.id,
                        params: Some(params),
                        status: run.status,
                        objective: None,
                    }),
                    Err(err) => start_error = Some(format!("trial {number} could not start: {err}")),
                }
            }
            let active = trials.iter().any(|t| t.status.is_active());
            let done = stopping
                || start_error.is_some()
                || exhausted
                || self.optimizer.is_none()
                || trials.len() as u32 >= self.spec.max_trials;
            if !active && done {
                break;
            }
            tokio::select! {
                event = events.recv() => match event {
                    Ok(change) => {
                        if let Some(trial) = trials.iter_mut().find(|t| t.run_id == change.run.id) {
                            trial.status = if change.removed { Status::Failed } else { change.run.status };
                            if !trial.status.is_active() {
                                trial.objective = objective_of(&self.manager.inner.index, &trial.run_id, &self.spec.objective).await;
                            }
                        }
                    }
                    Err(RecvError::Lagged(_)) => self.resync(&mut trials).await,
                    Err(RecvError::Closed) => return,
                },
                _ = self.stop.changed() => {}
                // The daemon is going away: the next one picks the sweep up again.
                _ = self.shutdown.changed() => return,
            }
        }
        self.end(trials, start_error, stopping).await;
    }

    /// After missing events: the active trials' statuses as the index has them.
    async fn resync(&self, trials: &mut [Trial]) {
        for trial in trials.iter_mut().filter(|t| t.status.is_active()) {
            if let Ok(run) = self.index().get_run(&trial.run_id).await {
                trial.status = run.map_or(Status::Failed, |r| r.status);
                if !trial.status.is_active() {
                    trial.objective = objective_of(self.index(), &trial.run_id, &self.spec.objective).await;
                }
            }
        }
    }

    fn start_trial(&self, number: u32, flags: Vec<(String, String)>) -> StartFuture {
        let spec = StartSpec {
            project_dir: self.spec.project_dir.clone(),
            model: Some(self.spec.model.clone()),
            op: self.spec.op.clone(),
            profile: self.spec.profile.clone(),
            flags,
            source_run: None,
            label: self.spec.label.clone(),
            env: self.spec.env.clone(),
            gpus: self.spec.gpus,
            priority: self.spec.priority,
            sweep: prepare::SweepOptions::default(),
            trial: Some((self.record.id.clone(), number)),
            // A Slurm sweep's trial is a job (its GPUs: the sweep's `gpus`, as --gres).
            slurm: self.spec.slurm.clone().map(|sbatch| crate::slurm::SlurmSpec { sbatch, gpus: 0 }),
        };
        let manager = self.manager.clone();
        // Boxed: a trial's start is a start, whose future holds a sweep's driver.
        Box::pin(async move { manager.start(spec).await })
    }

    /// Records the sweep's end: completed when every trial completed, terminated when
    /// stopped, else error (or failed when a trial could not start), with the best trial.
    async fn end(mut self, trials: Vec<Trial>, start_error: Option<String>, stopped: bool) {
        let completed = trials.iter().filter(|t| t.status == Status::Completed).count();
        let record = &mut self.record;
        record.stopped_ms = Some(guild_proto::time::now_ms());
        (record.status, record.reason) = if stopped {
            (Status::Terminated, format!("stopped after {} trials", trials.len()))
        } else if let Some(err) = start_error {
            (Status::Failed, err)
        } else if completed == trials.len() {
            (Status::Completed, String::new())
        } else {
            (
                Status::Error,
                format!(
                    "{} of {} trials did not complete",
                    trials.len() - completed,
                    trials.len()
                ),
            )
        };
        record.exit_status = Some(if record.status == Status::Completed { 0 } else { 1 });
        let numbered = trials
            .iter()
            .enumerate()
            .map(|(i, t)| (i as u32 + 1, t.objective, t.status == Status::Completed));
        let best = best_of(numbered, self.spec.maximize);
        let mut attrs = vec![
            ("status".to_string(), record.status.as_str().to_string()),
            ("stopped".to_string(), record.stopped_ms.unwrap_or(0).to_string()),
            ("trials".to_string(), trials.len().to_string()),
        ];
        if let Some(best) = best {
            attrs.push(("best_trial".to_string(), best.to_string()));
            attrs.push(("best_run".to_string(), trials[best as usize - 1].run_id.clone()));
        }
        if !record.reason.is_empty() {
            attrs.push(("reason".to_string(), record.reason.clone()));
            append_error(&record.run_dir.join("guild.d"), &record.reason);
        }
        match RunDb::open(&record.run_dir.join("guild.d").join("run.db")).await {
            Ok(mut db) => {
                if let Err(err) = db.put_attrs(&attrs).await {
                    tracing::error!(sweep = %record.id, "cannot record the sweep's end in its run.db: {err}");
                }
                db.close().await;
            }
            Err(err) => tracing::error!(sweep = %record.id, "cannot open the sweep's run.db: {err}"),
        }
        if let Err(err) = self.manager.inner.index.update_run(record).await {
            tracing::error!(sweep = %record.id, "cannot record the sweep's end in index.db: {err}");
        }
        let record = record.clone();
        self.manager.publish(&record).await;
        self.manager.tell(RunEvent::SweepEnded { id: record.id }).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_reads_back_as_written() {
        let spec = SweepSpec {
            project_dir: "/p".into(),
            model: "m".into(),
            op: "train".into(),
            profile: None,
            flags: vec![("lr".into(), "[0.1,0.01]".into()), ("epochs".into(), "2".into())],
            env: BTreeMap::from([("PATH".to_string(), "/bin".to_string())]),
            gpus: Some(1),
            priority: -2,
            label: "l".into(),
            optimizer: OptimizerKind::Tpe,
            seed: u64::MAX,
            max_trials: 7,
            parallel: 2,
            objective: "val_loss".into(),
            maximize: true,
            slurm: None,
        };
        assert_eq!(SweepSpec::from_json(&spec.to_json()), Some(spec.clone()));
        let on_slurm = SweepSpec {
            slurm: Some(vec!["--partition=gpu".into()]),
            ..spec
        };
        assert_eq!(SweepSpec::from_json(&on_slurm.to_json()), Some(on_slurm));
    }

    #[test]
    fn the_best_trial_is_a_completed_one_in_the_sweeps_direction() {
        let trials = [
            (1, Some(0.5), true),
            (2, Some(0.1), false),
            (3, Some(0.3), true),
            (4, None, true),
        ];
        assert_eq!(best_of(trials.into_iter(), false), Some(3));
        assert_eq!(best_of(trials.into_iter(), true), Some(1));
        assert_eq!(best_of(std::iter::empty(), true), None);
    }
}
