//! Starting the runs the queue lets start, and what the manager does with queued runs:
//! the launcher task (it takes each grant the owner sends and starts that run from what
//! `Manager::start` recorded when it queued it), the GPUs in a run's environment,
//! cancelling a queued run, its priority, and the queue as the API shows it.

use std::collections::BTreeMap;
use std::sync::Weak;

use tokio::sync::mpsc;

use super::owner::{Ask, Cancelled, QueueSnapshot, RunEvent};
use super::{Inner, Manager, append_error, live, secrets};
use crate::error::{Error, Result};
use crate::queue::Grant;
use crate::store::{RunDb, RunRecord, Status};

/// Takes the runs the queue lets start, for as long as the manager lives; each starts on
/// a task of its own, so runs let go together start together.
pub(super) fn spawn_launcher(inner: Weak<Inner>, mut granted: mpsc::UnboundedReceiver<Grant>) {
    tokio::spawn(async move {
        while let Some(grant) = granted.recv().await {
            let Some(inner) = inner.upgrade() else { break };
            let manager = Manager { inner };
            tokio::spawn(async move { manager.launch_queued(grant).await });
        }
    });
}

/// The environment of a run given these GPUs: `CUDA_VISIBLE_DEVICES` and `GPU_COUNT`
/// name exactly them. A run that asked for none (None) keeps the client's
/// `CUDA_VISIBLE_DEVICES`, and `GPU_COUNT` counts what it names.
pub(super) fn give_gpus(env: &mut BTreeMap<String, String>, gpus: Option<&[String]>) {
    match gpus {
        Some(gpus) => {
            env.insert("CUDA_VISIBLE_DEVICES".into(), gpus.join(","));
            env.insert("GPU_COUNT".into(), gpus.len().to_string());
        }
        None => {
            let count = super::prepare::gpu_count(env);
            env.insert("GPU_COUNT".into(), count.to_string());
        }
    }
}

/// The `env` attr: secret-looking names left out, passwords in values redacted.
pub(super) fn recorded_env(env: &BTreeMap<String, String>) -> String {
    let map: serde_json::Map<String, serde_json::Value> = env
        .iter()
        .filter(|(name, _)| !secrets::is_secret_name(name))
        .map(|(k, v)| {
            (
                k.clone(),
                serde_json::Value::String(secrets::redact_value(v).into_owned()),
            )
        })
        .collect();
    serde_json::Value::Object(map).to_string()
}

impl Manager {
    /// Starts a queued run the queue let start. Whatever goes wrong marks it failed
    /// (with the reason) and gives its GPUs back.
    async fn launch_queued(&self, grant: Grant) {
        // The daemon is ending (`closing` is set before `shutdown` is sent): the run stays
        // queued in index.db for the next one.
        if self.inner.closing.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let id = grant.id.clone();
        match self.try_launch(&grant).await {
            Ok(true) => {}
            Ok(false) => self.tell(RunEvent::Released { id }).await,
            Err(err) => {
                tracing::error!(run = %id, "cannot start the queued run: {err}");
                self.tell(RunEvent::Released { id: id.clone() }).await;
                if let Ok(Some(mut record)) = self.inner.index.get_run(&id).await
                    && record.status == Status::Queued
                {
                    record.status = Status::Failed;
                    record.reason = format!("could not start from the queue: {err}");
                    record.stopped_ms = Some(guild_proto::time::now_ms());
                    append_error(&record.run_dir.join("guild.d"), &record.reason);
                    if self.inner.index.update_run(&record).await.is_ok() {
                        self.publish(&record).await;
                    }
                }
            }
        }
    }

    /// True when the run's task took it over (it gives the grant back when it ends);
    /// false when there was nothing to start (cancelled meanwhile).
    async fn try_launch(&self, grant: &Grant) -> Result<bool> {
        let index = &self.inner.index;
        let Some(mut record) = index.get_run(&grant.id).await? else {
            return Ok(false);
        };
        if record.status != Status::Queued {
            return Ok(false);
        }
        let launch = index
            .queue_row(&grant.id)
            .await?
            .and_then(|row| row.launch)
            .ok_or_else(|| Error::Invalid("what it was queued with is missing from index.db".into()))?;
        let guild_d = record.run_dir.join("guild.d");
        let mut env = launch.env.clone();
        give_gpus(&mut env, grant.gpus.as_deref());
        // The op starts first: what is recorded about its start follows at once, while
        // it runs (the next run's start is what a queue waits for).
        let child = live::spawn_supervisor(
            &self.inner.settings.supervisor_exe,
            &guild_d,
            &launch.argv,
            &env,
            &launch.cwd,
        )
        .map_err(Error::Invalid)?;
        record.status = Status::Running;
        record.started_ms = Some(guild_proto::time::now_ms());
        record.pid = child.id();
        record.pid_start = record.pid.and_then(crate::process::start_time);
        let recorded = async {
            let mut db = RunDb::open(&guild_d.join("run.db")).await?;
            let mut attrs = vec![("env".to_string(), recorded_env(&env))];
            attrs.extend(
                self.inner
                    .stats
                    .host_attrs(env.get("CUDA_VISIBLE_DEVICES").cloned())
                    .await,
            );
            if let Some(gpus) = &grant.gpus {
                attrs.push(("gpus_assigned".to_string(), gpus.join(",")));
            }
            if let Err(err) = db.put_attrs(&attrs).await {
                db.close().await;
                return Err(err);
            }
            if let Err(err) = index.queue_started(&grant.id, grant.gpus.as_deref()).await {
                db.close().await;
                return Err(err);
            }
            Ok::<_, Error>(db)
        };
        let db = match recorded.await {
            Ok(db) => db,
            Err(err) => {
                // Nothing could follow it: it is stopped rather than left unrecorded.
                if let Some(pid) = record.pid {
                    crate::process::signal_group(pid, libc::SIGKILL);
                }
                return Err(err);
            }
        };
        self.track(record, db, Some((child, launch.stats_interval)), None).await?;
        Ok(true)
    }

    /// `guild stop` of a queued run: taken out of the queue and recorded `terminated`
    /// (None: it was not queued any more; the caller stops it as a live run).
    pub(super) async fn cancel_queued(&self, run: &RunRecord) -> Result<Option<RunRecord>> {
        let id = run.id.clone();
        let outcome = self
            .ask(|reply| Ask::Cancel { id, reply })
            .await
            .ok_or(Error::ShuttingDown)?;
        match outcome {
            Cancelled::Starting => Ok(Some(run.clone())),
            Cancelled::NotQueued => {
                // Started meanwhile, or queued in index.db with nothing left to start it.
                let now = self.inner.index.get_run(&run.id).await?;
                match now {
                    Some(now) if now.status == Status::Queued => self.end_queued(now).await.map(Some),
                    _ => Ok(None),
                }
            }
            Cancelled::Cancelled => self.end_queued(run.clone()).await.map(Some),
        }
    }

    async fn end_queued(&self, mut record: RunRecord) -> Result<RunRecord> {
        record.status = Status::Terminated;
        record.stopped_ms = Some(guild_proto::time::now_ms());
        record.reason = "cancelled while queued".into();
        let guild_d = record.run_dir.join("guild.d");
        if let Ok(mut db) = RunDb::open(&guild_d.join("run.db")).await {
            let attrs = [
                ("status".to_string(), record.status.as_str().to_string()),
                ("stopped".to_string(), record.stopped_ms.unwrap_or(0).to_string()),
                ("reason".to_string(), record.reason.clone()),
            ];
            let written = db.put_attrs(&attrs).await;
            db.close().await;
            written?;
        }
        self.inner.index.update_run(&record).await?;
        self.publish(&record).await;
        Ok(record)
    }

    /// The queue now: GPUs, limits, waiting runs in order, the GPUs each run holds.
    pub async fn queue(&self) -> QueueSnapshot {
        self.ask(|reply| Ask::Queue { reply }).await.unwrap_or_default()
    }

    /// One run's place in the queue (in `waiting`) or its GPUs (in `assigned`).
    pub async fn queue_of(&self, id: &str) -> QueueSnapshot {
        let id = id.to_string();
        self.ask(|reply| Ask::QueueOf { id, reply }).await.unwrap_or_default()
    }

    /// Moves a queued run to its place for a new priority.
    pub async fn set_priority(&self, selector: &str, priority: i32) -> Result<RunRecord> {
        let run = self.inner.index.resolve(selector).await?;
        let id = run.id.clone();
        let moved = self
            .ask(|reply| Ask::SetPriority { id, priority, reply })
            .await
            .ok_or(Error::ShuttingDown)?;
        if !moved {
            return Err(Error::Conflict(format!(
                "run {} is not queued (status {}): only a queued run's priority can change",
                run.id,
                run.status.as_str()
            )));
        }
        self.inner.index.set_queue_priority(&run.id, priority).await?;
        self.publish(&run).await;
        Ok(run)
    }

    /// At start-up: a run adopted from an earlier daemon holds what it was given.
    pub(super) async fn hold(&self, id: &str, gpus: Vec<String>) {
        let id = id.to_string();
        let _ = self
            .inner
            .owner
            .send(super::owner::Message::Ask(Ask::Hold { id, gpus }))
            .await;
    }

    /// At start-up: a run that was queued goes back in the queue.
    pub(super) async fn requeue(&self, id: &str, gpus: Option<u32>, priority: i32) {
        let request = crate::queue::Request {
            id: id.to_string(),
            gpus,
            priority,
        };
        self.ask(|reply| Ask::Enqueue { request, reply }).await;
    }
}
