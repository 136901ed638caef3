//! What a run records, as it travels from the collectors (output tailer, event files,
//! stats sampler) to run.db and back out to readers. These types belong to no one's
//! storage: collectors make them, `store::rundb` writes and reads them.

use std::sync::Arc;

/// One output line as captured.
pub struct OutputRow {
    pub time: i64,
    pub stream: &'static str,
    pub line: String,
}

/// One sample of a key, as a collector makes it.
#[derive(Clone, Debug)]
pub struct SampleRow {
    /// Shared: a collector makes each key once and hands out clones of it.
    pub key: Arc<str>,
    pub step: Option<i64>,
    pub time: i64,
    pub value: f64,
}

/// One sample of a known key, as collected (a sample may have no step).
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

/// One sample as run.db gives it back: with its cursor (`seq`, the sample's rowid in
/// `series`, which orders samples by commit), and a missing step read as 0.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stored {
    pub seq: i64,
    pub step: i64,
    pub time: i64,
    pub value: f64,
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

    /// Every sample in commit order: `samples`, then `series` key after key.
    pub fn each_sample(&self) -> impl Iterator<Item = (&Arc<str>, Point)> {
        self.samples
            .iter()
            .map(|s| {
                (
                    &s.key,
                    Point {
                        step: s.step,
                        time: s.time,
                        value: s.value,
                    },
                )
            })
            .chain(
                self.series
                    .iter()
                    .flat_map(|k| k.points.iter().map(move |p| (&k.key, *p))),
            )
    }
}
