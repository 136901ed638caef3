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

/// What one commit writes: lines, samples, media and how far each captured file has been
/// read. `samples` get rowids first, then `series`, key after key.
#[derive(Default)]
pub struct Batch {
    pub output: Vec<OutputRow>,
    pub samples: Vec<SampleRow>,
    pub series: Vec<KeySamples>,
    pub media: Vec<MediaRow>,
    pub offsets: Vec<(String, u64)>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.output.is_empty() && self.sample_count() == 0 && self.media.is_empty() && self.offsets.is_empty()
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
        self.media.extend(later.media);
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

/// The kinds of media event files hold; each has a table of its own in run.db.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MediaKind {
    Image,
    Audio,
    Histogram,
    Text,
    PrCurve,
}

impl MediaKind {
    pub const ALL: [MediaKind; 5] = [
        MediaKind::Image,
        MediaKind::Audio,
        MediaKind::Histogram,
        MediaKind::Text,
        MediaKind::PrCurve,
    ];

    /// Its table in run.db, and its name in messages and URLs.
    pub fn table(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Audio => "audio",
            MediaKind::Histogram => "histogram",
            MediaKind::Text => "text",
            MediaKind::PrCurve => "pr_curve",
        }
    }

    pub fn from_table(name: &str) -> Option<MediaKind> {
        MediaKind::ALL.into_iter().find(|k| k.table() == name)
    }
}

/// A histogram as TensorBoard keeps it: buckets of (left edge, right edge, count), with the
/// TF1 summary's min, max, count and sum where the writer gave them (else from the
/// buckets; `sum` NaN when unknown).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histogram {
    pub min: f64,
    pub max: f64,
    pub count: f64,
    pub sum: f64,
    pub buckets: Vec<[f64; 3]>,
}

/// A PR curve at one step: per threshold (`i / (n - 1)`), the counts and the precision
/// and recall, as TensorBoard's pr_curves plugin writes them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PrCurve {
    pub thresholds: Vec<f64>,
    pub tp: Vec<f64>,
    pub fp: Vec<f64>,
    pub tn: Vec<f64>,
    pub fn_: Vec<f64>,
    pub precision: Vec<f64>,
    pub recall: Vec<f64>,
}

/// What one media item holds.
#[derive(Clone, Debug, PartialEq)]
pub enum MediaData {
    /// Encoded bytes (PNG, JPEG, GIF, WebP or BMP, as `mime` says) and the size they
    /// decode to.
    Image {
        width: u32,
        height: u32,
        mime: &'static str,
        bytes: Vec<u8>,
    },
    /// Encoded audio (WAV from every writer we know), with what the writer said of it.
    Audio {
        sample_rate: f64,
        channels: u32,
        frames: u64,
        mime: String,
        bytes: Vec<u8>,
    },
    Histogram(Histogram),
    /// Markdown, as the text plugin renders it (a string tensor of several elements
    /// becomes a table).
    Text(String),
    PrCurve(PrCurve),
}

impl MediaData {
    pub fn kind(&self) -> MediaKind {
        match self {
            MediaData::Image { .. } => MediaKind::Image,
            MediaData::Audio { .. } => MediaKind::Audio,
            MediaData::Histogram(_) => MediaKind::Histogram,
            MediaData::Text(_) => MediaKind::Text,
            MediaData::PrCurve(_) => MediaKind::PrCurve,
        }
    }
}

/// One media item of a tag (keyed like series: `tf/<subdir>/<tag>`) at a step; `index`
/// numbers the items of one summary value (a batch of images).
#[derive(Clone, Debug)]
pub struct MediaRow {
    pub key: Arc<str>,
    pub step: i64,
    pub time: i64,
    pub index: u32,
    pub data: MediaData,
}
