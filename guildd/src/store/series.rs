//! Reading series samples from run.db: ranges on the step or time axis, min/max/last
//! buckets computed at query time from every stored sample, and a cursor (the series
//! rowid) for following new samples exactly once.

use std::path::Path;

use sqlx::Row;
use sqlx::sqlite::SqliteConnection;

use crate::error::{Error, Result};

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

/// Samples of `key` within [min, max] on the axis, ordered by the axis (then commit order).
/// A sample without a step counts as step 0.
pub async fn read_range(
    conn: &mut SqliteConnection,
    path: &Path,
    key: &str,
    axis: Axis,
    min: Option<f64>,
    max: Option<f64>,
) -> Result<Vec<Point>> {
    let column = match axis {
        Axis::Step => "coalesce(s.step, 0)",
        Axis::Time => "s.time",
    };
    let sql = format!(
        "SELECT s.time, coalesce(s.step, 0), s.value FROM series s JOIN series_key k ON k.id = s.key_id \
         WHERE k.key = ?1 AND {column} >= ?2 AND {column} <= ?3 ORDER BY {column}, s.rowid"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(key)
        .bind(min.unwrap_or(f64::NEG_INFINITY))
        .bind(max.unwrap_or(f64::INFINITY))
        .fetch_all(conn)
        .await
        .map_err(Error::db(path))?;
    rows.iter()
        .map(|r| {
            Ok(Point {
                time: r.try_get(0)?,
                step: r.try_get(1)?,
                value: super::from_sql_value(r.try_get(2)?),
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(Error::db(path))
}

/// At most `n` buckets of equal width spanning [lo, hi] (the range asked for, or the
/// samples' own extent). Empty buckets are left out. NaN samples count, and are the
/// `last` when last, but never the min or max (those are NaN only if all are NaN).
/// `points` must be ordered by the axis.
pub fn bucketize(points: &[Point], axis: Axis, lo: Option<f64>, hi: Option<f64>, n: u32) -> Vec<Bucket> {
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return Vec::new();
    };
    let lo = lo.filter(|v| v.is_finite()).unwrap_or(first.x(axis));
    let hi = hi.filter(|v| v.is_finite()).unwrap_or(last.x(axis));
    let n = n.max(1) as usize;
    let width = if hi > lo { (hi - lo) / n as f64 } else { 1.0 };
    let mut buckets: Vec<Bucket> = Vec::new();
    let mut current: Option<(usize, Bucket)> = None;
    for p in points {
        let x = p.x(axis);
        let index = (((x - lo) / width).floor().max(0.0) as usize).min(n - 1);
        match &mut current {
            Some((i, b)) if *i == index => {
                b.min = b.min.min(p.value);
                b.max = b.max.max(p.value);
                b.last = p.value;
                b.last_step = p.step;
                b.last_time = p.time;
                b.count += 1;
            }
            _ => {
                if let Some((_, b)) = current.take() {
                    buckets.push(b);
                }
                let start = lo + index as f64 * width;
                current = Some((
                    index,
                    Bucket {
                        x_start: start,
                        x_end: if index + 1 == n { hi.max(start) } else { start + width },
                        min: p.value,
                        max: p.value,
                        last: p.value,
                        last_step: p.step,
                        last_time: p.time,
                        count: 1,
                    },
                ));
            }
        }
    }
    if let Some((_, b)) = current {
        buckets.push(b);
    }
    buckets
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
    fn all_nan_bucket_is_nan() {
        let p = points(3, |_| f64::NAN);
        let b = bucketize(&p, Axis::Step, None, None, 1);
        assert!(b[0].min.is_nan() && b[0].max.is_nan() && b[0].last.is_nan());
        assert_eq!(b[0].count, 3);
    }
}
