//! Runs owned by the daemon: starting them from a Guild file, stopping them, following
//! them to their end, and adopting the ones a previous daemon left running.
//!
//! Each live run has one task (see `live`) that owns its run.db writer, its tailer and
//! its process, and tells the manager what happened; one task (`owner`) owns the
//! manager's shared state (the live runs, problems, watchers) and decides. The manager's
//! methods ask that owner; they never share a lock with the run tasks.

pub mod archive;
pub mod errlog;
pub mod journal;
mod launch;
pub mod live;
pub mod notify;
pub mod order;
pub mod output;
mod owner;
pub mod prepare;
mod retry;
pub mod secrets;
mod slurm_run;
pub mod supervisor;
pub mod sweeps;
pub mod tail;
pub mod trash;
pub mod unpack;
pub mod view;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tracing::Instrument;

use crate::collectors::events::EventTail;
use crate::collectors::sampler::StatsService;
use crate::error::{Error, Result};
use crate::store::summary::Summaries;
use crate::store::{Index, RunDb, RunRecord, Status, rundb};
pub use errlog::append_error;
use owner::{Ask, LiveHandle, Message, RunEvent, RunRequest};
pub use owner::QueueSnapshot;
pub use prepare::{StartSpec, SweepOptions};

/// What a start would do (`Manager::preview`).
pub struct Preview {
    pub plan: prepare::Plan,
    pub argv: Vec<String>,
    pub run_dir: PathBuf,
    pub env: Vec<(String, String)>,
}

/// Resolves a start against its Guild file on a blocking thread: reading and parsing the
/// file must not hold up the async workers.
async fn plan_off_thread(spec: &StartSpec) -> Result<prepare::Plan> {
    let spec = spec.clone();
    tokio::task::spawn_blocking(move || prepare::plan(&spec))
        .await
        .map_err(|_| Error::Invalid("resolving the run against its Guild file failed".into()))?
}

/// What WatchRuns hears: a run that started, changed or ended, or one that left the list.
#[derive(Clone, Debug)]
pub struct RunChange {
    pub run: RunRecord,
    pub removed: bool,
}

/// How far a live run has got: the last committed output seq, sample cursor and media
/// cursor, and whether it ended.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Progress {
    pub last_seq: i64,
    pub last_sample: i64,
    pub last_media: i64,
    pub finished: bool,
}

pub struct Settings {
    /// The Python interpreter for module ops (`GUILD_PYTHON`, default `python3`).
    pub python: String,
    /// This daemon's own executable, started as `guildd supervise` for every run.
    pub supervisor_exe: PathBuf,
    /// What the queue gives out: GPUs and the most runs at once.
    pub resources: crate::queue::Resources,
}

pub(crate) struct Inner {
    index: Index,
    stats: StatsService,
    /// The jobs of runs on Slurm, polled together (see `crate::slurm`).
    slurm: crate::slurm::Slurm,
    settings: Settings,
    /// To the owner of the shared state (`owner`): what happened, and questions.
    owner: mpsc::Sender<Message>,
    /// What watchers subscribe to (the owner sends on it).
    watchers: broadcast::Sender<RunChange>,
    shutdown: watch::Sender<bool>,
    /// Set as shutdown begins, before runs are stopped (and before `shutdown` is sent): a
    /// run the queue lets go from then on stays queued for the next daemon.
    closing: std::sync::atomic::AtomicBool,
}

/// Gives back what a run was granted in the queue when its start fails before its task
/// takes it over (`id` None: nothing to give back).
struct Released {
    owner: mpsc::Sender<Message>,
    id: Option<String>,
}

impl Drop for Released {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            let owner = self.owner.clone();
            tokio::spawn(async move {
                let _ = owner.send(Message::Tell(RunEvent::Released { id })).await;
            });
        }
    }
}

/// Gives a run's id back to the owner when its start is over, however it ended (the
/// index, or the run's failure, has the last word from then on).
struct Starting {
    owner: mpsc::Sender<Message>,
    id: String,
}

impl Drop for Starting {
    fn drop(&mut self) {
        let (owner, id) = (self.owner.clone(), std::mem::take(&mut self.id));
        tokio::spawn(async move {
            let _ = owner.send(Message::Ask(Ask::Unreserve { id })).await;
        });
    }
}

#[derive(Clone)]
pub struct Manager {
    inner: Arc<Inner>,
}

impl Manager {
    /// Must be called within the tokio runtime: it starts the owner of the shared state.
    pub fn new(index: Index, stats: StatsService, settings: Settings) -> Manager {
        let (watchers, _) = broadcast::channel(1024);
        let (shutdown, _) = watch::channel(false);
        let (owner, messages) = mpsc::channel(owner::CAPACITY);
        let (launches, granted) = mpsc::unbounded_channel();
        let queue = crate::queue::Queue::new(settings.resources.clone());
        tokio::spawn(owner::run(messages, watchers.clone(), queue, launches));
        let manager = Manager {
            inner: Arc::new(Inner {
                index,
                stats,
                slurm: crate::slurm::Slurm::new(),
                settings,
                owner,
                watchers,
                shutdown,
                closing: Default::default(),
            }),
        };
        launch::spawn_launcher(Arc::downgrade(&manager.inner), granted);
        manager
    }

    pub fn index(&self) -> &Index {
        &self.inner.index
    }

    /// The daemon's link to Slurm.
    pub fn slurm(&self) -> &crate::slurm::Slurm {
        &self.inner.slurm
    }

    pub fn subscribe(&self) -> broadcast::Receiver<RunChange> {
        self.inner.watchers.subscribe()
    }

    /// Tells the owner what happened.
    async fn tell(&self, event: RunEvent) {
        let _ = self.inner.owner.send(Message::Tell(event)).await;
    }

    /// Asks the owner; None only when it is gone (the daemon is ending).
    async fn ask<T>(&self, ask: impl FnOnce(oneshot::Sender<T>) -> Ask) -> Option<T> {
        let (reply, answer) = oneshot::channel();
        self.inner.owner.send(Message::Ask(ask(reply))).await.ok()?;
        answer.await.ok()
    }

    /// What guildd cannot write now and keeps trying (see `live`), one line each.
    pub async fn problems(&self) -> Vec<String> {
        self.ask(|reply| Ask::Problems { reply }).await.unwrap_or_default()
    }

    pub async fn running_count(&self) -> usize {
        self.ask(|reply| Ask::Running { reply }).await.unwrap_or(0)
    }

    async fn live(&self, id: &str) -> Option<LiveHandle> {
        let id = id.to_string();
        self.ask(|reply| Ask::Live { id, reply }).await.flatten()
    }

    /// Follows a run's progress; None when the run is not live (it has ended).
    pub async fn progress(&self, id: &str) -> Option<watch::Receiver<Progress>> {
        self.live(id).await.map(|h| h.progress)
    }

    /// Tells watchers of a run that started, changed or ended.
    async fn publish(&self, run: &RunRecord) {
        self.tell(RunEvent::Changed(run.clone())).await;
    }

    /// Tells watchers that a run left the list (deleted).
    async fn publish_removed(&self, run: &RunRecord) {
        self.tell(RunEvent::Removed(run.clone())).await;
    }

    /// Records a run whose op could not be started (or submitted): failed, with the reason
    /// in its attrs, errors.log, the index and to watchers.
    async fn failed_to_start(&self, mut record: RunRecord, mut db: RunDb, guild_d: &std::path::Path, reason: String) -> Result<RunRecord> {
        record.status = Status::Failed;
        record.reason = reason.clone();
        record.stopped_ms = Some(guild_proto::time::now_ms());
        append_error(guild_d, &reason);
        db.put_attrs(&[("failed".to_string(), reason)]).await?;
        db.close().await;
        self.inner.index.update_run(&record).await?;
        self.publish(&record).await;
        Ok(record)
    }

    pub async fn start(&self, spec: StartSpec) -> Result<RunRecord> {
        if *self.inner.shutdown.borrow() {
            return Err(Error::ShuttingDown);
        }
        let source = match &spec.source_run {
            Some(selector) => Some(self.inner.index.resolve(selector).await?),
            None if spec.op == "evaluate" => {
                return Err(Error::Invalid(
                    "evaluate runs in an existing run: name one (RUN or --latest-run)".into(),
                ));
            }
            None => None,
        };
        let mut plan = plan_off_thread(&spec).await?;
        if let Some(source) = &source {
            plan.flags = self.evaluated_flags(source, &spec.flags).await;
        }
        if spec.trial.is_none() {
            let space = crate::sweep::Space::parse(&plan.flags).map_err(|e| Error::Invalid(e.to_string()))?;
            if space.is_sweep() {
                return self.start_sweep(spec, plan, space).await;
            }
        }
        let gpus = spec.gpus.or(plan.gpus);
        // Slurm is a Slurm run's queue: its GPUs are the job's --gres, not this machine's.
        let slurm = spec.slurm.clone().map(|mut slurm| {
            if slurm.gpus == 0 {
                slurm.gpus = gpus.unwrap_or(0);
            }
            slurm
        });
        if slurm.is_none() {
            crate::queue::Queue::check(&self.inner.settings.resources, gpus).map_err(Error::Invalid)?;
        }
        let created_ms = guild_proto::time::now_ms();
        let (id, run_dir) = self.new_run_dir(&plan, created_ms).await?;
        let _starting = Starting {
            owner: self.inner.owner.clone(),
            id: id.clone(),
        };
        let guild_d = run_dir.join("guild.d");
        // An op that works in another run (evaluate) gets that run's folder as RUNDIR.
        let work_dir = source
            .as_ref()
            .map(|s| s.run_dir.clone())
            .unwrap_or_else(|| run_dir.clone());
        let argv = prepare::command_line(&plan, &self.inner.settings.python, &work_dir);
        // The project's tags are the run's first ones.
        let mut tags = plan.tags.clone();
        tags.sort();
        tags.dedup();

        let mut record = RunRecord {
            id: id.clone(),
            project_dir: plan.project_dir.to_string_lossy().into_owned(),
            project_name: plan.project_name.clone(),
            model: plan.model.clone(),
            op: plan.op.clone(),
            status: Status::Pending,
            created_ms,
            started_ms: None,
            stopped_ms: None,
            exit_status: None,
            run_dir: run_dir.clone(),
            label: spec.label.clone(),
            pid: None,
            pid_start: None,
            reason: String::new(),
            source_run: source.as_ref().map(|s| s.id.clone()).unwrap_or_default(),
        };

        let mut env = if spec.env.is_empty() {
            std::env::vars().collect()
        } else {
            spec.env.clone()
        };
        env.insert("RUNDIR".into(), work_dir.to_string_lossy().into_owned());
        env.insert("GUILD_RUN_ID".into(), id.clone());
        env.insert("PYTHONUNBUFFERED".into(), "1".into());
        // Whether it starts now is known before anything is written, so its attrs record
        // the environment its op gets.
        let request = crate::queue::Request {
            id: id.clone(),
            gpus,
            priority: spec.priority,
        };
        let grant = match &slurm {
            // A Slurm job's GPUs are Slurm's to give (CUDA_VISIBLE_DEVICES on its node): as
            // many as it asked for.
            Some(slurm) => {
                env.insert("GPU_COUNT".into(), slurm.gpus.to_string());
                Some(crate::queue::Grant { id: id.clone(), gpus: None })
            }
            None => self
                .ask(|reply| Ask::Admit { request, reply })
                .await
                .ok_or(Error::ShuttingDown)?,
        };
        let mut released = Released {
            owner: self.inner.owner.clone(),
            id: slurm.is_none().then(|| id.clone()),
        };
        match &grant {
            Some(_) if slurm.is_some() => {}
            Some(grant) => launch::give_gpus(&mut env, grant.gpus.as_deref()),
            None => {
                record.status = Status::Queued;
                env.insert("GPU_COUNT".into(), prepare::gpu_count(&env).to_string());
            }
        }
        // Until the index knows the run, a failure (a full disk, say) leaves nothing behind.
        // The source snapshot is taken on a blocking thread while run.db is made; both are
        // done before the op starts.
        let mut snapshot = Some({
            let (plan_dir, runroot, requires, globs) = (
                plan.project_dir.clone(),
                plan.runroot.clone(),
                plan.requires.clone(),
                plan.sources.clone(),
            );
            let sources = guild_d.join("sources");
            tokio::task::spawn_blocking(move || {
                prepare::snapshot_sources(&plan_dir, &runroot, &requires, &globs, &sources)
            })
        });
        let setup = async {
            std::fs::File::create(guild_d.join("errors.log"))
                .map_err(|e| Error::io("cannot create", guild_d.join("errors.log"), e))?;
            let data_dir = self.inner.index.db_path().parent().unwrap_or(std::path::Path::new("."));
            let mut db = RunDb::create(&guild_d.join("run.db"), data_dir).await?;
            db.put_flags(&plan.flags).await?;
            let host = whoami::hostname().unwrap_or_default();
            let recorded_env = launch::recorded_env(&env);
            let mut attrs = vec![
                ("id".to_string(), id.clone()),
                ("model".to_string(), plan.model.clone()),
                ("op".to_string(), plan.op.clone()),
                ("cmd".to_string(), serde_json::to_string(&argv).unwrap_or_default()),
                ("env".to_string(), recorded_env),
                ("created".to_string(), created_ms.to_string()),
                ("host".to_string(), host),
                ("user".to_string(), env.get("USER").cloned().unwrap_or_else(user_name)),
                ("project".to_string(), plan.project_dir.to_string_lossy().into_owned()),
                ("project_name".to_string(), plan.project_name.clone()),
                ("guild_version".to_string(), guild_proto::VERSION.to_string()),
            ];
            attrs.push(("stats_interval".to_string(), plan.stats_interval.to_string()));
            // A Slurm run's host facts are its node's, which its supervisor sends from there.
            if spec.slurm.is_none() {
                attrs.extend(
                    self.inner
                        .stats
                        .host_attrs(env.get("CUDA_VISIBLE_DEVICES").cloned())
                        .await,
                );
            }
            if let Some(profile) = &spec.profile {
                attrs.push(("profile".to_string(), profile.clone()));
            }
            if let Some(source) = &source {
                attrs.push(("source_run".to_string(), source.id.clone()));
                attrs.push((
                    "source_run_dir".to_string(),
                    source.run_dir.to_string_lossy().into_owned(),
                ));
            }
            if !spec.label.is_empty() {
                attrs.push(("label".to_string(), spec.label.clone()));
            }
            if let Some(runtime) = &plan.runtime {
                attrs.push(("runtime".to_string(), runtime.clone()));
            }
            if !tags.is_empty() {
                attrs.push(("tags".to_string(), serde_json::to_string(&tags).unwrap_or_default()));
            }
            if let Some(gpus) = gpus {
                attrs.push(("gpus_requested".to_string(), gpus.to_string()));
            }
            if let Some(assigned) = grant.as_ref().and_then(|g| g.gpus.as_ref()) {
                attrs.push(("gpus_assigned".to_string(), assigned.join(",")));
            }
            if let Some((sweep, trial)) = &spec.trial {
                attrs.push(("sweep".to_string(), sweep.clone()));
                attrs.push(("trial".to_string(), trial.to_string()));
            }
            db.put_attrs(&attrs).await?;

            std::fs::copy(&plan.guild_file, guild_d.join("Guild"))
                .map_err(|e| Error::io("cannot copy", &plan.guild_file, e))?;
            let snapshotted = match snapshot.take() {
                Some(handle) => handle.await,
                None => Ok(Ok(0)),
            };
            if let Ok(Err(err)) = snapshotted {
                append_error(&guild_d, &format!("source snapshot incomplete: {err}"));
            }
            self.inner.index.insert_run(&record, &plan.flags).await?;
            if !tags.is_empty() {
                self.inner.index.set_tags(&id, &tags).await?;
            }
            if let Some((sweep, trial)) = &spec.trial {
                self.inner.index.add_trial(&id, sweep, *trial).await?;
            }
            // What a restarted daemon needs: how to start a queued run, and the GPUs a
            // started one holds.
            let assigned = grant.as_ref().and_then(|g| g.gpus.clone());
            if grant.is_none() || assigned.is_some() {
                let launch = grant.is_none().then(|| crate::store::queue::Launch {
                    argv: argv.clone(),
                    env: env.clone(),
                    cwd: plan.project_dir.clone(),
                    stats_interval: plan.stats_interval,
                });
                self.inner
                    .index
                    .put_queue(&crate::store::queue::QueueRow {
                        run_id: id.clone(),
                        gpus,
                        priority: spec.priority,
                        assigned,
                        launch,
                    })
                    .await?;
            }
            Ok::<_, Error>(db)
        };
        let db = match setup.await {
            Ok(db) => db,
            Err(err) => {
                // Not while the snapshot still writes into the folder.
                if let Some(handle) = snapshot.take() {
                    let _ = handle.await;
                }
                let _ = std::fs::remove_dir_all(&run_dir);
                return Err(err);
            }
        };
        self.publish(&record).await;
        if grant.is_none() {
            db.close().await;
            let request = crate::queue::Request {
                id: id.clone(),
                gpus,
                priority: spec.priority,
            };
            // Recorded as queued: the queue starts it (through the launcher) when there is
            // room, now or after a restart.
            released.id = None;
            self.ask(|reply| Ask::Enqueue { request, reply }).await;
            return Ok(record);
        }

        if let Some(slurm) = &slurm {
            return self.submit(record, db, &plan, slurm, &argv, &env).await;
        }
        let spawned = live::spawn_supervisor(
            &self.inner.settings.supervisor_exe,
            &guild_d,
            &argv,
            &env,
            &plan.project_dir,
        );
        let child = match spawned {
            Ok(child) => child,
            Err(reason) => return self.failed_to_start(record, db, &guild_d, reason).await,
        };
        // From here on the run's task gives back what it holds when its process ends.
        released.id = None;
        record.status = Status::Running;
        record.started_ms = Some(guild_proto::time::now_ms());
        record.pid = child.id();
        record.pid_start = record.pid.and_then(crate::process::start_time);
        // The run's task records that it started (run.db, the index, watchers) as its
        // first step: StartRun answers without waiting for those writes.
        self.track(record.clone(), db, Some((child, plan.stats_interval)), None).await?;
        Ok(record)
    }

    /// Submits a run made by `start` to Slurm: the batch script into `guild.d/`, `sbatch
    /// --parsable`, then its task follows the job. A submission Slurm refuses is the
    /// run's failure, with what sbatch said.
    async fn submit(
        &self,
        mut record: RunRecord,
        mut db: RunDb,
        plan: &prepare::Plan,
        spec: &crate::slurm::SlurmSpec,
        argv: &[String],
        env: &std::collections::BTreeMap<String, String>,
    ) -> Result<RunRecord> {
        let guild_d = record.run_dir.join("guild.d");
        let guild_env: Vec<(String, String)> = ["RUNDIR", "GUILD_RUN_ID", "GPU_COUNT", "PYTHONUNBUFFERED"]
            .iter()
            .filter_map(|name| env.get(*name).map(|v| (name.to_string(), v.clone())))
            .collect();
        let script = crate::slurm::Script {
            run_id: &record.id,
            supervisor_exe: &self.inner.settings.supervisor_exe,
            guild_d: &guild_d,
            argv,
            cwd: &plan.project_dir,
            guild_env: &guild_env,
            stats_interval: plan.stats_interval,
        };
        let args = crate::slurm::sbatch_args(&record.id, &guild_d, &plan.sbatch, spec);
        match crate::slurm::submit(&script, &args, env).await {
            Ok(job) => {
                record.status = Status::Queued;
                record.reason = format!("Slurm job {job}: submitted");
                db.put_attrs(&[
                    ("slurm_job_id".to_string(), job.clone()),
                    (
                        "slurm_sbatch".to_string(),
                        serde_json::to_string(&args[1..]).unwrap_or_default(),
                    ),
                ])
                .await?;
                self.track(record.clone(), db, None, Some(job)).await?;
                Ok(record)
            }
            Err(err) => {
                self.failed_to_start(record, db, &guild_d, format!("cannot submit the run to Slurm: {err}"))
                    .await
            }
        }
    }

    /// What `start` would run, without running it (`guild train --preview`): the
    /// command, flags, run folder (as it would be named now) and what Guild adds to
    /// the environment.
    pub async fn preview(&self, spec: StartSpec) -> Result<Preview> {
        let source = match &spec.source_run {
            Some(selector) => Some(self.inner.index.resolve(selector).await?),
            None => None,
        };
        let mut plan = plan_off_thread(&spec).await?;
        if let Some(source) = &source {
            plan.flags = self.evaluated_flags(source, &spec.flags).await;
        }
        let stamp = guild_proto::time::run_stamp(guild_proto::time::now_ms());
        let id = format!("{stamp}-{}", plan.model);
        let run_dir = plan.runroot.join(&id);
        let work_dir = source.as_ref().map_or_else(|| run_dir.clone(), |s| s.run_dir.clone());
        let argv = prepare::command_line(&plan, &self.inner.settings.python, &work_dir);
        let client_env = if spec.env.is_empty() {
            std::env::vars().collect()
        } else {
            spec.env.clone()
        };
        let env = vec![
            ("RUNDIR".to_string(), work_dir.to_string_lossy().into_owned()),
            ("GUILD_RUN_ID".to_string(), id),
            ("GPU_COUNT".to_string(), prepare::gpu_count(&client_env).to_string()),
            ("PYTHONUNBUFFERED".to_string(), "1".to_string()),
        ];
        Ok(Preview {
            argv,
            run_dir,
            env,
            plan,
        })
    }

    /// Hands a live run to its own task: a run just started (its process and stats
    /// interval), or an adopted one (`None`: what it needs is read from its run.db);
    /// `slurm`: the run's Slurm job (just submitted, or followed again).
    async fn track(
        &self,
        record: RunRecord,
        mut db: RunDb,
        started: Option<(tokio::process::Child, f64)>,
        slurm: Option<String>,
    ) -> Result<()> {
        let (child, offsets, summaries, stop_requested, interval) = match started {
            // Nothing read yet, nothing stopped, and the interval just written.
            Some((child, interval)) => (Some(child), HashMap::new(), Summaries::default(), false, Some(interval)),
            None => {
                // The previous daemon may have died between committing samples and
                // updating the index, so run.db has the last word: the task writes these
                // to the index first.
                let rebuilt = rundb::read(&rundb::path(&record.run_dir), |r| r.summaries()).await?;
                let stop_requested = db.attr("stop_requested").await?.is_some();
                let interval = db.attr("stats_interval").await?.and_then(|v| v.parse::<f64>().ok());
                (
                    None,
                    db.offsets().await?,
                    Summaries::rebuilt(rebuilt),
                    stop_requested,
                    interval,
                )
            }
        };
        let (stats_tx, stats_rx) = mpsc::channel(16);
        let stats_interval = interval
            .filter(|s| *s > 0.0 && s.is_finite())
            .map(std::time::Duration::from_secs_f64);
        if let (Some(pid), Some(interval)) = (record.pid, stats_interval) {
            self.inner.stats.register(&record.id, pid, interval, stats_tx);
        }
        let (requests_tx, requests) = mpsc::channel(8);
        let (progress_tx, progress_rx) = watch::channel(Progress {
            last_seq: db.last_seq(),
            last_sample: db.last_sample(),
            last_media: db.last_media(),
            finished: false,
        });
        let id = record.id.clone();
        let guild_d = record.run_dir.join("guild.d");
        let mut tailer = tail::Tailer::new(&guild_d, &offsets);
        let mut events = EventTail::new(&record.run_dir, &offsets);
        let slurm = slurm.map(|job| {
            tailer.reopen_each_read();
            events.reopen_each_read();
            let started = record.status == Status::Running;
            slurm_run::SlurmJob::new(self.inner.slurm.clone(), job, &guild_d, &offsets, started)
        });
        let task = live::RunTask {
            owner: owner::Teller::new(self.inner.owner.clone()),
            index: self.inner.index.clone(),
            stats: self.inner.stats.clone(),
            errors: errlog::ErrorLog::new(&guild_d),
            tailer,
            events,
            summaries,
            summaries_written: tokio::time::Instant::now(),
            stats_samples: stats_rx,
            others_written: 0,
            record,
            db,
            progress: progress_tx,
            requests,
            stop_requested,
            shutdown: self.inner.shutdown.subscribe(),
            unsaved: None,
            unsaved_attrs: Vec::new(),
            index_behind: false,
            failing: None,
            slurm,
        };
        // Every line the task logs names its run.
        let span = tracing::info_span!("run", run = %id);
        let handle = LiveHandle {
            requests: requests_tx,
            progress: progress_rx,
        };
        let task = Box::pin(task.run(child).instrument(span));
        self.inner
            .owner
            .send(Message::Ask(Ask::Track { id, handle, task }))
            .await
            .map_err(|_| Error::ShuttingDown)
    }

    pub async fn stop(&self, selector: &str) -> Result<RunRecord> {
        let run = self.inner.index.resolve(selector).await?;
        if run.op == sweeps::SWEEP_OP && run.status.is_active() {
            return self.stop_sweep(run).await;
        }
        let requests = self.live(&run.id).await.map(|h| h.requests);
        // Queued here (no task follows it yet); a queued run that has a task is a Slurm
        // job Slurm holds, which its task cancels (scancel).
        if run.status == Status::Queued
            && requests.is_none()
            && let Some(cancelled) = self.cancel_queued(&run).await?
        {
            return Ok(cancelled);
        }
        match requests {
            Some(requests) => {
                let _ = requests.send(RunRequest::Stop).await;
                Ok(run)
            }
            // No task follows it, yet its op runs (recorded ended by an earlier daemon):
            // the group is stopped all the same.
            None if run.pid.is_some_and(|pid| crate::process::run_group_alive(pid, &run.id)) => {
                crate::process::signal_group(run.pid.unwrap_or(0), libc::SIGTERM);
                Ok(run)
            }
            None if run.status.is_active() => Err(Error::Conflict(format!(
                "run {} has ended; guildd is still recording its end (see `guild status`)",
                run.id
            ))),
            None => Err(Error::Conflict(format!(
                "run {} is not running (status {})",
                run.id,
                run.status.as_str()
            ))),
        }
    }

    /// Moves a finished run aside to the trash (see `trash`): restorable until purged.
    pub async fn delete(&self, selector: &str) -> Result<RunRecord> {
        let run = self.inner.index.resolve(selector).await?;
        let run = self.trash(run).await?;
        self.publish_removed(&run).await;
        Ok(run)
    }

    /// At start-up: every run the index says is active is either still running (adopt
    /// it), ended while no daemon watched (record its exit status), or gone (failed).
    pub async fn reconcile(&self) -> Result<()> {
        let queue_rows = self.inner.index.queue_rows().await?;
        let mut queued = Vec::new();
        let mut sweeps = Vec::new();
        for mut record in self.inner.index.active_runs().await? {
            let guild_d = record.run_dir.join("guild.d");
            // A Slurm job is followed again by its id, whatever became of it meanwhile
            // (its task learns that from its files and from Slurm): Slurm, not the local
            // queue, holds it while it waits.
            if let Some(job) = slurm_job_of(&record).await {
                match RunDb::open(&guild_d.join("run.db")).await {
                    Ok(db) => {
                        tracing::info!(run = %record.id, job = %job, "following the Slurm job again");
                        self.track(record, db, None, Some(job)).await?;
                        continue;
                    }
                    Err(err) => record.reason = format!("cannot open its run.db: {err}"),
                }
            } else if record.op == sweeps::SWEEP_OP && record.status == Status::Running {
                sweeps.push(record);
                continue;
            } else if record.status == Status::Queued {
                match queue_rows.get(&record.id) {
                    Some(row) if row.launch.is_some() => {
                        queued.push(row.clone());
                        continue;
                    }
                    _ => record.reason = "queued, but what it was queued with is missing from index.db".into(),
                }
            } else {
                // Its supervisor, or (when that was killed) the op in the supervisor's group.
                let alive = record.pid.is_some_and(|pid| {
                    crate::process::same_process(pid, record.pid_start)
                        || crate::process::run_group_alive(pid, &record.id)
                });
                let exit = supervisor::ExitRecord::read(&guild_d);
                if record.status == Status::Running && (alive || exit.is_some()) {
                    match RunDb::open(&guild_d.join("run.db")).await {
                        Ok(db) => {
                            tracing::info!(run = %record.id, alive, "adopting the run");
                            // It holds its GPUs (and a slot) until it ends.
                            let gpus = queue_rows
                                .get(&record.id)
                                .and_then(|row| row.assigned.clone())
                                .unwrap_or_default();
                            self.hold(&record.id, gpus).await;
                            self.track(record, db, None, None).await?;
                            continue;
                        }
                        Err(err) => record.reason = format!("cannot open its run.db: {err}"),
                    }
                } else {
                    record.reason = if record.status == Status::Pending {
                        "guildd stopped before the run started".into()
                    } else {
                        "the run's processes ended while guildd was down and left no exit status".into()
                    };
                }
            }
            record.status = Status::Failed;
            record.stopped_ms = Some(guild_proto::time::now_ms());
            append_error(&guild_d, &record.reason);
            self.inner.index.update_run(&record).await?;
        }
        // Queued runs wait again, in their order, behind nothing the adopted runs hold.
        for row in queued {
            tracing::info!(run = %row.run_id, "queued again");
            self.requeue(&row.run_id, row.gpus, row.priority).await;
        }
        for sweep in sweeps {
            self.resume_sweep(sweep).await;
        }
        Ok(())
    }

    /// Stops following runs (they keep running unless `stop_runs`) and waits for the
    /// run tasks to commit what they read.
    pub async fn shutdown(&self, stop_runs: bool) {
        // Stopping runs frees their GPUs and slots: no queued run may take them now.
        self.inner.closing.store(true, std::sync::atomic::Ordering::SeqCst);
        if stop_runs {
            let handles = self.ask(|reply| Ask::AllLive { reply }).await.unwrap_or_default();
            for handle in &handles {
                let _ = handle.requests.send(RunRequest::Stop).await;
            }
            // Bounded: a run whose end cannot be written (a full disk) is left to the
            // next daemon, which records it from the run's exit file.
            let ends = async {
                for mut handle in handles {
                    let _ = handle.progress.wait_for(|p| p.finished).await;
                }
            };
            let _ = tokio::time::timeout(live::STOP_GRACE + std::time::Duration::from_secs(5), ends).await;
        }
        let _ = self.inner.shutdown.send(true);
        self.ask(|reply| Ask::Drained { reply }).await;
    }

    /// A new run's id and folder: `<runroot>/<stamp>-<model>[-N]`, skipping every id the
    /// index has (deleted and purged runs keep theirs) or another start is taking.
    async fn new_run_dir(&self, plan: &prepare::Plan, created_ms: i64) -> Result<(String, PathBuf)> {
        let stamp = guild_proto::time::run_stamp(created_ms);
        let taken = self
            .inner
            .index
            .ids_with_prefix(&format!("{stamp}-{}", plan.model))
            .await?;
        for n in 1..prepare::MAX_SAME_SECOND {
            let id = prepare::run_id(&stamp, &plan.model, n);
            if taken.contains(&id) {
                continue;
            }
            let reserved = self
                .ask(|reply| Ask::Reserve { id: id.clone(), reply })
                .await
                .ok_or(Error::ShuttingDown)?;
            if !reserved {
                continue;
            }
            match prepare::create_run_dir(&plan.runroot, &id) {
                Ok(Some(dir)) => return Ok((id, dir)),
                Ok(None) => {}
                Err(err) => {
                    self.tell_unreserve(id).await;
                    return Err(err);
                }
            }
            self.tell_unreserve(id).await;
        }
        Err(Error::Conflict(format!(
            "too many runs of {} started at {stamp}",
            plan.model
        )))
    }

    async fn tell_unreserve(&self, id: String) {
        let _ = self.inner.owner.send(Message::Ask(Ask::Unreserve { id })).await;
    }

    /// The flags of an evaluate run: the evaluated run's own (what it was trained with),
    /// with the command line's NAME=VALUE over them.
    async fn evaluated_flags(&self, source: &RunRecord, cli: &[(String, String)]) -> Vec<(String, String)> {
        let mut flags = recorded_flags(source, &self.inner.index).await;
        for (name, value) in cli {
            match flags.iter_mut().find(|(n, _)| n == name) {
                Some(flag) => flag.1 = value.clone(),
                None => flags.push((name.clone(), value.clone())),
            }
        }
        flags
    }
}

/// The Slurm job of a run submitted to Slurm: its `slurm_job_id` attr, else (a guildd
/// that died between sbatch's answer and that record) the job Slurm knows by the run's
/// name, recorded now.
async fn slurm_job_of(run: &RunRecord) -> Option<String> {
    let path = rundb::path(&run.run_dir);
    let attrs = rundb::read(&path, |r| r.attrs()).await.ok()?;
    if let Some((_, job)) = attrs.into_iter().find(|(name, _)| name == "slurm_job_id") {
        return Some(job);
    }
    if !run.run_dir.join("guild.d").join(crate::slurm::SCRIPT_FILE).exists() {
        return None;
    }
    let job = crate::slurm::job_named(&run.id).await?;
    if let Ok(mut db) = RunDb::open(&path).await {
        let _ = db.put_attrs(&[("slurm_job_id".to_string(), job.clone())]).await;
        db.close().await;
    }
    Some(job)
}

/// A run's resolved flags in resolution order (its run.db), else as the index has them.
pub async fn recorded_flags(run: &RunRecord, index: &Index) -> Vec<(String, String)> {
    if let Ok(flags) = rundb::read(&rundb::path(&run.run_dir), |r| r.flags()).await {
        return flags;
    }
    index.run_flags(&run.id).await.unwrap_or_default()
}

/// The user a run records when the client's environment names none: the system's own
/// look-up (NSS: local, LDAP and other users alike), else the uid.
fn user_name() -> String {
    whoami::username().unwrap_or_else(|_| {
        // SAFETY: getuid cannot fail.
        unsafe { libc::getuid() }.to_string()
    })
}
