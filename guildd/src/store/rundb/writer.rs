//! A run's one writer (`RunDb`): the connection its task commits through, opened on
//! first use, with run.db's schema brought up to date, name/value writes (attrs, flags,
//! event summaries), the WAL copied back on a thread of its own while commits go on, and
//! a close that leaves nothing for a reader to wait on. New run.dbs are copies of a
//! migrated template.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};

use super::commit::{self, Committed};
use super::migrate;
use crate::error::{Error, Result};
use crate::samples::Batch;
use crate::store::sqlite;

/// run.db's page size (for a new file; SQLite's default is 4096): appending a million
/// samples splits and allocates half as many pages (`bench/ingest.sh`: 0.86 -> 0.64-0.84
/// s; 16 KiB pages measured 0.54-0.65 s on a quieter machine, within this bench's
/// noise). An empty run.db is 17 pages, 136 KiB at this size (272 KiB at 16 KiB), which a
/// sweep of thousands of small runs pays for each run.
const PAGE_SIZE: u32 = 8192;

pub struct RunDb {
    path: PathBuf,
    /// What is committed (key ids, cursors, samples not yet in a block): loaded when
    /// run.db is opened, moved on by each commit.
    committed: Committed,
    /// The connection every write goes through (rusqlite: sqlx costs microseconds per
    /// bound row, a large share of ingesting a million samples). Opened at the first
    /// write after a failed one.
    writer: Option<Writer>,
}

impl RunDb {
    /// Creates a new run's run.db as a copy of a migrated, empty one kept in `dir` (made
    /// on first use, named after the last migration): running the migrations took about
    /// 15 ms of every run's start, a copy takes well under one. Falls back to migrating
    /// when the copy cannot be made or opened.
    pub async fn create(path: &Path, dir: &Path) -> Result<RunDb> {
        let template = dir.join(format!("run-template-{}-{PAGE_SIZE}.db", migrate::last_version()));
        if !template.is_file() {
            // Made aside, then renamed: a template is whole or absent.
            let tmp = dir.join(format!(
                ".run-template-{}-{}.db",
                std::process::id(),
                guild_proto::time::now_ms()
            ));
            if let Ok(db) = RunDb::open(&tmp).await {
                db.close().await;
                let _ = std::fs::rename(&tmp, &template);
            }
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", tmp.display()));
            }
        }
        if std::fs::copy(&template, path).is_ok() {
            match RunDb::from_template(path) {
                Ok(db) => return Ok(db),
                Err(err) => {
                    // Made again by the next run.
                    tracing::warn!("{}: {err}; migrating a fresh run.db instead", template.display());
                    let _ = std::fs::remove_file(&template);
                }
            }
        }
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        RunDb::open(path).await
    }

    /// A fresh copy of the template: migrated and empty, so nothing is read back; only
    /// the writer is opened (and the copy checked to be a run.db of the last migration).
    fn from_template(path: &Path) -> Result<RunDb> {
        let mut db = RunDb {
            path: path.to_path_buf(),
            committed: Committed::default(),
            writer: None,
        };
        let tables: i64 = db.with_writer(|conn| {
            conn.query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('series_block', 'attr', 'flag')",
                [],
                |r| r.get(0),
            )
        })?;
        if tables != 3 {
            return Err(Error::Invalid(format!(
                "{}: not a run.db of this version",
                path.display()
            )));
        }
        Ok(db)
    }

    /// Opens (or creates) a run's database, brings its schema up to date and reads what
    /// is committed.
    pub async fn open(path: &Path) -> Result<RunDb> {
        in_place(|| {
            let mut writer = Writer::open_with(path, WRITE_FLAGS.union(rusqlite::OpenFlags::SQLITE_OPEN_CREATE))
                .map_err(sqlite(path))?;
            migrate::run(&mut writer.conn, path)?;
            let committed = Committed::load(&writer.conn, path)?;
            Ok(RunDb {
                path: path.to_path_buf(),
                committed,
                writer: Some(writer),
            })
        })
    }

    pub fn last_seq(&self) -> i64 {
        self.committed.last_seq
    }

    /// The seq of the last committed media item: the cursor WatchMedia follows.
    pub fn last_media(&self) -> i64 {
        self.committed.last_media
    }

    /// The rowid of the last committed sample: the cursor WatchSeries follows.
    pub fn last_sample(&self) -> i64 {
        self.committed.last_sample
    }

    /// Sets attrs (replacing those of the same names), in one transaction.
    pub async fn put_attrs(&mut self, attrs: &[(String, String)]) -> Result<()> {
        self.put_pairs("attr", attrs)
    }

    /// Sets flags (replacing those of the same names), in one transaction.
    pub async fn put_flags(&mut self, flags: &[(String, String)]) -> Result<()> {
        self.put_pairs("flag", flags)
    }

    /// Writes name/value pairs: synchronous SQLite calls of well under a millisecond,
    /// where a round trip to another connection's thread was several times that on every
    /// run's start and end.
    fn put_pairs(&mut self, table: &'static str, pairs: &[(String, String)]) -> Result<()> {
        if pairs.is_empty() {
            return Ok(());
        }
        self.with_writer(|conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            {
                let mut insert =
                    tx.prepare(&format!("INSERT OR REPLACE INTO {table} (name, value) VALUES (?1, ?2)"))?;
                for (name, value) in pairs {
                    insert.execute((name, value))?;
                }
            }
            tx.commit()
        })
    }

    /// Replaces the counts of non-scalar event summaries: (key, kind, count).
    pub async fn put_event_summaries(&mut self, rows: &[(String, String, u64)]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        self.with_writer(|conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            {
                let mut insert =
                    tx.prepare("INSERT OR REPLACE INTO event_summary (key, kind, count) VALUES (?1, ?2, ?3)")?;
                for (key, kind, count) in rows {
                    insert.execute((key, kind, *count as i64))?;
                }
            }
            tx.commit()
        })
    }

    /// One attr (the few a run's task reads back when it adopts a run).
    pub async fn attr(&mut self, name: &str) -> Result<Option<String>> {
        use rusqlite::OptionalExtension;
        self.with_writer(|conn| {
            conn.query_row("SELECT value FROM attr WHERE name = ?1", [name], |r| r.get(0))
                .optional()
        })
    }

    /// How far each captured file has been read, as committed.
    pub async fn offsets(&mut self) -> Result<HashMap<String, u64>> {
        self.with_writer(|conn| {
            let mut stmt = conn.prepare("SELECT file, offset FROM tail_offset")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64)))?;
            rows.collect()
        })
    }

    /// Runs `work` on the writing connection (opened on first use), in place (see
    /// [`in_place`]). A failure closes the connection: the next write opens another.
    fn with_writer<T>(&mut self, work: impl FnOnce(&mut rusqlite::Connection) -> rusqlite::Result<T>) -> Result<T> {
        let result = in_place(|| {
            let path = &self.path;
            let writer = Writer::opened(&mut self.writer, path)?;
            let done = work(&mut writer.conn)?;
            writer.after_commit(path);
            Ok(done)
        });
        if result.is_err() {
            self.discard_writer();
        }
        result.map_err(sqlite(&self.path))
    }

    /// Writes a batch in one transaction (see `commit`); afterwards `last_seq` and
    /// `last_sample` say what is committed. The work is synchronous SQLite calls, run in
    /// place.
    ///
    /// A commit that fails (a full disk) changes nothing: its transaction is rolled back,
    /// the keys it added are forgotten, and the writer is closed (a transaction SQLite
    /// could not roll back would refuse every later BEGIN), so the same batch can be
    /// committed again once there is room.
    pub async fn commit(&mut self, batch: &Batch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut added = Vec::new();
        let result = in_place(|| {
            let path = &self.path;
            let writer = Writer::opened(&mut self.writer, path).map_err(sqlite(path))?;
            commit::commit(&mut writer.conn, path, &mut self.committed, batch, &mut added)?;
            writer.after_commit(path);
            Ok(())
        });
        if result.is_err() {
            // Whatever was rolled back, the next commit starts again from run.db.
            for key in &added {
                self.committed.key_ids.remove(key);
            }
            self.committed.pending = None;
            self.discard_writer();
        }
        result
    }

    /// Closes the writer after a failed write (the next write opens another), without
    /// SQLite's checkpoint on close: that is `close`'s work, and a full disk refuses it.
    fn discard_writer(&mut self) {
        if let Some(writer) = self.writer.take() {
            let _ = writer
                .conn
                .set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true);
        }
    }

    /// Closes the writer, on a blocking thread: it first copies the WAL back into run.db
    /// and empties it (syncing both), then closes without SQLite's close-time checkpoint:
    /// that one takes an exclusive lock on run.db, and a reader that opened then, waiting
    /// for nothing (`sqlite3 run.db` the moment `guild train` returns), was told the
    /// database is locked. So the end of a run can be told before its run.db is closed,
    /// and the syncs are off that path. run.db-wal stays, empty (or, if a reader held the
    /// WAL, with committed pages SQLite reads on).
    pub async fn close(self) {
        if let Some(writer) = self.writer {
            let _ = tokio::task::spawn_blocking(move || {
                let mut writer = writer;
                // TRUNCATE is refused while another checkpoint runs.
                writer.join_checkpoint();
                let conn = &writer.conn;
                let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
                let _ = conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true);
                drop(writer);
            })
            .await;
        }
    }
}

/// WAL pages after which a checkpoint copies them back into run.db, on another thread
/// and connection: checkpoints on the writer (SQLite's own, every 1,000 pages) synced
/// both files in the middle of commits, a third of ingesting a million samples
/// (`bench/ingest.sh`: 0.52 -> 0.32 s median).
const CHECKPOINT_PAGES: i32 = 1000;
/// A checkpoint copies back what was committed when it began; under a steady stream of
/// commits the WAL is never all copied back, so it never starts over, and grows. Past
/// this length the writer checkpoints itself (copying what is left, and the WAL starts
/// over at its next commit): 64 MiB at 8 KiB pages, more than a burst of a million
/// samples writes (at 32 MiB, the writer's own checkpoint took `bench/ingest.sh` from
/// 0.33 to 0.44 s).
const CHECKPOINT_PAGES_MAX: i32 = 8 * CHECKPOINT_PAGES;
/// The checkpoint thread's nice value.
const CHECKPOINT_NICE: libc::c_int = 10;

/// The writing connection, with the WAL's length in pages as SQLite reports it after
/// each commit.
struct Writer {
    /// Declared first, so closed before `wal_pages`, which its WAL hook writes to.
    conn: rusqlite::Connection,
    wal_pages: Box<AtomicI32>,
    /// The last checkpoint started on its own thread.
    checkpoint: Option<std::thread::JoinHandle<()>>,
}

/// Runs synchronous SQLite work in place: `block_in_place` on a multi-threaded runtime,
/// so the worker's other tasks move elsewhere meanwhile; directly otherwise.
fn in_place<T>(work: impl FnOnce() -> T) -> T {
    let multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi_thread {
        tokio::task::block_in_place(work)
    } else {
        work()
    }
}

/// How the writer and the checkpoint connections open run.db.
const WRITE_FLAGS: rusqlite::OpenFlags =
    rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE.union(rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX);

/// sqlite3_wal_hook callback: records the WAL's length after a commit.
unsafe extern "C" fn note_wal_pages(
    pages_out: *mut std::ffi::c_void,
    _db: *mut rusqlite::ffi::sqlite3,
    _name: *const std::ffi::c_char,
    pages: std::ffi::c_int,
) -> std::ffi::c_int {
    // SAFETY: `pages_out` is the Writer's boxed counter, which outlives its connection.
    unsafe { (*(pages_out as *const AtomicI32)).store(pages, Ordering::Relaxed) };
    rusqlite::ffi::SQLITE_OK
}

impl Writer {
    /// Opens an existing run.db: WAL, NORMAL syncs, a 10 s busy timeout (the settings
    /// index.db's connections have too).
    fn open(path: &Path) -> rusqlite::Result<Writer> {
        Writer::open_with(path, WRITE_FLAGS)
    }

    fn open_with(path: &Path, flags: rusqlite::OpenFlags) -> rusqlite::Result<Writer> {
        let conn = rusqlite::Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // The page size applies to a new file only (before WAL is set). The page cache
        // stays at SQLite's default (2 MiB): each live run has one, and 16 MiB each put 20
        // busy runs at 300 MiB (tests/e2e/load.rs).
        conn.execute_batch(&format!(
            "PRAGMA page_size = {PAGE_SIZE}; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
             PRAGMA foreign_keys = OFF; PRAGMA temp_store = MEMORY;"
        ))?;
        let wal_pages = Box::new(AtomicI32::new(0));
        // Replaces SQLite's own checkpoints after commits (which use this same hook).
        // SAFETY: a valid handle; the counter is boxed (a fixed address) and dropped
        // after the connection (field order), so the hook never sees it freed.
        unsafe {
            rusqlite::ffi::sqlite3_wal_hook(
                conn.handle(),
                Some(note_wal_pages),
                (&*wal_pages as *const AtomicI32).cast_mut().cast(),
            );
        }
        Ok(Writer {
            conn,
            wal_pages,
            checkpoint: None,
        })
    }

    /// The writer in `slot`, opened there on first use.
    fn opened<'a>(slot: &'a mut Option<Writer>, path: &Path) -> rusqlite::Result<&'a mut Writer> {
        if slot.is_none() {
            *slot = Some(Writer::open(path)?);
        }
        match slot.as_mut() {
            Some(writer) => Ok(writer),
            None => unreachable!("opened above"),
        }
    }

    /// After a commit: once the WAL holds CHECKPOINT_PAGES, a PASSIVE checkpoint on a
    /// blocking thread of its own connection copies them back (commits go on meanwhile).
    fn after_commit(&mut self, path: &Path) {
        let pages = self.wal_pages.load(Ordering::Relaxed);
        let running = self.checkpoint.as_ref().is_some_and(|h| !h.is_finished());
        if pages >= CHECKPOINT_PAGES_MAX {
            // After the one under way, if any (a second checkpointer would be refused).
            self.join_checkpoint();
            let _ = self.conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
            return;
        }
        if pages < CHECKPOINT_PAGES || running {
            return;
        }
        let db_path = path.to_path_buf();
        let checkpoint = move || {
            // Below the runs' priority: on a busy machine the op being recorded goes first.
            crate::process::lower_thread_priority(CHECKPOINT_NICE);
            if let Ok(conn) = rusqlite::Connection::open_with_flags(&db_path, WRITE_FLAGS) {
                // This connection never checkpoints on close (see `RunDb::close`).
                let _ = conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true);
                let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
            }
        };
        // A thread of its own (not the blocking pool, whose threads would keep the
        // lower priority for other work): one every few MiB of WAL at most.
        match std::thread::Builder::new()
            .name("guild-checkpoint".into())
            .spawn(checkpoint)
        {
            Ok(handle) => self.checkpoint = Some(handle),
            Err(err) => tracing::warn!("{}: cannot start a checkpoint: {err}", path.display()),
        }
    }

    /// Waits for the checkpoint under way, if any.
    fn join_checkpoint(&mut self) {
        if let Some(handle) = self.checkpoint.take() {
            let _ = handle.join();
        }
    }
}

/// Takes the blocks that are due out of `pending`: every full block, and all of a key's

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples::{OutputRow, SampleRow};

    #[tokio::test]
    async fn new_run_dbs_are_copies_of_a_migrated_template() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let last = migrate::RUN_MIGRATOR.iter().map(|m| m.version).max().unwrap();
        let template = dir.join(format!("run-template-{last}-{PAGE_SIZE}.db"));
        // The second run copies the first's template; a corrupt template is replaced.
        for (i, corrupt) in [(1, false), (2, false), (3, true), (4, false)] {
            if corrupt {
                std::fs::write(&template, b"not a database").unwrap();
            }
            let path = dir.join(format!("run{i}.db"));
            let mut db = RunDb::create(&path, dir).await.unwrap();
            db.put_flags(&[("lr".to_string(), "0.1".to_string())]).await.unwrap();
            assert_eq!(db.attr("missing").await.unwrap(), None);
            db.close().await;
            assert_eq!(template.is_file(), !corrupt, "run{i}.db");
            let flags = super::super::Reader::open(&path).unwrap().flags().unwrap();
            assert_eq!(flags, [("lr".to_string(), "0.1".to_string())], "run{i}.db");
        }
        let leftovers: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".run-template"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[tokio::test]
    async fn a_long_wal_is_checkpointed_beside_the_writer_and_restarts() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let path = dir.join("run.db");
        let mut db = RunDb::open(&path).await.unwrap();
        let lines = |n: usize| Batch {
            output: (0..n)
                .map(|i| OutputRow {
                    time: i as i64,
                    stream: "stdout",
                    line: format!("line {i} {}", "x".repeat(100)),
                })
                .collect(),
            ..Batch::default()
        };
        // More than CHECKPOINT_PAGES of WAL in a few commits.
        let mut pages = 0;
        for _ in 0..20 {
            db.commit(&lines(5_000)).await.unwrap();
            pages = db.writer.as_ref().unwrap().wal_pages.load(Ordering::Relaxed);
            if pages >= CHECKPOINT_PAGES {
                break;
            }
        }
        assert!(pages >= CHECKPOINT_PAGES, "{pages}");
        while db
            .writer
            .as_ref()
            .unwrap()
            .checkpoint
            .as_ref()
            .is_some_and(|h| !h.is_finished())
        {
            tokio::task::yield_now().await;
        }
        // Everything was copied back, so the next commit writes the WAL from its start.
        db.commit(&lines(10)).await.unwrap();
        let pages = db.writer.as_ref().unwrap().wal_pages.load(Ordering::Relaxed);
        assert!(pages < 10, "{pages}");
        // Closing right after a checkpoint started (it waits for it) leaves the WAL empty.
        db.commit(&lines(80_000)).await.unwrap();
        assert!(db.writer.as_ref().unwrap().checkpoint.is_some());
        db.close().await;
        assert_eq!(std::fs::metadata(dir.join("run.db-wal")).map_or(0, |m| m.len()), 0);
        let conn = rusqlite::Connection::open(&path).unwrap();
        let count: i64 = conn.query_row("SELECT count(*) FROM output", [], |r| r.get(0)).unwrap();
        assert!(count >= 85_010, "{count}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_batch_that_failed_on_a_full_disk_commits_once_when_there_is_room() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let Some(_mount) = crate::testing::Tmpfs::mount(dir, "2m") else {
            return;
        };
        let path = dir.join("run.db");
        let mut db = RunDb::open(&path).await.unwrap();
        let batch = |first: usize, n: usize| Batch {
            output: (first..first + n)
                .map(|i| OutputRow {
                    time: i as i64,
                    stream: "stdout",
                    line: format!("line {i} {}", "x".repeat(200)),
                })
                .collect(),
            // New keys in every batch: a rolled-back batch must not leave their ids behind.
            samples: (first..first + n)
                .map(|i| SampleRow {
                    key: format!("k{}", i / 100).into(),
                    step: Some(i as i64),
                    time: i as i64,
                    value: i as f64,
                })
                .collect(),
            offsets: vec![("stdout.log".into(), (first + n) as u64)],
            ..Batch::default()
        };
        db.commit(&batch(0, 1000)).await.unwrap();
        let fill = dir.join("fill");
        crate::testing::fill(&fill);
        let (mut next, mut failures) = (1000, 0);
        while failures < 3 {
            let b = batch(next, 1000);
            match db.commit(&b).await {
                Ok(()) => next += 1000,
                Err(_) => failures += 1,
            }
            assert!(next < 100_000, "the disk never filled");
        }
        std::fs::remove_file(&fill).unwrap();
        // The batch that failed, again: it lands once, with its keys.
        db.commit(&batch(next, 1000)).await.unwrap();
        next += 1000;
        db.put_attrs(&[("status".into(), "completed".into())]).await.unwrap();
        db.close().await;
        let conn = rusqlite::Connection::open(&path).unwrap();
        let one = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
        assert_eq!(one("SELECT count(*) FROM output"), next as i64);
        assert_eq!(one("SELECT count(DISTINCT line) FROM output"), next as i64);
        assert_eq!(one("SELECT count(*) FROM scalar"), next as i64);
        assert_eq!(one("SELECT count(*) FROM series_key"), (next / 100) as i64);
        assert_eq!(
            one("SELECT count(*) FROM series s LEFT JOIN series_key k ON k.id = s.key_id WHERE k.id IS NULL"),
            0
        );
        assert_eq!(
            one("SELECT offset FROM tail_offset WHERE file = 'stdout.log'"),
            next as i64
        );
    }
}
