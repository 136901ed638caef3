//! A run's task when the run is a Slurm job (see `crate::slurm`): what it does besides
//! what every run's task does. Its files are read by polling (no inotify: another
//! node's writes never reach it), the node's stats come from `guild.d/node.jsonl`, its
//! status follows Slurm's view of the job (queued with Slurm's reason, then running),
//! a stop is `scancel`, and its end takes Slurm's final state into account: a job that
//! Slurm ended (cancelled, time limit, node failure, out of memory) says so in the run's
//! status and reason, with or without an exit file.

use std::path::Path;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::live::RunTask;
use super::owner::RunEvent;
use super::supervisor::ExitRecord;
use crate::slurm::node::NodeTail;
use crate::slurm::{self, JobInfo, Slurm};
use crate::store::{RunRecord, Status};

/// After Slurm says a job that ran is over, how long its exit file may take to show
/// (a network filesystem shows another node's writes late).
const EXIT_GRACE: Duration = Duration::from_secs(5);
/// The same for a job never seen running (cancelled while pending, say).
const EXIT_GRACE_NEVER_STARTED: Duration = Duration::from_secs(1);
/// At the end, how long guildd waits for Slurm to settle the job's final state (its
/// processes being cleaned up: COMPLETING).
const FINAL_STATE_WAIT: Duration = Duration::from_secs(20);

/// The Slurm side of a run's task.
pub(super) struct SlurmJob {
    pub job: String,
    pub service: Slurm,
    /// What the daemon's poller last heard of the job.
    pub state: watch::Receiver<Option<JobInfo>>,
    pub node: NodeTail,
    /// The op started: the node's first line, or Slurm said it runs.
    pub started: bool,
    /// When Slurm first said the job is over while no exit file was there.
    pub over_since: Option<Instant>,
}

impl SlurmJob {
    pub fn new(
        service: Slurm,
        job: String,
        guild_d: &Path,
        offsets: &std::collections::HashMap<String, u64>,
        started: bool,
    ) -> SlurmJob {
        SlurmJob {
            state: service.follow(&job),
            job,
            service,
            node: NodeTail::new(guild_d, offsets),
            started,
            over_since: None,
        }
    }

    /// Whether the run is over: its exit file is there (the last read follows), or
    /// Slurm says the job ended and no exit file came within the grace.
    pub fn ended(&mut self, guild_d: &Path) -> bool {
        if ExitRecord::read(guild_d).is_some() {
            return true;
        }
        let over = self.state.borrow().as_ref().is_some_and(JobInfo::is_final);
        if !over {
            self.over_since = None;
            return false;
        }
        let since = *self.over_since.get_or_insert_with(Instant::now);
        let grace = if self.started {
            EXIT_GRACE
        } else {
            EXIT_GRACE_NEVER_STARTED
        };
        since.elapsed() >= grace
    }
}

/// Waits for the next change of what Slurm says (never, for a local run).
pub(super) async fn changed(job: &mut Option<SlurmJob>) {
    let Some(job) = job else {
        return std::future::pending().await;
    };
    if job.state.changed().await.is_err() {
        // The daemon no longer polls this job (its run is ending).
        std::future::pending::<()>().await;
    }
}

impl RunTask {
    /// First thing for a Slurm run: the index and watchers learn its state (queued, just
    /// submitted; or what an earlier daemon left).
    pub(super) async fn slurm_begin(&mut self) {
        self.update_index().await;
        self.owner.tell(RunEvent::Changed(self.record.clone())).await;
    }

    /// Slurm said something new of the job: queued (with its reason) or running.
    pub(super) async fn slurm_state_changed(&mut self) {
        let Some(job) = self.slurm.as_mut() else { return };
        let Some(info) = job.state.borrow_and_update().clone() else {
            return;
        };
        let id = job.job.clone();
        if info.is_pending() {
            let reason = format!("Slurm job {id} pending: {}", info.reason);
            if self.record.status != Status::Queued || self.record.reason != reason {
                self.record.status = Status::Queued;
                self.record.reason = reason;
                self.slurm_changed().await;
            }
        } else if info.is_running() && self.record.status == Status::Queued {
            self.slurm_started(guild_proto::time::now_ms(), info.nodes.clone())
                .await;
        }
    }

    /// The op started on its node (at `ms`, on `host`).
    pub(super) async fn slurm_started(&mut self, ms: i64, host: String) {
        let Some(job) = self.slurm.as_mut() else { return };
        let first = !job.started;
        job.started = true;
        if self.record.status == Status::Running && !first {
            return;
        }
        if self.record.status != Status::Running {
            self.record.status = Status::Running;
            self.record.started_ms = Some(ms);
            self.record.reason.clear();
            let mut attrs = vec![("started".to_string(), ms.to_string())];
            if !host.is_empty() {
                attrs.push(("slurm_node".to_string(), host));
            }
            self.put_attrs(attrs).await;
            self.slurm_changed().await;
        }
    }

    /// What the node's file said besides samples: the start (time, host, the
    /// supervisor's pid there) and the node's facts.
    pub(super) async fn slurm_node_news(&mut self, started: Option<(i64, String, u32)>, attrs: Vec<(String, String)>) {
        if let Some((ms, host, pid)) = started {
            self.slurm_started(ms, host.clone()).await;
            let mut news = vec![("host".to_string(), host), ("slurm_pid".to_string(), pid.to_string())];
            // A start first seen through Slurm's poll gets the node's own time.
            let retimed = self.record.status == Status::Running && self.record.started_ms != Some(ms);
            if retimed {
                self.record.started_ms = Some(ms);
                news.push(("started".to_string(), ms.to_string()));
            }
            self.put_attrs(news).await;
            if retimed {
                self.slurm_changed().await;
            }
        }
        if !attrs.is_empty() {
            self.put_attrs(attrs).await;
        }
    }

    async fn slurm_changed(&mut self) {
        self.update_index().await;
        self.owner.tell(RunEvent::Changed(self.record.clone())).await;
    }

    /// `guild stop`: scancel. Slurm signals the job's processes (SIGTERM, then SIGKILL
    /// after its KillWait); the supervisor records how the op ended.
    pub(super) async fn slurm_cancel(&mut self) {
        let Some(job) = self.slurm.as_ref() else { return };
        let id = job.job.clone();
        match slurm::cancel(&id).await {
            Ok(()) => job.service.poll_now(),
            Err(err) => {
                let note = format!("cannot cancel Slurm job {id}: {err}");
                tracing::warn!("{note}");
                self.errors.append(&note);
            }
        }
    }

    /// How Slurm says the job ended, asked once it is over (None for a local run). A
    /// clean exit is taken as is; otherwise scontrol is asked until the job's state is
    /// final (a job whose processes are being cleaned up is COMPLETING for a while).
    pub(super) async fn slurm_end(&mut self, exit: Option<&ExitRecord>, stopped: bool) -> Option<JobInfo> {
        let job = self.slurm.as_mut()?;
        let last = job.state.borrow().clone();
        job.service.forget(&job.job);
        if matches!(exit, Some(ExitRecord::Exited { code: 0, .. })) && !stopped {
            // The job ends with its supervisor, a moment after this: COMPLETED, unless
            // Slurm already said otherwise.
            return Some(match last {
                Some(info) if info.is_final() && info.state != slurm::UNKNOWN => info,
                _ => JobInfo {
                    state: "COMPLETED".into(),
                    ..JobInfo::default()
                },
            });
        }
        let deadline = Instant::now() + FINAL_STATE_WAIT;
        let mut known = last;
        loop {
            match slurm::show_job(&job.job).await {
                Ok(info) => {
                    let over = info.is_final();
                    known = Some(info);
                    if over {
                        break;
                    }
                }
                Err(err) => {
                    tracing::warn!("cannot ask Slurm how job {} ended: {err}", job.job);
                    break;
                }
            }
            if Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        known
    }
}

/// The run's end as Slurm tells it: a job Slurm ended is `terminated` (cancelled) or
/// `failed` (time limit, node failure, out of memory...) with Slurm's state as the
/// reason; a job that left no exit status says how Slurm saw it end.
pub(super) fn apply_end(record: &mut RunRecord, job: &str, info: &JobInfo, stopped: bool, had_exit: bool) {
    if info.ended_by_slurm() {
        record.status = if stopped || info.state == "CANCELLED" {
            Status::Terminated
        } else {
            Status::Failed
        };
        record.reason = format!("Slurm job {job} {}: {}", info.state, info.describe());
    } else if !had_exit {
        record.status = if stopped { Status::Terminated } else { Status::Failed };
        record.reason = format!(
            "Slurm job {job} ended ({}: {}) without recording an exit status; see guild.d/{}",
            info.state,
            info.describe(),
            slurm::SLURM_OUTPUT_FILE
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> RunRecord {
        RunRecord {
            id: "r".into(),
            project_dir: String::new(),
            project_name: String::new(),
            model: "m".into(),
            op: "train".into(),
            status: Status::Error,
            created_ms: 0,
            started_ms: Some(1),
            stopped_ms: Some(2),
            exit_status: Some(-15),
            run_dir: "/r".into(),
            label: String::new(),
            pid: None,
            pid_start: None,
            reason: "killed by signal 15".into(),
            source_run: String::new(),
        }
    }

    fn info(state: &str) -> JobInfo {
        JobInfo {
            state: state.into(),
            ..JobInfo::default()
        }
    }

    #[test]
    fn slurms_state_decides_how_a_killed_job_ended() {
        let mut run = record();
        apply_end(&mut run, "7", &info("TIMEOUT"), false, true);
        assert_eq!(run.status, Status::Failed);
        assert_eq!(run.reason, "Slurm job 7 TIMEOUT: its time limit was reached");
        assert_eq!(run.exit_status, Some(-15), "the op's own status is kept");
        let mut run = record();
        apply_end(&mut run, "7", &info("CANCELLED"), false, false);
        assert_eq!(run.status, Status::Terminated);
        let mut run = record();
        apply_end(&mut run, "7", &info("OUT_OF_MEMORY"), true, true);
        assert_eq!(run.status, Status::Terminated, "a stop asked of guild wins");
        // An exit file and an ordinary end: the exit file's status stands.
        let mut run = record();
        apply_end(&mut run, "7", &info("FAILED"), false, true);
        assert_eq!(
            (run.status, run.reason.as_str()),
            (Status::Error, "killed by signal 15")
        );
        // No exit file: failed, with what Slurm said.
        let mut run = record();
        apply_end(&mut run, "7", &info(slurm::UNKNOWN), false, false);
        assert_eq!(run.status, Status::Failed);
        assert!(
            run.reason.contains("without recording an exit status"),
            "{}",
            run.reason
        );
    }
}
