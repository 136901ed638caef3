//! What happens to runs after they exist, short of leaving the machine: selections
//! (ids, prefixes, indexes, ranges, filters), labels and tags, and the trash — delete
//! moves a run's folder to `<runroot>/.trash/<id>` and its index row to `run_trash`;
//! restore moves both back; purge removes them for good. Export and import are in
//! `archive`.

use std::path::{Path, PathBuf};

use super::Manager;
use crate::error::{Error, Result};
use crate::store::select::{self, Selection, Selector};
use crate::store::{RunDb, RunRecord};

/// Where deleted runs go, inside their runroot (hidden: snapshots leave it out).
pub const TRASH_DIR: &str = ".trash";

/// The longest tag, in characters.
const MAX_TAG: usize = 64;
const MAX_LABEL: usize = 1000;

pub(super) fn run_db_path(run_dir: &Path) -> PathBuf {
    run_dir.join("guild.d").join("run.db")
}

pub(super) fn refuse_active(manager: &Manager, run: &RunRecord, what: &str) -> Result<()> {
    if run.status.is_active() || manager.progress(&run.id).is_some() {
        return Err(Error::Conflict(format!(
            "run {} is {}: stop it first (guild stop {}), then {what} it",
            run.id,
            run.status.as_str(),
            run.id
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
        return Err(Error::Invalid(format!("tag {}: at most {MAX_TAG} characters", crate::error::quote(tag))));
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
            0 => Err(Error::NotFound(format!("no deleted run matches {}", crate::error::quote(selector)))),
            n => Err(Error::Invalid(format!(
                "{} names {n} deleted runs; restore or purge them one at a time",
                crate::error::quote(selector)
            ))),
        }
    }

    pub async fn set_label(&self, selector: &str, label: &str) -> Result<RunRecord> {
        let label = label.trim();
        if label.len() > MAX_LABEL {
            return Err(Error::Invalid(format!("label: at most {MAX_LABEL} bytes")));
        }
        if label.contains(['\n', '\r']) {
            return Err(Error::Invalid("label: one line only".into()));
        }
        let mut run = self.inner.index.resolve(selector).await?;
        self.inner.index.set_label(&run.id, label).await?;
        run.label = label.to_string();
        write_attrs(&run.run_dir, &[("label".to_string(), label.to_string())]).await?;
        self.publish(&run);
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
        write_attrs(&run.run_dir, &[("tags".to_string(), json)]).await?;
        self.publish(&run);
        Ok((run, tags))
    }

    /// Moves a finished run's folder to `<runroot>/.trash/<id>` and its index row to the
    /// trash. A run whose folder is already gone is still moved to the trash.
    pub(crate) async fn trash(&self, run: RunRecord) -> Result<RunRecord> {
        refuse_active(self, &run, "delete")?;
        let trash_dir = match run.run_dir.parent() {
            Some(runroot) if run.run_dir.join("guild.d").is_dir() => {
                let trash = runroot.join(TRASH_DIR);
                std::fs::create_dir_all(&trash).map_err(|e| Error::io("cannot create", &trash, e))?;
                let target = trash.join(&run.id);
                if target.exists() {
                    std::fs::remove_dir_all(&target).map_err(|e| Error::io("cannot clear", &target, e))?;
                }
                std::fs::rename(&run.run_dir, &target)
                    .map_err(|e| Error::io("cannot move to the trash", &run.run_dir, e))?;
                target.to_string_lossy().into_owned()
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
        std::fs::rename(&trash_dir, &run.run_dir).map_err(|e| Error::io("cannot restore", &trash_dir, e))?;
        let restored = self.inner.index.untrash_run(&run.id).await?.unwrap_or(run);
        self.publish(&restored);
        Ok(restored)
    }

    /// Removes a deleted run for good.
    pub async fn purge(&self, selector: &str) -> Result<RunRecord> {
        let run = self.resolve_deleted(selector).await?;
        let trash_dir = self.inner.index.trash_dir(&run.id).await?.unwrap_or_default();
        if !trash_dir.is_empty() && Path::new(&trash_dir).exists() {
            std::fs::remove_dir_all(&trash_dir).map_err(|e| Error::io("cannot remove", &trash_dir, e))?;
        }
        self.inner.index.purge_run(&run.id).await?;
        Ok(run)
    }
}

/// Writes attrs into a run's run.db, when the run still has one (a run being followed
/// has its own writer; SQLite's busy timeout orders the two).
async fn write_attrs(run_dir: &Path, attrs: &[(String, String)]) -> Result<()> {
    let path = run_db_path(run_dir);
    if !path.is_file() {
        return Ok(());
    }
    let mut db = RunDb::open(&path).await?;
    db.put_attrs(attrs).await?;
    db.close().await;
    Ok(())
}
