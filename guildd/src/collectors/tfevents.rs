//! Incremental reader for TensorFlow event files (`events.out.tfevents.*`).
//!
//! An event file is a sequence of TFRecords:
//!
//! ```text
//! u64 length (little-endian) | u32 masked CRC32C of the 8 length bytes
//! `length` data bytes        | u32 masked CRC32C of the data
//! ```
//!
//! where the data is a serialized `tensorflow.Event`. A [`Reader`] keeps the offset of
//! the next unread record of one file; each [`Reader::poll`] reads the complete records
//! that have been appended since, hands scalars to a callback and counts every other
//! summary value per tag and [`Kind`]. A record that is still being written (fewer bytes
//! present than its header promises) is left for the next poll. Corrupt records are
//! reported once as an [`Issue`] and skipped.
//!
//! The protobuf messages are a hand-written subset of TensorFlow's `event.proto`,
//! `summary.proto`, `tensor.proto` and `tensor_shape.proto` (field numbers as there);
//! fields the reader does not need are left out, so the decoder skips them without
//! allocating (graph defs, encoded images, string tensors, plugin content).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use prost::Message;

/// Bytes read from the file at a time.
const CHUNK: usize = 4 << 20;
/// Length (8) and its CRC (4).
const HEADER: u64 = 12;
/// Data CRC.
const FOOTER: u64 = 4;
/// Records with more data than this are CRC-checked by streaming and never decoded in
/// memory: those without a summary (big graph defs) are skipped silently, the others are
/// reported as [`Issue::BadEvent`].
const MAX_DECODE: u64 = 64 << 20;
/// A protobuf message cannot exceed 2 GiB; a length above this is treated as corrupt even
/// when its CRC matches.
const MAX_RECORD: u64 = i32::MAX as u64;
/// Top-level fields looked at to classify a record too large to decode.
const MAX_LARGE_FIELDS: usize = 64;

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

/// Reading state for one event file.
#[derive(Debug, Clone)]
pub struct Reader {
    /// Offset of the next record, or while `resyncing`, of the next position to try.
    offset: u64,
    /// After a corrupt length: `offset` is a scan position, not a known record start.
    resyncing: bool,
    others: BTreeMap<(String, Kind), u64>,
    /// Plugin named by the first value of a tag that carried metadata; writers may omit
    /// the metadata on later values of the same tag.
    plugins: HashMap<String, String>,
    records: u64,
    scalars: u64,
    max_decode: u64,
}

/// A read window over the file for one poll.
struct Source<'a> {
    file: &'a File,
    /// File length when the poll started; bytes appended later wait for the next poll.
    len: u64,
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    start: u64,
}

impl Source<'_> {
    /// Bytes `[pos, pos + n)`, reading ahead up to `ahead` bytes (bounded by the chunk
    /// size and the file length) when it must read. `None` if the file ended early.
    fn bytes(&mut self, pos: u64, n: u64, ahead: u64) -> io::Result<Option<&[u8]>> {
        let Some(end) = pos.checked_add(n) else {
            return Ok(None);
        };
        let buf_end = self.start + self.buf.len() as u64;
        if pos >= self.start && end <= buf_end {
            let s = (pos - self.start) as usize;
            return Ok(self.buf.get(s..s + n as usize));
        }
        if end > self.len {
            return Ok(None);
        }
        // Keep what is buffered from `pos` on, read the rest.
        if pos >= self.start && pos < buf_end {
            let s = (pos - self.start) as usize;
            self.buf.copy_within(s.., 0);
            self.buf.truncate(self.buf.len() - s);
        } else {
            self.buf.clear();
        }
        self.start = pos;
        let want = ahead.min(CHUNK as u64).max(n).min(self.len - pos) as usize;
        let mut filled = self.buf.len();
        self.buf.resize(want, 0);
        while filled < want {
            match self.file.read_at(&mut self.buf[filled..], pos + filled as u64) {
                Ok(0) => break,
                Ok(k) => filled += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.buf.truncate(filled);
                    return Err(e);
                }
            }
        }
        self.buf.truncate(filled);
        Ok(self.buf.get(..n as usize))
    }
}

/// How the scan after a corrupt length ended.
enum Resync {
    /// `offset` is now a confirmed record start.
    Found,
    /// Not enough bytes yet; `offset` is where the scan goes on.
    Wait,
    /// Reached the poll's byte bound.
    Bounded,
}

/// A length header: `Some(length)` when its CRC matches and the length is possible.
fn parse_header(h: &[u8]) -> Option<u64> {
    let len_bytes: &[u8; 8] = h.first_chunk()?;
    let crc_bytes: &[u8; 4] = h.get(8..12)?.first_chunk()?;
    if masked_crc32c(len_bytes) != u32::from_le_bytes(*crc_bytes) {
        return None;
    }
    let length = u64::from_le_bytes(*len_bytes);
    (length <= MAX_RECORD).then_some(length)
}

/// Whether `rec` (header, data, footer) has a matching data CRC.
fn data_crc_ok(rec: &[u8]) -> bool {
    let Some((body, crc)) = rec.split_last_chunk::<4>() else {
        return false;
    };
    let Some(data) = body.get(HEADER as usize..) else {
        return false;
    };
    masked_crc32c(data) == u32::from_le_bytes(*crc)
}

impl Reader {
    /// A reader that starts at `start_offset`: 0 for a new file, or an offset saved from
    /// [`Reader::offset`].
    pub fn new(start_offset: u64) -> Self {
        Reader {
            offset: start_offset,
            resyncing: false,
            others: BTreeMap::new(),
            plugins: HashMap::new(),
            records: 0,
            scalars: 0,
            max_decode: MAX_DECODE,
        }
    }

    /// Offset of the next unread record; safe to persist and resume from with
    /// [`Reader::new`]. While the reader is skipping corrupt bytes this is the next
    /// position to try; a reader resumed there may report that corruption once more.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Non-scalar summary values read so far, counted per (tag, kind).
    pub fn others(&self) -> &BTreeMap<(String, Kind), u64> {
        &self.others
    }

    /// Records read and decoded by this reader, over all polls.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Scalars handed to `on_scalar` by this reader, over all polls.
    pub fn scalars(&self) -> u64 {
        self.scalars
    }

    /// Reads whatever complete records are available from `file`, starting at
    /// [`Reader::offset`]. Scalars go to `on_scalar`; other summary values are counted
    /// in [`Reader::others`]; events without a summary are skipped.
    ///
    /// A partial record at the end is left for the next call; it is not an error, even
    /// with `at_eof_final`. A corrupt record is reported once in the result's issues and
    /// skipped (see [`Issue`]). After a corrupt length the reader scans forward byte by
    /// byte for a header whose CRC matches and whose record's data CRC matches too; a
    /// candidate whose data is not all there yet is waited for, unless `at_eof_final` (the
    /// writer is done), in which case the scan goes past it.
    ///
    /// `max_bytes` bounds how far one call advances (at least one record or scan step is
    /// always made); `more` in the result says the call stopped because of it. A record
    /// that straddles the bound is read whole. If the file is shorter than the offset
    /// (replaced or truncated), nothing is read.
    pub fn poll(
        &mut self,
        file: &File,
        max_bytes: u64,
        at_eof_final: bool,
        on_scalar: &mut impl FnMut(ScalarEvent),
    ) -> io::Result<PollResult> {
        self.poll_ref(file, max_bytes, at_eof_final, &mut |s| on_scalar(s.to_owned()))
    }

    /// [`Reader::poll`] with the scalars' tags borrowed: nothing is allocated per scalar.
    pub fn poll_ref(
        &mut self,
        file: &File,
        max_bytes: u64,
        at_eof_final: bool,
        on_scalar: &mut impl FnMut(ScalarRef<'_>),
    ) -> io::Result<PollResult> {
        let len = file.metadata()?.len();
        let mut res = PollResult::default();
        if len <= self.offset {
            return Ok(res);
        }
        let limit = self.offset.saturating_add(max_bytes.max(1));
        let mut src = Source {
            file,
            len,
            buf: Vec::new(),
            start: self.offset,
        };
        loop {
            if self.resyncing {
                match self.resync(&mut src, limit, at_eof_final)? {
                    Resync::Found => {}
                    Resync::Wait => break,
                    Resync::Bounded => {
                        res.more = true;
                        break;
                    }
                }
            }
            let pos = self.offset;
            if len.saturating_sub(pos) < HEADER {
                break;
            }
            if pos >= limit {
                res.more = true;
                break;
            }
            let ahead = limit - pos;
            let Some(h) = src.bytes(pos, HEADER, ahead)? else {
                break;
            };
            let Some(length) = parse_header(h) else {
                res.issues.push(Issue::CorruptLength { offset: pos });
                self.resyncing = true;
                self.offset = pos + 1;
                continue;
            };
            let total = HEADER + length + FOOTER;
            if len - pos < total {
                break; // still being written
            }
            if length > self.max_decode {
                let Some(ok) = self.read_large(file, pos, length, &mut res)? else {
                    break;
                };
                if ok {
                    res.records += 1;
                }
            } else {
                let Some(rec) = src.bytes(pos, total, ahead)? else {
                    break;
                };
                if !data_crc_ok(rec) {
                    res.issues.push(Issue::CorruptData { offset: pos });
                } else {
                    let data = &rec[HEADER as usize..(HEADER + length) as usize];
                    if self.handle_event(data, pos, &mut res.issues, on_scalar) {
                        res.records += 1;
                    }
                }
            }
            self.offset = pos + total;
        }
        self.records += res.records;
        Ok(res)
    }

    /// Scans from `offset` for the next record start after a corrupt length.
    fn resync(&mut self, src: &mut Source<'_>, limit: u64, at_eof_final: bool) -> io::Result<Resync> {
        let len = src.len;
        loop {
            let q = self.offset;
            if len.saturating_sub(q) < HEADER {
                return Ok(Resync::Wait);
            }
            if q >= limit {
                return Ok(Resync::Bounded);
            }
            let Some(h) = src.bytes(q, HEADER, limit - q)? else {
                return Ok(Resync::Wait);
            };
            if let Some(length) = parse_header(h) {
                let total = HEADER + length + FOOTER;
                if len - q < total {
                    if !at_eof_final {
                        return Ok(Resync::Wait);
                    }
                } else {
                    let ok = if length > self.max_decode {
                        stream_crc32c(src.file, q + HEADER, length)?
                            .zip(read_u32(src.file, q + HEADER + length)?)
                            .map(|(crc, want)| mask(crc) == want)
                    } else {
                        src.bytes(q, total, limit - q)?.map(data_crc_ok)
                    };
                    match ok {
                        None => return Ok(Resync::Wait),
                        Some(true) => {
                            self.resyncing = false;
                            return Ok(Resync::Found);
                        }
                        Some(false) => {}
                    }
                }
            }
            self.offset = q + 1;
        }
    }

    /// A record too large to decode: checks its CRC by streaming and classifies it by its
    /// top-level fields. `Some(true)` if it is a valid record without a summary (skipped
    /// silently); `Some(false)` if an issue was pushed; `None` if the file ended early.
    fn read_large(&mut self, file: &File, pos: u64, length: u64, res: &mut PollResult) -> io::Result<Option<bool>> {
        let data_start = pos + HEADER;
        let (Some(crc), Some(want)) = (
            stream_crc32c(file, data_start, length)?,
            read_u32(file, data_start + length)?,
        ) else {
            return Ok(None);
        };
        if mask(crc) != want {
            res.issues.push(Issue::CorruptData { offset: pos });
            return Ok(Some(false));
        }
        let reason = match large_event_has_summary(file, data_start, length)? {
            Some(false) => return Ok(Some(true)),
            Some(true) => format!(
                "summary event of {length} bytes exceeds the {} byte decode limit",
                self.max_decode
            ),
            None => "malformed event".to_string(),
        };
        res.issues.push(Issue::BadEvent { offset: pos, reason });
        Ok(Some(false))
    }

    /// The common case without a protobuf decode: an event of wall time, step and a
    /// summary whose values are only tag and `simple_value` (what `add_scalar` writes).
    /// Hands those out and returns true; false (nothing handed out) for anything else,
    /// which then takes the general path.
    fn simple_scalars(&mut self, data: &[u8], on_scalar: &mut impl FnMut(ScalarRef<'_>)) -> bool {
        // At most this many values are handled here; more go the general way.
        const MAX: usize = 8;
        let mut values: [(&str, f32); MAX] = [("", 0.0); MAX];
        let mut count = 0;
        let (mut wall_time, mut step, mut summary) = (None, None, None);
        let mut cur = data;
        while !cur.is_empty() {
            let Some(key) = read_varint(&mut cur) else { return false };
            match key {
                // wall_time: double
                0x09 if wall_time.is_none() => {
                    let Some((v, rest)) = cur.split_first_chunk::<8>() else {
                        return false;
                    };
                    wall_time = Some(f64::from_le_bytes(*v));
                    cur = rest;
                }
                // step: int64
                0x10 if step.is_none() => {
                    let Some(v) = read_varint(&mut cur) else { return false };
                    step = Some(v as i64);
                }
                // summary: message
                0x2a if summary.is_none() => {
                    let Some(len) = read_varint(&mut cur) else { return false };
                    let Some(body) = cur.get(..len as usize) else {
                        return false;
                    };
                    summary = Some(body);
                    cur = &cur[len as usize..];
                }
                _ => return false,
            }
        }
        let Some(mut summary) = summary else { return false };
        while !summary.is_empty() {
            // Summary.value: repeated message (1)
            if read_varint(&mut summary) != Some(0x0a) {
                return false;
            }
            let Some(len) = read_varint(&mut summary) else {
                return false;
            };
            let Some(mut value) = summary.get(..len as usize) else {
                return false;
            };
            summary = &summary[len as usize..];
            let (mut tag, mut simple) = (None, None);
            while !value.is_empty() {
                match read_varint(&mut value) {
                    // tag: bytes
                    Some(0x0a) if tag.is_none() => {
                        let Some(len) = read_varint(&mut value) else {
                            return false;
                        };
                        let Some(bytes) = value.get(..len as usize) else {
                            return false;
                        };
                        let Ok(text) = std::str::from_utf8(bytes) else {
                            return false;
                        };
                        tag = Some(text);
                        value = &value[len as usize..];
                    }
                    // simple_value: float
                    Some(0x15) if simple.is_none() => {
                        let Some((v, rest)) = value.split_first_chunk::<4>() else {
                            return false;
                        };
                        simple = Some(f32::from_le_bytes(*v));
                        value = rest;
                    }
                    _ => return false,
                }
            }
            // A value with only a tag is skipped, as the general path does.
            if let Some(x) = simple {
                if count == MAX {
                    return false;
                }
                values[count] = (tag.unwrap_or(""), x);
                count += 1;
            }
        }
        let step = step.unwrap_or(0);
        let wall_time_ms = wall_ms(wall_time.unwrap_or(0.0));
        for &(tag, x) in &values[..count] {
            self.scalars += 1;
            on_scalar(ScalarRef {
                tag,
                step,
                wall_time_ms,
                value: f64::from(x),
            });
        }
        true
    }

    /// Decodes one event and dispatches its summary values. False (and an issue) if the
    /// data is not an `Event`.
    fn handle_event(
        &mut self,
        data: &[u8],
        offset: u64,
        issues: &mut Vec<Issue>,
        on_scalar: &mut impl FnMut(ScalarRef<'_>),
    ) -> bool {
        if self.simple_scalars(data, on_scalar) {
            return true;
        }
        let event = match proto::Event::decode(data) {
            Ok(e) => e,
            Err(e) => {
                issues.push(Issue::BadEvent {
                    offset,
                    reason: e.to_string(),
                });
                return false;
            }
        };
        let Some(summary) = event.summary else {
            return true;
        };
        let step = event.step;
        let wall_time_ms = wall_ms(event.wall_time);
        for v in summary.value {
            let tag = into_string(v.tag);
            let plugin = v
                .metadata
                .and_then(|m| m.plugin_data)
                .map(|p| into_string(p.plugin_name))
                .filter(|p| !p.is_empty());
            if let Some(p) = &plugin
                && self.plugins.get(&tag) != Some(p)
            {
                self.plugins.insert(tag.clone(), p.clone());
            }
            use proto::value::Payload as V;
            let kind = match v.value {
                Some(V::SimpleValue(x)) => {
                    self.scalars += 1;
                    on_scalar(ScalarRef {
                        tag: &tag,
                        step,
                        wall_time_ms,
                        value: f64::from(x),
                    });
                    continue;
                }
                Some(V::ObsoleteOldStyleHistogram(_)) | Some(V::Histo(_)) => Kind::Histogram,
                Some(V::Image(_)) => Kind::Image,
                Some(V::Audio(_)) => Kind::Audio,
                Some(V::Tensor(t)) => {
                    let plugin = plugin.as_deref().or_else(|| self.plugins.get(&tag).map(String::as_str));
                    let candidate = match plugin {
                        Some("scalars") => true,
                        None => t.is_rank0(),
                        Some(_) => false,
                    };
                    if candidate && let Some(value) = t.scalar() {
                        self.scalars += 1;
                        on_scalar(ScalarRef {
                            tag: &tag,
                            step,
                            wall_time_ms,
                            value,
                        });
                        continue;
                    }
                    Kind::for_plugin(plugin.unwrap_or(""))
                }
                None => match &plugin {
                    Some(p) => Kind::for_plugin(p),
                    None => continue,
                },
            };
            *self.others.entry((tag, kind)).or_insert(0) += 1;
        }
        true
    }
}

fn wall_ms(wall_time: f64) -> i64 {
    // `as` saturates (and maps NaN to 0).
    (wall_time * 1000.0).round() as i64
}

fn into_string(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn read_u32(file: &File, pos: u64) -> io::Result<Option<u32>> {
    let mut b = [0u8; 4];
    match file.read_exact_at(&mut b, pos) {
        Ok(()) => Ok(Some(u32::from_le_bytes(b))),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
}

/// CRC32C of `len` bytes at `start`, read in chunks. `None` if the file ended early.
fn stream_crc32c(file: &File, start: u64, len: u64) -> io::Result<Option<u32>> {
    let mut buf = vec![0u8; CHUNK.min(len as usize)];
    let mut crc = 0u32;
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(buf.len() as u64) as usize;
        let chunk = &mut buf[..n];
        match file.read_exact_at(chunk, start + done) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        crc = crc32c_update(crc, chunk);
        done += n as u64;
    }
    Ok(Some(crc))
}

/// Walks the top-level fields of an `Event` of `len` bytes at `start` without loading it:
/// `Some(true)` if it has a summary (field 5), `Some(false)` if not, `None` if malformed.
fn large_event_has_summary(file: &File, start: u64, len: u64) -> io::Result<Option<bool>> {
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

fn read_varint(cur: &mut &[u8]) -> Option<u64> {
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

// ---------------------------------------------------------------------------------------
// CRC32C (Castagnoli), slicing-by-8.

const CRC32C_POLY: u32 = 0x82F6_3B78; // reflected 0x1EDC6F41

const fn crc32c_tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ CRC32C_POLY } else { c >> 1 };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut i = 0;
    while i < 256 {
        let mut s = 1;
        while s < 8 {
            let prev = t[s - 1][i];
            t[s][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            s += 1;
        }
        i += 1;
    }
    t
}

static CRC32C_TABLES: [[u32; 256]; 8] = crc32c_tables();

/// Continues a CRC32C: `crc32c_update(crc32c_update(0, a), b)` is the CRC of `a ++ b`.
/// With the CPU's CRC32 instruction where it has one (SSE 4.2), about ten times the
/// tables' speed: every record of every event file goes through here twice.
fn crc32c_update(crc: u32, data: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("sse4.2") {
        // SAFETY: the CPU has SSE 4.2, checked just above.
        return unsafe { crc32c_sse42(crc, data) };
    }
    crc32c_tables_update(crc, data)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse4.2")]
fn crc32c_sse42(crc: u32, data: &[u8]) -> u32 {
    use std::arch::x86_64::{_mm_crc32_u8, _mm_crc32_u64};
    let mut crc = u64::from(!crc);
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(c);
        crc = _mm_crc32_u64(crc, u64::from_le_bytes(word));
    }
    let mut crc = crc as u32;
    for &b in chunks.remainder() {
        crc = _mm_crc32_u8(crc, b);
    }
    !crc
}

fn crc32c_tables_update(crc: u32, data: &[u8]) -> u32 {
    let t = &CRC32C_TABLES;
    let mut crc = !crc;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let lo = crc ^ u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        let hi = u32::from_le_bytes([c[4], c[5], c[6], c[7]]);
        crc = t[7][(lo & 0xff) as usize]
            ^ t[6][((lo >> 8) & 0xff) as usize]
            ^ t[5][((lo >> 16) & 0xff) as usize]
            ^ t[4][(lo >> 24) as usize]
            ^ t[3][(hi & 0xff) as usize]
            ^ t[2][((hi >> 8) & 0xff) as usize]
            ^ t[1][((hi >> 16) & 0xff) as usize]
            ^ t[0][(hi >> 24) as usize];
    }
    for &b in chunks.remainder() {
        crc = t[0][((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

fn crc32c(data: &[u8]) -> u32 {
    crc32c_update(0, data)
}

/// TFRecord's CRC masking.
fn mask(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

fn masked_crc32c(data: &[u8]) -> u32 {
    mask(crc32c(data))
}

// ---------------------------------------------------------------------------------------
// Tensors.

const DT_FLOAT: i32 = 1;
const DT_DOUBLE: i32 = 2;
const DT_INT32: i32 = 3;
const DT_INT64: i32 = 9;
const DT_BFLOAT16: i32 = 14;
const DT_HALF: i32 = 19;

impl proto::TensorProto {
    /// Rank 0 and a numeric dtype the reader can turn into a scalar.
    fn is_rank0(&self) -> bool {
        let shape_ok = self
            .tensor_shape
            .as_ref()
            .is_none_or(|s| s.dim.is_empty() && !s.unknown_rank);
        shape_ok
            && matches!(
                self.dtype,
                DT_FLOAT | DT_DOUBLE | DT_INT32 | DT_INT64 | DT_HALF | DT_BFLOAT16
            )
    }

    /// The first element as f64. As in TensorFlow, a tensor with neither typed values nor
    /// content is zero-filled.
    fn scalar(&self) -> Option<f64> {
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
            DT_HALF | DT_BFLOAT16 => {
                let bits = match self.half_val.first() {
                    Some(&v) => Some(v as u16),
                    None => c.first_chunk().map(|b| u16::from_le_bytes(*b)),
                };
                match bits {
                    Some(b) if self.dtype == DT_HALF => Some(f16_to_f64(b)),
                    Some(b) => Some(f64::from(f32::from_bits(u32::from(b) << 16))),
                    None => from_content(None),
                }
            }
            _ => None,
        }
    }
}

fn f16_to_f64(bits: u16) -> f64 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((bits >> 10) & 0x1f);
    let frac = f64::from(bits & 0x3ff);
    match exp {
        0 => sign * frac * 2f64.powi(-24),
        31 if frac == 0.0 => sign * f64::INFINITY,
        31 => f64::NAN,
        e => sign * (1.0 + frac / 1024.0) * 2f64.powi(e - 15),
    }
}

// ---------------------------------------------------------------------------------------
// Protobuf messages: the subset of tensorflow's event.proto, summary.proto, tensor.proto
// and tensor_shape.proto that the reader needs. Strings are read as bytes so that a
// non-UTF-8 tag does not make the whole event unreadable.

mod proto {
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
            Image(super::Skipped),
            #[prost(message, tag = "5")]
            Histo(super::Skipped),
            #[prost(message, tag = "6")]
            Audio(super::Skipped),
            #[prost(message, tag = "8")]
            Tensor(super::TensorProto),
        }
    }

    /// Summary.Image, HistogramProto, Summary.Audio: only their presence matters, so all
    /// their fields are skipped.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Skipped {}

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

    /// tensorflow.TensorProto. Not modelled: version_number (3), string_val (8),
    /// scomplex_val (9), bool_val (11), dcomplex_val (12), resource_handle_val (14),
    /// variant_val (15), uint32_val (16), uint64_val (17).
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};

    // ---- helpers ------------------------------------------------------------------

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tfevents")
    }

    /// The one event file in `dir`.
    fn event_file(dir: &Path) -> PathBuf {
        let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| is_event_file(&p.file_name().unwrap().to_string_lossy()))
            .collect();
        assert_eq!(found.len(), 1, "event files in {}: {found:?}", dir.display());
        found.pop().unwrap()
    }

    struct Temp(PathBuf);

    impl Temp {
        fn new(name: &str) -> Temp {
            static N: AtomicUsize = AtomicUsize::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!("guild-tfevents-{}-{n}-{name}", std::process::id()));
            let _ = std::fs::remove_file(&path);
            Temp(path)
        }

        fn write(&self, bytes: &[u8]) {
            std::fs::write(&self.0, bytes).unwrap();
        }

        fn append(&self, bytes: &[u8]) {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.0)
                .unwrap();
            f.write_all(bytes).unwrap();
            f.flush().unwrap();
        }

        fn open(&self) -> File {
            File::open(&self.0).unwrap()
        }
    }

    impl Drop for Temp {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn frame(data: &[u8]) -> Vec<u8> {
        let len = (data.len() as u64).to_le_bytes();
        let mut out = Vec::with_capacity(data.len() + 16);
        out.extend_from_slice(&len);
        out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
        out.extend_from_slice(data);
        out.extend_from_slice(&masked_crc32c(data).to_le_bytes());
        out
    }

    fn event(step: i64, values: Vec<proto::Value>) -> Vec<u8> {
        proto::Event {
            wall_time: 1_700_000_000.25 + step as f64,
            step,
            summary: Some(proto::Summary { value: values }),
        }
        .encode_to_vec()
    }

    fn simple(tag: &str, value: f32) -> proto::Value {
        proto::Value {
            tag: tag.as_bytes().to_vec(),
            metadata: None,
            value: Some(proto::value::Payload::SimpleValue(value)),
        }
    }

    fn tensor(tag: &str, plugin: Option<&str>, t: proto::TensorProto) -> proto::Value {
        proto::Value {
            tag: tag.as_bytes().to_vec(),
            metadata: plugin.map(|p| proto::SummaryMetadata {
                plugin_data: Some(proto::PluginData {
                    plugin_name: p.as_bytes().to_vec(),
                }),
            }),
            value: Some(proto::value::Payload::Tensor(t)),
        }
    }

    fn scalar_record(tag: &str, step: i64, value: f32) -> Vec<u8> {
        frame(&event(step, vec![simple(tag, value)]))
    }

    /// (start, total length) of each complete record, by framing alone.
    fn spans(data: &[u8]) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos + 12 <= data.len() {
            let len = u64::from_le_bytes(data[pos..pos + 8].try_into().unwrap()) as usize;
            let total = 12 + len + 4;
            if pos + total > data.len() {
                break;
            }
            out.push((pos, total));
            pos += total;
        }
        out
    }

    #[derive(Default, Debug)]
    struct Collected {
        scalars: Vec<ScalarEvent>,
        issues: Vec<Issue>,
        records: u64,
        polls: u64,
    }

    /// Polls until the reader stops for lack of bytes rather than for the bound.
    fn poll_all(reader: &mut Reader, file: &File, max_bytes: u64, at_eof_final: bool, out: &mut Collected) {
        loop {
            let before = reader.offset();
            let r = reader
                .poll(file, max_bytes, at_eof_final, &mut |s| out.scalars.push(s))
                .unwrap();
            out.polls += 1;
            out.records += r.records;
            out.issues.extend(r.issues);
            assert!(reader.offset() >= before, "offset went back");
            if !r.more {
                break;
            }
            assert!(reader.offset() > before, "a bounded poll made no progress");
        }
    }

    fn read_path(path: &Path) -> (Reader, Collected) {
        let file = File::open(path).unwrap();
        let mut reader = Reader::new(0);
        let mut c = Collected::default();
        poll_all(&mut reader, &file, u64::MAX, true, &mut c);
        (reader, c)
    }

    fn keys(scalars: &[ScalarEvent]) -> Vec<(String, i64, u64)> {
        scalars
            .iter()
            .map(|s| (s.tag.clone(), s.step, s.value.to_bits()))
            .collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-6 * b.abs().max(1.0)
    }

    // ---- fixtures from real writers -----------------------------------------------

    const JAN_2017_MS: i64 = 1_483_228_800_000;
    const JAN_2100_MS: i64 = 4_102_444_800_000;

    fn check_writer(writer: &str, others: &[(&str, Kind)], int_metric: bool) {
        for (split, k) in [("train", 1.0), ("validation", 2.0)] {
            let path = event_file(&fixtures().join(writer).join(split));
            let (reader, c) = read_path(&path);
            let ctx = format!("{writer}/{split}");
            assert!(c.issues.is_empty(), "{ctx}: {:?}", c.issues);
            assert_eq!(reader.offset(), std::fs::metadata(&path).unwrap().len(), "{ctx}");

            let mut by_tag: BTreeMap<&str, Vec<&ScalarEvent>> = BTreeMap::new();
            for s in &c.scalars {
                by_tag.entry(s.tag.as_str()).or_default().push(s);
            }
            let mut want_tags = vec!["acc", "loss"];
            if int_metric {
                want_tags.insert(1, "int_metric");
            }
            assert_eq!(by_tag.keys().copied().collect::<Vec<_>>(), want_tags, "{ctx}");
            for (tag, events) in &by_tag {
                assert_eq!(
                    events.iter().map(|s| s.step).collect::<Vec<_>>(),
                    (0..10).collect::<Vec<_>>(),
                    "{ctx} {tag}"
                );
                for s in events {
                    let step = s.step as f64;
                    let want = match *tag {
                        "loss" => k / (step + 1.0),
                        "acc" => step / 10.0,
                        _ => step,
                    };
                    assert!(
                        close(s.value, want),
                        "{ctx} {tag} step {}: {} != {want}",
                        s.step,
                        s.value
                    );
                }
            }
            let times: Vec<i64> = c.scalars.iter().map(|s| s.wall_time_ms).collect();
            assert!(
                times.iter().all(|t| (JAN_2017_MS..JAN_2100_MS).contains(t)),
                "{ctx}: {times:?}"
            );
            assert!(times.windows(2).all(|w| w[0] <= w[1]), "{ctx}: {times:?}");

            let want_others: BTreeMap<(String, Kind), u64> =
                others.iter().map(|(t, k)| ((t.to_string(), k.clone()), 1)).collect();
            assert_eq!(reader.others(), &want_others, "{ctx}");
            assert_eq!(reader.scalars(), c.scalars.len() as u64, "{ctx}");
            // file_version + one record per value
            assert_eq!(c.records, 1 + c.scalars.len() as u64 + others.len() as u64, "{ctx}");
        }
    }

    #[test]
    fn reads_tensorboardx_fixture() {
        check_writer(
            "tensorboardx",
            &[
                ("note/text_summary", Kind::Text),
                ("sample", Kind::Image),
                ("weights", Kind::Histogram),
            ],
            false,
        );
    }

    #[test]
    fn reads_torch_fixture() {
        check_writer("torch", &[("sample", Kind::Image), ("weights", Kind::Histogram)], false);
    }

    #[test]
    fn reads_tf2_fixture() {
        check_writer("tf2", &[("sample", Kind::Image), ("weights", Kind::Histogram)], true);
    }

    fn intact_tbx() -> Vec<u8> {
        std::fs::read(event_file(&fixtures().join("tensorboardx/train"))).unwrap()
    }

    #[test]
    fn flipped_byte_skips_only_that_record() {
        let intact = intact_tbx();
        let (intact_reader, all) = read_path(&event_file(&fixtures().join("tensorboardx/train")));
        let (start, total) = spans(&intact)[2];
        let third = proto::Event::decode(&intact[start + 12..start + total - 4]).unwrap();
        let lost: Vec<(String, i64)> = third
            .summary
            .unwrap()
            .value
            .into_iter()
            .map(|v| (String::from_utf8(v.tag).unwrap(), third.step))
            .collect();
        assert_eq!(lost.len(), 1);

        let path = fixtures().join("corrupt/flipped/events.out.tfevents.flipped");
        let (reader, c) = read_path(&path);
        assert_eq!(c.issues, vec![Issue::CorruptData { offset: start as u64 }]);
        let want: Vec<_> = keys(&all.scalars)
            .into_iter()
            .filter(|(t, s, _)| !lost.contains(&(t.clone(), *s)))
            .collect();
        assert_eq!(keys(&c.scalars), want);
        assert_eq!(c.scalars.len(), all.scalars.len() - 1);
        assert_eq!(reader.others(), intact_reader.others());
        assert_eq!(reader.offset(), intact.len() as u64);
    }

    #[test]
    fn truncated_record_is_waited_for_then_read() {
        let intact = intact_tbx();
        let (_, all) = read_path(&event_file(&fixtures().join("tensorboardx/train")));
        let cut = std::fs::read(fixtures().join("corrupt/truncated/events.out.tfevents.truncated")).unwrap();
        let (last_start, _) = *spans(&intact).last().unwrap();
        assert!(cut.len() > last_start && cut.len() < intact.len());

        let tmp = Temp::new("truncated");
        tmp.write(&cut);
        let file = tmp.open();
        let mut reader = Reader::new(0);
        let mut c = Collected::default();
        poll_all(&mut reader, &file, u64::MAX, false, &mut c);
        assert!(c.issues.is_empty(), "{:?}", c.issues);
        assert_eq!(reader.offset(), last_start as u64);
        // The writer may be done: still no issue, still waiting before the partial record.
        poll_all(&mut reader, &file, u64::MAX, true, &mut c);
        assert!(c.issues.is_empty(), "{:?}", c.issues);
        assert_eq!(reader.offset(), last_start as u64);

        tmp.append(&intact[cut.len()..]);
        let before = c.records;
        poll_all(&mut reader, &file, u64::MAX, false, &mut c);
        assert!(c.issues.is_empty(), "{:?}", c.issues);
        assert_eq!(c.records, before + 1);
        assert_eq!(reader.offset(), intact.len() as u64);
        assert_eq!(keys(&c.scalars), keys(&all.scalars));
        assert_eq!(
            reader.others().get(&("note/text_summary".to_string(), Kind::Text)),
            Some(&1)
        );
    }

    // ---- incremental reading --------------------------------------------------------

    #[test]
    fn file_appended_in_pieces() {
        let recs: Vec<Vec<u8>> = (0..5).map(|i| scalar_record("loss", i, i as f32)).collect();
        let tmp = Temp::new("pieces");
        tmp.write(&[recs[0].clone(), recs[1].clone()].concat());
        tmp.append(&recs[2][..5]); // part of the length
        let file = tmp.open();
        let mut reader = Reader::new(0);
        let mut seen = Vec::new();
        let r = reader.poll(&file, u64::MAX, false, &mut |s| seen.push(s.step)).unwrap();
        assert_eq!((r.records, r.issues.len(), r.more), (2, 0, false));
        let at = (recs[0].len() + recs[1].len()) as u64;
        assert_eq!(reader.offset(), at);

        let half = recs[2].len() / 2; // header and half the data
        tmp.append(&recs[2][5..half]);
        let r = reader.poll(&file, u64::MAX, false, &mut |s| seen.push(s.step)).unwrap();
        assert_eq!((r.records, r.issues.len()), (0, 0));
        assert_eq!(reader.offset(), at);

        tmp.append(&recs[2][half..]);
        tmp.append(&recs[3]);
        let r = reader.poll(&file, u64::MAX, false, &mut |s| seen.push(s.step)).unwrap();
        assert_eq!((r.records, r.issues.len()), (2, 0));
        tmp.append(&recs[4][..recs[4].len() - 1]); // all but the last CRC byte
        let r = reader.poll(&file, u64::MAX, true, &mut |s| seen.push(s.step)).unwrap();
        assert_eq!((r.records, r.issues.len()), (0, 0));
        tmp.append(&recs[4][recs[4].len() - 1..]);
        let r = reader.poll(&file, u64::MAX, false, &mut |s| seen.push(s.step)).unwrap();
        assert_eq!((r.records, r.issues.len()), (1, 0));
        assert_eq!(seen, vec![0, 1, 2, 3, 4]);
        assert_eq!(reader.offset(), recs.iter().map(Vec::len).sum::<usize>() as u64);
    }

    #[test]
    fn real_file_appended_a_few_bytes_at_a_time() {
        let intact = intact_tbx();
        let (all_reader, all) = read_path(&event_file(&fixtures().join("tensorboardx/train")));
        let tmp = Temp::new("trickle");
        tmp.write(&[]);
        let file = tmp.open();
        let mut reader = Reader::new(0);
        let mut c = Collected::default();
        for piece in intact.chunks(97) {
            tmp.append(piece);
            poll_all(&mut reader, &file, u64::MAX, false, &mut c);
        }
        assert!(c.issues.is_empty(), "{:?}", c.issues);
        assert_eq!(keys(&c.scalars), keys(&all.scalars));
        assert_eq!(reader.others(), all_reader.others());
        assert_eq!(reader.offset(), intact.len() as u64);
    }

    #[test]
    fn resume_from_persisted_offset() {
        let path = event_file(&fixtures().join("tensorboardx/validation"));
        let (_, all) = read_path(&path);
        let file = File::open(&path).unwrap();

        let mut first = Reader::new(0);
        let mut a = Vec::new();
        let r = first.poll(&file, 300, false, &mut |s| a.push(s)).unwrap();
        assert!(r.more);
        assert!(!a.is_empty() && a.len() < all.scalars.len());
        let saved = first.offset();
        drop(first);

        let mut second = Reader::new(saved);
        let mut c = Collected::default();
        poll_all(&mut second, &file, u64::MAX, true, &mut c);
        assert!(c.issues.is_empty());
        a.extend(c.scalars);
        assert_eq!(keys(&a), keys(&all.scalars));
        // The resumed reader only counted what came after the offset.
        assert!(second.others().values().sum::<u64>() <= 3);
    }

    #[test]
    fn max_bytes_bounds_each_poll() {
        let path = event_file(&fixtures().join("tf2/train"));
        let (_, all) = read_path(&path);
        let file = File::open(&path).unwrap();
        for max in [1, 40, 500] {
            let mut reader = Reader::new(0);
            let mut c = Collected::default();
            poll_all(&mut reader, &file, max, false, &mut c);
            assert_eq!(keys(&c.scalars), keys(&all.scalars), "max_bytes {max}");
            assert_eq!(c.records, all.records);
            if max == 1 {
                // one record per poll, plus the final poll that finds nothing more
                assert_eq!(c.polls, all.records);
            }
        }
    }

    // ---- corruption -----------------------------------------------------------------

    #[test]
    fn garbage_between_records_resyncs() {
        let r0 = scalar_record("a", 0, 0.5);
        let r1 = scalar_record("a", 1, 1.5);
        let r2 = scalar_record("b", 2, 2.5);
        // garbage that includes a header with a valid length CRC whose data CRC fails
        let mut fake = frame(b"0123456789");
        let n = fake.len();
        fake[n - 1] ^= 1;
        let garbage = [&b"\x01\x02garbage\xff\xfe"[..], &fake, &[7u8; 23]].concat();
        let data = [r0.clone(), garbage.clone(), r1, r2].concat();
        let tmp = Temp::new("garbage");
        tmp.write(&data);
        let (reader, c) = read_path(&tmp.0);
        assert_eq!(
            c.issues,
            vec![Issue::CorruptLength {
                offset: r0.len() as u64
            }]
        );
        assert_eq!(
            c.scalars.iter().map(|s| (s.tag.as_str(), s.step)).collect::<Vec<_>>(),
            [("a", 0), ("a", 1), ("b", 2)]
        );
        assert_eq!(reader.offset(), data.len() as u64);
        assert_eq!(c.records, 3);
    }

    #[test]
    fn resync_waits_for_bytes_and_reports_once() {
        let r0 = scalar_record("a", 0, 0.5);
        let r1 = scalar_record("a", 1, 1.5);
        let r2 = scalar_record("a", 2, 2.5);
        let tmp = Temp::new("resync-wait");
        tmp.write(&[&r0[..], b"some garbage bytes here"].concat());
        let file = tmp.open();
        let mut reader = Reader::new(0);
        let mut c = Collected::default();
        poll_all(&mut reader, &file, u64::MAX, false, &mut c);
        assert_eq!(
            c.issues,
            vec![Issue::CorruptLength {
                offset: r0.len() as u64
            }]
        );
        assert_eq!(c.records, 1);
        // A candidate record whose data is not all there yet is waited for.
        tmp.append(&r1[..r1.len() - 3]);
        poll_all(&mut reader, &file, u64::MAX, false, &mut c);
        let r1_at = (r0.len() + 23) as u64;
        assert_eq!(reader.offset(), r1_at);
        tmp.append(&r1[r1.len() - 3..]);
        tmp.append(&r2);
        poll_all(&mut reader, &file, u64::MAX, false, &mut c);
        assert_eq!(c.issues.len(), 1, "{:?}", c.issues);
        assert_eq!(c.scalars.iter().map(|s| s.step).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(c.records, 3);
    }

    #[test]
    fn resync_at_eof_final_scans_past_unconfirmable_candidate() {
        let r0 = scalar_record("a", 0, 0.5);
        let r1 = scalar_record("a", 1, 1.5);
        let data = [&r0[..], b"junk", &r1[..r1.len() - 2]].concat();
        let tmp = Temp::new("resync-final");
        tmp.write(&data);
        let file = tmp.open();
        let mut reader = Reader::new(0);
        let mut c = Collected::default();
        poll_all(&mut reader, &file, u64::MAX, false, &mut c);
        assert_eq!(reader.offset(), (r0.len() + 4) as u64);
        poll_all(&mut reader, &file, u64::MAX, true, &mut c);
        assert_eq!(c.issues.len(), 1);
        assert!(reader.offset() > (r0.len() + 4) as u64);
        assert!(reader.offset() + HEADER > data.len() as u64);
        assert_eq!(c.records, 1);
    }

    #[test]
    fn undecodable_event_is_reported_and_skipped() {
        let r0 = frame(&[0xff, 0xff, 0xff]);
        let r1 = scalar_record("a", 1, 1.0);
        let tmp = Temp::new("bad-event");
        tmp.write(&[r0, r1].concat());
        let (_, c) = read_path(&tmp.0);
        assert!(
            matches!(&c.issues[..], [Issue::BadEvent { offset: 0, .. }]),
            "{:?}",
            c.issues
        );
        assert_eq!(c.scalars.len(), 1);
        assert_eq!(c.records, 1);
    }

    #[test]
    fn oversized_records_are_streamed() {
        // graph_def (field 4) of 300 bytes: no summary, skipped silently
        let mut graph = proto::Event {
            wall_time: 1.0,
            step: 0,
            summary: None,
        }
        .encode_to_vec();
        graph.extend_from_slice(&[0x22, 0xac, 0x02]);
        graph.extend_from_slice(&[9u8; 300]);
        let big_summary = event(3, (0..40).map(|i| simple(&format!("t{i}"), 1.0)).collect());
        let mut corrupt = frame(&graph);
        let n = corrupt.len();
        corrupt[n - 10] ^= 0x40;
        let data = [
            frame(&graph),
            frame(&big_summary),
            corrupt.clone(),
            b"garbage".to_vec(),
            frame(&graph),
            scalar_record("ok", 4, 4.0),
        ]
        .concat();
        let tmp = Temp::new("large");
        tmp.write(&data);
        let file = tmp.open();
        let mut reader = Reader::new(0);
        reader.max_decode = 64;
        let mut c = Collected::default();
        poll_all(&mut reader, &file, u64::MAX, true, &mut c);
        let g = frame(&graph).len() as u64;
        let s = frame(&big_summary).len() as u64;
        assert_eq!(c.issues.len(), 3, "{:?}", c.issues);
        assert!(matches!(&c.issues[0], Issue::BadEvent { offset, .. } if *offset == g));
        assert_eq!(c.issues[1], Issue::CorruptData { offset: g + s });
        assert_eq!(c.issues[2], Issue::CorruptLength { offset: 2 * g + s });
        assert_eq!(c.scalars.len(), 1);
        assert_eq!(c.records, 3);
        assert_eq!(reader.offset(), data.len() as u64);
    }

    // ---- summary values ------------------------------------------------------------

    fn t(dtype: i32) -> proto::TensorProto {
        proto::TensorProto {
            dtype,
            ..Default::default()
        }
    }

    #[test]
    fn tensor_scalars_and_kinds() {
        let shape1 = Some(proto::TensorShapeProto {
            dim: vec![proto::Dim { size: 1 }],
            unknown_rank: false,
        });
        let values = vec![
            tensor(
                "f_content",
                Some("scalars"),
                proto::TensorProto {
                    tensor_content: 0.25f32.to_le_bytes().to_vec(),
                    ..t(DT_FLOAT)
                },
            ),
            tensor(
                "f_val",
                None,
                proto::TensorProto {
                    float_val: vec![0.5],
                    ..t(DT_FLOAT)
                },
            ),
            tensor(
                "d_val",
                Some("scalars"),
                proto::TensorProto {
                    double_val: vec![0.1],
                    ..t(DT_DOUBLE)
                },
            ),
            tensor(
                "d_content",
                None,
                proto::TensorProto {
                    tensor_content: 0.2f64.to_le_bytes().to_vec(),
                    ..t(DT_DOUBLE)
                },
            ),
            tensor(
                "i32",
                None,
                proto::TensorProto {
                    int_val: vec![-7],
                    ..t(DT_INT32)
                },
            ),
            tensor(
                "i64",
                Some("scalars"),
                proto::TensorProto {
                    int64_val: vec![1 << 40],
                    ..t(DT_INT64)
                },
            ),
            tensor(
                "i64_content",
                None,
                proto::TensorProto {
                    tensor_content: (-3i64).to_le_bytes().to_vec(),
                    ..t(DT_INT64)
                },
            ),
            tensor(
                "half",
                None,
                proto::TensorProto {
                    half_val: vec![0x3e00],
                    ..t(DT_HALF)
                },
            ),
            tensor(
                "half_content",
                None,
                proto::TensorProto {
                    tensor_content: vec![0x00, 0xc0],
                    ..t(DT_HALF)
                },
            ),
            tensor(
                "bf16",
                None,
                proto::TensorProto {
                    half_val: vec![0x3fc0],
                    ..t(DT_BFLOAT16)
                },
            ),
            tensor("zero", None, t(DT_FLOAT)),
            tensor(
                "rank1_scalars",
                Some("scalars"),
                proto::TensorProto {
                    float_val: vec![3.0],
                    tensor_shape: shape1.clone(),
                    ..t(DT_FLOAT)
                },
            ),
            // not scalars
            tensor(
                "rank1",
                None,
                proto::TensorProto {
                    float_val: vec![3.0],
                    tensor_shape: shape1,
                    ..t(DT_FLOAT)
                },
            ),
            tensor("str_scalar", Some("scalars"), t(7)),
            tensor(
                "short",
                None,
                proto::TensorProto {
                    tensor_content: vec![1, 2],
                    ..t(DT_FLOAT)
                },
            ),
            tensor("img", Some("images"), t(7)),
            tensor("hist", Some("histograms"), t(DT_DOUBLE)),
            tensor("snd", Some("audio"), t(7)),
            tensor("txt", Some("text"), t(7)),
            tensor("pr", Some("pr_curves"), t(DT_FLOAT)),
            proto::Value {
                tag: b"hp".to_vec(),
                metadata: Some(proto::SummaryMetadata {
                    plugin_data: Some(proto::PluginData {
                        plugin_name: b"hparams".to_vec(),
                    }),
                }),
                value: None,
            },
            proto::Value {
                tag: b"bare".to_vec(),
                metadata: None,
                value: None,
            },
            proto::Value {
                tag: b"old".to_vec(),
                metadata: None,
                value: Some(proto::value::Payload::ObsoleteOldStyleHistogram(vec![1])),
            },
            proto::Value {
                tag: b"i".to_vec(),
                metadata: None,
                value: Some(proto::value::Payload::Image(proto::Skipped {})),
            },
            proto::Value {
                tag: b"h".to_vec(),
                metadata: None,
                value: Some(proto::value::Payload::Histo(proto::Skipped {})),
            },
            proto::Value {
                tag: b"a".to_vec(),
                metadata: None,
                value: Some(proto::value::Payload::Audio(proto::Skipped {})),
            },
            simple("bad\u{fffd}utf8", 1.0),
        ];
        let mut first = event(5, values);
        // make the last tag invalid UTF-8: replace the encoded U+FFFD (ef bf bd) with 0xff 0xff 0xff
        let at = first.windows(3).position(|w| w == [0xef, 0xbf, 0xbd]).unwrap();
        first[at..at + 3].copy_from_slice(&[0xff, 0xff, 0xff]);
        // Later values of "img" and "f_content" without metadata keep their tag's plugin.
        let second = event(
            6,
            vec![
                tensor("img", None, t(7)),
                tensor(
                    "f_content",
                    None,
                    proto::TensorProto {
                        float_val: vec![9.0],
                        ..t(DT_FLOAT)
                    },
                ),
            ],
        );
        let version = proto::Event {
            wall_time: 1.0,
            step: 0,
            summary: None,
        }
        .encode_to_vec();
        let tmp = Temp::new("tensors");
        tmp.write(&[frame(&version), frame(&first), frame(&second)].concat());
        let (reader, c) = read_path(&tmp.0);
        assert!(c.issues.is_empty(), "{:?}", c.issues);
        assert_eq!(c.records, 3);

        let got: Vec<(&str, f64)> = c.scalars.iter().map(|s| (s.tag.as_str(), s.value)).collect();
        let want: Vec<(&str, f64)> = vec![
            ("f_content", 0.25),
            ("f_val", 0.5),
            ("d_val", 0.1),
            ("d_content", 0.2),
            ("i32", -7.0),
            ("i64", (1u64 << 40) as f64),
            ("i64_content", -3.0),
            ("half", 1.5),
            ("half_content", -2.0),
            ("bf16", 1.5),
            ("zero", 0.0),
            ("rank1_scalars", 3.0),
            ("bad\u{fffd}\u{fffd}\u{fffd}utf8", 1.0),
            ("f_content", 9.0),
        ];
        assert_eq!(got, want);
        assert!(
            c.scalars
                .iter()
                .all(|s| s.wall_time_ms == 1_700_000_000_250 + s.step * 1000)
        );

        let o = |tag: &str, kind: Kind| ((tag.to_string(), kind), 1u64);
        let want_others: BTreeMap<(String, Kind), u64> = [
            o("rank1", Kind::Tensor),
            o("str_scalar", Kind::Scalar),
            o("short", Kind::Tensor),
            ((String::from("img"), Kind::Image), 2),
            o("hist", Kind::Histogram),
            o("snd", Kind::Audio),
            o("txt", Kind::Text),
            o("pr", Kind::Other("pr_curves".into())),
            o("hp", Kind::Other("hparams".into())),
            o("old", Kind::Histogram),
            o("i", Kind::Image),
            o("h", Kind::Histogram),
            o("a", Kind::Audio),
        ]
        .into_iter()
        .collect();
        assert_eq!(reader.others(), &want_others);
    }

    #[test]
    fn half_precision_conversion() {
        assert_eq!(f16_to_f64(0x3c00), 1.0);
        assert_eq!(f16_to_f64(0xc000), -2.0);
        assert_eq!(f16_to_f64(0x7bff), 65504.0);
        assert_eq!(f16_to_f64(0x0001), 2f64.powi(-24));
        assert_eq!(f16_to_f64(0x7c00), f64::INFINITY);
        assert!(f16_to_f64(0x7e00).is_nan());
    }

    #[test]
    fn wall_time_rounding() {
        assert_eq!(wall_ms(1.2344), 1234);
        assert_eq!(wall_ms(1.2346), 1235);
        assert_eq!(wall_ms(f64::NAN), 0);
        assert_eq!(wall_ms(f64::INFINITY), i64::MAX);
    }

    #[test]
    fn crc32c_known_values() {
        assert_eq!(crc32c(b""), 0);
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62A8_AB43);
        let ascending: Vec<u8> = (0..32).collect();
        assert_eq!(crc32c(&ascending), 0x46DD_794E);
        let descending: Vec<u8> = (0..32).rev().collect();
        assert_eq!(crc32c(&descending), 0x113F_DB5C);
        // streaming equals one shot, at any split
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        for split in [0, 1, 7, 8, 9, 500, 999, 1000] {
            assert_eq!(
                crc32c_update(crc32c_update(0, &data[..split]), &data[split..]),
                crc32c(&data)
            );
        }
        // bitwise reference
        let mut crc = !0u32;
        for &b in &data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ CRC32C_POLY
                } else {
                    crc >> 1
                };
            }
        }
        assert_eq!(!crc, crc32c(&data));
        // The tables and the CPU instruction (where there is one) agree at every length.
        for len in 0..=data.len().min(70) {
            assert_eq!(crc32c_tables_update(0, &data[..len]), crc32c_update(0, &data[..len]));
        }
        assert_eq!(crc32c_tables_update(0, &data), crc32c_update(0, &data));
    }

    #[test]
    fn event_file_names() {
        assert!(is_event_file("events.out.tfevents.1712345678.host.123.0"));
        assert!(is_event_file("events.out.tfevents.1712345678.host.123.0.v2"));
        assert!(!is_event_file("events.out"));
        assert!(!is_event_file("checkpoint"));
    }

    // ---- fuzz smoke ----------------------------------------------------------------

    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }

        /// Up to `max - 1` random bytes.
        fn bytes(&mut self, max: u64) -> Vec<u8> {
            let n = self.below(max);
            (0..n).map(|_| self.next() as u8).collect()
        }
    }

    #[test]
    fn random_garbage_fuzz_smoke() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let tmp = Temp::new("fuzz");
        for round in 0..400 {
            let mut data = Vec::new();
            for _ in 0..rng.below(12) {
                match rng.below(7) {
                    0 => data.extend(rng.bytes(40)),
                    1 => data.extend(frame(&rng.bytes(60))),
                    2 => {
                        let r = scalar_record("x", rng.below(100) as i64, 1.0);
                        let cut = rng.below(r.len() as u64) as usize;
                        data.extend_from_slice(&r[..cut]);
                    }
                    3 => {
                        // a framed random summary built from random fields
                        let mut e = event(1, vec![simple("y", 2.0)]);
                        let len = e.len();
                        for _ in 0..rng.below(4) {
                            e[rng.below(len as u64) as usize] = rng.next() as u8;
                        }
                        data.extend(frame(&e));
                    }
                    _ => data.extend(scalar_record("z", rng.below(100) as i64, 3.0)),
                }
            }
            for _ in 0..rng.below(3) {
                if !data.is_empty() {
                    let i = rng.below(data.len() as u64) as usize;
                    data[i] ^= 1 << rng.below(8);
                }
            }
            tmp.write(&[]);
            let file = tmp.open();
            let mut reader = Reader::new(0);
            let mut c = Collected::default();
            // append in random pieces, polling in between with random bounds
            let mut written = 0;
            while written < data.len() {
                let n = 1 + rng.below((data.len() - written) as u64) as usize;
                tmp.append(&data[written..written + n]);
                written += n;
                let max = 1 + rng.below(200);
                poll_all(&mut reader, &file, max, rng.below(4) == 0, &mut c);
                assert!(reader.offset() <= written as u64, "round {round}");
            }
            poll_all(&mut reader, &file, u64::MAX, true, &mut c);
            assert!(reader.offset() <= data.len() as u64);
            assert!(
                c.polls < 10 * (data.len() as u64 + 10),
                "round {round}: {} polls",
                c.polls
            );
            // a reader started anywhere copes too
            let mut other = Reader::new(rng.below(data.len() as u64 + 20));
            let mut c2 = Collected::default();
            poll_all(&mut other, &file, u64::MAX, true, &mut c2);
        }
    }

    // ---- benchmark -----------------------------------------------------------------

    /// cargo test --release -- --ignored --nocapture bench_million_scalars
    #[test]
    #[ignore]
    fn bench_million_scalars() {
        const N: i64 = 1_000_000;
        let tmp = Temp::new("bench");
        {
            let mut w = std::io::BufWriter::new(File::create(&tmp.0).unwrap());
            w.write_all(&frame(
                &proto::Event {
                    wall_time: 1.0,
                    step: 0,
                    summary: None,
                }
                .encode_to_vec(),
            ))
            .unwrap();
            for i in 0..N {
                let tag = if i % 2 == 0 { "train/loss" } else { "train/acc" };
                w.write_all(&scalar_record(tag, i / 2, 1.0 / (i + 1) as f32)).unwrap();
            }
            w.flush().unwrap();
        }
        let size = std::fs::metadata(&tmp.0).unwrap().len();
        let file = tmp.open();
        for run in 0..3 {
            let mut reader = Reader::new(0);
            let mut count = 0u64;
            let mut sum = 0.0;
            let started = std::time::Instant::now();
            let r = reader
                .poll(&file, u64::MAX, true, &mut |s| {
                    count += 1;
                    sum += s.value;
                })
                .unwrap();
            let took = started.elapsed();
            assert_eq!(count, N as u64);
            assert!(r.issues.is_empty() && !r.more);
            println!(
                "run {run}: {N} scalars, {:.1} MB in {:.1} ms ({:.0} ns/record, {:.0} MB/s), sum {sum:.3}",
                size as f64 / 1e6,
                took.as_secs_f64() * 1e3,
                took.as_secs_f64() * 1e9 / N as f64,
                size as f64 / 1e6 / took.as_secs_f64(),
            );
        }
    }
}
