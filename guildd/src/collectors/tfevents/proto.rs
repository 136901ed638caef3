//! The subset of TensorFlow's `event.proto`, `summary.proto`, `tensor.proto` and
//! `tensor_shape.proto` that the reader decodes (field numbers as there), tensors read as
//! scalars, and a walk of an oversized event's top-level fields without loading it.
//! Hand-written rather than generated because fields the reader does not need are left
//! out, so the decoder skips them without allocating (graph defs, plugin content), and
//! strings are bytes, so a non-UTF-8 tag does not make the whole event unreadable.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// tensorflow.Event. Not modelled: file_version (3), graph_def (4), log_message (6),
/// session_log (7), tagged_run_metadata (8), meta_graph_def (9), source_metadata (10).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Event {
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    #[prost(int64, tag = "2")]
    pub step: i64,
    #[prost(message, optional, tag = "5")]
    pub summary: Option<Summary>,
}

/// tensorflow.Summary.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Summary {
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<Value>,
}

/// tensorflow.Summary.Value. Not modelled: node_name (7).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Value {
    #[prost(bytes = "vec", tag = "1")]
    pub tag: Vec<u8>,
    #[prost(message, optional, tag = "9")]
    pub metadata: Option<SummaryMetadata>,
    #[prost(oneof = "value::Payload", tags = "2, 3, 4, 5, 6, 8")]
    pub value: Option<value::Payload>,
}

pub mod value {
    /// The `value` oneof.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Payload {
        #[prost(float, tag = "2")]
        SimpleValue(f32),
        #[prost(bytes = "vec", tag = "3")]
        ObsoleteOldStyleHistogram(Vec<u8>),
        #[prost(message, tag = "4")]
        Image(super::Image),
        #[prost(message, tag = "5")]
        Histo(super::HistogramProto),
        #[prost(message, tag = "6")]
        Audio(super::Audio),
        #[prost(message, tag = "8")]
        Tensor(super::TensorProto),
    }
}

/// tensorflow.Summary.Image.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Image {
    #[prost(int32, tag = "1")]
    pub height: i32,
    #[prost(int32, tag = "2")]
    pub width: i32,
    #[prost(int32, tag = "3")]
    pub colorspace: i32,
    #[prost(bytes = "vec", tag = "4")]
    pub encoded_image_string: Vec<u8>,
}

/// tensorflow.HistogramProto: `bucket[i]` values fell in (bucket_limit[i-1], bucket_limit[i]].
#[derive(Clone, PartialEq, prost::Message)]
pub struct HistogramProto {
    #[prost(double, tag = "1")]
    pub min: f64,
    #[prost(double, tag = "2")]
    pub max: f64,
    #[prost(double, tag = "3")]
    pub num: f64,
    #[prost(double, tag = "4")]
    pub sum: f64,
    #[prost(double, tag = "5")]
    pub sum_squares: f64,
    #[prost(double, repeated, tag = "6")]
    pub bucket_limit: Vec<f64>,
    #[prost(double, repeated, tag = "7")]
    pub bucket: Vec<f64>,
}

/// tensorflow.Summary.Audio.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Audio {
    #[prost(float, tag = "1")]
    pub sample_rate: f32,
    #[prost(int64, tag = "2")]
    pub num_channels: i64,
    #[prost(int64, tag = "3")]
    pub length_frames: i64,
    #[prost(bytes = "vec", tag = "4")]
    pub encoded_audio_string: Vec<u8>,
    #[prost(bytes = "vec", tag = "5")]
    pub content_type: Vec<u8>,
}

/// tensorflow.SummaryMetadata. Not modelled: display_name (2), summary_description
/// (3), data_class (4).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryMetadata {
    #[prost(message, optional, tag = "1")]
    pub plugin_data: Option<PluginData>,
}

/// tensorflow.SummaryMetadata.PluginData. Not modelled: content (2).
#[derive(Clone, PartialEq, prost::Message)]
pub struct PluginData {
    #[prost(bytes = "vec", tag = "1")]
    pub plugin_name: Vec<u8>,
}

/// tensorflow.TensorProto. Not modelled: version_number (3), scomplex_val (9),
/// dcomplex_val (12), resource_handle_val (14), variant_val (15), uint32_val (16),
/// uint64_val (17).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    #[prost(int32, tag = "1")]
    pub dtype: i32,
    #[prost(message, optional, tag = "2")]
    pub tensor_shape: Option<TensorShapeProto>,
    #[prost(bytes = "vec", tag = "4")]
    pub tensor_content: Vec<u8>,
    #[prost(int32, repeated, tag = "13")]
    pub half_val: Vec<i32>,
    #[prost(float, repeated, tag = "5")]
    pub float_val: Vec<f32>,
    #[prost(double, repeated, tag = "6")]
    pub double_val: Vec<f64>,
    #[prost(int32, repeated, tag = "7")]
    pub int_val: Vec<i32>,
    #[prost(int64, repeated, tag = "10")]
    pub int64_val: Vec<i64>,
    #[prost(bytes = "vec", repeated, tag = "8")]
    pub string_val: Vec<Vec<u8>>,
    #[prost(bool, repeated, tag = "11")]
    pub bool_val: Vec<bool>,
}

/// tensorflow.TensorShapeProto.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeProto {
    #[prost(message, repeated, tag = "2")]
    pub dim: Vec<Dim>,
    #[prost(bool, tag = "3")]
    pub unknown_rank: bool,
}

/// tensorflow.TensorShapeProto.Dim. Not modelled: name (2).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Dim {
    #[prost(int64, tag = "1")]
    pub size: i64,
}

// ---------------------------------------------------------------------------------------
// Tensors as scalars.

pub const DT_FLOAT: i32 = 1;
pub const DT_DOUBLE: i32 = 2;
pub const DT_INT32: i32 = 3;
pub const DT_UINT8: i32 = 4;
pub const DT_STRING: i32 = 7;
pub const DT_INT64: i32 = 9;
pub const DT_BOOL: i32 = 10;
pub const DT_BFLOAT16: i32 = 14;
pub const DT_HALF: i32 = 19;

impl TensorProto {
    /// Rank 0 and a numeric dtype the reader can turn into a scalar.
    pub fn is_rank0(&self) -> bool {
        let shape_ok = self
            .tensor_shape
            .as_ref()
            .is_none_or(|s| s.dim.is_empty() && !s.unknown_rank);
        shape_ok
            && matches!(
                self.dtype,
                DT_FLOAT | DT_DOUBLE | DT_INT32 | DT_INT64 | DT_HALF | DT_BFLOAT16 | DT_BOOL | DT_UINT8
            )
    }

    /// The first element as f64. As in TensorFlow, a tensor with neither typed values nor
    /// content is zero-filled.
    pub fn scalar(&self) -> Option<f64> {
        let c = self.tensor_content.as_slice();
        let from_content = |v: Option<f64>| if c.is_empty() { Some(0.0) } else { v };
        match self.dtype {
            DT_FLOAT => match self.float_val.first() {
                Some(&v) => Some(f64::from(v)),
                None => from_content(c.first_chunk().map(|b| f64::from(f32::from_le_bytes(*b)))),
            },
            DT_DOUBLE => match self.double_val.first() {
                Some(&v) => Some(v),
                None => from_content(c.first_chunk().map(|b| f64::from_le_bytes(*b))),
            },
            DT_INT32 => match self.int_val.first() {
                Some(&v) => Some(f64::from(v)),
                None => from_content(c.first_chunk().map(|b| f64::from(i32::from_le_bytes(*b)))),
            },
            DT_INT64 => match self.int64_val.first() {
                Some(&v) => Some(v as f64),
                None => from_content(c.first_chunk().map(|b| i64::from_le_bytes(*b) as f64)),
            },
            // True is 1, false 0 (as TensorBoard's scalars plugin draws them).
            DT_BOOL => match self.bool_val.first() {
                Some(&v) => Some(f64::from(u8::from(v))),
                None => from_content(c.first().map(|&b| f64::from(u8::from(b != 0)))),
            },
            // uint8 values travel in int_val.
            DT_UINT8 => match self.int_val.first() {
                Some(&v) => Some(f64::from(v as u8)),
                None => from_content(c.first().map(|&b| f64::from(b))),
            },
            DT_HALF | DT_BFLOAT16 => {
                // half_val holds the 16 bits of either type in an int32.
                let bits = match self.half_val.first() {
                    Some(&v) => Some(v as u16),
                    None => c.first_chunk().map(|b| u16::from_le_bytes(*b)),
                };
                match bits {
                    Some(b) if self.dtype == DT_HALF => Some(half::f16::from_bits(b).to_f64()),
                    Some(b) => Some(half::bf16::from_bits(b).to_f64()),
                    None => from_content(None),
                }
            }
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Tensors as arrays (media).

impl TensorProto {
    /// The dimensions (none for a scalar or an unknown shape).
    pub fn dims(&self) -> Vec<i64> {
        self.tensor_shape
            .as_ref()
            .map(|s| s.dim.iter().map(|d| d.size).collect())
            .unwrap_or_default()
    }

    /// Every element of a float or double tensor as f64 (None for other dtypes or content
    /// that is not whole elements).
    pub fn floats(&self) -> Option<Vec<f64>> {
        let c = self.tensor_content.as_slice();
        match self.dtype {
            DT_FLOAT if !self.float_val.is_empty() => Some(self.float_val.iter().map(|&v| f64::from(v)).collect()),
            DT_FLOAT if c.len() % 4 == 0 => Some(
                c.chunks_exact(4)
                    .map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
                    .collect(),
            ),
            DT_DOUBLE if !self.double_val.is_empty() => Some(self.double_val.clone()),
            DT_DOUBLE if c.len() % 8 == 0 => Some(
                c.chunks_exact(8)
                    .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
                    .collect(),
            ),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Wire format.

/// Top-level fields looked at to classify a record too large to decode.
const MAX_LARGE_FIELDS: usize = 64;

/// Walks the top-level fields of an `Event` of `len` bytes at `start` without loading it:
/// `Some(true)` if it has a summary (field 5), `Some(false)` if not, `None` if malformed.
pub fn large_event_has_summary(file: &File, start: u64, len: u64) -> io::Result<Option<bool>> {
    let mut pos = 0u64;
    for _ in 0..MAX_LARGE_FIELDS {
        if pos >= len {
            return Ok(Some(false));
        }
        let mut head = [0u8; 20];
        let n = (len - pos).min(head.len() as u64) as usize;
        match file.read_exact_at(&mut head[..n], start + pos) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        let mut cur = &head[..n];
        let Some(key) = read_varint(&mut cur) else {
            return Ok(None);
        };
        if key >> 3 == 5 {
            return Ok(Some(true));
        }
        let skip = match key & 7 {
            0 => read_varint(&mut cur).map(|_| 0),
            1 => Some(8),
            2 => read_varint(&mut cur),
            5 => Some(4),
            _ => None,
        };
        let Some(skip) = skip else {
            return Ok(None);
        };
        let used = (n - cur.len()) as u64;
        pos = match pos.checked_add(used).and_then(|p| p.checked_add(skip)) {
            Some(p) if p <= len => p,
            _ => return Ok(None),
        };
    }
    // Too many fields to tell cheaply; a real event has a handful.
    Ok(if pos >= len { Some(false) } else { None })
}

/// A base-128 varint from the front of `cur`, which moves past it. `None` if `cur` ends
/// first or the varint runs past ten bytes.
#[inline]
pub fn read_varint(cur: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for i in 0..10 {
        let (&b, rest) = cur.split_first()?;
        *cur = rest;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}
