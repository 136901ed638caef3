//! What happens to runs after they exist, short of leaving the machine: selections
//! (ids, prefixes, indexes, ranges, filters), labels and tags, and the trash — delete
//! moves a run's folder to `<runroot>/.trash/<id>` and its index row to `run_trash`;
//! restore moves both back; purge removes them for good. Export and import are in
//! `archive`. Delete, restore and purge move the folder first and record their intent in
//! `journal`, so a daemon killed midway finishes them at its next start ([`Manager::recover`]);
//! a purge renames the folder out of the trash before removing it, so a half-removed
//! folder is never restored.

use std::path::{Path, PathBuf};

use tokio::sync::oneshot;

use super::Manager;
use super::journal::{self, Intent, Record, remove_any};
use super::owner::RunRequest;
use crate::error::{Error, Result, quote};
use crate::store::select::{self, Selection, Selector};
use crate::store::{RunDb, RunRecord, rundb};

/// Where deleted runs go, inside their runroot (hidden: snapshots leave it out).
pub const TRASH_DIR: &str = ".trash";

/// The longest tag, in characters.
const MAX_TAG: usize = 64;
const MAX_LABEL: usize = 1000;

pub(super) async fn refuse_active(manager: &Manager, run: &RunRecord, what: &str) -> Result<()> {
    if run.status.is_active() || manager.live(&run.id).await.is_some() {
        return Err(Error::Conflict(format!(
            "run {} is {}: stop it first (guild stop {}), then {what} it",
            run.id,
            run.status.as_str(),
            run.id
        )));
    }
    // Whatever the index says, a folder whose op still runs stays where the op writes.
    if let Some(pid) = run.pid.filter(|pid| crate::process::run_group_alive(*pid, &run.id)) {
        return Err(Error::Conflict(format!(
            "run {}'s processes are still running (process group {pid}): stop them first, then {what} it",
            run.id
        )));
    }
    Ok(())
}

/// The longest run id, in bytes (it names a folder).
const MAX_RUN_ID: usize = 200;

/// Checks a run id from elsewhere (an import): it names a folder and shows in tables, so
/// it is one path part without control characters, spaces, quotes or slashes, and does
/// not start with a dot (Guild's own hidden folders: `.trash`, `.import-*`).
pub fn check_run_id(id: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::Invalid(format!("run id {}: {why}", quote(id))));
    if id.is_empty() {
        return bad("empty");
    }
    if id.len() > MAX_RUN_ID {
        return bad(&format!("longer than {MAX_RUN_ID} bytes"));
    }
    if id.starts_with('.') {
        return bad("cannot start with a dot");
    }
    if id
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || matches!(c, '/' | '\\' | '"' | '\''))
    {
        return bad("only letters, digits and punctuation other than / \\ \" ' (no spaces or control characters)");
    }
    Ok(())
}

/// Checks a label: one line of at most 1,000 bytes, without control characters (a label
/// is printed in tables; an escape code there would act on the terminal).
pub fn check_label(label: &str) -> Result<()> {
    if label.len() > MAX_LABEL {
        return Err(Error::Invalid(format!("label: at most {MAX_LABEL} bytes")));
    }
    if label.contains(['\n', '\r']) {
        return Err(Error::Invalid("label: one line only".into()));
    }
    if label.chars().any(char::is_control) {
        return Err(Error::Invalid(format!(
            "label {}: control characters are not allowed",
            quote(label)
        )));
    }
    Ok(())
}

/// Checks one tag: a word of at most 64 characters, no spaces or commas.
pub fn check_tag(tag: &str) -> Result<()> {
    if tag.is_empty() {
        return Err(Error::Invalid("tag: a tag cannot be empty".into()));
    }
    if tag.chars().count() > MAX_TAG {
        return Err(Error::Invalid(format!(
            "tag {}: at most {MAX_TAG} characters",
            crate::error::quote(tag)
        )));
    }
    if tag.chars().any(|c| c.is_whitespace() || c == ',' || c.is_control()) {
        return Err(Error::Invalid(format!(
            "tag {}: a tag is one word (no spaces, commas or control characters)",
            crate::error::quote(tag)
        )));
    }
    if tag.starts_with(['+', '-']) {
        return Err(Error::Invalid(format!(
            "tag {}: a tag cannot start with + or - (those add and remove tags)",
            crate::error::quote(tag)
        )));
    }
    Ok(())
}

impl Manager {
    /// Runs a blocking bulk read of the index off the async threads.
    pub async fn select(&self, selection: Selection) -> Result<Vec<select::Selected>> {
        let path = self.inner.index.db_path().to_path_buf();
        tokio::task::spawn_blocking(move || select::select(&path, &selection))
            .await
            .map_err(|e| Error::Invalid(format!("selection failed: {e}")))?
    }

    /// One deleted run, by id, prefix or index in the trash.
    async fn resolve_deleted(&self, selector: &str) -> Result<RunRecord> {
        let selection = Selection {
            runs: vec![Selector::parse(selector)?],
            deleted: true,
            ..Default::default()
        };
        let mut picked = self.select(selection).await?;
        match picked.len() {
            1 => Ok(picked.remove(0).run),
            0 => Err(Error::NotFound(format!(
                "no deleted run matches {}",
                crate::error::quote(selector)
            ))),
            n => Err(Error::Invalid(format!(
                "{} names {n} deleted runs; restore or purge them one at a time",
                crate::error::quote(selector)
            ))),
        }
    }

    pub async fn set_label(&self, selector: &str, label: &str) -> Result<RunRecord> {
        let label = label.trim();
        check_label(label)?;
        let mut run = self.inner.index.resolve(selector).await?;
        self.inner.index.set_label(&run.id, label).await?;
        run.label = label.to_string();
        self.put_run_attrs(&run, vec![("label".to_string(), label.to_string())])
            .await?;
        self.publish(&run).await;
        Ok(run)
    }

    /// Adds, then removes tags; returns the run and its tags.
    pub async fn tag(&self, selector: &str, add: &[String], remove: &[String]) -> Result<(RunRecord, Vec<String>)> {
        for tag in add.iter().chain(remove) {
            check_tag(tag)?;
        }
        let run = self.inner.index.resolve(selector).await?;
        let mut tags = self.inner.index.tags(&run.id).await?;
        tags.extend(add.iter().cloned());
        tags.retain(|t| !remove.contains(t));
        tags.sort();
        tags.dedup();
        self.inner.index.set_tags(&run.id, &tags).await?;
        let json = serde_json::to_string(&tags).unwrap_or_else(|_| "[]".into());
        self.put_run_attrs(&run, vec![("tags".to_string(), json)]).await?;
        self.publish(&run).await;
        Ok((run, tags))
    }

    /// Writes attrs into a run's run.db: a live run's through its own writer (its task
    /// writes them), a finished run's through a writer opened now (nothing when the run
    /// has no run.db any more).
    async fn put_run_attrs(&self, run: &RunRecord, attrs: Vec<(String, String)>) -> Result<()> {
        if let Some(live) = self.live(&run.id).await {
            let (done, written) = oneshot::channel();
            let asked = RunRequest::PutAttrs {
                attrs: attrs.clone(),
                done,
            };
            // Not answered: the run's end was being recorded, and its task is gone.
            if live.requests.send(asked).await.is_ok() && written.await.is_ok() {
                return Ok(());
            }
        }
        let path = rundb::path(&run.run_dir);
        if !path.is_file() {
            return Ok(());
        }
        let mut db = RunDb::open(&path).await?;
        let written = db.put_attrs(&attrs).await;
        db.close().await;
        written
    }

    /// Moves a finished run's folder to `<runroot>/.trash/<id>` and its index row to the
    /// trash. A run whose folder is already gone is still moved to the trash.
    pub(crate) async fn trash(&self, run: RunRecord) -> Result<RunRecord> {
        refuse_active(self, &run, "delete").await?;
        let trash_dir = match run.run_dir.parent() {
            Some(runroot) if run.run_dir.join("guild.d").is_dir() => {
                let trash = runroot.join(TRASH_DIR);
                std::fs::create_dir_all(&trash).map_err(|e| Error::io("cannot create", &trash, e))?;
                let target = trash.join(&run.id);
                // An older deleted run of the same id (imported again since) is replaced.
                let doomed = target.exists().then(|| doomed_name(&trash, &run.id));
                let record = Record::begin(
                    &self.data_dir(),
                    Intent::Delete {
                        id: run.id.clone(),
                        from: run.run_dir.clone(),
                        to: target.clone(),
                        doomed: doomed.clone(),
                    },
                )?;
                if let Some(doomed) = &doomed {
                    std::fs::rename(&target, doomed).map_err(|e| Error::io("cannot clear", &target, e))?;
                }
                std::fs::rename(&run.run_dir, &target)
                    .map_err(|e| Error::io("cannot move to the trash", &run.run_dir, e))?;
                self.inner
                    .index
                    .trash_run(&run.id, &target.to_string_lossy(), guild_proto::time::now_ms())
                    .await?;
                if let Some(doomed) = &doomed {
                    remove_any(doomed).map_err(|e| Error::io("cannot remove", doomed, e))?;
                }
                record.done();
                return Ok(run);
            }
            _ => String::new(),
        };
        self.inner
            .index
            .trash_run(&run.id, &trash_dir, guild_proto::time::now_ms())
            .await?;
        Ok(run)
    }

    pub async fn restore(&self, selector: &str) -> Result<RunRecord> {
        let run = self.resolve_deleted(selector).await?;
        if self.inner.index.get_run(&run.id).await?.is_some() {
            return Err(Error::Conflict(format!(
                "a run with id {} is indexed again (imported?); purge the deleted one instead",
                run.id
            )));
        }
        let trash_dir = self.inner.index.trash_dir(&run.id).await?.unwrap_or_default();
        if trash_dir.is_empty() || !Path::new(&trash_dir).is_dir() {
            return Err(Error::NotFound(format!(
                "run {}'s folder is gone from the trash; `guild runs purge {}` forgets it",
                run.id, run.id
            )));
        }
        if run.run_dir.exists() {
            return Err(Error::Conflict(format!(
                "cannot restore run {}: {} exists",
                run.id,
                run.run_dir.display()
            )));
        }
        let record = Record::begin(
            &self.data_dir(),
            Intent::Restore {
                id: run.id.clone(),
                from: PathBuf::from(&trash_dir),
                to: run.run_dir.clone(),
            },
        )?;
        std::fs::rename(&trash_dir, &run.run_dir).map_err(|e| Error::io("cannot restore", &trash_dir, e))?;
        let restored = self.inner.index.untrash_run(&run.id).await?.unwrap_or(run);
        record.done();
        self.publish(&restored).await;
        Ok(restored)
    }

    /// Removes a deleted run for good: its folder is first renamed out of reach (so a
    /// half-removed folder can never be restored), then the index forgets the run, then
    /// the folder goes.
    pub async fn purge(&self, selector: &str) -> Result<RunRecord> {
        let run = self.resolve_deleted(selector).await?;
        let trash_dir = PathBuf::from(self.inner.index.trash_dir(&run.id).await?.unwrap_or_default());
        let doomed = match trash_dir.parent() {
            Some(trash) if !trash_dir.as_os_str().is_empty() => doomed_name(trash, &run.id),
            _ => PathBuf::new(),
        };
        let record = Record::begin(
            &self.data_dir(),
            Intent::Purge {
                id: run.id.clone(),
                trash_dir: trash_dir.clone(),
                doomed: doomed.clone(),
            },
        )?;
        self.finish_purge(&run.id, &trash_dir, &doomed).await?;
        record.done();
        Ok(run)
    }

    async fn finish_purge(&self, id: &str, trash_dir: &Path, doomed: &Path) -> Result<()> {
        if !doomed.as_os_str().is_empty() && std::fs::symlink_metadata(trash_dir).is_ok() {
            std::fs::rename(trash_dir, doomed).map_err(|e| Error::io("cannot remove", trash_dir, e))?;
        }
        self.inner.index.purge_run(id).await?;
        if !doomed.as_os_str().is_empty() {
            remove_any(doomed).map_err(|e| Error::io("cannot remove", doomed, e))?;
        }
        Ok(())
    }

    /// At start-up: finishes or undoes every management operation an earlier daemon left
    /// half done (see `journal`). A record that cannot be finished now (the disk, a
    /// permission) stays for the next start, and the error is logged.
    pub async fn recover(&self) {
        for record in journal::left_over(&self.data_dir()) {
            tracing::info!(intent = ?record.intent, "finishing a management operation left by an earlier daemon");
            match self.recover_one(&record.intent).await {
                Ok(()) => record.done(),
                Err(err) => tracing::error!(intent = ?record.intent, "cannot finish: {err}"),
            }
        }
    }

    async fn recover_one(&self, intent: &Intent) -> Result<()> {
        match intent {
            Intent::Export { partials } => {
                for partial in partials {
                    remove_any(partial).map_err(|e| Error::io("cannot remove", partial, e))?;
                }
            }
            Intent::Import { .. } => self.undo_import(intent).await,
            Intent::Delete { id, from, to, doomed } => {
                let listed = self.inner.index.get_run(id).await?.is_some();
                if let Some(doomed) = doomed
                    && !to.exists()
                    && doomed.exists()
                    && from.exists()
                {
                    // Killed between moving the older deleted folder aside and moving the run.
                    std::fs::rename(doomed, to).map_err(|e| Error::io("cannot restore", doomed, e))?;
                } else if listed && !from.exists() && to.exists() {
                    // The folder went to the trash; the index follows it.
                    self.inner
                        .index
                        .trash_run(id, &to.to_string_lossy(), guild_proto::time::now_ms())
                        .await?;
                }
                if let Some(doomed) = doomed {
                    remove_any(doomed).map_err(|e| Error::io("cannot remove", doomed, e))?;
                }
            }
            Intent::Restore { id, from, to } => {
                let in_trash = self.inner.index.trash_dir(id).await?.is_some();
                if in_trash && !from.exists() && to.exists() {
                    self.inner.index.untrash_run(id).await?;
                }
            }
            Intent::Purge { id, trash_dir, doomed } => self.finish_purge(id, trash_dir, doomed).await?,
        }
        Ok(())
    }
}

/// A hidden name in the trash for a folder about to be removed.
fn doomed_name(trash: &Path, id: &str) -> PathBuf {
    trash.join(format!(".purge-{id}-{}", guild_proto::time::now_ms()))
}
