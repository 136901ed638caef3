//! `guild.d/run.db`: one run's attrs, flags, output lines and series samples.
//! The run's own task holds the only writing connection; readers open their own.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use sqlx::sqlite::{Sqlite, SqliteArguments, SqliteConnection};
use sqlx::{Arguments, Connection, QueryBuilder, Row};

use crate::error::{Error, Result};

pub struct OutputRow {
    pub time: i64,
    pub stream: &'static str,
    pub line: String,
}

#[derive(Clone, Debug)]
pub struct SampleRow {
    pub key: String,
    pub step: Option<i64>,
    pub time: i64,
    pub value: f64,
}

/// What one commit writes: lines, samples and how far each captured file has been read.
#[derive(Default)]
pub struct Batch {
    pub output: Vec<OutputRow>,
    pub samples: Vec<SampleRow>,
    pub offsets: Vec<(String, u64)>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.output.is_empty() && self.samples.is_empty() && self.offsets.is_empty()
    }
}

/// Samples per full block in `series_block`.
pub const BLOCK_SAMPLES: usize = 1024;
/// A key's samples not yet in a block are sealed into a (short) block once this many rows
/// have been committed after the first of them: reading a key's unblocked tail from
/// `series` then never scans more than about this many rows.
pub const MAX_TAIL_SPAN: i64 = 16_384;
/// Rows per multi-row INSERT into `series` (5 parameters each; SQLite allows 32,766).
const SERIES_CHUNK: usize = 4_000;
/// Rows per multi-row INSERT into `series_block` (9 parameters each).
const BLOCK_CHUNK: usize = 1_000;
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
    conn: SqliteConnection,
    key_ids: HashMap<String, i64>,
    last_seq: i64,
    last_sample: i64,
    /// Per key id, the committed samples that are not in a block yet. `None` until the
    /// first commit with samples reads them (and after a failed commit): a RunDb opened
    /// only to write attrs never touches blocks.
    pending: Option<HashMap<i64, Vec<BlockSample>>>,
    /// `INSERT INTO series ...` for a full chunk, built once.
    series_sql: String,
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

    pub async fn put_attrs(&mut self, attrs: &[(String, String)]) -> Result<()> {
        put_pairs(
            &mut self.conn,
            &self.path,
            "INSERT OR REPLACE INTO attr (name, value) ",
            attrs,
        )
        .await
    }

    pub async fn put_flags(&mut self, flags: &[(String, String)]) -> Result<()> {
        put_pairs(
            &mut self.conn,
            &self.path,
            "INSERT OR REPLACE INTO flag (name, value) ",
            flags,
        )
        .await
    }

    /// Replaces the counts of non-scalar event summaries: (key, kind, count).
    pub async fn put_event_summaries(&mut self, rows: &[(String, String, u64)]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut insert = QueryBuilder::new("INSERT OR REPLACE INTO event_summary (key, kind, count) ");
        insert.push_values(rows, |mut row, (key, kind, count)| {
            row.push_bind(key).push_bind(kind).push_bind(*count as i64);
        });
        insert
            .build()
            .execute(&mut self.conn)
            .await
            .map_err(Error::db(&self.path))?;
        Ok(())
    }

    pub async fn attr(&mut self, name: &str) -> Result<Option<String>> {
        sqlx::query_scalar("SELECT value FROM attr WHERE name = ?")
            .bind(name)
            .fetch_optional(&mut self.conn)
            .await
            .map_err(Error::db(&self.path))
    }

    pub async fn offsets(&mut self) -> Result<HashMap<String, u64>> {
        let rows = sqlx::query("SELECT file, offset FROM tail_offset")
            .fetch_all(&mut self.conn)
            .await
            .map_err(self.err())?;
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
    pub async fn commit(&mut self, batch: &Batch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let result = self.try_commit(batch).await;
        if result.is_err() {
            // Whatever was rolled back, the next commit starts again from run.db.
            self.pending = None;
        }
        result
    }

    async fn try_commit(&mut self, batch: &Batch) -> Result<()> {
        let path = self.path.clone();
        let err = || Error::db(&path);
        let mut tx = self.conn.begin().await.map_err(err())?;
        for chunk in batch.output.chunks(800) {
            let mut insert = QueryBuilder::new("INSERT INTO output (time, stream, line) ");
            insert.push_values(chunk, |mut row, line| {
                row.push_bind(line.time).push_bind(line.stream).push_bind(&line.line);
            });
            insert.build().execute(&mut *tx).await.map_err(err())?;
        }
        let mut last_sample = self.last_sample;
        if !batch.samples.is_empty() {
            let mut pending = match self.pending.take() {
                Some(pending) => pending,
                None => load_pending(&mut tx, &path, &self.key_ids, self.last_sample).await?,
            };
            let mut ids = Vec::with_capacity(batch.samples.len());
            for sample in &batch.samples {
                let id = match self.key_ids.get(&sample.key) {
                    Some(id) => *id,
                    None => {
                        let id: i64 = sqlx::query_scalar(
                            "INSERT INTO series_key (key) VALUES (?) ON CONFLICT (key) DO UPDATE SET key = excluded.key RETURNING id",
                        )
                        .bind(&sample.key)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(err())?;
                        self.key_ids.insert(sample.key.clone(), id);
                        id
                    }
                };
                ids.push(id);
            }
            let first_seq = self.last_sample + 1;
            for (n, (samples, ids)) in batch
                .samples
                .chunks(SERIES_CHUNK)
                .zip(ids.chunks(SERIES_CHUNK))
                .enumerate()
            {
                let partial;
                let sql = if samples.len() == SERIES_CHUNK {
                    &self.series_sql
                } else {
                    partial = series_insert_sql(samples.len());
                    &partial
                };
                let mut args = SqliteArguments::default();
                let seq0 = first_seq + (n * SERIES_CHUNK) as i64;
                for (i, (s, id)) in samples.iter().zip(ids).enumerate() {
                    bind(&mut args, seq0 + i as i64).map_err(err())?;
                    bind(&mut args, *id).map_err(err())?;
                    bind(&mut args, s.step).map_err(err())?;
                    bind(&mut args, s.time).map_err(err())?;
                    bind(&mut args, super::sql_value(s.value)).map_err(err())?;
                }
                sqlx::query_with(sqlx::AssertSqlSafe(sql.as_str()), args)
                    .execute(&mut *tx)
                    .await
                    .map_err(err())?;
            }
            last_sample = self.last_sample + batch.samples.len() as i64;
            for (i, (s, id)) in batch.samples.iter().zip(&ids).enumerate() {
                pending.entry(*id).or_default().push(BlockSample {
                    seq: first_seq + i as i64,
                    step: s.step.unwrap_or(0),
                    time: s.time,
                    value: s.value,
                });
            }
            let blocks = seal(&mut pending, last_sample);
            write_blocks(&mut tx, &path, &blocks).await?;
            self.pending = Some(pending);
        }
        if !batch.offsets.is_empty() {
            let mut insert = QueryBuilder::new("INSERT OR REPLACE INTO tail_offset (file, offset) ");
            insert.push_values(&batch.offsets, |mut row, (file, offset)| {
                row.push_bind(file).push_bind(*offset as i64);
            });
            insert.build().execute(&mut *tx).await.map_err(err())?;
        }
        let last_seq: Option<i64> = if batch.output.is_empty() {
            Some(self.last_seq)
        } else {
            sqlx::query_scalar("SELECT max(seq) FROM output")
                .fetch_one(&mut *tx)
                .await
                .map_err(err())?
        };
        tx.commit().await.map_err(err())?;
        self.last_seq = last_seq.unwrap_or(0);
        self.last_sample = last_sample;
        Ok(())
    }

    pub async fn close(self) {
        let _ = self.conn.close().await;
    }
}

fn series_insert_sql(rows: usize) -> String {
    let mut sql = String::with_capacity(64 + rows * 12);
    sql.push_str("INSERT INTO series (rowid, key_id, step, time, value) VALUES ");
    for i in 0..rows {
        sql.push_str(if i == 0 { "(?,?,?,?,?)" } else { ",(?,?,?,?,?)" });
    }
    sql
}

fn bind<'q, T>(args: &mut SqliteArguments, value: T) -> Result<(), sqlx::Error>
where
    T: sqlx::Encode<'q, Sqlite> + sqlx::Type<Sqlite> + 'q,
{
    args.add(value).map_err(sqlx::Error::Encode)
}

/// Takes the blocks that are due out of `pending`: every full block, and all of a key's
/// samples once the first of them is `MAX_TAIL_SPAN` rows behind `last_seq`.
fn seal(pending: &mut HashMap<i64, Vec<BlockSample>>, last_seq: i64) -> Vec<(i64, Vec<BlockSample>)> {
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

async fn write_blocks(conn: &mut SqliteConnection, path: &Path, blocks: &[(i64, Vec<BlockSample>)]) -> Result<()> {
    for chunk in blocks.chunks(BLOCK_CHUNK) {
        let mut insert = QueryBuilder::new(
            "INSERT INTO series_block (key_id, first_seq, last_seq, count, min_step, max_step, min_time, max_time, data) ",
        );
        insert.push_values(chunk, |mut row, (key_id, samples)| {
            let (mut min_step, mut max_step) = (i64::MAX, i64::MIN);
            let (mut min_time, mut max_time) = (i64::MAX, i64::MIN);
            for s in samples {
                min_step = min_step.min(s.step);
                max_step = max_step.max(s.step);
                min_time = min_time.min(s.time);
                max_time = max_time.max(s.time);
            }
            row.push_bind(*key_id)
                .push_bind(samples.first().map_or(0, |s| s.seq))
                .push_bind(samples.last().map_or(0, |s| s.seq))
                .push_bind(samples.len() as i64)
                .push_bind(min_step)
                .push_bind(max_step)
                .push_bind(min_time)
                .push_bind(max_time)
                .push_bind(super::series::encode_block(samples));
        });
        insert.build().execute(&mut *conn).await.map_err(Error::db(path))?;
    }
    Ok(())
}

/// The samples committed after each key's last block, read back from `series` (the first
/// commit after opening a run.db). Keys with more than a block's worth (a run.db written
/// before blocks existed) get their blocks written here, so memory stays bounded.
async fn load_pending(
    conn: &mut SqliteConnection,
    path: &Path,
    key_ids: &HashMap<String, i64>,
    last_sample: i64,
) -> Result<HashMap<i64, Vec<BlockSample>>> {
    let err = || Error::db(path);
    let rows = sqlx::query("SELECT key_id, max(last_seq) FROM series_block GROUP BY key_id")
        .fetch_all(&mut *conn)
        .await
        .map_err(err())?;
    let mut sealed: HashMap<i64, i64> = HashMap::new();
    for row in rows {
        sealed.insert(row.try_get(0).map_err(err())?, row.try_get(1).map_err(err())?);
    }
    let mut from = key_ids
        .values()
        .map(|id| sealed.get(id).copied().unwrap_or(0))
        .min()
        .unwrap_or(last_sample);
    let mut pending: HashMap<i64, Vec<BlockSample>> = HashMap::new();
    while from < last_sample {
        let rows = sqlx::query(
            "SELECT rowid, key_id, coalesce(step, 0), time, value FROM series WHERE rowid > ? ORDER BY rowid LIMIT ?",
        )
        .bind(from)
        .bind(TAIL_READ)
        .fetch_all(&mut *conn)
        .await
        .map_err(err())?;
        let Some(last) = rows.last() else { break };
        let end: i64 = last.try_get(0).map_err(err())?;
        for row in &rows {
            let seq: i64 = row.try_get(0).map_err(err())?;
            let key_id: i64 = row.try_get(1).map_err(err())?;
            if seq <= sealed.get(&key_id).copied().unwrap_or(0) {
                continue;
            }
            pending.entry(key_id).or_default().push(BlockSample {
                seq,
                step: row.try_get(2).map_err(err())?,
                time: row.try_get(3).map_err(err())?,
                value: super::from_sql_value(row.try_get(4).map_err(err())?),
            });
        }
        let blocks = seal(&mut pending, end);
        write_blocks(&mut *conn, path, &blocks).await?;
        from = end;
    }
    Ok(pending)
}

async fn put_pairs(conn: &mut SqliteConnection, path: &Path, head: &str, pairs: &[(String, String)]) -> Result<()> {
    if pairs.is_empty() {
        return Ok(());
    }
    let mut insert = QueryBuilder::new(head);
    insert.push_values(pairs, |mut row, (name, value)| {
        row.push_bind(name).push_bind(value);
    });
    insert.build().execute(conn).await.map_err(Error::db(path))?;
    Ok(())
}

/// A read-only connection to a run's database, for requests.
pub async fn open_read(path: &Path) -> Result<SqliteConnection> {
    if !path.exists() {
        return Err(Error::NotFound(format!("run database {} is missing", path.display())));
    }
    SqliteConnection::connect_with(&super::options(path).read_only(true).create_if_missing(false))
        .await
        .map_err(Error::db(path))
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
