//! One commit of a run's batch: output lines, samples (one row each in `series`, and
//! packed into `series_block` in the same transaction), media items (`media`) and how
//! far each captured file has been read, so a restarted daemon resumes where the last commit left it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use rusqlite::Connection;
use rustc_hash::FxHashMap;

use super::{block, media};
use crate::error::{Error, Result};
use crate::samples::{Batch, Stored};
use crate::store::{from_sql_value, sql_value, sqlite};

/// Samples per full block in `series_block`.
pub const BLOCK_SAMPLES: usize = 1024;
/// A key's samples not yet in a block are sealed into a (short) block once this many rows
/// have been committed after the first of them: reading a key's unblocked tail from
/// `series` then never scans more than about this many rows.
pub const MAX_TAIL_SPAN: i64 = 16_384;
/// Rows per execution of the prepared multi-row INSERTs into `series` and `output`
/// (`bench/ingest.sh`: 64 rows 0.36 s median, 256 rows 0.33 s; 1,024 no better).
const ROWS_PER_INSERT: usize = 256;
/// Rows read at a time when rebuilding the unblocked tails (first commit after opening).
const TAIL_READ: i64 = 65_536;

/// What the writer knows of what is committed: each key's id, the last output seq and
/// sample rowid, and per key id the committed samples that are not in a block yet.
#[derive(Default)]
pub(super) struct Committed {
    pub key_ids: FxHashMap<Arc<str>, i64>,
    pub last_seq: i64,
    pub last_sample: i64,
    /// The last media item's seq (shared by the media tables).
    pub last_media: i64,
    /// `None` until the first commit with samples reads them (and after a failed commit):
    /// a RunDb opened only to write attrs never touches blocks.
    pub pending: Option<FxHashMap<i64, Vec<Stored>>>,
}

impl Committed {
    /// Reads the key ids and the last seq and rowid of an opened run.db.
    pub fn load(conn: &Connection, path: &Path) -> Result<Committed> {
        let mut state = Committed::default();
        let mut stmt = conn.prepare("SELECT id, key FROM series_key").map_err(sqlite(path))?;
        let mut rows = stmt.query([]).map_err(sqlite(path))?;
        while let Some(row) = rows.next().map_err(sqlite(path))? {
            let key: String = row.get(1).map_err(sqlite(path))?;
            state.key_ids.insert(Arc::from(key), row.get(0).map_err(sqlite(path))?);
        }
        let last = |sql: &str| -> Result<i64> {
            conn.query_row(sql, [], |r| r.get::<_, Option<i64>>(0))
                .map(Option::unwrap_or_default)
                .map_err(sqlite(path))
        };
        state.last_seq = last("SELECT max(seq) FROM output")?;
        state.last_sample = last("SELECT max(rowid) FROM series")?;
        state.last_media = media::last_seq(conn).map_err(sqlite(path))?;
        Ok(state)
    }
}

/// Writes `batch` in one transaction of `conn`. Samples get consecutive rowids after
/// `last_sample`, in batch order, and each key's are packed into blocks as they fill.
/// `state` moves on only once the transaction committed; `added` gets the keys this
/// commit gave ids to (which are not in run.db if it fails: the caller forgets them).
pub(super) fn commit(
    conn: &mut Connection,
    path: &Path,
    state: &mut Committed,
    batch: &Batch,
    added: &mut Vec<Arc<str>>,
) -> Result<()> {
    let err = sqlite(path);
    let Committed {
        key_ids,
        pending,
        last_seq,
        last_sample,
        last_media,
    } = state;
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(sqlite(path))?;
    let mut new_last_seq = *last_seq;
    if !batch.output.is_empty() {
        // Many rows per statement, as for series: one statement step per 256 lines
        // rather than per line.
        let mut inserts = MultiInsert::new(&tx, "output (time, stream, line)", 3);
        for chunk in batch.output.chunks(ROWS_PER_INSERT) {
            let stmt = inserts.sized(chunk.len()).map_err(sqlite(path))?;
            for (i, line) in chunk.iter().enumerate() {
                stmt.raw_bind_parameter(i * 3 + 1, line.time).map_err(sqlite(path))?;
                stmt.raw_bind_parameter(i * 3 + 2, line.stream).map_err(sqlite(path))?;
                stmt.raw_bind_parameter(i * 3 + 3, &line.line).map_err(sqlite(path))?;
            }
            stmt.raw_execute().map_err(sqlite(path))?;
        }
        new_last_seq = tx.last_insert_rowid();
    }
    let mut new_last_sample = *last_sample;
    let count = batch.sample_count();
    if count > 0 {
        let mut blocks_due = match pending.take() {
            Some(p) => p,
            None => load_pending(&tx, key_ids, *last_sample).map_err(sqlite(path))?,
        };
        // Prepared only when needed: a small commit (stats every second) then costs
        // one prepare, of an INSERT sized to its rows.
        let mut new_key: Option<rusqlite::Statement<'_>> = None;
        let mut inserts = MultiInsert::new(&tx, "series (key_id, step, time, value)", 4);
        // Consecutive samples of one key are common (a whole `KeySamples`): look the
        // key up once for them.
        let mut current: Option<(&Arc<str>, i64, &mut Vec<Stored>)> = None;
        let mut in_chunk = 0;
        for (done, (key, point)) in batch.each_sample().enumerate() {
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
                                    .map_err(sqlite(path))?,
                                );
                            }
                            let stmt = new_key.as_mut().unwrap_or_else(|| unreachable!("prepared above"));
                            let id: i64 = stmt.query_row([&**key], |r| r.get(0)).map_err(sqlite(path))?;
                            key_ids.insert(Arc::clone(key), id);
                            added.push(Arc::clone(key));
                            id
                        }
                    };
                    (id, blocks_due.entry(id).or_default())
                }
            };
            let rows_here = (count - (done - in_chunk)).min(ROWS_PER_INSERT);
            let stmt = inserts.sized(rows_here).map_err(sqlite(path))?;
            let param = 4 * in_chunk + 1;
            stmt.raw_bind_parameter(param, id).map_err(sqlite(path))?;
            stmt.raw_bind_parameter(param + 1, point.step).map_err(sqlite(path))?;
            stmt.raw_bind_parameter(param + 2, point.time).map_err(sqlite(path))?;
            stmt.raw_bind_parameter(param + 3, sql_value(point.value))
                .map_err(sqlite(path))?;
            new_last_sample += 1;
            due.push(Stored {
                seq: new_last_sample,
                step: point.step.unwrap_or(0),
                time: point.time,
                value: point.value,
            });
            current = Some((key, id, due));
            in_chunk += 1;
            if in_chunk == rows_here {
                stmt.raw_execute().map_err(sqlite(path))?;
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
        write_blocks(&tx, &blocks).map_err(sqlite(path))?;
        *pending = Some(blocks_due);
    }
    let mut new_last_media = *last_media;
    if !batch.media.is_empty() {
        media::write(&tx, &batch.media, &mut new_last_media).map_err(sqlite(path))?;
    }
    if !batch.offsets.is_empty() {
        let mut insert = tx
            .prepare("INSERT OR REPLACE INTO tail_offset (file, offset) VALUES (?1, ?2)")
            .map_err(sqlite(path))?;
        for (file, offset) in &batch.offsets {
            insert.execute((file, *offset as i64)).map_err(sqlite(path))?;
        }
    }
    tx.commit().map_err(err)?;
    *last_seq = new_last_seq;
    *last_sample = new_last_sample;
    *last_media = new_last_media;
    Ok(())
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

/// Takes the blocks that are due out of `pending`: every full block, and all of a key's
/// samples once the first of them is `MAX_TAIL_SPAN` rows behind `last_seq`.
fn seal(pending: &mut FxHashMap<i64, Vec<Stored>>, last_seq: i64) -> Vec<(i64, Vec<Stored>)> {
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

fn write_blocks(conn: &Connection, blocks: &[(i64, Vec<Stored>)]) -> rusqlite::Result<()> {
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
            block::encode(samples),
        ))?;
    }
    Ok(())
}

/// The samples committed after each key's last block, read back from `series` (the first
/// commit after opening a run.db). Keys with more than a block's worth (a run.db written
/// before blocks existed) get their blocks written here, so memory stays bounded.
fn load_pending(
    conn: &Connection,
    key_ids: &FxHashMap<Arc<str>, i64>,
    last_sample: i64,
) -> rusqlite::Result<FxHashMap<i64, Vec<Stored>>> {
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
    let mut pending: FxHashMap<i64, Vec<Stored>> = FxHashMap::default();
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
            pending.entry(key_id).or_default().push(Stored {
                seq,
                step: row.get(2)?,
                time: row.get(3)?,
                value: from_sql_value(row.get(4)?),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples::SampleRow;
    use crate::store::RunDb;
    use crate::store::rundb::buckets::{Axis, bucketize};
    use crate::store::rundb::reads::Reader;

    fn samples(key_id: i64, seqs: impl Iterator<Item = i64>, pending: &mut FxHashMap<i64, Vec<Stored>>) {
        for seq in seqs {
            pending.entry(key_id).or_default().push(Stored {
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

    fn pending_free(a: i64, b: i64) -> Vec<Stored> {
        (a..=b)
            .map(|seq| Stored {
                seq,
                step: seq,
                time: seq,
                value: 0.0,
            })
            .collect()
    }

    #[tokio::test]
    async fn commits_write_rows_and_blocks_that_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.db");
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

        let conn = Connection::open(&path).unwrap();
        let one = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
        assert_eq!(one("SELECT count(*) FROM scalar WHERE key = 'a'"), n as i64);
        assert_eq!(
            one("SELECT sum(count) FROM series_block"),
            2 * (n / BLOCK_SAMPLES * BLOCK_SAMPLES) as i64
        );
        let reader = Reader::open(&path).unwrap();
        let points = reader
            .read_range("a", Axis::Step, Default::default(), usize::MAX)
            .unwrap()
            .unwrap();
        assert_eq!(points.len(), n);
        assert!(
            points
                .iter()
                .enumerate()
                .all(|(i, p)| p.step == i as i64 && p.time == 1000 + i as i64)
        );
        assert!(points[7].value.is_nan() && points[8].value == 8.0);
        let (count, buckets) = reader.read_buckets("b", Axis::Step, Default::default(), 10).unwrap();
        assert_eq!(count, n as u64);
        let b = reader
            .read_range("b", Axis::Step, Default::default(), usize::MAX)
            .unwrap()
            .unwrap();
        assert_eq!(buckets, bucketize(&b, Axis::Step, None, None, 10));
    }
}
