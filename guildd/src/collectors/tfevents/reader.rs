//! [`Reader`]: the reading state of one event file and its poll, which walks the records
//! appended since the last poll (framing in `framing`), hands each event's scalars out
//! (scalar-only events through `fast`, the rest decoded with `proto`) and counts every
//! other summary value per tag and [`Kind`].

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io;

use prost::Message;

use super::framing::{self, FOOTER, HEADER, Resync, Source};
use super::{Issue, Kind, MediaEvent, PollResult, ScalarEvent, ScalarRef, fast, media, proto, wall_ms};

/// Records with more data than this are CRC-checked by streaming and never decoded in
/// memory: those without a summary (big graph defs) are skipped silently, the others are
/// reported as [`Issue::BadEvent`].
const MAX_DECODE: u64 = 64 << 20;
/// Media values skipped (not an image, over a bound) are reported this many times per
/// file at most, so a run that writes a bad image every step fills no log.
const MAX_SKIPS_REPORTED: u64 = 20;

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
    /// Media items read and not yet taken ([`Reader::take_media`]).
    media: Vec<MediaEvent>,
    /// Media values skipped so far (only the first MAX_SKIPS_REPORTED are reported).
    skipped: u64,
    /// [`MAX_DECODE`]; tests lower it to reach the streaming path with small records.
    pub(super) max_decode: u64,
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
            media: Vec::new(),
            skipped: 0,
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

    /// The media items (images, audio, histograms, text, PR curves) read since the last
    /// call, in file order. Each poll holds at most its byte bound's worth.
    pub fn take_media(&mut self) -> Vec<MediaEvent> {
        std::mem::take(&mut self.media)
    }

    /// Media values skipped so far (each reported as [`Issue::SkippedValue`], the first
    /// few of them).
    pub fn skipped(&self) -> u64 {
        self.skipped
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
        let mut src = Source::new(file, len, self.offset);
        loop {
            if self.resyncing {
                match framing::resync(&mut src, &mut self.offset, limit, at_eof_final, self.max_decode)? {
                    Resync::Found => self.resyncing = false,
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
            let Some(length) = framing::parse_header(h) else {
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
                if !framing::data_crc_ok(rec) {
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

    /// A record too large to decode: checks its CRC by streaming and classifies it by its
    /// top-level fields. `Some(true)` if it is a valid record without a summary (skipped
    /// silently); `Some(false)` if an issue was pushed; `None` if the file ended early.
    fn read_large(&mut self, file: &File, pos: u64, length: u64, res: &mut PollResult) -> io::Result<Option<bool>> {
        let data_start = pos + HEADER;
        let Some(crc_ok) = framing::stream_crc_ok(file, data_start, length)? else {
            return Ok(None);
        };
        if !crc_ok {
            res.issues.push(Issue::CorruptData { offset: pos });
            return Ok(Some(false));
        }
        let reason = match proto::large_event_has_summary(file, data_start, length)? {
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

    /// Decodes one event and dispatches its summary values: through the fast path when it
    /// is scalars only, else as a protobuf message. False (and an issue) if the data is
    /// not an `Event`.
    fn handle_event(
        &mut self,
        data: &[u8],
        offset: u64,
        issues: &mut Vec<Issue>,
        on_scalar: &mut impl FnMut(ScalarRef<'_>),
    ) -> bool {
        if let Some(n) = fast::simple_scalars(data, on_scalar) {
            self.scalars += n;
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
            let (kind, items) = match v.value {
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
                Some(V::ObsoleteOldStyleHistogram(_)) => (Kind::Histogram, None),
                Some(V::Histo(h)) => (Kind::Histogram, Some(media::histogram(h))),
                Some(V::Image(img)) => (Kind::Image, Some(media::image(img))),
                Some(V::Audio(a)) => (Kind::Audio, Some(media::audio(a))),
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
                    let plugin = plugin.unwrap_or("");
                    (Kind::for_plugin(plugin), media::from_tensor(plugin, t))
                }
                None => match &plugin {
                    Some(p) => (Kind::for_plugin(p), None),
                    None => continue,
                },
            };
            match items {
                Some(Ok(items)) => {
                    for (index, data) in items.into_iter().enumerate() {
                        self.media.push(MediaEvent {
                            tag: tag.clone(),
                            step,
                            wall_time_ms,
                            index: index as u32,
                            data,
                        });
                    }
                }
                Some(Err(reason)) => {
                    self.skipped += 1;
                    if self.skipped <= MAX_SKIPS_REPORTED {
                        let reason = if self.skipped == MAX_SKIPS_REPORTED {
                            format!("{reason} (further skipped values of this file are not reported)")
                        } else {
                            reason
                        };
                        issues.push(Issue::SkippedValue {
                            offset,
                            tag: tag.clone(),
                            step,
                            reason,
                        });
                    }
                }
                None => {}
            }
            *self.others.entry((tag, kind)).or_insert(0) += 1;
        }
        true
    }
}

fn into_string(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}
