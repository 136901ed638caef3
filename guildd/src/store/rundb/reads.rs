//! Reading a run.db: output lines and samples after a cursor (ReadOutput, WatchSeries),
//! a key's samples on the step or time axis, whole or in buckets (GetSeries, field
//! values), attrs, flags and keys, each key's summary rebuilt from every sample, and a
//! one-file copy for export. Every reader has a read-only connection of its own.
//!
//! A key's samples are read from its packed blocks (`series_block`, written with the
//! rows) plus the few rows after its last block, not row by row: a million samples are
//! about a thousand blob rows.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use rustc_hash::FxHashMap;

use super::block;
use super::buckets::{Axis, Bucket, Bucketer};
use crate::error::{Error, Result};
use crate::samples::{Point, Stored};
use crate::store::summary::Summaries;
use crate::store::{SeriesSummary, from_sql_value, sqlite};

/// A read-only connection to one run.db.
pub struct Reader {
    pub(super) conn: Connection,
    pub(super) path: PathBuf,
}

/// One output line as stored.
pub struct OutputRecord {
    pub seq: i64,
    pub time: i64,
    pub stream: String,
    pub line: String,
}

/// A sample committed after a cursor, with its key.
pub struct CursorSample {
    pub key: String,
    pub sample: Stored,
}

/// Which samples of a key a read takes: those within [min, max] on the axis (open ends
/// for None) committed up to the cursor `until` (None: every one).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Bounds {
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub until: Option<i64>,
}

fn missing(path: &Path) -> Error {
    Error::NotFound(format!("run database {} is missing", path.display()))
}

impl Reader {
    /// For bulk reads on a blocking thread (GetSeries, field values, summaries): pages
    /// are read through a mapping (see `store::open_mapped`), and opening costs no thread
    /// of its own (a dashboard zoom sends one request per run at once).
    pub fn open(path: &Path) -> Result<Reader> {
        if !path.exists() {
            return Err(missing(path));
        }
        Ok(Reader {
            conn: crate::store::open_mapped(path)?,
            path: path.to_path_buf(),
        })
    }

    /// For followers (ReadOutput, WatchSeries), which hold one each for as long as they
    /// follow: a small page cache (512 KiB) and no memory map, so fifty of them on twenty
    /// busy runs stay within tests/e2e/load.rs's bound.
    pub fn open_follower(path: &Path) -> Result<Reader> {
        if !path.exists() {
            return Err(missing(path));
        }
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                .map_err(sqlite(path))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(sqlite(path))?;
        conn.pragma_update(None, "cache_size", -512).map_err(sqlite(path))?;
        Ok(Reader {
            conn,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Output lines after `after_seq`, at most `limit`.
    pub fn output_after(&self, after_seq: i64, limit: i64) -> Result<Vec<OutputRecord>> {
        let path = &self.path;
        let mut stmt = self
            .conn
            .prepare("SELECT seq, time, stream, line FROM output WHERE seq > ?1 ORDER BY seq LIMIT ?2")
            .map_err(sqlite(path))?;
        let rows = stmt
            .query_map((after_seq, limit), |r| {
                Ok(OutputRecord {
                    seq: r.get(0)?,
                    time: r.get(1)?,
                    stream: r.get(2)?,
                    line: r.get(3)?,
                })
            })
            .map_err(sqlite(path))?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sqlite(path))
    }

    /// Samples committed after `cursor` (the series rowid), in commit order, at most
    /// `limit`; `keys` empty: every key.
    pub fn samples_after(&self, cursor: i64, keys: &[String], limit: i64) -> Result<Vec<CursorSample>> {
        let path = &self.path;
        let mut sql = String::from(
            "SELECT s.rowid, k.key, s.time, coalesce(s.step, 0), s.value FROM series s \
             JOIN series_key k ON k.id = s.key_id WHERE s.rowid > ?",
        );
        if !keys.is_empty() {
            sql.push_str(" AND k.key IN (");
            sql.push_str(&vec!["?"; keys.len()].join(", "));
            sql.push(')');
        }
        sql.push_str(" ORDER BY s.rowid LIMIT ?");
        let mut stmt = self.conn.prepare(&sql).map_err(sqlite(path))?;
        let params = std::iter::once(rusqlite::types::Value::Integer(cursor))
            .chain(keys.iter().map(|k| rusqlite::types::Value::Text(k.clone())))
            .chain(std::iter::once(rusqlite::types::Value::Integer(limit)));
        let rows = stmt
            .query_map(rusqlite::params_from_iter(params), |r| {
                Ok(CursorSample {
                    key: r.get(1)?,
                    sample: Stored {
                        seq: r.get(0)?,
                        time: r.get(2)?,
                        step: r.get(3)?,
                        value: from_sql_value(r.get(4)?),
                    },
                })
            })
            .map_err(sqlite(path))?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sqlite(path))
    }

    /// The cursor of the last committed sample (0: none yet): WatchSeries from it sends
    /// only what commits after, and GetSeries up to it reads everything before.
    pub fn last_cursor(&self) -> Result<i64> {
        self.conn
            .query_row("SELECT coalesce(max(rowid), 0) FROM series", [], |r| r.get(0))
            .map_err(sqlite(&self.path))
    }

    /// The run's attributes (`attr`), in the order written.
    pub fn attrs(&self) -> Result<Vec<(String, String)>> {
        self.pairs("SELECT name, value FROM attr ORDER BY rowid")
    }

    /// One attribute.
    pub fn attr(&self, name: &str) -> Result<Option<String>> {
        use rusqlite::OptionalExtension;
        self.conn
            .query_row("SELECT value FROM attr WHERE name = ?1", [name], |r| r.get(0))
            .optional()
            .map_err(sqlite(&self.path))
    }

    /// The run's resolved flags, in resolution order.
    pub fn flags(&self) -> Result<Vec<(String, String)>> {
        self.pairs("SELECT name, value FROM flag ORDER BY rowid")
    }

    fn pairs(&self, sql: &str) -> Result<Vec<(String, String)>> {
        let path = &self.path;
        let mut stmt = self.conn.prepare(sql).map_err(sqlite(path))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(sqlite(path))?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sqlite(path))
    }

    /// Every series key, sorted.
    pub fn keys(&self) -> Result<Vec<String>> {
        let path = &self.path;
        let mut stmt = self
            .conn
            .prepare("SELECT key FROM series_key ORDER BY key")
            .map_err(sqlite(path))?;
        let keys = stmt
            .query_map([], |row| row.get(0))
            .map_err(sqlite(path))?
            .collect::<rusqlite::Result<Vec<String>>>()
            .map_err(sqlite(path))?;
        Ok(keys)
    }

    /// Each key's summary from every stored sample, fed in commit order to the same
    /// [`Summaries`] a live run keeps: the truth after a daemon died between committing
    /// samples and updating the index, and what an imported run is indexed with.
    pub fn summaries(&self) -> Result<Vec<SeriesSummary>> {
        let path = &self.path;
        let mut keys: FxHashMap<i64, Arc<str>> = FxHashMap::default();
        {
            let mut stmt = self
                .conn
                .prepare("SELECT id, key FROM series_key")
                .map_err(sqlite(path))?;
            let mut rows = stmt.query([]).map_err(sqlite(path))?;
            while let Some(row) = rows.next().map_err(sqlite(path))? {
                let key: String = row.get(1).map_err(sqlite(path))?;
                keys.insert(row.get(0).map_err(sqlite(path))?, Arc::from(key));
            }
        }
        let mut summaries = Summaries::default();
        let mut stmt = self
            .conn
            .prepare("SELECT key_id, step, time, value FROM series ORDER BY rowid")
            .map_err(sqlite(path))?;
        let mut rows = stmt.query([]).map_err(sqlite(path))?;
        while let Some(row) = rows.next().map_err(sqlite(path))? {
            let Some(key) = keys.get(&row.get::<_, i64>(0).map_err(sqlite(path))?) else {
                continue;
            };
            let point = Point {
                step: row.get(1).map_err(sqlite(path))?,
                time: row.get(2).map_err(sqlite(path))?,
                value: from_sql_value(row.get(3).map_err(sqlite(path))?),
            };
            summaries.add(key, std::slice::from_ref(&point));
        }
        Ok(summaries.into_all())
    }

    /// A consistent one-file copy of the run.db at `dest` (WAL folded in): `guild export`.
    pub fn copy_to(&self, dest: &Path) -> Result<()> {
        self.conn
            .execute("VACUUM INTO ?1", [dest.to_string_lossy()])
            .map_err(sqlite(&self.path))?;
        Ok(())
    }

    /// Samples of `key` within `bounds`, ordered by the axis (then commit order). A sample
    /// without a step counts as step 0. None when there are more than `limit`.
    pub fn read_range(&self, key: &str, axis: Axis, bounds: Bounds, limit: usize) -> Result<Option<Vec<Stored>>> {
        let Some(mut samples) = self.read_samples(key, axis, bounds, limit)? else {
            return Ok(None);
        };
        // Stable: samples come in commit order, which breaks ties on the axis.
        samples.sort_by_key(|s| axis.of(s));
        Ok(Some(samples))
    }

    /// Samples of `key` within `bounds`, in commit order: its blocks (those that reach
    /// into the range), then the rows after its last block. None when there are more than
    /// `limit` (found holding at most a block more than that).
    pub fn read_samples(&self, key: &str, axis: Axis, bounds: Bounds, limit: usize) -> Result<Option<Vec<Stored>>> {
        let Some(key_id) = self.key_id(key)? else {
            return Ok(Some(Vec::new()));
        };
        let range = Range::new(axis, bounds);
        let mut out = Vec::new();
        let mut sealed = 0;
        if self.has_blocks()? {
            sealed = self.each_block(key_id, &range, |first_seq, data| {
                if out.len() > limit {
                    // Over: the rest is only walked past, for `sealed`.
                    return Ok(());
                }
                if block::decode(first_seq, data, |s| {
                    if range.holds(&s) {
                        out.push(s);
                    }
                }) {
                    Ok(())
                } else {
                    Err(self.malformed(key, first_seq))
                }
            })?;
        }
        if out.len() > limit {
            return Ok(None);
        }
        self.read_tail(key_id, sealed, |s| {
            if range.holds(&s) {
                out.push(s);
            }
        })?;
        Ok((out.len() <= limit).then_some(out))
    }

    /// `n` buckets of `key` within `bounds` (see [`super::buckets::bucketize`]) and how
    /// many samples they hold, straight from the stored blocks: the samples' extent comes
    /// from the blocks' bounds, and each block is decoded into the buckets without
    /// collecting the samples.
    pub fn read_buckets(&self, key: &str, axis: Axis, bounds: Bounds, n: u32) -> Result<(u64, Vec<Bucket>)> {
        let path = &self.path;
        let Some(key_id) = self.key_id(key)? else {
            return Ok((0, Vec::new()));
        };
        let range = Range::new(axis, bounds);
        // The extent first: from the bounds of the blocks that reach into the range (a
        // block's lowest sample is in the range unless the range has a finite lower bound,
        // and then that bound is used), and from the tail's samples. A block that runs
        // past `until` widens the extent by what it holds after it: buckets there stay
        // empty.
        let (mut min_x, mut max_x) = (i64::MAX, i64::MIN);
        let mut sealed = 0i64;
        let blocks = self.has_blocks()?;
        if blocks {
            let (min_col, max_col) = range.columns();
            let mut stmt = self
                .conn
                .prepare(&format!(
                    "SELECT last_seq, {min_col}, {max_col}, {max_col} >= ?2 AND {min_col} <= ?3 AND first_seq <= ?4 \
                     FROM series_block WHERE key_id = ?1"
                ))
                .map_err(sqlite(path))?;
            let mut rows = stmt
                .query((key_id, range.lo, range.hi, range.until))
                .map_err(sqlite(path))?;
            while let Some(row) = rows.next().map_err(sqlite(path))? {
                sealed = sealed.max(row.get(0).map_err(sqlite(path))?);
                if row.get::<_, bool>(3).map_err(sqlite(path))? {
                    min_x = min_x.min(row.get(1).map_err(sqlite(path))?);
                    max_x = max_x.max(row.get(2).map_err(sqlite(path))?);
                }
            }
        }
        let mut tail = Vec::new();
        self.read_tail(key_id, sealed, |s| {
            if range.holds(&s) {
                tail.push(s);
            }
        })?;
        for s in &tail {
            min_x = min_x.min(axis.of(s));
            max_x = max_x.max(axis.of(s));
        }
        if min_x > max_x {
            return Ok((0, Vec::new()));
        }
        let mut bucketer = Bucketer::new(axis, bounds.min, bounds.max, min_x, max_x, n);
        let mut count = 0u64;
        if blocks {
            self.each_block(key_id, &range, |first_seq, data| {
                let ok = block::decode(first_seq, data, |s| {
                    if range.holds(&s) {
                        bucketer.add(&s);
                        count += 1;
                    }
                });
                if ok {
                    Ok(())
                } else {
                    Err(self.malformed(key, first_seq))
                }
            })?;
        }
        for s in &tail {
            bucketer.add(s);
        }
        count += tail.len() as u64;
        Ok((count, bucketer.finish()))
    }

    /// Calls `f(first_seq, data)` for each of the key's blocks that reaches into the
    /// range, in commit order, with the blob as SQLite holds it (not copied). Returns the
    /// last rowid in any of the key's blocks (0 for none): rows after it are the key's
    /// tail. Callers check `has_blocks` first.
    fn each_block(&self, key_id: i64, range: &Range, mut f: impl FnMut(i64, &[u8]) -> Result<()>) -> Result<i64> {
        let path = &self.path;
        let (min_col, max_col) = range.columns();
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT first_seq, last_seq, CASE WHEN {max_col} >= ?2 AND {min_col} <= ?3 AND first_seq <= ?4 THEN data END \
                 FROM series_block WHERE key_id = ?1 ORDER BY first_seq"
            ))
            .map_err(sqlite(path))?;
        let mut rows = stmt
            .query((key_id, range.lo, range.hi, range.until))
            .map_err(sqlite(path))?;
        let mut sealed = 0i64;
        while let Some(row) = rows.next().map_err(sqlite(path))? {
            sealed = sealed.max(row.get(1).map_err(sqlite(path))?);
            if let ValueRef::Blob(data) = row.get_ref(2).map_err(sqlite(path))? {
                f(row.get(0).map_err(sqlite(path))?, data)?;
            }
        }
        Ok(sealed)
    }

    fn malformed(&self, key: &str, first_seq: i64) -> Error {
        Error::Invalid(format!(
            "{}: series block of {key} at {first_seq} is malformed",
            self.path.display()
        ))
    }

    fn key_id(&self, key: &str) -> Result<Option<i64>> {
        use rusqlite::OptionalExtension;
        self.conn
            .query_row("SELECT id FROM series_key WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(sqlite(&self.path))
    }

    /// A run.db that no writer has opened since blocks came in has no block table yet.
    fn has_blocks(&self) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'series_block'",
                [],
                |r| r.get(0),
            )
            .map_err(sqlite(&self.path))
    }

    /// A key's samples after `sealed` (its last block's last rowid), in commit order.
    fn read_tail(&self, key_id: i64, sealed: i64, mut f: impl FnMut(Stored)) -> Result<()> {
        let path = &self.path;
        let mut stmt = self
            .conn
            .prepare(
                "SELECT rowid, coalesce(step, 0), time, value FROM series WHERE rowid > ?1 AND key_id = ?2 ORDER BY rowid",
            )
            .map_err(sqlite(path))?;
        let mut rows = stmt.query((sealed, key_id)).map_err(sqlite(path))?;
        while let Some(row) = rows.next().map_err(sqlite(path))? {
            f(Stored {
                seq: row.get(0).map_err(sqlite(path))?,
                step: row.get(1).map_err(sqlite(path))?,
                time: row.get(2).map_err(sqlite(path))?,
                value: from_sql_value(row.get(3).map_err(sqlite(path))?),
            });
        }
        Ok(())
    }
}

/// [`Bounds`] on one axis.
struct Range {
    axis: Axis,
    lo: f64,
    hi: f64,
    until: i64,
}

impl Range {
    fn new(axis: Axis, bounds: Bounds) -> Range {
        Range {
            axis,
            lo: bounds.min.unwrap_or(f64::NEG_INFINITY),
            hi: bounds.max.unwrap_or(f64::INFINITY),
            until: bounds.until.unwrap_or(i64::MAX),
        }
    }

    fn holds(&self, s: &Stored) -> bool {
        let x = self.axis.of(s) as f64;
        x >= self.lo && x <= self.hi && s.seq <= self.until
    }

    /// The block table's columns for this axis' bounds.
    fn columns(&self) -> (&'static str, &'static str) {
        match self.axis {
            Axis::Step => ("min_step", "max_step"),
            Axis::Time => ("min_time", "max_time"),
        }
    }
}

/// Opens the run.db at `path` and reads it with `f` on a blocking thread.
pub async fn read<T: Send + 'static>(path: &Path, f: impl FnOnce(&Reader) -> Result<T> + Send + 'static) -> Result<T> {
    let owned = path.to_path_buf();
    tokio::task::spawn_blocking(move || f(&Reader::open(&owned)?))
        .await
        .map_err(|e| Error::Invalid(format!("reading {} failed: {e}", path.display())))?
}

/// A follower's reader (ReadOutput, WatchSeries): each read runs on a blocking thread,
/// and the connection goes there and back with it.
pub struct Follower {
    reader: Option<Reader>,
}

impl Follower {
    pub async fn open(path: &Path) -> Result<Follower> {
        let path = path.to_path_buf();
        let reader = tokio::task::spawn_blocking(move || Reader::open_follower(&path))
            .await
            .map_err(|e| Error::Invalid(format!("opening a run database failed: {e}")))??;
        Ok(Follower { reader: Some(reader) })
    }

    pub async fn read<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&Reader) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let Some(reader) = self.reader.take() else {
            return Err(Error::Invalid("a run database read failed before; follow again".into()));
        };
        let (reader, out) = tokio::task::spawn_blocking(move || {
            let out = f(&reader);
            (reader, out)
        })
        .await
        .map_err(|e| Error::Invalid(format!("reading a run database failed: {e}")))?;
        self.reader = Some(reader);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples::{Batch, SampleRow};
    use crate::store::RunDb;

    /// The rebuilt summaries are the ones a live run keeps: the same [`Summaries`], fed
    /// the same samples in the same order (NaN, missing steps and times included).
    #[tokio::test]
    async fn summaries_rebuilt_from_run_db_match_the_live_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.db");
        let mut db = RunDb::open(&path).await.unwrap();
        let mut live = Summaries::default();
        for round in 0..3i64 {
            let batch = Batch {
                samples: (0..2000i64)
                    .map(|i| SampleRow {
                        key: ["loss", "acc", "sys/cpu/util"][(i % 3) as usize].into(),
                        step: (i % 5 != 0).then_some(round * 10_000 + i),
                        // Time goes back now and then: last_time is the last sample's.
                        time: 1_000_000 + round * 5000 - (i % 7) * 3,
                        value: if i % 11 == 0 { f64::NAN } else { (i as f64).cos() },
                    })
                    .collect(),
                ..Batch::default()
            };
            db.commit(&batch).await.unwrap();
            live.add_batch(&batch);
        }
        db.close().await;
        let rebuilt = read(&path, |r| r.summaries()).await.unwrap();
        let live = live.into_all();
        assert_eq!(rebuilt.len(), 3);
        for (a, b) in rebuilt.iter().zip(&live) {
            assert_eq!(
                (&a.key, a.count, a.last_step, a.last_time),
                (&b.key, b.count, b.last_step, b.last_time)
            );
            for (x, y) in [(a.last, b.last), (a.min, b.min), (a.max, b.max)] {
                assert!(x == y || (x.is_nan() && y.is_nan()), "{}: {x} vs {y}", a.key);
            }
        }
    }
}
