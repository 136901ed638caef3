//! Reading series samples from run.db: ranges on the step or time axis, min/max/last
//! buckets computed at query time from every stored sample, and a cursor (the series
//! rowid) for following new samples exactly once.
//!
//! A key's samples are read from its packed blocks (`series_block`, written with the
//! rows) plus the few rows after its last block, not row by row: a million samples are
//! about a thousand blob rows.

use std::path::Path;

use rusqlite::Connection;
use rusqlite::types::ValueRef;
use sqlx::Row;
use sqlx::sqlite::SqliteConnection;

use super::sqlite;
use crate::error::{Error, Result};
pub use crate::store::rundb::BlockSample;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Axis {
    Step,
    Time,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub time: i64,
    pub step: i64,
    pub value: f64,
}

impl Point {
    pub fn x(&self, axis: Axis) -> f64 {
        match axis {
            Axis::Step => self.step as f64,
            Axis::Time => self.time as f64,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Bucket {
    pub x_start: f64,
    pub x_end: f64,
    pub min: f64,
    pub max: f64,
    pub last: f64,
    pub last_step: i64,
    pub last_time: i64,
    pub count: u64,
}

/// The axis value of a sample.
fn x_of(s: &BlockSample, axis: Axis) -> i64 {
    match axis {
        Axis::Step => s.step,
        Axis::Time => s.time,
    }
}

/// Which samples of a key a read takes: those within [min, max] on the axis (open ends
/// for None) committed up to the cursor `until` (None: every one).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Bounds {
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub until: Option<i64>,
}

/// Samples of `key` within `bounds`, ordered by the axis (then commit order). A sample
/// without a step counts as step 0. None when there are more than `limit`.
pub fn read_range(
    conn: &Connection,
    path: &Path,
    key: &str,
    axis: Axis,
    bounds: Bounds,
    limit: usize,
) -> Result<Option<Vec<Point>>> {
    let Some(mut samples) = read_samples(conn, path, key, axis, bounds, limit)? else {
        return Ok(None);
    };
    // Stable: samples come in commit order, which breaks ties on the axis.
    samples.sort_by_key(|s| x_of(s, axis));
    Ok(Some(
        samples
            .iter()
            .map(|s| Point {
                time: s.time,
                step: s.step,
                value: s.value,
            })
            .collect(),
    ))
}

/// Samples of `key` within `bounds`, in commit order (`seq` is the rowid): its blocks
/// (those that reach into the range), then the rows after its last block. None when
/// there are more than `limit` (found holding at most a block more than that).
pub fn read_samples(
    conn: &Connection,
    path: &Path,
    key: &str,
    axis: Axis,
    bounds: Bounds,
    limit: usize,
) -> Result<Option<Vec<BlockSample>>> {
    let Some(key_id) = key_id(conn, path, key)? else {
        return Ok(Some(Vec::new()));
    };
    let range = Range::new(axis, bounds);
    let mut out = Vec::new();
    let mut sealed = 0;
    if has_blocks(conn, path)? {
        sealed = each_block(conn, path, key_id, &range, |first_seq, data| {
            if out.len() > limit {
                // Over: the rest is only walked past, for `sealed`.
                return Ok(());
            }
            if decode_block(first_seq, data, |s| {
                if range.holds(&s) {
                    out.push(s);
                }
            }) {
                Ok(())
            } else {
                Err(malformed(path, key, first_seq))
            }
        })?;
    }
    if out.len() > limit {
        return Ok(None);
    }
    read_tail(conn, path, key_id, sealed, |s| {
        if range.holds(&s) {
            out.push(s);
        }
    })?;
    Ok((out.len() <= limit).then_some(out))
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

    fn holds(&self, s: &BlockSample) -> bool {
        let x = x_of(s, self.axis) as f64;
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

/// Calls `f(first_seq, data)` for each of the key's blocks that reaches into the range,
/// in commit order, with the blob as SQLite holds it (not copied). Returns the last rowid
/// in any of the key's blocks (0 for none): rows after it are the key's tail. Callers
/// check `has_blocks` first.
fn each_block(
    conn: &Connection,
    path: &Path,
    key_id: i64,
    range: &Range,
    mut f: impl FnMut(i64, &[u8]) -> Result<()>,
) -> Result<i64> {
    let err = sqlite(path);
    let (min_col, max_col) = range.columns();
    let mut stmt = conn
        .prepare(&format!(
            "SELECT first_seq, last_seq, CASE WHEN {max_col} >= ?2 AND {min_col} <= ?3 AND first_seq <= ?4 THEN data END \
             FROM series_block WHERE key_id = ?1 ORDER BY first_seq"
        ))
        .map_err(err)?;
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

/// Packs one key's samples (in commit order) for `series_block.data`: per sample a varint
/// rowid delta (from the block's first_seq), zigzag varint step and time deltas, and the
/// value's 8 little-endian bytes.
pub fn encode_block(samples: &[BlockSample]) -> Vec<u8> {
    let mut out = Vec::with_capacity(samples.len() * 12);
    let (mut seq, mut step, mut time) = match samples.first() {
        Some(s) => (s.seq, 0i64, 0i64),
        None => return out,
    };
    for s in samples {
        put_varint(&mut out, s.seq.wrapping_sub(seq) as u64);
        put_varint(&mut out, zigzag(s.step.wrapping_sub(step)));
        put_varint(&mut out, zigzag(s.time.wrapping_sub(time)));
        out.extend_from_slice(&s.value.to_bits().to_le_bytes());
        (seq, step, time) = (s.seq, s.step, s.time);
    }
    out
}

/// Unpacks [`encode_block`]'s bytes. False if they are malformed (what came before was
/// handed out).
pub fn decode_block(first_seq: i64, mut data: &[u8], mut f: impl FnMut(BlockSample)) -> bool {
    let (mut seq, mut step, mut time) = (first_seq, 0i64, 0i64);
    while !data.is_empty() {
        let (Some(dseq), Some(dstep), Some(dtime)) =
            (get_varint(&mut data), get_varint(&mut data), get_varint(&mut data))
        else {
            return false;
        };
        let Some((value, rest)) = data.split_first_chunk::<8>() else {
            return false;
        };
        data = rest;
        seq = seq.wrapping_add(dseq as i64);
        step = step.wrapping_add(unzigzag(dstep));
        time = time.wrapping_add(unzigzag(dtime));
        f(BlockSample {
            seq,
            step,
            time,
            value: f64::from_bits(u64::from_le_bytes(*value)),
        });
    }
    true
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[inline(always)]
fn get_varint(data: &mut &[u8]) -> Option<u64> {
    // Most deltas fit one byte.
    if let Some((&b, rest)) = data.split_first()
        && b < 0x80
    {
        *data = rest;
        return Some(u64::from(b));
    }
    let mut v = 0u64;
    for (i, &b) in data.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            *data = &data[i + 1..];
            return Some(v);
        }
    }
    None
}

/// At most `n` buckets of equal width spanning [lo, hi] (the range asked for, or the
/// samples' own extent). Empty buckets are left out. NaN samples count, and are the
/// `last` when last, but never the min or max (those are NaN only if all are NaN).
/// `points` must be ordered by the axis.
pub fn bucketize(points: &[Point], axis: Axis, lo: Option<f64>, hi: Option<f64>, n: u32) -> Vec<Bucket> {
    let samples: Vec<BlockSample> = points
        .iter()
        .enumerate()
        .map(|(i, p)| BlockSample {
            seq: i as i64,
            step: p.step,
            time: p.time,
            value: p.value,
        })
        .collect();
    bucketize_samples(&samples, axis, lo, hi, n)
}

/// [`bucketize`] for samples in any order: a bucket's `last` is its sample with the
/// greatest axis value, then the greatest `seq` (the order [`read_range`] returns).
pub fn bucketize_samples(samples: &[BlockSample], axis: Axis, lo: Option<f64>, hi: Option<f64>, n: u32) -> Vec<Bucket> {
    let Some(first) = samples.first() else {
        return Vec::new();
    };
    let (mut min_x, mut max_x) = (x_of(first, axis), x_of(first, axis));
    for s in samples {
        let x = x_of(s, axis);
        min_x = min_x.min(x);
        max_x = max_x.max(x);
    }
    let mut bucketer = Bucketer::new(axis, lo, hi, min_x, max_x, n);
    for s in samples {
        bucketer.add(s);
    }
    bucketer.finish()
}

/// Min, max, last and count per bucket, fed one sample at a time in any order.
pub struct Bucketer {
    axis: Axis,
    lo: f64,
    hi: f64,
    width: f64,
    accs: Vec<Option<Acc>>,
}

struct Acc {
    min: f64,
    max: f64,
    last: BlockSample,
    last_x: i64,
    count: u64,
}

impl Bucketer {
    /// `n` buckets over [lo, hi], or where those are not given (or not finite), over the
    /// samples' extent [min_x, max_x].
    pub fn new(axis: Axis, lo: Option<f64>, hi: Option<f64>, min_x: i64, max_x: i64, n: u32) -> Bucketer {
        let lo = lo.filter(|v| v.is_finite()).unwrap_or(min_x as f64);
        let hi = hi.filter(|v| v.is_finite()).unwrap_or(max_x as f64);
        let n = n.max(1) as usize;
        let width = if hi > lo { (hi - lo) / n as f64 } else { 1.0 };
        let mut accs = Vec::new();
        accs.resize_with(n, || None);
        Bucketer {
            axis,
            lo,
            hi,
            width,
            accs,
        }
    }

    #[inline]
    pub fn add(&mut self, s: &BlockSample) {
        let n = self.accs.len();
        let x = x_of(s, self.axis);
        // `as usize` truncates toward zero and saturates (NaN and negatives give 0): the
        // same as floor().max(0.0) here, without a libm call per sample.
        let index = ((((x as f64) - self.lo) / self.width) as usize).min(n - 1);
        match &mut self.accs[index] {
            Some(a) => {
                // f64::min/max ignore NaN unless both are NaN.
                a.min = a.min.min(s.value);
                a.max = a.max.max(s.value);
                if (x, s.seq) > (a.last_x, a.last.seq) {
                    a.last = *s;
                    a.last_x = x;
                }
                a.count += 1;
            }
            slot => {
                *slot = Some(Acc {
                    min: s.value,
                    max: s.value,
                    last: *s,
                    last_x: x,
                    count: 1,
                })
            }
        }
    }

    /// The non-empty buckets in axis order, in a vector of their own size: collected in
    /// place, they kept the whole array's allocation (7 MB for 100,000 buckets), for
    /// every key of a request.
    pub fn finish(self) -> Vec<Bucket> {
        let n = self.accs.len();
        let (lo, hi, width) = (self.lo, self.hi, self.width);
        let mut out = Vec::with_capacity(self.accs.iter().filter(|a| a.is_some()).count());
        out.extend(self.accs.into_iter().enumerate().filter_map(|(index, acc)| {
            let a = acc?;
            let start = lo + index as f64 * width;
            Some(Bucket {
                x_start: start,
                x_end: if index + 1 == n { hi.max(start) } else { start + width },
                min: a.min,
                max: a.max,
                last: a.last.value,
                last_step: a.last.step,
                last_time: a.last.time,
                count: a.count,
            })
        }));
        out
    }
}

/// `n` buckets of `key` within `bounds` (see [`bucketize`]) and how many samples they
/// hold, straight from the stored blocks: the samples' extent comes from the blocks'
/// bounds, and each block is decoded into the buckets without collecting the samples.
pub fn read_buckets(
    conn: &Connection,
    path: &Path,
    key: &str,
    axis: Axis,
    bounds: Bounds,
    n: u32,
) -> Result<(u64, Vec<Bucket>)> {
    let Some(key_id) = key_id(conn, path, key)? else {
        return Ok((0, Vec::new()));
    };
    let range = Range::new(axis, bounds);
    // The extent first: from the bounds of the blocks that reach into the range (a block's
    // lowest sample is in the range unless the range has a finite lower bound, and then
    // that bound is used), and from the tail's samples. A block that runs past `until`
    // widens the extent by what it holds after it: buckets there stay empty.
    let (mut min_x, mut max_x) = (i64::MAX, i64::MIN);
    let mut sealed = 0i64;
    let blocks = has_blocks(conn, path)?;
    if blocks {
        let (min_col, max_col) = range.columns();
        let mut stmt = conn
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
    read_tail(conn, path, key_id, sealed, |s| {
        if range.holds(&s) {
            tail.push(s);
        }
    })?;
    for s in &tail {
        min_x = min_x.min(x_of(s, axis));
        max_x = max_x.max(x_of(s, axis));
    }
    if min_x > max_x {
        return Ok((0, Vec::new()));
    }
    let mut bucketer = Bucketer::new(axis, bounds.min, bounds.max, min_x, max_x, n);
    let mut count = 0u64;
    if blocks {
        each_block(conn, path, key_id, &range, |first_seq, data| {
            let ok = decode_block(first_seq, data, |s| {
                if range.holds(&s) {
                    bucketer.add(&s);
                    count += 1;
                }
            });
            if ok {
                Ok(())
            } else {
                Err(malformed(path, key, first_seq))
            }
        })?;
    }
    for s in &tail {
        bucketer.add(s);
    }
    count += tail.len() as u64;
    Ok((count, bucketer.finish()))
}

fn malformed(path: &Path, key: &str, first_seq: i64) -> Error {
    Error::Invalid(format!(
        "{}: series block of {key} at {first_seq} is malformed",
        path.display()
    ))
}

/// Opens run.db for GetSeries on this (blocking) thread (see `store::open_mapped`):
/// much cheaper than an sqlx connection, which starts a thread of its own.
pub fn open_blocking(path: &Path) -> Result<Connection> {
    if !path.exists() {
        return Err(Error::NotFound(format!("run database {} is missing", path.display())));
    }
    super::open_mapped(path)
}

/// Every series key of a run.db, sorted.
pub fn keys(conn: &Connection, path: &Path) -> Result<Vec<String>> {
    let mut stmt = conn
        .prepare("SELECT key FROM series_key ORDER BY key")
        .map_err(sqlite(path))?;
    let keys = stmt
        .query_map([], |row| row.get(0))
        .map_err(sqlite(path))?
        .collect::<rusqlite::Result<Vec<String>>>()
        .map_err(sqlite(path))?;
    Ok(keys)
}

/// A run.db's attributes (`attr`), in the order written.
pub fn attrs(conn: &Connection, path: &Path) -> Result<Vec<(String, String)>> {
    let mut stmt = conn
        .prepare("SELECT name, value FROM attr ORDER BY rowid")
        .map_err(sqlite(path))?;
    let attrs = stmt
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .map_err(sqlite(path))?
        .collect::<rusqlite::Result<Vec<(String, String)>>>()
        .map_err(sqlite(path))?;
    Ok(attrs)
}

fn key_id(conn: &Connection, path: &Path, key: &str) -> Result<Option<i64>> {
    let mut stmt = conn
        .prepare("SELECT id FROM series_key WHERE key = ?1")
        .map_err(sqlite(path))?;
    let mut rows = stmt.query([key]).map_err(sqlite(path))?;
    match rows.next().map_err(sqlite(path))? {
        Some(row) => Ok(Some(row.get(0).map_err(sqlite(path))?)),
        None => Ok(None),
    }
}

/// A run.db that no writer has opened since blocks came in has no block table yet.
fn has_blocks(conn: &Connection, path: &Path) -> Result<bool> {
    conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'series_block'",
        [],
        |r| r.get(0),
    )
    .map_err(sqlite(path))
}

/// A key's samples after `sealed` (its last block's last rowid), in commit order.
fn read_tail(conn: &Connection, path: &Path, key_id: i64, sealed: i64, mut f: impl FnMut(BlockSample)) -> Result<()> {
    let mut stmt = conn
        .prepare(
            "SELECT rowid, coalesce(step, 0), time, value FROM series WHERE rowid > ?1 AND key_id = ?2 ORDER BY rowid",
        )
        .map_err(sqlite(path))?;
    let mut rows = stmt.query((sealed, key_id)).map_err(sqlite(path))?;
    while let Some(row) = rows.next().map_err(sqlite(path))? {
        f(BlockSample {
            seq: row.get(0).map_err(sqlite(path))?,
            step: row.get(1).map_err(sqlite(path))?,
            time: row.get(2).map_err(sqlite(path))?,
            value: super::from_sql_value(row.get(3).map_err(sqlite(path))?),
        });
    }
    Ok(())
}

/// The cursor of the last committed sample (0: none yet): WatchSeries from it sends only
/// what commits after, and GetSeries up to it reads everything before.
pub async fn last_cursor(conn: &mut SqliteConnection, path: &Path) -> Result<i64> {
    sqlx::query_scalar("SELECT coalesce(max(rowid), 0) FROM series")
        .fetch_one(conn)
        .await
        .map_err(Error::db(path))
}

pub struct CursorSample {
    pub cursor: i64,
    pub key: String,
    pub point: Point,
}

/// Samples committed after `cursor` (the series rowid), in commit order; `keys` empty: all.
pub async fn read_after(
    conn: &mut SqliteConnection,
    path: &Path,
    cursor: i64,
    keys: &[String],
    limit: i64,
) -> Result<Vec<CursorSample>> {
    let mut query = sqlx::QueryBuilder::new(
        "SELECT s.rowid, k.key, s.time, coalesce(s.step, 0), s.value FROM series s JOIN series_key k ON k.id = s.key_id WHERE s.rowid > ",
    );
    query.push_bind(cursor);
    if !keys.is_empty() {
        query.push(" AND k.key IN (");
        let mut list = query.separated(", ");
        for key in keys {
            list.push_bind(key);
        }
        list.push_unseparated(")");
    }
    query.push(" ORDER BY s.rowid LIMIT ").push_bind(limit);
    let rows = query.build().fetch_all(conn).await.map_err(Error::db(path))?;
    rows.iter()
        .map(|r| {
            Ok(CursorSample {
                cursor: r.try_get(0)?,
                key: r.try_get(1)?,
                point: Point {
                    time: r.try_get(2)?,
                    step: r.try_get(3)?,
                    value: super::from_sql_value(r.try_get(4)?),
                },
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(Error::db(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(n: i64, f: impl Fn(i64) -> f64) -> Vec<Point> {
        (0..n)
            .map(|i| Point {
                time: 1000 + i * 10,
                step: i,
                value: f(i),
            })
            .collect()
    }

    /// The obvious way: assign each point to its bucket, then aggregate each bucket.
    fn brute(points: &[Point], axis: Axis, lo: f64, hi: f64, n: usize) -> Vec<(usize, f64, f64, f64, u64)> {
        let width = if hi > lo { (hi - lo) / n as f64 } else { 1.0 };
        let mut out: Vec<(usize, f64, f64, f64, u64)> = Vec::new();
        for i in 0..n {
            let members: Vec<&Point> = points
                .iter()
                .filter(|p| (((p.x(axis) - lo) / width).floor().max(0.0) as usize).min(n - 1) == i)
                .collect();
            if members.is_empty() {
                continue;
            }
            let values = members.iter().map(|p| p.value);
            let min = values.clone().fold(f64::NAN, f64::min);
            let max = values.fold(f64::NAN, f64::max);
            out.push((
                i,
                min,
                max,
                members.last().map(|p| p.value).unwrap_or(f64::NAN),
                members.len() as u64,
            ));
        }
        out
    }

    fn check(points: &[Point], axis: Axis, n: u32) {
        let lo = points.first().unwrap().x(axis);
        let hi = points.last().unwrap().x(axis);
        let got = bucketize(points, axis, None, None, n);
        let want = brute(points, axis, lo, hi, n as usize);
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert!(
                g.min == w.1 || (g.min.is_nan() && w.1.is_nan()),
                "min {} vs {}",
                g.min,
                w.1
            );
            assert!(g.max == w.2 || (g.max.is_nan() && w.2.is_nan()));
            assert!(g.last == w.3 || (g.last.is_nan() && w.3.is_nan()));
            assert_eq!(g.count, w.4);
        }
        assert_eq!(got.iter().map(|b| b.count).sum::<u64>(), points.len() as u64);
    }

    #[test]
    fn buckets_match_brute_force() {
        let wave = points(10_000, |i| ((i as f64) * 0.37).sin() * (i % 17) as f64);
        for n in [1, 2, 7, 100, 1000, 20_000] {
            check(&wave, Axis::Step, n);
            check(&wave, Axis::Time, n);
        }
        check(&points(1, |_| 3.0), Axis::Step, 10);
        check(&points(5, |i| if i == 2 { f64::NAN } else { i as f64 }), Axis::Step, 2);
        check(
            &points(50, |i| if i % 3 == 0 { f64::INFINITY } else { -(i as f64) }),
            Axis::Step,
            4,
        );
    }

    #[test]
    fn buckets_respect_the_asked_range() {
        let p = points(100, |i| i as f64);
        let b = bucketize(&p[10..=20], Axis::Step, Some(0.0), Some(99.0), 10);
        assert_eq!(b.len(), 2);
        assert_eq!((b[0].min, b[0].max, b[0].count), (10.0, 19.0, 10));
        assert_eq!((b[1].min, b[1].last, b[1].count), (20.0, 20.0, 1));
        assert!(bucketize(&[], Axis::Step, None, None, 10).is_empty());
    }

    #[test]
    fn blocks_round_trip() {
        let samples: Vec<BlockSample> = (0..3000i64)
            .map(|i| BlockSample {
                seq: 5 + i * 3,
                step: if i % 7 == 0 { -i } else { i * 1000 },
                time: 1_795_691_008_000 + i * (i % 5) - 40,
                value: match i % 11 {
                    0 => f64::NAN,
                    1 => f64::INFINITY,
                    _ => (i as f64).sin(),
                },
            })
            .collect();
        let data = encode_block(&samples);
        let mut back = Vec::new();
        assert!(decode_block(samples[0].seq, &data, |s| back.push(s)));
        assert_eq!(back.len(), samples.len());
        for (a, b) in samples.iter().zip(&back) {
            assert_eq!((a.seq, a.step, a.time), (b.seq, b.step, b.time));
            assert_eq!(a.value.to_bits(), b.value.to_bits());
        }
        assert!(!decode_block(0, &data[..data.len() - 3], |_| {}), "truncated");
    }

    #[test]
    fn unordered_buckets_match_sorted_ones() {
        // Commit order is not axis order (steps reset, repeat); `last` follows (x, seq).
        let samples: Vec<BlockSample> = (0..5000i64)
            .map(|i| BlockSample {
                seq: i,
                step: (i * 7919) % 1013,
                time: 1000 + (i * 31) % 977,
                value: if i % 13 == 0 {
                    f64::NAN
                } else {
                    ((i as f64) * 0.37).sin()
                },
            })
            .collect();
        for axis in [Axis::Step, Axis::Time] {
            let mut sorted = samples.clone();
            sorted.sort_by_key(|s| x_of(s, axis));
            let points: Vec<Point> = sorted
                .iter()
                .map(|s| Point {
                    time: s.time,
                    step: s.step,
                    value: s.value,
                })
                .collect();
            for n in [1, 3, 100, 1000] {
                for (lo, hi) in [(None, None), (Some(100.0), Some(900.0))] {
                    let want = bucketize(&points, axis, lo, hi, n);
                    let got = bucketize_samples(&samples, axis, lo, hi, n);
                    assert_eq!(got.len(), want.len());
                    for (g, w) in got.iter().zip(&want) {
                        assert_eq!((g.x_start, g.x_end, g.count), (w.x_start, w.x_end, w.count));
                        assert_eq!((g.last_step, g.last_time), (w.last_step, w.last_time));
                        for (a, b) in [(g.min, w.min), (g.max, w.max), (g.last, w.last)] {
                            assert!(a == b || (a.is_nan() && b.is_nan()));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn all_nan_bucket_is_nan() {
        let p = points(3, |_| f64::NAN);
        let b = bucketize(&p, Axis::Step, None, None, 1);
        assert!(b[0].min.is_nan() && b[0].max.is_nan() && b[0].last.is_nan());
        assert_eq!(b[0].count, 3);
    }
}
