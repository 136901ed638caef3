//! A run's per-key series summaries (last, min, max, count, last step, last time): what
//! index.db's `run_series` holds, so listing and comparing never open run.db. Computed
//! one way, here, from samples in commit order: live as a run commits (its task), and
//! from every sample in run.db (`rundb::Reader::summaries`: an adopted or imported run).

use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::SeriesSummary;
use crate::samples::{Batch, Point};

/// Each key's summary, and whether it changed since it was last written to the index.
#[derive(Default)]
pub struct Summaries {
    by_key: FxHashMap<Arc<str>, (SeriesSummary, bool)>,
}

impl Summaries {
    /// Summaries rebuilt from run.db (an adopted run's), all still to be written to the
    /// index.
    pub fn rebuilt(summaries: Vec<SeriesSummary>) -> Summaries {
        Summaries {
            by_key: summaries
                .into_iter()
                .map(|s| (Arc::from(s.key.as_str()), (s, true)))
                .collect(),
        }
    }

    /// Adds every sample of a committed batch, in commit order.
    pub fn add_batch(&mut self, batch: &Batch) {
        for sample in &batch.samples {
            let point = Point {
                step: sample.step,
                time: sample.time,
                value: sample.value,
            };
            self.add(&sample.key, std::slice::from_ref(&point));
        }
        for series in &batch.series {
            self.add(&series.key, &series.points);
        }
    }

    /// Adds samples of one key, in commit order. `last` (and `last_time`) is the last
    /// sample's; NaN counts and can be `last`, but never becomes min or max; `last_step`
    /// is the last step a sample had.
    pub fn add(&mut self, key: &Arc<str>, points: &[Point]) {
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

    /// Every key's summary, by key.
    pub fn into_all(self) -> Vec<SeriesSummary> {
        let mut out: Vec<SeriesSummary> = self.by_key.into_values().map(|(summary, _)| summary).collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_counts_but_is_never_min_or_max() {
        let mut s = Summaries::default();
        let key: Arc<str> = "loss".into();
        for (v, step) in [
            (f64::NAN, Some(1)),
            (2.0, Some(2)),
            (-1.0, None),
            (f64::INFINITY, Some(4)),
            (f64::NAN, Some(5)),
        ] {
            s.add(
                &key,
                &[Point {
                    step,
                    time: 1,
                    value: v,
                }],
            );
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
