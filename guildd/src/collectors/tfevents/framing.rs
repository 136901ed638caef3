//! TFRecord framing: record headers and data CRCs, the read window one poll reads the
//! file through, and the scan for the next record start after a corrupt length.
//! Ours because no crate reads records from a file that is still being written, resumes
//! at an offset we persist, and scans past a corrupt length to keep what follows it.
//!
//! ```text
//! u64 length (little-endian) | u32 masked CRC32C of the 8 length bytes
//! `length` data bytes        | u32 masked CRC32C of the data
//! ```

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Bytes read from the file at a time.
const CHUNK: usize = 4 << 20;
/// Length (8) and its CRC (4).
pub(super) const HEADER: u64 = 12;
/// Data CRC.
pub(super) const FOOTER: u64 = 4;
/// A protobuf message cannot exceed 2 GiB; a length above this is treated as corrupt even
/// when its CRC matches.
const MAX_RECORD: u64 = i32::MAX as u64;

/// A read window over the file for one poll.
pub(super) struct Source<'a> {
    pub(super) file: &'a File,
    /// File length when the poll started; bytes appended later wait for the next poll.
    pub(super) len: u64,
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    start: u64,
}

impl<'a> Source<'a> {
    /// A window over `file` whose first read starts at `start`; `len` is the file's
    /// length now.
    pub(super) fn new(file: &'a File, len: u64, start: u64) -> Self {
        Source {
            file,
            len,
            buf: Vec::new(),
            start,
        }
    }

    /// Bytes `[pos, pos + n)`, reading ahead up to `ahead` bytes (bounded by the chunk
    /// size and the file length) when it must read. `None` if the file ended early.
    pub(super) fn bytes(&mut self, pos: u64, n: u64, ahead: u64) -> io::Result<Option<&[u8]>> {
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

/// A length header: `Some(length)` when its CRC matches and the length is possible.
pub(super) fn parse_header(h: &[u8]) -> Option<u64> {
    let len_bytes: &[u8; 8] = h.first_chunk()?;
    let crc_bytes: &[u8; 4] = h.get(8..12)?.first_chunk()?;
    if masked_crc32c(len_bytes) != u32::from_le_bytes(*crc_bytes) {
        return None;
    }
    let length = u64::from_le_bytes(*len_bytes);
    (length <= MAX_RECORD).then_some(length)
}

/// Whether `rec` (header, data, footer) has a matching data CRC.
pub(super) fn data_crc_ok(rec: &[u8]) -> bool {
    let Some((body, crc)) = rec.split_last_chunk::<4>() else {
        return false;
    };
    let Some(data) = body.get(HEADER as usize..) else {
        return false;
    };
    masked_crc32c(data) == u32::from_le_bytes(*crc)
}

/// Whether the data of `length` bytes at `data_start` matches the CRC that follows it,
/// checked by streaming (the record is too large to hold). `None` if the file ended early.
pub(super) fn stream_crc_ok(file: &File, data_start: u64, length: u64) -> io::Result<Option<bool>> {
    Ok(stream_crc32c(file, data_start, length)?
        .zip(read_u32(file, data_start + length)?)
        .map(|(crc, want)| mask(crc) == want))
}

/// How the scan after a corrupt length ended.
pub(super) enum Resync {
    /// `offset` is now a confirmed record start.
    Found,
    /// Not enough bytes yet; `offset` is where the scan goes on.
    Wait,
    /// Reached the poll's byte bound.
    Bounded,
}

/// Scans from `offset` for the next record start after a corrupt length: a header whose
/// CRC matches and whose record's data CRC matches too (records with more data than
/// `max_decode` are checked by streaming). `offset` advances as the scan goes, so an
/// error leaves it where the scan got to. A candidate whose data is not all there yet is
/// waited for, unless `at_eof_final` (the writer is done): then the scan goes past it.
pub(super) fn resync(
    src: &mut Source<'_>,
    offset: &mut u64,
    limit: u64,
    at_eof_final: bool,
    max_decode: u64,
) -> io::Result<Resync> {
    let len = src.len;
    loop {
        let q = *offset;
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
                let ok = if length > max_decode {
                    stream_crc_ok(src.file, q + HEADER, length)?
                } else {
                    src.bytes(q, total, limit - q)?.map(data_crc_ok)
                };
                match ok {
                    None => return Ok(Resync::Wait),
                    Some(true) => return Ok(Resync::Found),
                    Some(false) => {}
                }
            }
        }
        *offset = q + 1;
    }
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
        crc = crc32c::crc32c_append(crc, chunk);
        done += n as u64;
    }
    Ok(Some(crc))
}

/// TFRecord's CRC masking.
fn mask(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// The masked CRC32C a record stores for `data`.
pub(super) fn masked_crc32c(data: &[u8]) -> u32 {
    mask(crc32c::crc32c(data))
}
