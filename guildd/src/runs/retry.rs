//! What a run's task does when a write fails (a full disk): nothing is dropped, and it
//! is tried again until it lands. A batch that failed to commit is committed again before
//! anything new is read (run.db's read positions move only with it, so nothing is lost or
//! doubled, even if guildd dies meanwhile); attrs that failed, and the index's row and
//! summaries, are written again at each read; errors.log lines wait in memory
//! (`errlog`). The first failure is told where the user looks (guildd's log, errors.log,
//! the run's reason, `guild status`), and so is the end of it.

use std::time::Duration;

use tokio::time::Instant;

use super::live::RunTask;
use super::owner::RunEvent;
use crate::error::Error;

/// Once a run has ended, what could not be written yet is tried again after this long,
/// doubling up to RETRY_MAX (while it runs, every read tries again).
pub(super) const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

impl RunTask {
    /// Waits `pause` (doubled for next time, up to RETRY_MAX); false when the daemon is
    /// shutting down instead.
    pub(super) async fn pause(&mut self, pause: &mut Duration) -> bool {
        let wait = *pause;
        *pause = (*pause * 2).min(RETRY_MAX);
        tokio::select! {
            _ = tokio::time::sleep(wait) => true,
            _ = self.shutdown.changed() => false,
        }
    }

    /// Writes again what failed to be written (a full disk): errors.log lines, attrs, the
    /// index. The batch that failed is committed again by the next read, first.
    pub(super) async fn retry_writes(&mut self) {
        if self.failing.is_none() {
            return;
        }
        self.errors.flush();
        if !self.unsaved_attrs.is_empty() {
            self.put_attrs(Vec::new()).await;
        }
        if self.index_behind {
            self.update_index().await;
        }
        self.check_recovered().await;
    }

    /// Sets attrs in run.db, after those that failed before; on failure they are kept
    /// (a later value of the same name replaces the kept one) and written again later.
    pub(super) async fn put_attrs(&mut self, attrs: Vec<(String, String)>) -> bool {
        let mut all = std::mem::take(&mut self.unsaved_attrs);
        for (name, value) in attrs {
            all.retain(|(n, _)| *n != name);
            all.push((name, value));
        }
        match self.db.put_attrs(&all).await {
            Ok(()) => true,
            Err(err) => {
                self.unsaved_attrs = all;
                self.write_failed(&err).await;
                false
            }
        }
    }

    /// Writes the run's row and its changed summaries to the index; on failure the
    /// index is behind, and written again later.
    pub(super) async fn update_index(&mut self) -> bool {
        let index = &self.index;
        let changed = self.summaries.changed();
        let written = match index.put_summaries(&self.record.id, &changed).await {
            Ok(()) => {
                self.summaries.written();
                self.summaries_written = Instant::now();
                index.update_run(&self.record).await
            }
            Err(err) => Err(err),
        };
        match written {
            Ok(()) => {
                self.index_behind = false;
                true
            }
            Err(err) => {
                self.index_behind = true;
                self.write_failed(&err).await;
                false
            }
        }
    }

    /// A write failed. The first failure of a series is logged, written to errors.log
    /// (when it can be), shown as the run's reason and in `guild status`; later ones are
    /// only retried.
    pub(super) async fn write_failed(&mut self, err: &Error) {
        if self.failing.is_some() {
            return;
        }
        let message = format!("cannot record the run: {err}; guildd tries again until it can (nothing is lost)");
        tracing::error!("{message}");
        self.failing = Some((guild_proto::time::now_ms(), message.clone()));
        self.errors.append(&message);
        self.tell_problem(Some(format!("run {}: {message}", self.record.id)))
            .await;
        if !self.record.status.is_active() {
            // Its end is being recorded: its reason is that end's.
            return;
        }
        self.record.reason = message;
        self.owner.tell(RunEvent::Changed(self.record.clone())).await;
        if self.index.update_run(&self.record).await.is_err() {
            self.index_behind = true;
        }
    }

    /// When every write that failed has landed: says so where the failure was told.
    pub(super) async fn check_recovered(&mut self) {
        let pending = self.unsaved.is_some() || !self.unsaved_attrs.is_empty() || self.index_behind;
        if self.failing.is_none() || pending || !self.errors.flush() {
            return;
        }
        let Some((since, _)) = self.failing.take() else {
            return;
        };
        let seconds = (guild_proto::time::now_ms() - since) as f64 / 1000.0;
        let message = format!("recording resumed after {seconds:.1} s: every line and sample read is in run.db");
        tracing::info!("{message}");
        self.errors.append(&message);
        self.tell_problem(None).await;
        if self.record.status.is_active() {
            self.record.reason.clear();
            self.owner.tell(RunEvent::Changed(self.record.clone())).await;
            self.update_index().await;
        }
    }

    /// Tells `guild status` what cannot be written now (None: nothing any more).
    pub(super) async fn tell_problem(&mut self, problem: Option<String>) {
        let id = self.record.id.clone();
        self.owner.tell(RunEvent::Problem { id, problem }).await;
    }
}
