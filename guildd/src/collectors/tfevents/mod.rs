//! Incremental reader for TensorFlow event files (`events.out.tfevents.*`): this module
//! owns the types its callers see (scalars, kinds of other values, issues, poll results);
//! the work is in its files:
//!
//! - `reader`: [`Reader`], the per-file state, and its poll: what a record's event holds,
//!   handed out or counted.
//! - `framing`: TFRecord framing: headers, data CRCs, the read window over the file, the
//!   scan for the next record after a corrupt length.
//! - `fast`: the common scalar-only event read straight from its bytes, with no
//!   protobuf decode and no allocation.
//! - `proto`: the subset of TensorFlow's messages the reader decodes, and tensors as
//!   scalars.
//! - `media`: images, histograms, audio, text and PR curves from summary values, in the
//!   forms TensorBoard's plugins read.
//!
//! An event file is a sequence of TFRecords whose data is a serialized
//! `tensorflow.Event`. A [`Reader`] keeps the offset of the next unread record of one
//! file; each [`Reader::poll`] reads the complete records that have been appended since,
//! hands scalars to a callback, keeps media items (images, audio, histograms, text, PR
//! curves) for [`Reader::take_media`] and counts every other summary value per tag and
//! [`Kind`]. A record that is still being written (fewer bytes present than its header
//! promises) is left for the next poll. Corrupt records are reported once as an
//! [`Issue`] and skipped.

mod fast;
mod framing;
pub mod media;
mod proto;
mod reader;
#[cfg(test)]
mod tests;

use std::fmt;

pub use reader::Reader;

/// True for the names TensorFlow-style writers give event files.
pub fn is_event_file(name: &str) -> bool {
    name.contains("tfevents")
}

/// What a non-scalar summary value holds. For tensor summaries this follows the plugin
/// named in the value's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Only counted in [`Reader::others`] for values of the `scalars` plugin whose tensor
    /// holds no readable number (e.g. a string dtype); readable ones go to `on_scalar`.
    Scalar,
    Image,
    Histogram,
    Audio,
    /// A tensor summary without a plugin name (and not a readable rank-0 number).
    Tensor,
    Text,
    /// A tensor summary, or a value with metadata only, of another plugin (the name).
    Other(String),
}

impl Kind {
    fn for_plugin(plugin: &str) -> Kind {
        match plugin {
            "scalars" => Kind::Scalar,
            "images" => Kind::Image,
            "histograms" => Kind::Histogram,
            "audio" => Kind::Audio,
            "text" => Kind::Text,
            "" => Kind::Tensor,
            other => Kind::Other(other.to_string()),
        }
    }
}

/// One scalar summary value.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalarEvent {
    pub tag: String,
    pub step: i64,
    /// The event's wall time (seconds, f64) times 1000, rounded.
    pub wall_time_ms: i64,
    pub value: f64,
}

/// A scalar as [`Reader::poll_ref`] hands it out: the tag borrowed from the record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScalarRef<'a> {
    pub tag: &'a str,
    pub step: i64,
    pub wall_time_ms: i64,
    pub value: f64,
}

impl ScalarRef<'_> {
    pub fn to_owned(&self) -> ScalarEvent {
        ScalarEvent {
            tag: self.tag.to_string(),
            step: self.step,
            wall_time_ms: self.wall_time_ms,
            value: self.value,
        }
    }
}

/// A media item as the reader hands it out (see [`Reader::take_media`]).
#[derive(Debug, Clone, PartialEq)]
pub struct MediaEvent {
    pub tag: String,
    pub step: i64,
    pub wall_time_ms: i64,
    /// Its place among the items of one summary value (a batch of images).
    pub index: u32,
    pub data: crate::samples::MediaData,
}

/// A corrupt record, reported once and skipped. Offsets are file offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Issue {
    /// The length header at `offset` failed its CRC (or claimed more than 2 GiB). The
    /// reader scanned forward for the next valid record; the bytes in between are skipped.
    CorruptLength { offset: u64 },
    /// The record at `offset` had a valid length but its data failed the CRC; exactly
    /// that record was skipped.
    CorruptData { offset: u64 },
    /// The record at `offset` passed both CRCs but its data is not a readable `Event`.
    BadEvent { offset: u64, reason: String },
    /// A media value of the event at `offset` could not be read (not an image, a tensor
    /// of the wrong shape, over a bound): it is counted, not stored.
    SkippedValue {
        offset: u64,
        tag: String,
        step: i64,
        reason: String,
    },
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Issue::CorruptLength { offset } => {
                write!(
                    f,
                    "corrupt record length at offset {offset}; skipped to the next valid record"
                )
            }
            Issue::CorruptData { offset } => {
                write!(f, "corrupt record data at offset {offset}; record skipped")
            }
            Issue::BadEvent { offset, reason } => {
                write!(f, "unreadable event at offset {offset}: {reason}")
            }
            Issue::SkippedValue {
                offset,
                tag,
                step,
                reason,
            } => {
                let tag: String = tag.chars().take(200).flat_map(char::escape_debug).collect();
                write!(
                    f,
                    "value \"{tag}\" at step {step} (offset {offset}) not stored: {reason}"
                )
            }
        }
    }
}

/// What one [`Reader::poll`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollResult {
    /// Records read and decoded (corrupt ones excluded).
    pub records: u64,
    /// Corrupt records met, in file order; each is reported by one poll only.
    pub issues: Vec<Issue>,
    /// True when the poll stopped because of `max_bytes` with more bytes to read.
    pub more: bool,
}

/// An event's wall time (seconds) in milliseconds, as both the fast and the general path
/// hand it out.
fn wall_ms(wall_time: f64) -> i64 {
    // `as` saturates (and maps NaN to 0).
    (wall_time * 1000.0).round() as i64
}
