//! One task per live run: it owns the run's run.db writer and tailer, waits for the
//! process (or, for an adopted run, watches its pid; when the supervisor was killed,
//! follows the op's process group to its end), carries out stops and attr writes asked
//! of it, records the run's end, and tells the manager's owner what happened (it holds
//! no handle on the manager).
//!
//! A write that fails (a full disk) is kept and retried until it lands: see `retry`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::Progress;
use super::errlog::ErrorLog;
use super::notify::{Changes, DirWatch};
use super::owner::{RunEvent, RunRequest, Teller};
use super::supervisor::ExitRecord;
use super::tail::{STDERR_FILE, STDOUT_FILE, Tailer};
use crate::collectors::events::EventTail;
use crate::collectors::sampler::StatsService;
use crate::process::{run_group_alive, same_process, signal_group};
use crate::samples::{Batch, SampleRow};
use crate::store::summary::Summaries;
use crate::store::{Index, RunDb, RunRecord, Status};

/// How often output and event files are read while a run writes: every 100 ms at most
/// (10 ms while it prints thousands of lines per read). The first change after a read by
/// timer that found nothing is read at once: an event file that appears, a line after a
/// pause (an event file appearing 50 ms into a run waited the rest of the 100 ms, a third
/// of `bench/media_ingest.sh`'s 0.13 s); a run creating 900 files a second, none of them
/// output, still costs guildd 90 ms of CPU in 5 s.
/// inotify (`notify`) says when the output files or the run's folders change, so a quiet
/// run is read only once a second (for its stats, and as a safety net for changes inotify
/// does not see). Without inotify, a quiet run is read less often by timer alone: the
/// wait doubles up to 500 ms, and is back to 100 ms as soon as a read finds something.
/// Most of a quiet run's cost is the wake-ups, not the reads (`bench/daemon_cost.sh`).
/// `guild train` and `guild watch` follow the files themselves and wait for none of this.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// After a read that found many lines: what is left when the op exits waits for the last
/// read before `guild train` returns, and at 100 ms that was up to 80,000 lines of a fast
/// printer (`bench/launch_and_capture.sh`): from the op's exit to `guild train` returning
/// took 20-80 ms, 5-31 ms at 25 ms, 4-14 ms at 10 ms.
const POLL_INTERVAL_BUSY: Duration = Duration::from_millis(10);
const BUSY_LINES: usize = 2_000;
const POLL_INTERVAL_QUIET: Duration = Duration::from_millis(500);
const POLL_INTERVAL_WATCHED: Duration = Duration::from_secs(1);
/// The index's per-key summaries (what `guild runs` and compare show of a running run)
/// are brought up to date at most this often while a run commits, and when it ends: an
/// index transaction per commit was a good part of a quiet run's cost.
const SUMMARY_EVERY: Duration = Duration::from_secs(2);
/// At most this many of a run's folders are watched for new event files.
const MAX_WATCHED_FOLDERS: usize = 256;
/// At most this many event files are watched for writes (each is one system call per
/// read); others are read on the timer.
const MAX_WATCHED_EVENT_FILES: usize = 64;
/// What one read of a run's files did.
struct Polled {
    /// There is more to read at once.
    more: bool,
    /// It found something (output, samples or offsets).
    found: bool,
    /// Output lines it found.
    lines: usize,
}

/// How long a stopped run gets between SIGTERM and SIGKILL.
pub(super) const STOP_GRACE: Duration = Duration::from_secs(10);

/// Starts `guildd supervise GUILD_D ARGV...` in a new session, with the run's output
/// files as its stdout and stderr. Returns a message for the user on failure.
pub fn spawn_supervisor(
    exe: &Path,
    guild_d: &Path,
    argv: &[String],
    env: &BTreeMap<String, String>,
    cwd: &Path,
) -> Result<Child, String> {
    let open = |name: &str| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(guild_d.join(name))
            .map_err(|e| format!("cannot create {}: {e}", guild_d.join(name).display()))
    };
    let (stdout, stderr) = (open(STDOUT_FILE)?, open(STDERR_FILE)?);
    let mut cmd = Command::new(exe);
    cmd.arg("supervise")
        .arg(guild_d)
        .args(argv)
        .env_clear()
        .envs(env)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
    crate::process::in_new_session(&mut cmd);
    cmd.spawn()
        .map_err(|e| format!("cannot start the run's supervisor {}: {e}", exe.display()))
}

pub(super) struct RunTask {
    /// Where what happened is told (watchers, `guild status`, the live runs).
    pub owner: Teller,
    pub index: Index,
    pub stats: StatsService,
    pub record: RunRecord,
    pub db: RunDb,
    pub tailer: Tailer,
    pub events: EventTail,
    pub summaries: Summaries,
    /// When the index's summaries were last brought up to date (see SUMMARY_EVERY).
    pub summaries_written: Instant,
    /// Samples from the daemon's stats sampler.
    pub stats_samples: mpsc::Receiver<Vec<SampleRow>>,
    /// Count of non-scalar event summaries last written to run.db.
    pub others_written: usize,
    pub progress: watch::Sender<Progress>,
    /// Stops and attr writes asked of the run.
    pub requests: mpsc::Receiver<RunRequest>,
    pub stop_requested: bool,
    pub shutdown: watch::Receiver<bool>,
    /// The run's errors.log (lines wait here while it cannot be written).
    pub errors: ErrorLog,
    /// A batch that failed to commit: committed again before anything new is read.
    pub unsaved: Option<Batch>,
    /// Attrs that failed to reach run.db, written again at each read.
    pub unsaved_attrs: Vec<(String, String)>,
    /// The index lacks the run's row as `record` has it, or summaries that changed.
    pub index_behind: bool,
    /// Since when (ms) writes have been failing, with the first failure.
    pub failing: Option<(i64, String)>,
    /// The run is a Slurm job (`slurm_run`): followed by polling and through Slurm.
    pub slurm: Option<super::slurm_run::SlurmJob>,
}

impl RunTask {
    pub async fn run(mut self, mut child: Option<Child>) {
        let guild_d = self.record.run_dir.join("guild.d");
        if child.is_some() {
            // Just started (not adopted): record it.
            let started = vec![
                ("started".to_string(), self.record.started_ms.unwrap_or(0).to_string()),
                ("pid".to_string(), self.record.pid.unwrap_or(0).to_string()),
            ];
            self.put_attrs(started).await;
            self.update_index().await;
            self.owner.tell(RunEvent::Changed(self.record.clone())).await;
        } else {
            // Adopted: the summaries rebuilt from run.db go to the index first.
            self.write_summaries().await;
        }
        if self.slurm.is_some() {
            self.slurm_begin().await;
        }
        let pid = self.record.pid.unwrap_or(0);
        // A stop asked of an earlier daemon (an adopted run) is in the run's attrs.
        let mut stop_requested = self.stop_requested;
        let mut kill_at: Option<Instant> = None;
        let mut supervisor_signal = None;
        // The supervisor died before the op: its process group is followed instead.
        let mut orphaned = false;
        // A Slurm job writes from another node, which inotify never sees: its files are
        // read by timer alone, and its streams have no order notes (stdout is stored
        // before stderr within a read).
        let mut watch = if self.slurm.is_some() { None } else { DirWatch::new() };
        // Ends with this task (its thread closes its inotify instance on its own time).
        let _order = if self.slurm.is_none() {
            super::order::OrderNotes::start(&guild_d)
        } else {
            None
        };
        // Armed: listening to the watch. A change schedules a read and disarms it until
        // that read, so a run that writes constantly costs one wake-up per read.
        let mut armed = true;
        self.watch_folders(&mut watch);
        self.arm_files(&mut watch, &guild_d);
        let mut interval = POLL_INTERVAL;
        // How soon after a read a change is read (POLL_INTERVAL, or less while busy).
        let mut soonest = POLL_INTERVAL;
        let mut next_poll = Instant::now() + interval;
        let mut last_poll = Instant::now();
        // Whether the next change may be read at once: at the start, and after a read by
        // timer that found nothing (a file that appears, the first line after a pause).
        // After a read a change brought forward, or one that found something, changes wait
        // `soonest` as before: a run that keeps writing, or keeps creating files no reader
        // wants, is still read at most every `soonest`.
        let mut eager = true;
        // The next read was brought forward by a change.
        let mut by_change = false;
        loop {
            tokio::select! {
                status = wait(&mut child) => {
                    use std::os::unix::process::ExitStatusExt;
                    supervisor_signal = status.and_then(|s| s.signal());
                    child = None;
                    if ExitRecord::read(&guild_d).is_some() || !run_group_alive(pid, &self.record.id) {
                        break;
                    }
                    // Killed before the op ended (a supervisor ends after its op): the op
                    // runs on in the supervisor's group, and is followed to its end.
                    orphaned = true;
                    let how = supervisor_signal.map_or("ended".to_string(), |s| format!("was killed by signal {s}"));
                    let note = format!(
                        "the run's supervisor (pid {pid}) {how} while its op ran: guildd follows the op's \
                         processes (group {pid}) until they end; its exit status will be unknown"
                    );
                    tracing::warn!("{note}");
                    self.errors.append(&note);
                }
                Some(request) = self.requests.recv() => match request {
                    RunRequest::Stop if !stop_requested => {
                        stop_requested = true;
                        self.put_attrs(vec![("stop_requested".into(), guild_proto::time::now_ms().to_string())]).await;
                        if self.slurm.is_some() {
                            self.slurm_cancel().await;
                        } else {
                            if pid > 0 {
                                signal_group(pid, libc::SIGTERM);
                            }
                            kill_at = Some(Instant::now() + STOP_GRACE);
                        }
                    }
                    RunRequest::Stop => {}
                    RunRequest::PutAttrs { attrs, done } => {
                        self.put_attrs(attrs).await;
                        let _ = done.send(());
                    }
                },
                _ = sleep_until(kill_at) => {
                    kill_at = None;
                    if pid > 0 {
                        signal_group(pid, libc::SIGKILL);
                    }
                }
                _ = super::slurm_run::changed(&mut self.slurm) => self.slurm_state_changed().await,
                _ = self.shutdown.changed() => {
                    // The daemon is going away; the run goes on. Commit what was read.
                    self.poll(false).await;
                    self.write_summaries().await;
                    self.db.close().await;
                    return;
                }
                changes = changed(&mut watch), if armed => {
                    if changes.created {
                        self.events.rescan();
                    }
                    armed = false;
                    let gap = if eager { Duration::ZERO } else { soonest };
                    let at = (last_poll + gap).max(Instant::now());
                    if at < next_poll {
                        next_poll = at;
                        by_change = true;
                    }
                }
                _ = tokio::time::sleep_until(next_poll) => {
                    self.retry_writes().await;
                    self.arm_files(&mut watch, &guild_d);
                    let (mut found, mut lines) = (false, 0);
                    loop {
                        let polled = self.poll(false).await;
                        found |= polled.found;
                        lines += polled.lines;
                        if !polled.more {
                            break;
                        }
                    }
                    self.watch_folders(&mut watch);
                    armed = true;
                    last_poll = Instant::now();
                    eager = !found && !by_change;
                    by_change = false;
                    soonest = if lines >= BUSY_LINES { POLL_INTERVAL_BUSY } else { POLL_INTERVAL };
                    interval = if watch.is_some() {
                        if found { soonest } else { POLL_INTERVAL_WATCHED }
                    } else if found {
                        POLL_INTERVAL
                    } else {
                        (interval * 2).min(POLL_INTERVAL_QUIET)
                    };
                    next_poll = last_poll + interval;
                    // An adopted run ends with its supervisor; an orphaned one (or an
                    // adopted one whose supervisor died first) with the last process of
                    // its group; a Slurm job with its exit file, or with Slurm's word.
                    let ended = match self.slurm.as_mut() {
                        Some(job) => job.ended(&guild_d),
                        None => {
                            child.is_none()
                                && !same_process(pid, self.record.pid_start)
                                && !run_group_alive(pid, &self.record.id)
                        }
                    };
                    if ended {
                        break;
                    }
                }
            }
        }
        // Its processes ended: the next queued run may have its GPUs now.
        self.owner
            .tell(RunEvent::Released {
                id: self.record.id.clone(),
            })
            .await;
        // Closing an inotify instance waits for the kernel (10-18 ms measured here): not on
        // this task's thread, which records the run's end next.
        if let Some(watch) = watch.take() {
            tokio::task::spawn_blocking(move || drop(watch));
        }
        // The sampler takes the run's last stats sample while the last output is read.
        let (stats, id) = (self.stats.clone(), self.record.id.clone());
        let (_, last_stats) = tokio::join!(async { while self.poll(true).await.more {} }, stats.unregister(&id));
        let mut last_stats = Some(last_stats);
        // Everything read is committed before the end is recorded, however long a full
        // disk takes to have room again.
        let mut pause = super::retry::RETRY_FIRST;
        loop {
            if let Some(samples) = last_stats.take() {
                self.commit(Batch {
                    samples,
                    ..Batch::default()
                })
                .await;
            }
            if self.unsaved.is_none() {
                break;
            }
            if !self.pause(&mut pause).await {
                // The daemon is going away: the next one adopts the run and reads on
                // from what run.db has.
                self.db.close().await;
                return;
            }
            while self.poll(true).await.more {}
        }
        self.finish(&guild_d, stop_requested, supervisor_signal, orphaned).await;
    }

    /// Watches the output files and event files (those that exist) for their next write:
    /// before each read, so a write just after it wakes the task. Not yet there: tried
    /// again before the next read; a write to a file that is not watched yet is still
    /// found by that read.
    fn arm_files(&self, watch: &mut Option<DirWatch>, guild_d: &Path) {
        let Some(w) = watch.as_mut() else { return };
        for name in [STDOUT_FILE, STDERR_FILE] {
            w.add_once(&guild_d.join(name));
        }
        for file in self.events.paths().take(MAX_WATCHED_EVENT_FILES) {
            w.add_once(&file);
        }
    }

    /// Watches the run folder and the folders the event-file search went through for new
    /// entries (after each read, whose search may have found more); drops the watch
    /// (reading by timer alone) when the run folder cannot be watched.
    fn watch_folders(&self, watch: &mut Option<DirWatch>) {
        let Some(w) = watch.as_mut() else { return };
        if !w.add(&self.record.run_dir) {
            *watch = None;
            return;
        }
        for folder in self.events.folders().iter().take(MAX_WATCHED_FOLDERS) {
            w.add(folder);
        }
    }

    /// Reads and commits new output and event-file scalars. While a batch that failed
    /// to commit cannot be committed, nothing new is read.
    async fn poll(&mut self, finished: bool) -> Polled {
        let idle = Polled {
            more: false,
            found: false,
            lines: 0,
        };
        if self.unsaved.is_some() {
            // While a commit fails (a full disk), stats samples join the batch kept for
            // the next try rather than filling their channel and being missed.
            let mut waiting = Batch::default();
            while let Ok(samples) = self.stats_samples.try_recv() {
                waiting.samples.extend(samples);
            }
            if !self.commit(waiting).await {
                return idle;
            }
        }
        let (mut batch, mut more) = self.tailer.poll(guild_proto::time::now_ms(), finished);
        // A Slurm job's node stats and start, from the file its supervisor writes.
        let mut node_news = None;
        if let Some(job) = self.slurm.as_mut() {
            let found = job.node.poll();
            more |= found.more;
            batch.samples.extend(found.samples);
            batch.offsets.extend(found.offset);
            for issue in &found.issues {
                tracing::warn!("{issue}");
                self.errors.append(issue);
            }
            if found.started.is_some() || !found.attrs.is_empty() {
                node_news = Some((found.started, found.attrs));
            }
        }
        let found = self.events.poll(finished);
        more |= found.more;
        batch.series.extend(found.samples);
        batch.media.extend(found.media);
        batch.offsets.extend(found.offsets);
        for issue in &found.issues {
            tracing::warn!("{issue}");
            self.errors.append(issue);
        }
        let others = self.events.others();
        if others.len() != self.others_written || (finished && !others.is_empty()) {
            // Tried again at the next read when it fails.
            match self.db.put_event_summaries(&others).await {
                Ok(()) => self.others_written = others.len(),
                Err(err) => self.write_failed(&err).await,
            }
        }
        let found = !batch.is_empty();
        let lines = batch.output.len();
        // Stats samples ride along in the same transaction (they wait for the next read,
        // 500 ms at most, rather than waking the task on their own).
        while let Ok(samples) = self.stats_samples.try_recv() {
            batch.samples.extend(samples);
        }
        // The op's start is told before what it wrote after starting is committed.
        if let Some((started, attrs)) = node_news {
            self.slurm_node_news(started, attrs).await;
        }
        self.commit(batch).await;
        Polled { more, found, lines }
    }

    /// Commits a batch to run.db (after the one that failed before it, if any, in the same
    /// transaction), then tells followers and updates the index's summaries. On failure
    /// the batch is kept for the next try; returns whether it landed.
    async fn commit(&mut self, batch: Batch) -> bool {
        let batch = match self.unsaved.take() {
            Some(mut unsaved) => {
                unsaved.append(batch);
                unsaved
            }
            None => batch,
        };
        if batch.is_empty() {
            return true;
        }
        match self.db.commit(&batch).await {
            Ok(()) => {
                let (last_seq, last_sample, last_media) =
                    (self.db.last_seq(), self.db.last_sample(), self.db.last_media());
                self.progress.send_if_modified(|p| {
                    let changed = p.last_seq != last_seq || p.last_sample != last_sample || p.last_media != last_media;
                    (p.last_seq, p.last_sample, p.last_media) = (last_seq, last_sample, last_media);
                    changed
                });
                self.summaries.add_batch(&batch);
                if self.summaries_written.elapsed() >= SUMMARY_EVERY {
                    self.write_summaries().await;
                }
                self.check_recovered().await;
                true
            }
            Err(err) => {
                self.unsaved = Some(batch);
                self.write_failed(&err).await;
                false
            }
        }
    }

    /// Writes the summaries that changed since the last time to the index (on failure,
    /// they are written again with the run's row).
    async fn write_summaries(&mut self) {
        self.summaries_written = Instant::now();
        let changed = self.summaries.changed();
        if changed.is_empty() {
            return;
        }
        match self.index.put_summaries(&self.record.id, &changed).await {
            Ok(()) => self.summaries.written(),
            Err(err) => {
                self.index_behind = true;
                self.write_failed(&err).await;
            }
        }
    }

    async fn finish(mut self, guild_d: &Path, stopped: bool, supervisor_signal: Option<i32>, orphaned: bool) {
        // From here on the run cannot be stopped, and attrs asked of it after these are
        // written by a writer of their own.
        self.owner
            .tell(RunEvent::Ending {
                id: self.record.id.clone(),
            })
            .await;
        self.requests.close();
        let mut asked = Vec::new();
        while let Ok(request) = self.requests.try_recv() {
            if let RunRequest::PutAttrs { attrs, done } = request {
                asked.extend(attrs);
                let _ = done.send(());
            }
        }
        let exit = ExitRecord::read(guild_d);
        let had_exit = exit.is_some();
        let slurm_end = self.slurm_end(exit.as_ref(), stopped).await;
        let now = guild_proto::time::now_ms();
        let record = &mut self.record;
        // A reason shown while writes failed is not the run's.
        record.reason.clear();
        record.stopped_ms = Some(exit.as_ref().map_or(now, ExitRecord::ended_ms));
        match exit {
            Some(ExitRecord::Exited { code, .. }) => {
                record.exit_status = Some(code);
                record.status = if stopped {
                    Status::Terminated
                } else if code == 0 {
                    Status::Completed
                } else {
                    Status::Error
                };
            }
            Some(ExitRecord::Signalled { signal, .. }) => {
                record.exit_status = Some(-signal);
                record.status = if stopped { Status::Terminated } else { Status::Error };
                if !stopped {
                    record.reason = format!("killed by signal {signal}");
                }
            }
            Some(ExitRecord::Failed { reason, .. }) => {
                record.status = Status::Failed;
                record.reason = reason;
            }
            None => {
                // The op's own status went with its supervisor (or was never known).
                record.exit_status = None;
                record.status = if stopped { Status::Terminated } else { Status::Failed };
                let supervisor = match supervisor_signal {
                    Some(signal) => format!("the run's supervisor was killed by signal {signal}"),
                    None => "the run's supervisor ended without recording it".into(),
                };
                record.reason = if orphaned {
                    format!(
                        "exit status unknown: {supervisor} while the op ran; its output was recorded until its processes ended"
                    )
                } else if supervisor_signal.is_some() {
                    format!("exit status unknown: {supervisor}")
                } else {
                    "the run ended without recording an exit status".into()
                };
            }
        }
        if let (Some(info), Some(job)) = (&slurm_end, self.slurm.as_ref()) {
            super::slurm_run::apply_end(record, &job.job, info, stopped, had_exit);
        }
        if !record.reason.is_empty() {
            let reason = record.reason.clone();
            tracing::info!("{reason}");
            self.errors.append(&reason);
        }
        let record = &self.record;
        let mut attrs = asked;
        if let Some(info) = &slurm_end {
            attrs.push(("slurm_state".to_string(), info.state.clone()));
        }
        attrs.push(("stopped".to_string(), record.stopped_ms.unwrap_or(now).to_string()));
        if let Some(code) = record.exit_status {
            attrs.push(("exit_status".to_string(), code.to_string()));
        }
        attrs.push(("status".to_string(), record.status.as_str().to_string()));
        if !record.reason.is_empty() {
            attrs.push(("reason".to_string(), record.reason.clone()));
        }
        // Everything is committed: run.db's attrs, then the index learn the end, then
        // watchers (`guild train` returns), each write tried again until it lands (a full
        // disk). run.db closes after that (`RunDb::close` takes no lock a reader would
        // wait for).
        let mut written = self.put_attrs(attrs).await && self.update_index().await;
        let mut pause = super::retry::RETRY_FIRST;
        while !written {
            if !self.pause(&mut pause).await {
                // The next daemon records the end (the exit file says how it ended).
                self.db.close().await;
                return;
            }
            written = self.put_attrs(Vec::new()).await && self.update_index().await;
        }
        self.check_recovered().await;
        if self.failing.take().is_some() {
            // Only errors.log is left to write, and nobody will try again: its lines are
            // in guildd's log (each was logged when it was said).
            tracing::warn!("errors.log could not be written; its last lines are in this log");
            self.tell_problem(None).await;
        }
        self.owner.tell(RunEvent::Changed(self.record.clone())).await;
        self.progress.send_modify(|p| p.finished = true);
        self.db.close().await;
    }
}

async fn changed(watch: &mut Option<DirWatch>) -> Changes {
    match watch {
        Some(w) => w.changed().await,
        None => std::future::pending().await,
    }
}

async fn wait(child: &mut Option<Child>) -> Option<std::process::ExitStatus> {
    match child {
        Some(child) => child.wait().await.ok(),
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
