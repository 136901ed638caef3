//! `guild.d/run.db`: one run's attrs, flags, output lines and series samples.
//! The run's own task holds the only writing connection; readers open their own.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use sqlx::sqlite::SqliteConnection;
use sqlx::{Connection, Row};

use crate::error::{Error, Result};
use crate::fxhash::FxHashMap;

pub struct OutputRow {
    pub time: i64,
    pub stream: &'static str,
    pub line: String,
}

#[derive(Clone, Debug)]
pub struct SampleRow {
    /// Shared: a collector makes each key once and hands out clones of it.
    pub key: Arc<str>,
    pub step: Option<i64>,
    pub time: i64,
    pub value: f64,
}

/// One sample of a known key.
#[derive(Clone, Copy, Debug)]
pub struct Point {
    pub step: Option<i64>,
    pub time: i64,
    pub value: f64,
}

/// Samples of one key, in order: how event-file scalars arrive (a million of them cost
/// one key look-up per key and batch, not one per sample).
#[derive(Clone, Debug)]
pub struct KeySamples {
    pub key: Arc<str>,
    pub points: Vec<Point>,
}

/// What one commit writes: lines, samples and how far each captured file has been read.
/// `samples` get rowids first, then `series`, key after key.
#[derive(Default)]
pub struct Batch {
    pub output: Vec<OutputRow>,
    pub samples: Vec<SampleRow>,
    pub series: Vec<KeySamples>,
    pub offsets: Vec<(String, u64)>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.output.is_empty() && self.sample_count() == 0 && self.offsets.is_empty()
    }

    pub fn sample_count(&self) -> usize {
        self.samples.len() + self.series.iter().map(|k| k.points.len()).sum::<usize>()
    }

    /// Adds a later batch's rows after this one's (its offsets, written after these,
    /// win).
    pub fn append(&mut self, later: Batch) {
        self.output.extend(later.output);
        self.samples.extend(later.samples);
        self.series.extend(later.series);
        self.offsets.extend(later.offsets);
    }
}

/// Samples per full block in `series_block`.
pub const BLOCK_SAMPLES: usize = 1024;
/// A key's samples not yet in a block are sealed into a (short) block once this many rows
/// have been committed after the first of them: reading a key's unblocked tail from
/// `series` then never scans more than about this many rows.
pub const MAX_TAIL_SPAN: i64 = 16_384;
/// Rows per execution of the prepared multi-row INSERTs into `series` and `output`
/// (`bench/ingest.sh`: 64 rows 0.36 s median, 256 rows 0.33 s; 1,024 no better).
const ROWS_PER_INSERT: usize = 256;
/// run.db's page size (for a new file; SQLite's default is 4096): appending a million
/// samples splits and allocates half as many pages (`bench/ingest.sh`: 0.86 -> 0.64-0.84
/// s; 16 KiB pages measured 0.54-0.65 s on a quieter machine, within this bench's
/// noise). An empty run.db is 17 pages, 136 KiB at this size (272 KiB at 16 KiB), which a
/// sweep of thousands of small runs pays for each run.
const PAGE_SIZE: u32 = 8192;
/// Rows read at a time when rebuilding the unblocked tails (first commit after opening).
const TAIL_READ: i64 = 65_536;

/// One sample as a block holds it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BlockSample {
    /// The sample's rowid in `series`.
    pub seq: i64,
    /// A sample without a step counts as step 0.
    pub step: i64,
    pub time: i64,
    pub value: f64,
}

pub struct RunDb {
    path: PathBuf,
    /// For the few reads (attrs, offsets) of a run.db opened again: connected on first
    /// use; a new run's never is.
    conn: Option<SqliteConnection>,
    key_ids: FxHashMap<Arc<str>, i64>,
    last_seq: i64,
    last_sample: i64,
    /// Per key id, the committed samples that are not in a block yet. `None` until the
    /// first commit with samples reads them (and after a failed commit): a RunDb opened
    /// only to write attrs never touches blocks.
    pending: Option<FxHashMap<i64, Vec<BlockSample>>>,
    /// The connection commits go through (rusqlite: sqlx costs microseconds per bound
    /// row, a large share of ingesting a million samples). Opened at the first commit.
    writer: Option<Writer>,
}

impl RunDb {
    /// Creates (or opens) the run's database and brings its schema up to date.
    /// Creates a new run's run.db as a copy of a migrated, empty one kept in `dir` (made
    /// on first use, named after the last migration): running the migrations took about
    /// 15 ms of every run's start, a copy takes well under one. Falls back to migrating
    /// when the copy cannot be made or opened.
    pub async fn create(path: &Path, dir: &Path) -> Result<RunDb> {
        let last = super::RUN_MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
        let template = dir.join(format!("run-template-{last}-{PAGE_SIZE}.db"));
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
    /// A sqlx connection, its thread and the migrations' check were about 1.5 ms of every
    /// start.
    fn from_template(path: &Path) -> Result<RunDb> {
        let mut db = RunDb::empty(path, None);
        let tables: i64 = db.with_writer(|conn| {
            conn.query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('series_block', 'attr', 'flag')",
                [],
                |r| r.get(0),
            )
        })?;
        if tables != 3 {
            return Err(Error::Invalid(format!("{}: not a run.db of this version", path.display())));
        }
        Ok(db)
    }

    /// A RunDb of no rows yet (`open` reads what there is).
    fn empty(path: &Path, conn: Option<SqliteConnection>) -> RunDb {
        RunDb {
            path: path.to_path_buf(),
            conn,
            key_ids: FxHashMap::default(),
            last_seq: 0,
            last_sample: 0,
            pending: None,
            writer: None,
        }
    }

    pub async fn open(path: &Path) -> Result<RunDb> {
        // This connection reads a few rows (attrs, offsets); the writer (rusqlite) does the
        // work, so it keeps a small page cache (256 KiB): every live run holds one.
        let options = super::options(path).page_size(PAGE_SIZE).pragma("cache_size", "-256");
        let mut conn = SqliteConnection::connect_with(&options)
            .await
            .map_err(Error::db(path))?;
        super::RUN_MIGRATOR
            .run_direct(None, &mut conn, false)
            .await
            .map_err(|source| Error::Migrate {
                path: path.to_path_buf(),
                source,
            })?;
        let mut db = RunDb::empty(path, Some(conn));
        let rows = sqlx::query("SELECT id, key FROM series_key")
            .fetch_all(db.reader().await?)
            .await
            .map_err(db.err())?;
        for row in rows {
            db.key_ids.insert(
                Arc::from(row.try_get::<String, _>("key").map_err(db.err())?),
                row.try_get("id").map_err(db.err())?,
            );
        }
        db.last_seq = sqlx::query_scalar::<_, Option<i64>>("SELECT max(seq) FROM output")
            .fetch_one(db.reader().await?)
            .await
            .map_err(db.err())?
            .unwrap_or(0);
        db.last_sample = sqlx::query_scalar::<_, Option<i64>>("SELECT max(rowid) FROM series")
            .fetch_one(db.reader().await?)
            .await
            .map_err(db.err())?
            .unwrap_or(0);
        Ok(db)
    }

    fn err(&self) -> impl FnOnce(sqlx::Error) -> Error + use<> {
        Error::db(&self.path)
    }

    pub fn last_seq(&self) -> i64 {
        self.last_seq
    }

    /// The rowid of the last committed sample: the cursor WatchSeries follows.
    pub fn last_sample(&self) -> i64 {
        self.last_sample
    }

    /// Sets attrs (replacing those of the same names), in one transaction of the writer.
    pub async fn put_attrs(&mut self, attrs: &[(String, String)]) -> Result<()> {
        self.put_pairs("attr", attrs)
    }

    /// Sets flags (replacing those of the same names), in one transaction of the writer.
    pub async fn put_flags(&mut self, flags: &[(String, String)]) -> Result<()> {
        self.put_pairs("flag", flags)
    }

    /// Writes name/value pairs through the writer: synchronous SQLite calls of well under a
    /// millisecond, where a round trip to sqlx's connection thread was several times that
    /// on every run's start and end.
    fn put_pairs(&mut self, table: &'static str, pairs: &[(String, String)]) -> Result<()> {
        if pairs.is_empty() {
            return Ok(());
        }
        self.with_writer(|conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            {
                let mut insert = tx.prepare(&format!("INSERT OR REPLACE INTO {table} (name, value) VALUES (?1, ?2)"))?;
                for (name, value) in pairs {
                    insert.execute((name, value))?;
                }
            }
            tx.commit()
        })
    }

    /// Runs `work` on the writing connection (opened on first use), in place:
    /// `block_in_place` on a multi-threaded runtime, so the worker's other tasks move
    /// elsewhere meanwhile.
    fn with_writer<T>(
        &mut self,
        work: impl FnOnce(&mut rusqlite::Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
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
        result.map_err(|source| Error::Sqlite {
            path: self.path.clone(),
            source,
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

    /// The reading connection, connected on first use.
    async fn reader(&mut self) -> Result<&mut SqliteConnection> {
        if self.conn.is_none() {
            let options = super::options(&self.path).pragma("cache_size", "-256");
            let conn = SqliteConnection::connect_with(&options)
                .await
                .map_err(Error::db(&self.path))?;
            self.conn = Some(conn);
        }
        match self.conn.as_mut() {
            Some(conn) => Ok(conn),
            None => unreachable!("connected above"),
        }
    }

    pub async fn attr(&mut self, name: &str) -> Result<Option<String>> {
        let path = self.path.clone();
        sqlx::query_scalar("SELECT value FROM attr WHERE name = ?")
            .bind(name)
            .fetch_optional(self.reader().await?)
            .await
            .map_err(Error::db(&path))
    }

    pub async fn offsets(&mut self) -> Result<HashMap<String, u64>> {
        let err = self.err();
        let rows = sqlx::query("SELECT file, offset FROM tail_offset")
            .fetch_all(self.reader().await?)
            .await
            .map_err(err)?;
        let mut offsets = HashMap::new();
        for row in rows {
            let file: String = row.try_get("file").map_err(self.err())?;
            let offset: i64 = row.try_get("offset").map_err(self.err())?;
            offsets.insert(file, offset.max(0) as u64);
        }
        Ok(offsets)
    }

    /// Writes a batch in one transaction; afterwards `last_seq` and `last_sample` say
    /// what is committed. Samples get consecutive rowids after `last_sample`, in batch
    /// order, and the same transaction packs each key's samples into `series_block`.
    /// The work is synchronous SQLite calls, run in place (`block_in_place` on a
    /// multi-threaded runtime, so the worker's other tasks move elsewhere meanwhile).
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
        let result = in_place(|| self.commit_sync(batch, &mut added));
        if result.is_err() {
            // Whatever was rolled back, the next commit starts again from run.db.
            for key in &added {
                self.key_ids.remove(key);
            }
            self.pending = None;
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

    /// `added`: the keys this commit gave ids to (not in run.db if it fails).
    fn commit_sync(&mut self, batch: &Batch, added: &mut Vec<Arc<str>>) -> Result<()> {
        let path = self.path.clone();
        let err = |source| Error::Sqlite {
            path: path.clone(),
            source,
        };
        Writer::opened(&mut self.writer, &path).map_err(err)?;
        let RunDb {
            writer,
            key_ids,
            pending,
            last_seq,
            last_sample,
            ..
        } = self;
        let Some(Writer { conn, .. }) = writer.as_mut() else {
            unreachable!("opened above")
        };
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        let mut new_last_seq = *last_seq;
        if !batch.output.is_empty() {
            // Many rows per statement, as for series: one statement step per 256 lines
            // rather than per line.
            let mut inserts = MultiInsert::new(&tx, "output (time, stream, line)", 3);
            for chunk in batch.output.chunks(ROWS_PER_INSERT) {
                let stmt = inserts.sized(chunk.len()).map_err(err)?;
                for (i, line) in chunk.iter().enumerate() {
                    stmt.raw_bind_parameter(i * 3 + 1, line.time).map_err(err)?;
                    stmt.raw_bind_parameter(i * 3 + 2, line.stream).map_err(err)?;
                    stmt.raw_bind_parameter(i * 3 + 3, &line.line).map_err(err)?;
                }
                stmt.raw_execute().map_err(err)?;
            }
            new_last_seq = tx.last_insert_rowid();
        }
        let mut new_last_sample = *last_sample;
        let count = batch.sample_count();
        if count > 0 {
            let mut blocks_due = match pending.take() {
                Some(p) => p,
                None => load_pending(&tx, key_ids, *last_sample).map_err(err)?,
            };
            // Prepared only when needed: a small commit (stats every second) then costs
            // one prepare, of an INSERT sized to its rows.
            let mut new_key: Option<rusqlite::Statement<'_>> = None;
            let mut inserts = MultiInsert::new(&tx, "series (key_id, step, time, value)", 4);
            // Consecutive samples of one key are common (a whole `KeySamples`): look the
            // key up once for them.
            let mut current: Option<(&Arc<str>, i64, &mut Vec<BlockSample>)> = None;
            let rows = batch.samples.iter().map(|s| (&s.key, s.step, s.time, s.value)).chain(
                batch
                    .series
                    .iter()
                    .flat_map(|k| k.points.iter().map(move |p| (&k.key, p.step, p.time, p.value))),
            );
            let mut in_chunk = 0;
            for (done, (key, step, time, value)) in rows.enumerate() {
                let (id, due) = match current.take() {
                    Some((k, id, due)) if Arc::ptr_eq(k, key) || k == key => (id, due),
                    _ => {
                        let id = match key_ids.get(key) {
                            Some(id) => *id,
                            None => {
                                if new_key.is_none() {
                                    new_key = Some(
                                        tx.prepare(
                                            "INSERT INTO series_key (key) VALUES (?1) \
                                             ON CONFLICT (key) DO UPDATE SET key = excluded.key RETURNING id",
                                        )
                                        .map_err(err)?,
                                    );
                                }
                                let stmt = new_key.as_mut().unwrap_or_else(|| unreachable!("prepared above"));
                                let id: i64 = stmt.query_row([&**key], |r| r.get(0)).map_err(err)?;
                                key_ids.insert(Arc::clone(key), id);
                                added.push(Arc::clone(key));
                                id
                            }
                        };
                        (id, blocks_due.entry(id).or_default())
                    }
                };
                let rows_here = (count - (done - in_chunk)).min(ROWS_PER_INSERT);
                let stmt = inserts.sized(rows_here).map_err(err)?;
                let param = 4 * in_chunk + 1;
                stmt.raw_bind_parameter(param, id).map_err(err)?;
                stmt.raw_bind_parameter(param + 1, step).map_err(err)?;
                stmt.raw_bind_parameter(param + 2, time).map_err(err)?;
                stmt.raw_bind_parameter(param + 3, super::sql_value(value)).map_err(err)?;
                new_last_sample += 1;
                due.push(BlockSample {
                    seq: new_last_sample,
                    step: step.unwrap_or(0),
                    time,
                    value,
                });
                current = Some((key, id, due));
                in_chunk += 1;
                if in_chunk == rows_here {
                    stmt.raw_execute().map_err(err)?;
                    in_chunk = 0;
                }
            }
            if tx.last_insert_rowid() != new_last_sample {
                // Rowids are the samples' cursors: they must follow on from last_sample.
                return Err(Error::Invalid(format!(
                    "{}: series rowids went from {} to {} for {} samples",
                    path.display(),
                    *last_sample,
                    tx.last_insert_rowid(),
                    count
                )));
            }
            drop((new_key, inserts, current));
            let blocks = seal(&mut blocks_due, new_last_sample);
            write_blocks(&tx, &blocks).map_err(err)?;
            *pending = Some(blocks_due);
        }
        if !batch.offsets.is_empty() {
            let mut insert = tx
                .prepare("INSERT OR REPLACE INTO tail_offset (file, offset) VALUES (?1, ?2)")
                .map_err(err)?;
            for (file, offset) in &batch.offsets {
                insert.execute((file, *offset as i64)).map_err(err)?;
            }
        }
        tx.commit().map_err(err)?;
        if let Some(writer) = writer.as_mut() {
            writer.after_commit(&path);
        }
        *last_seq = new_last_seq;
        *last_sample = new_last_sample;
        Ok(())
    }

    /// Closes both connections. The writer, on a blocking thread, first copies the WAL
    /// back into run.db and empties it (syncing both), then closes without SQLite's
    /// close-time checkpoint: that one takes an exclusive lock on run.db, and a reader
    /// that opened then, waiting for nothing (`sqlite3 run.db` the moment `guild train`
    /// returns), was told the database is locked. So the end of a run can be told
    /// before its run.db is closed, and the syncs are off that path. run.db-wal stays,
    /// empty (or, if a reader held the WAL, with committed pages SQLite reads on).
    pub async fn close(self) {
        if let Some(conn) = self.conn {
            let _ = conn.close().await;
        }
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

/// `INSERT INTO <table (columns)> VALUES (?,...),...` for up to ROWS_PER_INSERT rows at
/// once, each size prepared once per transaction (a small commit, such as stats every
/// second, costs one prepare of its own size).
struct MultiInsert<'t> {
    tx: &'t rusqlite::Transaction<'t>,
    into: &'static str,
    columns: usize,
    by_rows: Vec<(usize, rusqlite::Statement<'t>)>,
}

impl<'t> MultiInsert<'t> {
    fn new(tx: &'t rusqlite::Transaction<'t>, into: &'static str, columns: usize) -> Self {
        MultiInsert {
            tx,
            into,
            columns,
            by_rows: Vec::new(),
        }
    }

    /// The statement for `rows` rows; parameter `row * columns + column + 1` (1-based).
    fn sized(&mut self, rows: usize) -> rusqlite::Result<&mut rusqlite::Statement<'t>> {
        let at = match self.by_rows.iter().position(|(n, _)| *n == rows) {
            Some(at) => at,
            None => {
                let one = format!("({})", vec!["?"; self.columns].join(","));
                let sql = format!("INSERT INTO {} VALUES {}", self.into, vec![one; rows].join(","));
                self.by_rows.push((rows, self.tx.prepare(&sql)?));
                self.by_rows.len() - 1
            }
        };
        Ok(&mut self.by_rows[at].1)
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
    /// The same settings as sqlx's (`super::options`), WAL already set by the migration's
    /// connection.
    fn open(path: &Path) -> rusqlite::Result<Writer> {
        let conn = rusqlite::Connection::open_with_flags(path, WRITE_FLAGS)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // The page cache stays at SQLite's default (2 MiB): each live run has one, and
        // 16 MiB each put 20 busy runs at 300 MiB (tests/e2e/load.rs).
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
             PRAGMA foreign_keys = OFF; PRAGMA temp_store = MEMORY;",
        )?;
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
            // SAFETY: setpriority on this thread only (a thread id is a process id to it).
            unsafe {
                libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, CHECKPOINT_NICE);
            }
            if let Ok(conn) = rusqlite::Connection::open_with_flags(&db_path, WRITE_FLAGS) {
                // This connection never checkpoints on close (see `RunDb::close`).
                let _ = conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true);
                let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
            }
        };
        // A thread of its own (not the blocking pool, whose threads would keep the
        // lower priority for other work): one every few MiB of WAL at most.
        match std::thread::Builder::new().name("guild-checkpoint".into()).spawn(checkpoint) {
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
/// samples once the first of them is `MAX_TAIL_SPAN` rows behind `last_seq`.
fn seal(pending: &mut FxHashMap<i64, Vec<BlockSample>>, last_seq: i64) -> Vec<(i64, Vec<BlockSample>)> {
    let mut blocks = Vec::new();
    pending.retain(|key_id, samples| {
        let full = samples.len() / BLOCK_SAMPLES * BLOCK_SAMPLES;
        if full > 0 {
            let rest = samples.split_off(full);
            for block in samples.chunks(BLOCK_SAMPLES) {
                blocks.push((*key_id, block.to_vec()));
            }
            *samples = rest;
        }
        if samples.first().is_some_and(|s| s.seq <= last_seq - MAX_TAIL_SPAN) {
            blocks.push((*key_id, std::mem::take(samples)));
        }
        !samples.is_empty()
    });
    blocks
}

fn write_blocks(conn: &rusqlite::Connection, blocks: &[(i64, Vec<BlockSample>)]) -> rusqlite::Result<()> {
    if blocks.is_empty() {
        return Ok(());
    }
    let mut insert = conn.prepare(
        "INSERT INTO series_block (key_id, first_seq, last_seq, count, min_step, max_step, min_time, max_time, data) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for (key_id, samples) in blocks {
        let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
            continue;
        };
        let (mut min_step, mut max_step) = (i64::MAX, i64::MIN);
        let (mut min_time, mut max_time) = (i64::MAX, i64::MIN);
        for s in samples {
            min_step = min_step.min(s.step);
            max_step = max_step.max(s.step);
            min_time = min_time.min(s.time);
            max_time = max_time.max(s.time);
        }
        insert.execute((
            key_id,
            first.seq,
            last.seq,
            samples.len() as i64,
            min_step,
            max_step,
            min_time,
            max_time,
            super::series::encode_block(samples),
        ))?;
    }
    Ok(())
}

/// The samples committed after each key's last block, read back from `series` (the first
/// commit after opening a run.db). Keys with more than a block's worth (a run.db written
/// before blocks existed) get their blocks written here, so memory stays bounded.
fn load_pending(
    conn: &rusqlite::Connection,
    key_ids: &FxHashMap<Arc<str>, i64>,
    last_sample: i64,
) -> rusqlite::Result<FxHashMap<i64, Vec<BlockSample>>> {
    let mut sealed: HashMap<i64, i64> = HashMap::new();
    {
        let mut stmt = conn.prepare("SELECT key_id, max(last_seq) FROM series_block GROUP BY key_id")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            sealed.insert(row.get(0)?, row.get(1)?);
        }
    }
    let mut from = key_ids
        .values()
        .map(|id| sealed.get(id).copied().unwrap_or(0))
        .min()
        .unwrap_or(last_sample);
    let mut pending: FxHashMap<i64, Vec<BlockSample>> = FxHashMap::default();
    let mut stmt = conn.prepare(
        "SELECT rowid, key_id, coalesce(step, 0), time, value FROM series WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
    )?;
    while from < last_sample {
        let mut end = from;
        let mut rows = stmt.query((from, TAIL_READ))?;
        while let Some(row) = rows.next()? {
            let seq: i64 = row.get(0)?;
            let key_id: i64 = row.get(1)?;
            end = seq;
            if seq <= sealed.get(&key_id).copied().unwrap_or(0) {
                continue;
            }
            pending.entry(key_id).or_default().push(BlockSample {
                seq,
                step: row.get(2)?,
                time: row.get(3)?,
                value: super::from_sql_value(row.get(4)?),
            });
        }
        if end == from {
            break;
        }
        let blocks = seal(&mut pending, end);
        write_blocks(conn, &blocks)?;
        from = end;
    }
    Ok(pending)
}

/// A read-only connection to a run's database, for requests.
pub async fn open_read(path: &Path) -> Result<SqliteConnection> {
    if !path.exists() {
        return Err(Error::NotFound(format!("run database {} is missing", path.display())));
    }
    // Followers (ReadOutput, WatchSeries) hold one each for as long as they follow, so
    // each keeps a small page cache (512 KiB) and no memory map: fifty of them on twenty
    // busy runs stay within tests/e2e/load.rs's bound. GetSeries maps pages instead
    // (`series::open_blocking`).
    let options = super::options(path)
        .read_only(true)
        .create_if_missing(false)
        .pragma("cache_size", "-512");
    SqliteConnection::connect_with(&options).await.map_err(Error::db(path))
}

pub struct OutputRecord {
    pub seq: i64,
    pub time: i64,
    pub stream: String,
    pub line: String,
}

pub async fn read_output(
    conn: &mut SqliteConnection,
    path: &Path,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<OutputRecord>> {
    let rows = sqlx::query("SELECT seq, time, stream, line FROM output WHERE seq > ? ORDER BY seq LIMIT ?")
        .bind(after_seq)
        .bind(limit)
        .fetch_all(conn)
        .await
        .map_err(Error::db(path))?;
    rows.iter()
        .map(|r| {
            Ok(OutputRecord {
                seq: r.try_get("seq")?,
                time: r.try_get("time")?,
                stream: r.try_get("stream")?,
                line: r.try_get("line")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(Error::db(path))
}

pub async fn read_pairs(conn: &mut SqliteConnection, path: &Path, table: &str) -> Result<Vec<(String, String)>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT name, value FROM {table} ORDER BY rowid"
    )))
    .fetch_all(conn)
    .await
    .map_err(Error::db(path))?;
    rows.iter()
        .map(|r| Ok((r.try_get("name")?, r.try_get("value")?)))
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(Error::db(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(key_id: i64, seqs: impl Iterator<Item = i64>, pending: &mut FxHashMap<i64, Vec<BlockSample>>) {
        for seq in seqs {
            pending.entry(key_id).or_default().push(BlockSample {
                seq,
                step: seq,
                time: seq,
                value: 0.0,
            });
        }
    }

    #[test]
    fn full_blocks_and_old_tails_are_sealed() {
        let mut pending = FxHashMap::default();
        samples(1, 1..=(BLOCK_SAMPLES as i64 * 2 + 10), &mut pending);
        samples(2, [5, 6].into_iter(), &mut pending);
        let last = BLOCK_SAMPLES as i64 * 2 + 10;
        let blocks = seal(&mut pending, last);
        // Key 1: two full blocks, ten left; key 2 is not old enough yet.
        assert_eq!(blocks.iter().filter(|(k, _)| *k == 1).count(), 2);
        assert!(blocks.iter().all(|(_, b)| b.len() == BLOCK_SAMPLES));
        assert_eq!(pending[&1].len(), 10);
        assert_eq!(pending[&2].len(), 2);
        // Once MAX_TAIL_SPAN rows follow key 2's first pending sample, it is sealed short.
        let blocks = seal(&mut pending, 5 + MAX_TAIL_SPAN);
        assert_eq!(blocks, vec![(2, pending_free(5, 6))]);
        assert!(!pending.contains_key(&2));
    }

    fn pending_free(a: i64, b: i64) -> Vec<BlockSample> {
        (a..=b)
            .map(|seq| BlockSample {
                seq,
                step: seq,
                time: seq,
                value: 0.0,
            })
            .collect()
    }

    #[tokio::test]
    async fn new_run_dbs_are_copies_of_a_migrated_template() {
        let dir = std::env::temp_dir().join(format!("guild-rundb-template-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let last = super::super::RUN_MIGRATOR.iter().map(|m| m.version).max().unwrap();
        let template = dir.join(format!("run-template-{last}-{PAGE_SIZE}.db"));
        // The second run copies the first's template; a corrupt template is replaced.
        for (i, corrupt) in [(1, false), (2, false), (3, true), (4, false)] {
            if corrupt {
                std::fs::write(&template, b"not a database").unwrap();
            }
            let path = dir.join(format!("run{i}.db"));
            let mut db = RunDb::create(&path, &dir).await.unwrap();
            db.put_flags(&[("lr".to_string(), "0.1".to_string())]).await.unwrap();
            assert_eq!(db.attr("missing").await.unwrap(), None);
            db.close().await;
            assert_eq!(template.is_file(), !corrupt, "run{i}.db");
            let mut conn = open_read(&path).await.unwrap();
            let flags: Vec<(String, String)> = sqlx::query_as("SELECT name, value FROM flag")
                .fetch_all(&mut conn)
                .await
                .unwrap();
            assert_eq!(flags, [("lr".to_string(), "0.1".to_string())], "run{i}.db");
        }
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".run-template"))
            .collect();
        assert!(leftovers.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_long_wal_is_checkpointed_beside_the_writer_and_restarts() {
        let dir = std::env::temp_dir().join(format!("guild-rundb-ckpt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
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
        while db.writer.as_ref().unwrap().checkpoint.as_ref().is_some_and(|h| !h.is_finished()) {
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
        drop(conn);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_batch_that_failed_on_a_full_disk_commits_once_when_there_is_room() {
        let dir = std::env::temp_dir().join(format!("guild-rundb-full-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let Some(_mount) = crate::testing::Tmpfs::mount(&dir, "2m") else {
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
        drop(conn);
    }

    #[tokio::test]
    async fn commits_write_rows_and_blocks_that_read_back() {
        let dir = std::env::temp_dir().join(format!("guild-rundb-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("run.db");
        let mut db = RunDb::open(&path).await.unwrap();
        let n = BLOCK_SAMPLES * 3 + 100;
        let batch = |range: std::ops::Range<usize>| Batch {
            samples: range
                .flat_map(|i| {
                    ["a", "b"].map(|key| SampleRow {
                        key: key.into(),
                        step: Some(i as i64),
                        time: 1000 + i as i64,
                        value: if i == 7 { f64::NAN } else { i as f64 },
                    })
                })
                .collect(),
            ..Batch::default()
        };
        db.commit(&batch(0..n / 2)).await.unwrap();
        db.close().await;
        // A reopened writer picks up the unblocked tails from run.db.
        let mut db = RunDb::open(&path).await.unwrap();
        assert_eq!(db.last_sample(), n as i64);
        db.commit(&batch(n / 2..n)).await.unwrap();
        assert_eq!(db.last_sample(), 2 * n as i64);
        db.close().await;

        let mut conn = open_read(&path).await.unwrap();
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM scalar WHERE key = 'a'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(count, n as i64);
        let blocked: i64 = sqlx::query_scalar("SELECT sum(count) FROM series_block")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(blocked, 2 * (n / BLOCK_SAMPLES * BLOCK_SAMPLES) as i64);
        use crate::store::series::{self, Axis};
        let reader = series::open_blocking(&path).unwrap();
        let points = series::read_range(&reader, &path, "a", Axis::Step, Default::default(), usize::MAX).unwrap().unwrap();
        assert_eq!(points.len(), n);
        assert!(
            points
                .iter()
                .enumerate()
                .all(|(i, p)| p.step == i as i64 && p.time == 1000 + i as i64)
        );
        assert!(points[7].value.is_nan() && points[8].value == 8.0);
        let (count, buckets) = series::read_buckets(&reader, &path, "b", Axis::Step, Default::default(), 10).unwrap();
        assert_eq!(count, n as u64);
        assert_eq!(buckets, series::bucketize(&points, Axis::Step, None, None, 10));
        drop((conn, reader));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
