//! A run's per-key series summaries (last, min, max, count, last step), kept current as
//! samples commit and written to the index so listing never opens run.db.

use std::path::Path;
use std::sync::Arc;

use sqlx::Row;

use crate::error::{Error, Result};
use crate::fxhash::FxHashMap;
use crate::store::rundb::{self, KeySamples, Point, SampleRow};
use crate::store::{SeriesSummary, from_sql_value};

/// Each key's summary, and whether it changed since it was last written to the index.
#[derive(Default)]
pub struct Summaries {
    by_key: FxHashMap<Arc<str>, (SeriesSummary, bool)>,
}

impl Summaries {
    pub fn new(existing: Vec<SeriesSummary>) -> Summaries {
        Summaries {
            by_key: existing.into_iter().map(|s| (Arc::from(s.key.as_str()), (s, false))).collect(),
        }
    }

    /// Adds one sample. NaN counts and can be `last`, but never becomes min or max.
    pub fn add(&mut self, sample: &SampleRow) {
        let point = Point {
            step: sample.step,
            time: sample.time,
            value: sample.value,
        };
        self.add_points(&sample.key, std::slice::from_ref(&point));
    }

    /// Adds every sample of a `KeySamples`.
    pub fn add_series(&mut self, series: &KeySamples) {
        self.add_points(&series.key, &series.points);
    }

    fn add_points(&mut self, key: &Arc<str>, points: &[Point]) {
        if points.is_empty() {
            return;
        }
        // Looked up by reference: the key is shared only the first time it is seen.
        if !self.by_key.contains_key(key) {
            let summary = SeriesSummary {
                key: key.to_string(),
                last: f64::NAN,
                min: f64::NAN,
                max: f64::NAN,
                count: 0,
                last_step: None,
                last_time: 0,
            };
            self.by_key.insert(Arc::clone(key), (summary, true));
        }
        let Some((entry, changed)) = self.by_key.get_mut(key) else {
            return;
        };
        *changed = true;
        for point in points {
            entry.last = point.value;
            entry.min = entry.min.min(point.value);
            entry.max = entry.max.max(point.value);
            if point.step.is_some() {
                entry.last_step = point.step;
            }
            entry.last_time = point.time;
        }
        entry.count += points.len() as i64;
    }

    /// Every key's summary computed from the samples in run.db: the truth after a daemon
    /// died between committing samples and updating the index.
    pub async fn rebuild(run_db: &Path) -> Result<Vec<SeriesSummary>> {
        let mut conn = rundb::open_read(run_db).await?;
        let rows = sqlx::query(
            "SELECT k.key, count(*), min(s.value), max(s.value), max(s.time), \
               (SELECT value FROM series l WHERE l.key_id = k.id ORDER BY l.rowid DESC LIMIT 1), \
               (SELECT step FROM series l WHERE l.key_id = k.id AND l.step IS NOT NULL ORDER BY l.rowid DESC LIMIT 1) \
             FROM series_key k JOIN series s ON s.key_id = k.id GROUP BY k.id",
        )
        .fetch_all(&mut conn)
        .await
        .map_err(Error::db(run_db))?;
        rows.iter()
            .map(|r| {
                Ok(SeriesSummary {
                    key: r.try_get(0)?,
                    count: r.try_get(1)?,
                    min: from_sql_value(r.try_get(2)?),
                    max: from_sql_value(r.try_get(3)?),
                    last_time: r.try_get(4)?,
                    last: from_sql_value(r.try_get(5)?),
                    last_step: r.try_get(6)?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(Error::db(run_db))
    }

    /// The summaries changed since the last [`Summaries::written`], by key.
    pub fn changed(&self) -> Vec<SeriesSummary> {
        let mut out: Vec<SeriesSummary> = self
            .by_key
            .values()
            .filter(|(_, changed)| *changed)
            .map(|(summary, _)| summary.clone())
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }

    /// The summaries [`Summaries::changed`] returned are in the index (nothing was added
    /// since: the run's task does both).
    pub fn written(&mut self) {
        for (_, changed) in self.by_key.values_mut() {
            *changed = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(value: f64, step: Option<i64>) -> SampleRow {
        SampleRow {
            key: "loss".into(),
            step,
            time: 1,
            value,
        }
    }

    #[test]
    fn nan_counts_but_is_never_min_or_max() {
        let mut s = Summaries::default();
        for (v, step) in [
            (f64::NAN, Some(1)),
            (2.0, Some(2)),
            (-1.0, None),
            (f64::INFINITY, Some(4)),
            (f64::NAN, Some(5)),
        ] {
            s.add(&sample(v, step));
        }
        let changed = s.changed();
        s.written();
        assert_eq!(changed.len(), 1);
        let loss = &changed[0];
        assert_eq!(
            (loss.min, loss.max, loss.count, loss.last_step),
            (-1.0, f64::INFINITY, 5, Some(5))
        );
        assert!(loss.last.is_nan());
        assert!(s.changed().is_empty());
    }
}
