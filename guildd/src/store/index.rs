//! `index.db`: one row per run with its status and times, its flags, and a per-key
//! summary of its series. Listing and comparing read only this file.

use std::path::{Path, PathBuf};

use sqlx::sqlite::{SqlitePool, SqlitePoolOptions, SqliteRow};
use sqlx::{QueryBuilder, Row};

use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Pending,
    /// Waiting in the queue for its GPUs or a free slot (`queue`), or a Slurm job that
    /// Slurm holds pending.
    Queued,
    Running,
    Completed,
    Error,
    Terminated,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Queued => "queued",
            Status::Running => "running",
            Status::Completed => "completed",
            Status::Error => "error",
            Status::Terminated => "terminated",
            Status::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "pending" => Status::Pending,
            "queued" => Status::Queued,
            "running" => Status::Running,
            "completed" => Status::Completed,
            "error" => Status::Error,
            "terminated" => Status::Terminated,
            "failed" => Status::Failed,
            _ => return None,
        })
    }

    pub fn is_active(self) -> bool {
        matches!(self, Status::Pending | Status::Queued | Status::Running)
    }

    pub fn to_proto(self) -> guild_proto::v1::RunStatus {
        use guild_proto::v1::RunStatus as P;
        match self {
            Status::Pending => P::Pending,
            Status::Queued => P::Queued,
            Status::Running => P::Running,
            Status::Completed => P::Completed,
            Status::Error => P::Error,
            Status::Terminated => P::Terminated,
            Status::Failed => P::Failed,
        }
    }
}

/// One run as the index knows it.
#[derive(Clone, Debug)]
pub struct RunRecord {
    pub id: String,
    pub project_dir: String,
    pub project_name: String,
    pub model: String,
    pub op: String,
    pub status: Status,
    pub created_ms: i64,
    pub started_ms: Option<i64>,
    pub stopped_ms: Option<i64>,
    pub exit_status: Option<i32>,
    pub run_dir: PathBuf,
    pub label: String,
    pub pid: Option<u32>,
    pub pid_start: Option<u64>,
    pub reason: String,
    pub source_run: String,
}

impl RunRecord {
    pub fn to_proto(&self) -> guild_proto::v1::Run {
        guild_proto::v1::Run {
            id: self.id.clone(),
            project_dir: self.project_dir.clone(),
            project_name: self.project_name.clone(),
            model: self.model.clone(),
            op: self.op.clone(),
            status: self.status.to_proto() as i32,
            created_ms: self.created_ms,
            started_ms: self.started_ms.unwrap_or(0),
            stopped_ms: self.stopped_ms.unwrap_or(0),
            exit_status: self.exit_status,
            run_dir: self.run_dir.to_string_lossy().into_owned(),
            label: self.label.clone(),
            pid: self.pid.unwrap_or(0),
            reason: self.reason.clone(),
            source_run: self.source_run.clone(),
            tags: Vec::new(),
            queue: None,
            sweep: String::new(),
            trial: 0,
        }
    }

    pub(crate) fn from_row(row: &SqliteRow) -> Result<Self, sqlx::Error> {
        let status: String = row.try_get("status")?;
        Ok(RunRecord {
            id: row.try_get("id")?,
            project_dir: row.try_get("project_dir")?,
            project_name: row.try_get("project_name")?,
            model: row.try_get("model")?,
            op: row.try_get("op")?,
            status: Status::parse(&status).unwrap_or(Status::Failed),
            created_ms: row.try_get("created_ms")?,
            started_ms: row.try_get("started_ms")?,
            stopped_ms: row.try_get("stopped_ms")?,
            exit_status: row.try_get("exit_status")?,
            run_dir: PathBuf::from(row.try_get::<String, _>("run_dir")?),
            label: row.try_get("label")?,
            pid: row.try_get::<Option<i64>, _>("pid")?.map(|p| p as u32),
            pid_start: row.try_get::<Option<i64>, _>("pid_start")?.map(|p| p as u64),
            reason: row.try_get("reason")?,
            source_run: row.try_get("source_run")?,
        })
    }
}

/// Per-key summary of a run's series, as kept in the index.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesSummary {
    pub key: String,
    pub last: f64,
    pub min: f64,
    pub max: f64,
    pub count: i64,
    pub last_step: Option<i64>,
    pub last_time: i64,
}

impl SeriesSummary {
    pub fn to_proto(&self) -> guild_proto::v1::SeriesKey {
        guild_proto::v1::SeriesKey {
            key: self.key.clone(),
            last: self.last,
            min: self.min,
            max: self.max,
            count: self.count,
            last_step: self.last_step.unwrap_or(0),
            last_time_ms: self.last_time,
        }
    }
}

pub(crate) const RUN_COLUMNS: &str = "id, project_dir, project_name, model, op, status, created_ms, started_ms, \
     stopped_ms, exit_status, run_dir, label, pid, pid_start, reason, source_run";

#[derive(Clone)]
pub struct Index {
    pub(super) path: PathBuf,
    /// One connection: the single writer.
    pub(super) write: SqlitePool,
    pub(super) read: SqlitePool,
}

/// Whether the writer, handed back after a write, is outside any transaction, as both
/// sqlx and SQLite see it. A COMMIT that fails (a full disk) makes SQLite roll the
/// transaction back, but sqlx still counts it as open: its ROLLBACK then fails, and its
/// next BEGIN becomes a SAVEPOINT inside a transaction that never commits, so nothing
/// reached index.db until a restart. Such a connection is closed instead (SQLite rolls
/// back whatever it held), and the next write opens a fresh one.
async fn writer_is_clean(conn: &mut sqlx::SqliteConnection) -> Result<bool, sqlx::Error> {
    use sqlx::Connection;
    let sqlx_clean = !conn.is_in_transaction();
    let mut handle = conn.lock_handle().await?;
    // SAFETY: the handle is locked for this call; sqlite3_get_autocommit only reads.
    let sqlite_clean = unsafe { rusqlite::ffi::sqlite3_get_autocommit(handle.as_raw_handle().as_ptr()) } != 0;
    if !(sqlx_clean && sqlite_clean) {
        tracing::warn!("index.db: a failed write left its connection inside a transaction; opening a new one");
    }
    Ok(sqlx_clean && sqlite_clean)
}

impl Index {
    pub async fn open(path: &Path) -> Result<Index> {
        let err = Error::db(path);
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .after_release(|conn, _| Box::pin(writer_is_clean(conn)))
            .connect_with(super::options(path))
            .await
            .map_err(err)?;
        super::INDEX_MIGRATOR
            .run(&write)
            .await
            .map_err(|source| Error::Migrate {
                path: path.to_path_buf(),
                source,
            })?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(super::options(path).read_only(true))
            .await
            .map_err(Error::db(path))?;
        Ok(Index {
            path: path.to_path_buf(),
            write,
            read,
        })
    }

    pub(super) fn err(&self) -> impl FnOnce(sqlx::Error) -> Error + use<> {
        Error::db(&self.path)
    }

    pub async fn insert_run(&self, run: &RunRecord, flags: &[(String, String)]) -> Result<()> {
        let mut tx = self.write.begin().await.map_err(self.err())?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO run ({RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )))
        .bind(&run.id)
        .bind(&run.project_dir)
        .bind(&run.project_name)
        .bind(&run.model)
        .bind(&run.op)
        .bind(run.status.as_str())
        .bind(run.created_ms)
        .bind(run.started_ms)
        .bind(run.stopped_ms)
        .bind(run.exit_status)
        .bind(run.run_dir.to_string_lossy())
        .bind(&run.label)
        .bind(run.pid.map(i64::from))
        .bind(run.pid_start.map(|p| p as i64))
        .bind(&run.reason)
        .bind(&run.source_run)
        .execute(&mut *tx)
        .await
        .map_err(self.err())?;
        if !flags.is_empty() {
            let mut insert = QueryBuilder::new("INSERT OR REPLACE INTO run_flag (run_id, name, value) ");
            insert.push_values(flags, |mut row, (name, value)| {
                row.push_bind(&run.id).push_bind(name).push_bind(value);
            });
            insert.build().execute(&mut *tx).await.map_err(self.err())?;
        }
        tx.commit().await.map_err(self.err())
    }

    /// Writes the mutable part of a run: status, times, exit status, pid, reason. The
    /// label is written at insert and by [`Index::set_label`] only, so a run's task never
    /// undoes a label set while it runs.
    pub async fn update_run(&self, run: &RunRecord) -> Result<()> {
        sqlx::query(
            "UPDATE run SET status = ?, started_ms = ?, stopped_ms = ?, exit_status = ?, pid = ?, \
             pid_start = ?, reason = ? WHERE id = ?",
        )
        .bind(run.status.as_str())
        .bind(run.started_ms)
        .bind(run.stopped_ms)
        .bind(run.exit_status)
        .bind(run.pid.map(i64::from))
        .bind(run.pid_start.map(|p| p as i64))
        .bind(&run.reason)
        .bind(&run.id)
        .execute(&self.write)
        .await
        .map_err(self.err())?;
        // An ended run holds nothing in the queue any more.
        if !run.status.is_active() {
            self.delete_queue(&run.id).await?;
        }
        Ok(())
    }

    /// Newest first. `limit` 0 means all.
    pub async fn list_runs(&self, project_dir: Option<&str>, limit: u32, offset: u32) -> Result<(Vec<RunRecord>, u32)> {
        let (page, total) = self.list_page(project_dir, limit, offset).await?;
        Ok((page.into_iter().map(|(run, _)| run).collect(), total))
    }

    /// A page of the listing with each run's tags (see `select::list_page`): read through
    /// rusqlite on a blocking thread, since a listing can be every run.
    pub async fn list_page(
        &self,
        project_dir: Option<&str>,
        limit: u32,
        offset: u32,
    ) -> Result<super::select::RunPage> {
        let path = self.path.clone();
        let project_dir = project_dir.map(str::to_string);
        tokio::task::spawn_blocking(move || super::select::list_page(&path, project_dir.as_deref(), limit, offset))
            .await
            .map_err(|e| Error::Invalid(format!("listing runs failed: {e}")))?
    }

    /// Ids that start with `prefix` and that a new run may not take: those of runs, of
    /// deleted runs in the trash, and of purged runs.
    pub async fn ids_with_prefix(&self, prefix: &str) -> Result<std::collections::HashSet<String>> {
        // Ranges on the ids' unique indexes; U+10FFFF sorts after any character that can
        // follow the prefix.
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM run WHERE id >= ?1 AND id < ?1 || char(1114111) \
             UNION ALL SELECT id FROM run_trash WHERE id >= ?1 AND id < ?1 || char(1114111) \
             UNION ALL SELECT id FROM purged_run WHERE id >= ?1 AND id < ?1 || char(1114111)",
        )
        .bind(prefix)
        .fetch_all(&self.read)
        .await
        .map_err(self.err())?;
        Ok(ids.into_iter().collect())
    }

    pub async fn get_run(&self, id: &str) -> Result<Option<RunRecord>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM run WHERE id = ?"
        )))
        .bind(id)
        .fetch_optional(&self.read)
        .await
        .map_err(self.err())?;
        row.as_ref().map(RunRecord::from_row).transpose().map_err(self.err())
    }

    /// Finds a run by id, unique id prefix, or index (1 = latest; numbers under 8 digits).
    pub async fn resolve(&self, selector: &str) -> Result<RunRecord> {
        let selector = selector.trim();
        if selector.is_empty() {
            return Err(Error::Invalid("run: expected a run id, id prefix or index".into()));
        }
        if selector.len() < 8 && selector.bytes().all(|b| b.is_ascii_digit()) {
            let index: i64 = selector.parse().unwrap_or(0);
            if index < 1 {
                return Err(Error::Invalid(format!(
                    "run index {selector}: indexes start at 1 (the latest run)"
                )));
            }
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {RUN_COLUMNS} FROM run ORDER BY seq DESC LIMIT 1 OFFSET ?"
            )))
            .bind(index - 1)
            .fetch_optional(&self.read)
            .await
            .map_err(self.err())?;
            return match row {
                Some(row) => RunRecord::from_row(&row).map_err(self.err()),
                None => Err(Error::NotFound(format!("no run at index {index} (see `guild runs`)"))),
            };
        }
        if selector.starts_with('/') {
            return self.resolve_folder(Path::new(selector)).await;
        }
        if selector.contains('/') {
            return Err(Error::Invalid(format!(
                "run \"{selector}\": a run folder must be given as an absolute path (guild makes relative ones absolute)"
            )));
        }
        if let Some(run) = self.get_run(selector).await? {
            return Ok(run);
        }
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM run WHERE substr(id, 1, ?) = ? ORDER BY seq DESC LIMIT 6"
        )))
        .bind(selector.chars().count() as i64)
        .bind(selector)
        .fetch_all(&self.read)
        .await
        .map_err(self.err())?;
        match rows.len() {
            0 => Err(Error::NotFound(format!(
                "no run matches {} (see `guild runs`)",
                crate::error::quote(selector)
            ))),
            1 => RunRecord::from_row(&rows[0]).map_err(self.err()),
            _ => {
                let ids: Vec<String> = rows.iter().filter_map(|r| r.try_get::<String, _>("id").ok()).collect();
                Err(Error::Invalid(format!(
                    "{} matches several runs ({}{}); give more of the id",
                    crate::error::quote(selector),
                    ids.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
                    if ids.len() > 5 { ", ..." } else { "" }
                )))
            }
        }
    }

    /// The run whose folder `dir` is (see `select::position_of_folder`).
    async fn resolve_folder(&self, dir: &Path) -> Result<RunRecord> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM run ORDER BY seq DESC"
        )))
        .fetch_all(&self.read)
        .await
        .map_err(self.err())?;
        let runs = rows
            .iter()
            .map(RunRecord::from_row)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(self.err())?;
        let dir_owned = dir.to_path_buf();
        let refs: Vec<&RunRecord> = runs.iter().collect();
        match super::select::position_of_folder(&refs, &dir_owned) {
            Some(i) => Ok(runs[i].clone()),
            None => Err(Error::NotFound(format!(
                "no run has the folder {} (see `guild runs`)",
                dir.display()
            ))),
        }
    }

    pub async fn active_runs(&self) -> Result<Vec<RunRecord>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM run WHERE status IN ('pending', 'queued', 'running') ORDER BY seq"
        )))
        .fetch_all(&self.read)
        .await
        .map_err(self.err())?;
        rows.iter()
            .map(RunRecord::from_row)
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.err())
    }

    pub async fn run_flags(&self, id: &str) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT name, value FROM run_flag WHERE run_id = ? ORDER BY name")
            .bind(id)
            .fetch_all(&self.read)
            .await
            .map_err(self.err())?;
        rows.iter()
            .map(|r| Ok((r.try_get("name")?, r.try_get("value")?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(self.err())
    }

    /// Replaces the summaries of the given keys (already merged by the caller).
    pub async fn put_summaries(&self, run_id: &str, summaries: &[SeriesSummary]) -> Result<()> {
        if summaries.is_empty() {
            return Ok(());
        }
        let mut tx = self.write.begin().await.map_err(self.err())?;
        for chunk in summaries.chunks(100) {
            let mut insert = QueryBuilder::new(
                "INSERT OR REPLACE INTO run_series (run_id, key, last, min, max, count, last_step, last_time) ",
            );
            insert.push_values(chunk, |mut row, s| {
                row.push_bind(run_id)
                    .push_bind(&s.key)
                    .push_bind(super::sql_value(s.last))
                    .push_bind(super::sql_value(s.min))
                    .push_bind(super::sql_value(s.max))
                    .push_bind(s.count)
                    .push_bind(s.last_step)
                    .push_bind(s.last_time);
            });
            insert.build().execute(&mut *tx).await.map_err(self.err())?;
        }
        tx.commit().await.map_err(self.err())
    }

    pub async fn summaries(&self, run_id: &str) -> Result<Vec<SeriesSummary>> {
        let rows = sqlx::query(
            "SELECT key, last, min, max, count, last_step, last_time FROM run_series WHERE run_id = ? ORDER BY key",
        )
        .bind(run_id)
        .fetch_all(&self.read)
        .await
        .map_err(self.err())?;
        rows.iter()
            .map(|r| {
                Ok(SeriesSummary {
                    key: r.try_get("key")?,
                    last: super::from_sql_value(r.try_get("last")?),
                    min: super::from_sql_value(r.try_get("min")?),
                    max: super::from_sql_value(r.try_get("max")?),
                    count: r.try_get("count")?,
                    last_step: r.try_get("last_step")?,
                    last_time: r.try_get::<Option<i64>, _>("last_time")?.unwrap_or(0),
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(self.err())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> RunRecord {
        RunRecord {
            id: id.into(),
            project_dir: "/p".into(),
            project_name: "p".into(),
            model: "m".into(),
            op: "train".into(),
            status: Status::Running,
            created_ms: 1,
            started_ms: Some(2),
            stopped_ms: None,
            exit_status: None,
            run_dir: "/p/runs/x".into(),
            label: String::new(),
            pid: Some(1),
            pid_start: None,
            reason: String::new(),
            source_run: String::new(),
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn writes_that_fail_on_a_full_disk_leave_the_writer_usable() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let Some(_mount) = crate::testing::Tmpfs::mount(dir, "1m") else {
            return;
        };
        let index = Index::open(&dir.join("index.db")).await.unwrap();
        let mut run = record("a");
        index.insert_run(&run, &[("lr".into(), "0.1".into())]).await.unwrap();
        let fill = dir.join("fill");
        crate::testing::fill(&fill);
        // Each kind of write fails while the disk is full: a plain statement and
        // transactions of several statements.
        let mut failed = 0;
        for i in 0..20 {
            run.reason = format!("attempt {i} {}", "x".repeat(4000));
            failed += index.update_run(&run).await.is_err() as usize;
            let summaries: Vec<SeriesSummary> = (0..200)
                .map(|k| SeriesSummary {
                    key: format!("key{k}-{}", "y".repeat(100)),
                    last: 1.0,
                    min: 0.0,
                    max: 2.0,
                    count: i,
                    last_step: Some(i),
                    last_time: i,
                })
                .collect();
            failed += index.put_summaries("a", &summaries).await.is_err() as usize;
            failed += index.insert_run(&record(&format!("b{i}")), &[]).await.is_err() as usize;
        }
        assert!(failed > 0, "the disk never filled");
        std::fs::remove_file(&fill).unwrap();
        // Space is back: every write lands, and readers see it.
        run.status = Status::Completed;
        run.reason = String::new();
        index.update_run(&run).await.unwrap();
        index.set_label("a", "after").await.unwrap();
        index.insert_run(&record("c"), &[]).await.unwrap();
        let back = index.get_run("a").await.unwrap().unwrap();
        assert_eq!((back.status, back.label.as_str()), (Status::Completed, "after"));
        assert!(index.get_run("c").await.unwrap().is_some());
        index.write.close().await;
        index.read.close().await;
    }
}
