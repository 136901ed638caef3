//! `guild.d/run.db`: one run's attrs, flags, output lines and series samples.
//! The run's own task holds the only writing connection; readers open their own.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use sqlx::sqlite::SqliteConnection;
use sqlx::{Connection, QueryBuilder, Row};

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

pub struct RunDb {
    path: PathBuf,
    conn: SqliteConnection,
    key_ids: HashMap<String, i64>,
    last_seq: i64,
    last_sample: i64,
}

impl RunDb {
    /// Creates (or opens) the run's database and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<RunDb> {
        let mut conn = SqliteConnection::connect_with(&super::options(path))
            .await
            .map_err(Error::db(path))?;
        super::RUN_MIGRATOR
            .run_direct(None, &mut conn, false)
            .await
            .map_err(|source| Error::Migrate {
                path: path.to_path_buf(),
                source,
            })?;
        let mut db = RunDb {
            path: path.to_path_buf(),
            conn,
            key_ids: HashMap::new(),
            last_seq: 0,
            last_sample: 0,
        };
        let rows = sqlx::query("SELECT id, key FROM series_key")
            .fetch_all(&mut db.conn)
            .await
            .map_err(db.err())?;
        for row in rows {
            db.key_ids.insert(
                row.try_get("key").map_err(db.err())?,
                row.try_get("id").map_err(db.err())?,
            );
        }
        db.last_seq = sqlx::query_scalar::<_, Option<i64>>("SELECT max(seq) FROM output")
            .fetch_one(&mut db.conn)
            .await
            .map_err(db.err())?
            .unwrap_or(0);
        db.last_sample = sqlx::query_scalar::<_, Option<i64>>("SELECT max(rowid) FROM series")
            .fetch_one(&mut db.conn)
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
    /// what is committed.
    pub async fn commit(&mut self, batch: &Batch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
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
        for sample in &batch.samples {
            if !self.key_ids.contains_key(&sample.key) {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO series_key (key) VALUES (?) ON CONFLICT (key) DO UPDATE SET key = excluded.key RETURNING id",
                )
                .bind(&sample.key)
                .fetch_one(&mut *tx)
                .await
                .map_err(err())?;
                self.key_ids.insert(sample.key.clone(), id);
            }
        }
        for chunk in batch.samples.chunks(1000) {
            let mut insert = QueryBuilder::new("INSERT INTO series (key_id, step, time, value) ");
            insert.push_values(chunk, |mut row, s| {
                row.push_bind(self.key_ids.get(&s.key).copied().unwrap_or(0))
                    .push_bind(s.step)
                    .push_bind(s.time)
                    .push_bind(super::sql_value(s.value));
            });
            insert.build().execute(&mut *tx).await.map_err(err())?;
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
        let last_sample: Option<i64> = if batch.samples.is_empty() {
            Some(self.last_sample)
        } else {
            sqlx::query_scalar("SELECT max(rowid) FROM series")
                .fetch_one(&mut *tx)
                .await
                .map_err(err())?
        };
        tx.commit().await.map_err(err())?;
        self.last_seq = last_seq.unwrap_or(0);
        self.last_sample = last_sample.unwrap_or(0);
        Ok(())
    }

    pub async fn close(self) {
        let _ = self.conn.close().await;
    }
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
