//! Export and import. A run folder is self-contained — `guild.d/run.db` holds its attrs,
//! flags, output and series — so export copies it (run.db written whole with VACUUM
//! INTO) to a folder or a `.tar.gz`, and import copies it into place and rebuilds its
//! index rows (flags, tags, series summaries) from its run.db, keeping its id.
//!
//! Both are crash-safe through `journal`: an export writes `.partial` names and renames
//! them into place when whole; an import records each run before it claims its folder
//! and marks it done once indexed. What comes in is checked by `unpack` (no links out of
//! a run, normalised modes, a bounded size) and here (valid ids, labels and tags).

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use super::Manager;
use super::journal::{Intent, Record, remove_any};
use super::trash::{check_label, check_run_id, check_tag, refuse_active};
use super::unpack::{self, copy_tree, walk};
use crate::error::{Error, Result};
use crate::project;
use crate::store::rundb::{self, Reader};
use crate::store::select;
use crate::store::{RunDb, RunRecord, Status};

/// A run an import added to the index.
#[derive(Clone, Debug)]
pub struct Imported {
    pub id: String,
    /// The id in the source, when the run was renamed.
    pub original_id: Option<String>,
    pub run_dir: PathBuf,
}

impl Manager {
    /// Copies finished runs to `dest`: a folder (each run in DEST/<id>) or a `.tar.gz`.
    pub async fn export(&self, selectors: &[String], dest: &Path) -> Result<Vec<String>> {
        let mut runs: Vec<RunRecord> = Vec::new();
        for selector in selectors {
            let run = self.inner.index.resolve(selector).await?;
            refuse_active(self, &run, "export").await?;
            if !rundb::path(&run.run_dir).is_file() {
                return Err(Error::NotFound(format!(
                    "run {}: its folder {} is gone",
                    run.id,
                    run.run_dir.display()
                )));
            }
            if !runs.iter().any(|r| r.id == run.id) {
                runs.push(run);
            }
        }
        if runs.is_empty() {
            return Err(Error::Invalid("runs: name at least one run to export".into()));
        }
        let dest = dest.to_path_buf();
        let ids: Vec<String> = runs.iter().map(|r| r.id.clone()).collect();
        let runs: Vec<(String, PathBuf)> = runs.into_iter().map(|r| (r.id, r.run_dir)).collect();
        let data_dir = self.data_dir();
        tokio::task::spawn_blocking(move || {
            if is_archive(&dest) {
                export_archive(&runs, &dest, &data_dir)
            } else {
                export_folder(&runs, &dest, &data_dir)
            }
        })
        .await
        .map_err(|e| Error::Invalid(format!("export failed: {e}")))??;
        Ok(ids)
    }

    /// Indexes the runs found in `src` (a run folder, a folder of them, or a `.tar.gz`).
    /// Runs go to the runroot of `project_dir` when it holds a Guild file, else to
    /// DATA_DIR/runs. An id already indexed is refused, or renamed when `rename`. An
    /// archive may unpack to at most `max_unpacked` bytes (None: [`unpack::default_limit`]).
    pub async fn import(
        &self,
        src: &Path,
        rename: bool,
        project_dir: Option<&Path>,
        max_unpacked: Option<u64>,
    ) -> Result<Vec<Imported>> {
        let meta = match std::fs::metadata(src) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound(format!("{} does not exist", src.display())));
            }
            Err(e) => return Err(Error::io("cannot read", src, e)),
        };
        if !meta.is_file() && !meta.is_dir() {
            return Err(Error::Invalid(format!(
                "{} is not a file or a folder (a device, pipe or socket): import takes a run folder, \
                 a folder of runs, or a .tar.gz made by `guild export`",
                src.display()
            )));
        }
        let project = match project_dir {
            Some(dir) if dir.join(project::FILE_NAME).is_file() => {
                let parsed = project::load(&dir.join(project::FILE_NAME)).map_err(|e| Error::Invalid(e.to_string()))?;
                Some((dir.to_path_buf(), parsed))
            }
            _ => None,
        };
        let dest_root = match &project {
            Some((dir, parsed)) => dir.join(&parsed.runroot),
            None => self.data_dir().join("runs"),
        };
        std::fs::create_dir_all(&dest_root).map_err(|e| Error::io("cannot create", &dest_root, e))?;
        let staging = meta.is_file().then(|| {
            dest_root.join(format!(
                ".import-{}-{}",
                std::process::id(),
                guild_proto::time::now_ms()
            ))
        });
        let mut record = Record::begin(
            &self.data_dir(),
            Intent::Import {
                staging: staging.clone(),
                runs: Vec::new(),
                done: Vec::new(),
            },
        )?;
        let result = async {
            if let Some(staging) = &staging {
                let limit = max_unpacked.unwrap_or_else(|| unpack::default_limit(meta.len()));
                let (archive, into) = (src.to_path_buf(), staging.clone());
                tokio::task::spawn_blocking(move || unpack::unpack_archive(&archive, &into, limit))
                    .await
                    .map_err(|e| Error::Invalid(format!("import failed: {e}")))??;
            }
            self.import_from(
                staging.as_deref().unwrap_or(src),
                staging.is_some(),
                rename,
                &dest_root,
                project.as_ref().map(|(d, p)| (d.as_path(), p.name.as_str())),
                &mut record,
            )
            .await
        }
        .await;
        // Runs not fully imported are taken out again; the staging folder goes either way.
        self.undo_import(&record.intent).await;
        record.done();
        result
    }

    /// Takes out what an import did for runs it did not finish (their folders and any
    /// index rows), and its staging folder. Runs it finished stay.
    pub(super) async fn undo_import(&self, intent: &Intent) {
        let Intent::Import { staging, runs, done } = intent else {
            return;
        };
        for (id, target) in runs.iter().filter(|(id, _)| !done.contains(id)) {
            if let Ok(Some(run)) = self.inner.index.get_run(id).await
                && run.run_dir == *target
                && let Err(err) = self.inner.index.forget_run(id).await
            {
                tracing::error!("cannot take run {id} out of the index after a failed import: {err}");
            }
            if let Err(err) = remove_any(target) {
                tracing::error!("cannot remove {} after a failed import: {err}", target.display());
            }
        }
        if let Some(staging) = staging
            && let Err(err) = remove_any(staging)
        {
            tracing::error!("cannot remove {}: {err}", staging.display());
        }
    }

    /// The data folder (index.db's).
    pub(crate) fn data_dir(&self) -> PathBuf {
        self.inner
            .index
            .db_path()
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."))
    }

    async fn import_from(
        &self,
        src: &Path,
        movable: bool,
        rename: bool,
        dest_root: &Path,
        project: Option<(&Path, &str)>,
        record: &mut Record,
    ) -> Result<Vec<Imported>> {
        let folders = find_run_folders(src)?;
        // Read and check every run first: nothing is imported when one would be refused.
        let mut plans = Vec::new();
        for folder in folders {
            let checked = folder.clone();
            tokio::task::spawn_blocking(move || unpack::check_folder(&checked))
                .await
                .map_err(|e| Error::Invalid(format!("import failed: {e}")))??;
            let attrs = rundb::read(&rundb::path(&folder), |r| r.attrs()).await?;
            let get = |name: &str| attrs.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
            let id = get("id")
                .filter(|id| !id.is_empty())
                .or_else(|| folder.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_default();
            let bad = |what: String| Error::Invalid(format!("{}: {what}; nothing was imported", folder.display()));
            check_run_id(&id).map_err(|e| bad(e.to_string()))?;
            check_label(&get("label").unwrap_or_default()).map_err(|e| bad(e.to_string()))?;
            if let Some(tags) = get("tags").filter(|t| !t.trim().is_empty()) {
                let tags: Vec<String> = serde_json::from_str(&tags).map_err(|_| {
                    bad(format!(
                        "its tags attr {} is not a JSON list of tags",
                        crate::error::quote(&tags)
                    ))
                })?;
                for tag in &tags {
                    check_tag(tag).map_err(|e| bad(e.to_string()))?;
                }
            }
            plans.push((folder, id, attrs));
        }
        let wanted: Vec<String> = plans.iter().map(|(_, id, _)| id.clone()).collect();
        let index_path = self.inner.index.db_path().to_path_buf();
        let unknown = {
            let wanted = wanted.clone();
            tokio::task::spawn_blocking(move || select::unknown_ids(&index_path, &wanted))
                .await
                .map_err(|e| Error::Invalid(format!("import failed: {e}")))??
        };
        let mut taken: Vec<String> = Vec::new();
        let mut clashes = Vec::new();
        let mut final_ids = Vec::new();
        for id in &wanted {
            let free = |candidate: &str, taken: &[String]| {
                !taken.iter().any(|t| t == candidate) && !dest_root.join(candidate).exists()
            };
            if unknown.contains(id) && free(id, &taken) {
                final_ids.push(id.clone());
            } else if rename {
                let mut n = 2;
                let new_id = loop {
                    let candidate = format!("{id}-{n}");
                    let indexed = {
                        let path = self.inner.index.db_path().to_path_buf();
                        let probe = vec![candidate.clone()];
                        tokio::task::spawn_blocking(move || select::never_used_ids(&path, &probe))
                            .await
                            .map_err(|e| Error::Invalid(format!("import failed: {e}")))??
                            .is_empty()
                    };
                    if !indexed && free(&candidate, &taken) {
                        break candidate;
                    }
                    n += 1;
                };
                final_ids.push(new_id);
            } else {
                clashes.push(id.clone());
                final_ids.push(id.clone());
            }
            taken.push(final_ids.last().cloned().unwrap_or_default());
        }
        if !clashes.is_empty() {
            return Err(Error::Conflict(format!(
                "{} already indexed or present in {}: {}; nothing was imported (pass --rename to import {} under new ids)",
                if clashes.len() == 1 {
                    "this run is"
                } else {
                    "these runs are"
                },
                dest_root.display(),
                clashes.join(", "),
                if clashes.len() == 1 { "it" } else { "them" }
            )));
        }
        // Oldest first, so the listing keeps the runs' creation order.
        let mut work: Vec<_> = plans.into_iter().zip(final_ids).collect();
        work.sort_by_key(|((_, _, attrs), _)| attr_i64(attrs, "created").unwrap_or(0));
        let mut imported = Vec::new();
        for ((folder, original, _), id) in work {
            let target = dest_root.join(&id);
            // Recorded before the folder is claimed: a daemon killed from here on leaves
            // a record that takes the folder out again.
            let Intent::Import {
                staging,
                mut runs,
                done,
            } = record.intent.clone()
            else {
                unreachable!("an import's record is an import")
            };
            runs.push((id.clone(), target.clone()));
            record.update(Intent::Import {
                staging: staging.clone(),
                runs: runs.clone(),
                done: done.clone(),
            })?;
            if let Err(e) = std::fs::create_dir(&target) {
                runs.pop();
                record.update(Intent::Import { staging, runs, done })?;
                return Err(match e.kind() {
                    std::io::ErrorKind::AlreadyExists => Error::Conflict(format!(
                        "{} appeared while importing; run {id} was not imported",
                        target.display()
                    )),
                    _ => Error::io("cannot create", &target, e),
                });
            }
            if movable {
                // Onto the empty folder just made: it claimed the name.
                std::fs::rename(&folder, &target).map_err(|e| Error::io("cannot move", &folder, e))?;
            } else {
                let (from, to) = (folder.clone(), target.clone());
                tokio::task::spawn_blocking(move || copy_tree(&from, &to, &|_| false))
                    .await
                    .map_err(|e| Error::Invalid(format!("import failed: {e}")))??;
            }
            let indexed = self.index_imported(&target, &id, project).await?;
            let Intent::Import {
                staging,
                runs,
                mut done,
            } = record.intent.clone()
            else {
                unreachable!("an import's record is an import")
            };
            done.push(id.clone());
            record.update(Intent::Import { staging, runs, done })?;
            self.publish(&indexed).await;
            imported.push(Imported {
                original_id: (original != id).then_some(original),
                id,
                run_dir: target,
            });
        }
        Ok(imported)
    }

    /// Adds a run folder that is in place to the index, from its run.db.
    async fn index_imported(&self, run_dir: &Path, id: &str, project: Option<(&Path, &str)>) -> Result<RunRecord> {
        let db_path = rundb::path(run_dir);
        let mut db = RunDb::open(&db_path).await?;
        if db.attr("id").await?.as_deref() != Some(id) {
            db.put_attrs(&[("id".to_string(), id.to_string())]).await?;
        }
        db.close().await;
        let (attrs, flags, summaries) = rundb::read(&db_path, |r| Ok((r.attrs()?, r.flags()?, r.summaries()?))).await?;
        let get = |name: &str| {
            attrs
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let status = Status::parse(&get("status")).filter(|s| !s.is_active());
        let (status, reason) = match status {
            Some(status) => (status, get("reason")),
            None => (Status::Failed, "imported without an end status".to_string()),
        };
        let record = RunRecord {
            id: id.to_string(),
            project_dir: match project {
                Some((dir, _)) => dir.to_string_lossy().into_owned(),
                None => get("project"),
            },
            project_name: match project {
                Some((_, name)) => name.to_string(),
                None => get("project_name"),
            },
            model: get("model"),
            op: get("op"),
            status,
            created_ms: attr_i64(&attrs, "created").unwrap_or(0),
            started_ms: attr_i64(&attrs, "started"),
            stopped_ms: attr_i64(&attrs, "stopped"),
            exit_status: attr_i64(&attrs, "exit_status").map(|c| c as i32),
            run_dir: run_dir.to_path_buf(),
            label: get("label"),
            pid: None,
            pid_start: None,
            reason,
            source_run: get("source_run"),
        };
        let tags: Vec<String> = serde_json::from_str(&get("tags")).unwrap_or_default();
        self.inner.index.insert_run(&record, &flags).await?;
        self.inner.index.put_summaries(id, &summaries).await?;
        if !tags.is_empty() {
            self.inner.index.set_tags(id, &tags).await?;
        }
        Ok(record)
    }
}

fn attr_i64(attrs: &[(String, String)], name: &str) -> Option<i64> {
    attrs
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| v.trim().parse::<i64>().ok())
}

fn is_archive(path: &Path) -> bool {
    let name = path.to_string_lossy();
    name.ends_with(".tar.gz") || name.ends_with(".tgz")
}

/// Run folders in `src`: itself when it is one, else its children that are.
fn find_run_folders(src: &Path) -> Result<Vec<PathBuf>> {
    if rundb::path(src).is_file() {
        return Ok(vec![src.to_path_buf()]);
    }
    let entries = std::fs::read_dir(src).map_err(|e| Error::io("cannot read", src, e))?;
    let mut folders: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| rundb::path(p).is_file())
        .collect();
    folders.sort();
    if folders.is_empty() {
        return Err(Error::NotFound(format!(
            "no runs in {} (expected a run folder with guild.d/run.db, a folder of them, or a .tar.gz made by `guild export`)",
            src.display()
        )));
    }
    Ok(folders)
}

/// run.db files the copy leaves out: the database is written whole by VACUUM INTO.
fn is_live_db(rel: &Path) -> bool {
    let Some(name) = rel.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    rel.parent() == Some(Path::new("guild.d"))
        && matches!(name, "run.db" | "run.db-wal" | "run.db-shm" | "run.db-journal")
}

/// A consistent one-file copy of a run's database (WAL folded in).
fn snapshot_db(src: &Path, dest: &Path) -> Result<()> {
    Reader::open(src)?.copy_to(dest)
}

/// Copies each run to `DEST/.<id>.partial`, then renames it to `DEST/<id>`: a run in
/// `DEST` under its id is always whole.
fn export_folder(runs: &[(String, PathBuf)], dest: &Path, data_dir: &Path) -> Result<()> {
    for (id, _) in runs {
        let target = dest.join(id);
        if target.exists() {
            return Err(Error::Conflict(format!(
                "{} exists; nothing was exported (remove it or export elsewhere)",
                target.display()
            )));
        }
    }
    std::fs::create_dir_all(dest).map_err(|e| Error::io("cannot create", dest, e))?;
    let partials: Vec<PathBuf> = runs.iter().map(|(id, _)| dest.join(format!(".{id}.partial"))).collect();
    with_partials(data_dir, &partials, || {
        for ((id, run_dir), partial) in runs.iter().zip(&partials) {
            remove_any(partial).map_err(|e| Error::io("cannot remove", partial, e))?;
            copy_tree(run_dir, partial, &is_live_db)?;
            snapshot_db(&rundb::path(run_dir), &rundb::path(partial))?;
            let target = dest.join(id);
            std::fs::rename(partial, &target).map_err(|e| Error::io("cannot write", &target, e))?;
        }
        Ok(())
    })
}

/// Runs an export's `write` with its partial files recorded in the journal first (a
/// daemon killed meanwhile has the next one remove them), and removes what is left of
/// them after, however the write ended.
fn with_partials(data_dir: &Path, partials: &[PathBuf], write: impl FnOnce() -> Result<()>) -> Result<()> {
    let record = Record::begin(
        data_dir,
        Intent::Export {
            partials: partials.to_vec(),
        },
    )?;
    let written = write();
    for partial in partials {
        let _ = remove_any(partial);
    }
    record.done();
    written
}

/// Writes `DEST.partial` (with each run.db snapshot beside it), then renames it to DEST.
fn export_archive(runs: &[(String, PathBuf)], dest: &Path, data_dir: &Path) -> Result<()> {
    if dest.exists() {
        return Err(Error::Conflict(format!(
            "{} exists; nothing was exported (remove it or name another file)",
            dest.display()
        )));
    }
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io("cannot create", parent, e))?;
    }
    let partial = PathBuf::from(format!("{}.partial", dest.display()));
    let snapshot_of = |id: &str| PathBuf::from(format!("{}.{id}.db", partial.display()));
    let mut partials = vec![partial.clone()];
    for (id, _) in runs {
        // VACUUM INTO writes a rollback journal beside its file while it works.
        let snapshot = snapshot_of(id);
        partials.push(PathBuf::from(format!("{}-journal", snapshot.display())));
        partials.push(snapshot);
    }
    with_partials(data_dir, &partials, || {
        let file = File::create(&partial).map_err(|e| Error::io("cannot create", &partial, e))?;
        let gz = flate2::write::GzEncoder::new(BufWriter::new(file), flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        tar.follow_symlinks(false);
        let io = |e| Error::io("cannot write", &partial, e);
        for (id, run_dir) in runs {
            let snapshot = snapshot_of(id);
            let _ = std::fs::remove_file(&snapshot);
            snapshot_db(&rundb::path(run_dir), &snapshot)?;
            let files = walk(run_dir)?;
            tar.append_dir(id, run_dir).map_err(io)?;
            for rel in files {
                if is_live_db(&rel) {
                    continue;
                }
                tar.append_path_with_name(run_dir.join(&rel), Path::new(id).join(&rel))
                    .map_err(io)?;
            }
            let appended = tar.append_path_with_name(&snapshot, Path::new(id).join("guild.d").join("run.db"));
            let _ = std::fs::remove_file(&snapshot);
            appended.map_err(io)?;
        }
        let gz = tar.into_inner().map_err(io)?;
        let writer = gz.finish().map_err(io)?;
        writer
            .into_inner()
            .map_err(|e| io(e.into_error()))?
            .sync_all()
            .map_err(io)?;
        std::fs::rename(&partial, dest).map_err(|e| Error::io("cannot write", dest, e))
    })
}
