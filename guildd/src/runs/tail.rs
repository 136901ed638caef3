//! Tails a run's captured output files (`guild.d/stdout.log`, `guild.d/stderr.log`):
//! new bytes become output rows and output scalars. Offsets advance only over whole
//! lines and are committed with the rows, so a restart neither loses nor doubles a line.
//!
//! The two files keep no common order, so the supervisor notes, as each stderr write
//! lands, how long stdout was then (`guild.d/order.log`, see [`OrderMarks`]). A stderr
//! line is stored before the stdout lines completed after it was written; without a mark
//! (an older run, a supervisor that was killed), after the stdout lines of its poll.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::runs::output::{LineSplitter, ScalarParser};
use crate::samples::{Batch, OutputRow, SampleRow};

pub const STDOUT_FILE: &str = "stdout.log";
pub const STDERR_FILE: &str = "stderr.log";
/// Lines `STDERR_SIZE STDOUT_SIZE`, appended by the supervisor as stderr grows.
pub const ORDER_FILE: &str = "order.log";
/// The supervisor stops noting marks past this size (ordering then falls back).
pub const ORDER_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// A partial line longer than this is passed on without waiting for its newline.
const CARRY_LIMIT: usize = 64 * 1024;
/// At most this much is read from one file per poll (the next poll follows at once), so
/// one chatty run cannot stall a batch, and twenty runs bursting at once do not each hold
/// a burst's worth of lines at a time.
const READ_LIMIT: usize = 1024 * 1024;
/// The read buffer kept between polls (a larger one, after a burst, is given back).
const KEEP_CAPACITY: usize = 256 * 1024;

struct TailFile {
    name: &'static str,
    path: PathBuf,
    file: Option<File>,
    /// Everything before it has been given to the splitter.
    offset: u64,
    /// Where a restart reads from: just past the last newline given to the splitter (a
    /// partial line the splitter holds is read again), or the end once finished. This,
    /// not `offset`, is committed with the batch's rows.
    resume: u64,
    /// The resume offset last put in a batch.
    reported: u64,
    /// Read but not yet a whole line.
    carry: Vec<u8>,
    splitter: LineSplitter,
}

pub struct Tailer {
    stdout: TailFile,
    stderr: TailFile,
    order: OrderMarks,
    scalars: ScalarParser,
    /// Open the files afresh at each read (see `reopen_each_read`).
    reopen: bool,
}

/// The supervisor's marks: `(E, O)`, stderr held E bytes when stdout held O. Read as the
/// file grows; marks for stderr bytes already stored are dropped.
struct OrderMarks {
    path: PathBuf,
    read: u64,
    carry: Vec<u8>,
    marks: std::collections::VecDeque<(u64, u64)>,
}

impl OrderMarks {
    fn read_new(&mut self) {
        let Ok(mut file) = File::open(&self.path) else {
            return;
        };
        let mut bytes = Vec::new();
        use std::io::{Read, Seek, SeekFrom};
        if file.seek(SeekFrom::Start(self.read)).is_err()
            || (&mut file).take(READ_LIMIT as u64).read_to_end(&mut bytes).is_err()
        {
            return;
        }
        self.read += bytes.len() as u64;
        self.carry.extend_from_slice(&bytes);
        let whole = self.carry.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        for line in self.carry[..whole].split(|&b| b == b'\n') {
            let text = std::str::from_utf8(line).unwrap_or_default();
            if let Some((e, o)) = text.split_once(' ')
                && let (Ok(e), Ok(o)) = (e.parse::<u64>(), o.parse::<u64>())
                && self.marks.back().is_none_or(|&(last_e, last_o)| e > last_e && o >= last_o)
            {
                self.marks.push_back((e, o));
            }
        }
        self.carry.drain(..whole);
    }

    /// How long stdout was when stderr reached `end` (None: no mark says).
    fn stdout_at(&self, end: u64) -> Option<u64> {
        let i = self.marks.partition_point(|&(e, _)| e < end);
        self.marks.get(i).map(|&(_, o)| o)
    }

    fn forget_before(&mut self, stored: u64) {
        while self.marks.front().is_some_and(|&(e, _)| e <= stored) {
            self.marks.pop_front();
        }
    }
}

impl Tailer {
    pub fn new(guild_d: &Path, offsets: &HashMap<String, u64>) -> Tailer {
        let file = |name: &'static str| TailFile {
            name,
            path: guild_d.join(name),
            file: None,
            offset: offsets.get(name).copied().unwrap_or(0),
            resume: offsets.get(name).copied().unwrap_or(0),
            reported: offsets.get(name).copied().unwrap_or(0),
            carry: Vec::new(),
            splitter: LineSplitter::new(),
        };
        Tailer {
            stdout: file(STDOUT_FILE),
            stderr: file(STDERR_FILE),
            order: OrderMarks {
                path: guild_d.join(ORDER_FILE),
                read: 0,
                carry: Vec::new(),
                marks: Default::default(),
            },
            scalars: ScalarParser::new(),
            reopen: false,
        }
    }

    /// Opens the files afresh at each read: on a network filesystem (a Slurm run's
    /// folder), an open is what makes another node's writes visible; an open file's
    /// size may be cached for up to a minute.
    pub fn reopen_each_read(&mut self) {
        self.reopen = true;
    }

    /// Reads what the files gained since the last poll. With `finished`, also takes the
    /// last line that has no newline. Returns the batch to commit and whether a file
    /// had more than one poll's worth (poll again at once).
    pub fn poll(&mut self, now_ms: i64, finished: bool) -> (Batch, bool) {
        let mut batch = Batch::default();
        if self.reopen {
            self.stderr.file = None;
            self.stdout.file = None;
        }
        // stderr first, then the marks, then stdout: all stdout written before a stderr
        // line read here is read here too.
        let mut errs = Vec::new();
        let mut err_ends = Vec::new();
        let mut more = !read_new(&mut self.stderr, finished, &mut errs, Some(&mut err_ends));
        let mut outs = Vec::new();
        let mut out_ends = Vec::new();
        let track = !errs.is_empty();
        if track {
            self.order.read_new();
        }
        more |= !read_new(&mut self.stdout, finished, &mut outs, track.then_some(&mut out_ends));
        // Merge: each stderr line before the first stdout line completed after it.
        let mut outs = outs.into_iter().zip(out_ends.into_iter().chain(std::iter::repeat(u64::MAX))).peekable();
        for (line, end) in errs.into_iter().zip(err_ends) {
            let before = self.order.stdout_at(end).unwrap_or(u64::MAX);
            while let Some((out, _)) = outs.next_if(|&(_, out_end)| out_end <= before) {
                self.push(&mut batch, now_ms, "stdout", out);
            }
            self.push(&mut batch, now_ms, "stderr", line);
        }
        for (out, _) in outs {
            self.push(&mut batch, now_ms, "stdout", out);
        }
        self.order.forget_before(self.stderr.offset);
        for file in [&mut self.stdout, &mut self.stderr] {
            if file.resume != file.reported {
                batch.offsets.push((file.name.to_string(), file.resume));
                file.reported = file.resume;
            }
        }
        (batch, more)
    }

    fn push(&mut self, batch: &mut Batch, now_ms: i64, stream: &'static str, line: String) {
        for scalar in self.scalars.parse(&line) {
            batch.samples.push(SampleRow {
                key: scalar.key.into(),
                step: scalar.step,
                time: now_ms,
                value: scalar.value,
            });
        }
        batch.output.push(OutputRow { time: now_ms, stream, line });
    }
}

/// Returns false when it stopped at READ_LIMIT with more to read.
/// With `ends`, also the file offset where each line ended (the splitter emits one line
/// per newline, and one more at the end of a finished file).
fn read_new(file: &mut TailFile, finished: bool, lines: &mut Vec<String>, mut ends: Option<&mut Vec<u64>>) -> bool {
    if file.file.is_none() {
        file.file = File::open(&file.path).ok();
    }
    let mut complete = true;
    if let Some(handle) = &file.file {
        // The size first (one fstat): an idle poll reads nothing and allocates nothing.
        // What there is lands straight in `carry`, whose capacity is kept between polls.
        let mut pos = file.offset + file.carry.len() as u64;
        let size = handle.metadata().map_or(0, |m| m.len());
        if size > pos {
            let want = (size - pos).min(READ_LIMIT as u64) as usize;
            complete = size - pos <= READ_LIMIT as u64;
            let start = file.carry.len();
            file.carry.resize(start + want, 0);
            let mut filled = 0;
            while filled < want {
                match handle.read_at(&mut file.carry[start + filled..], pos) {
                    Ok(0) => break,
                    Ok(n) => {
                        filled += n;
                        pos += n as u64;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
            file.carry.truncate(start + filled);
        }
    }
    let mut emit = |line: String| lines.push(line);
    // Whole lines only, unless the file is finished and read to its end, or a partial
    // line has grown past the limit (the splitter holds it; a restart reads it again
    // from its start, as `resume` stays there).
    let whole = file.carry.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let cut = if (finished && complete) || file.carry.len() - whole > CARRY_LIMIT {
        file.carry.len()
    } else {
        whole
    };
    if cut > 0 {
        if let Some(ends) = ends.as_deref_mut() {
            let start = file.offset;
            ends.extend(
                file.carry[..cut].iter().enumerate().filter(|(_, b)| **b == b'\n').map(|(i, _)| start + i as u64 + 1),
            );
        }
        file.splitter.feed(&file.carry[..cut], &mut emit);
        file.carry.drain(..cut);
        if whole > 0 {
            file.resume = file.offset + whole as u64;
        }
        file.offset += cut as u64;
    }
    // A burst may have grown the buffer to READ_LIMIT; twenty chatty runs must not each
    // keep that much.
    if file.carry.capacity() > KEEP_CAPACITY && file.carry.len() <= KEEP_CAPACITY {
        file.carry.shrink_to(KEEP_CAPACITY);
    }
    if finished && complete {
        file.splitter.finish(&mut emit);
        file.resume = file.offset;
    }
    if let Some(ends) = ends {
        // The last line of a finished file has no newline: it ends at the file's end.
        ends.resize(lines.len(), file.offset);
    }
    complete
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines `line N` and `x: N`, as a chatty run prints them.
    fn chatty(n: usize) -> (Vec<u8>, Vec<String>) {
        let mut bytes = Vec::new();
        let mut lines = Vec::new();
        for i in 0..n {
            for line in [format!("line {i}"), format!("x: {i}")] {
                bytes.extend_from_slice(line.as_bytes());
                bytes.push(b'\n');
                lines.push(line);
            }
        }
        (bytes, lines)
    }

    /// Polls until nothing more is read; returns the lines and the last committed offsets.
    fn drain(tailer: &mut Tailer, finished: bool, offsets: &mut HashMap<String, u64>) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let (batch, more) = tailer.poll(0, finished);
            lines.extend(batch.output.into_iter().map(|row| row.line));
            offsets.extend(batch.offsets);
            if !more {
                return lines;
            }
        }
    }

    #[test]
    fn a_restart_at_the_committed_offset_reads_no_line_twice_and_loses_none() {
        // A backlog larger than one read, cut anywhere: each poll's committed offset must
        // be a line's start, whatever the splitter holds of a partial line.
        let (bytes, expected) = chatty(120_000);
        for cut in [0, 1, 3, 100_001, 1_048_576 + 5, bytes.len() - 4] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(STDOUT_FILE);
            std::fs::write(&path, &bytes[..cut]).unwrap();
            let mut offsets = HashMap::new();
            let mut stored = drain(&mut Tailer::new(dir.path(), &offsets), false, &mut offsets);
            // The daemon dies here; the rest of the output lands; the next one resumes.
            std::fs::write(&path, &bytes).unwrap();
            let mut next = Tailer::new(dir.path(), &offsets);
            stored.extend(drain(&mut next, true, &mut offsets));
            assert_eq!(stored.len(), expected.len(), "cut at {cut}");
            assert!(stored == expected, "cut at {cut}: lines differ");
            assert_eq!(offsets.get(STDOUT_FILE), Some(&(bytes.len() as u64)));
        }
    }

    #[test]
    fn a_finished_backlog_larger_than_one_read_comes_out_in_whole_lines() {
        let (bytes, expected) = chatty(120_000);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(STDOUT_FILE), &bytes[..bytes.len() - 1]).unwrap();
        let mut offsets = HashMap::new();
        let stored = drain(&mut Tailer::new(dir.path(), &offsets), true, &mut offsets);
        assert!(stored == expected, "a line was split at a read's end");
    }

    #[test]
    fn a_partial_line_past_the_limit_is_passed_on_but_read_again_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STDOUT_FILE);
        let long = "y".repeat(CARRY_LIMIT + 10);
        std::fs::write(&path, format!("first\n{long}")).unwrap();
        let mut offsets = HashMap::new();
        let mut tailer = Tailer::new(dir.path(), &offsets);
        assert_eq!(drain(&mut tailer, false, &mut offsets), ["first"]);
        assert_eq!(tailer.stdout.offset, (6 + long.len()) as u64, "the long partial line was not passed on");
        assert_eq!(offsets.get(STDOUT_FILE), Some(&6), "committed past a line the splitter holds");
        std::fs::write(&path, format!("first\n{long}z\nlast\n")).unwrap();
        let mut next = Tailer::new(dir.path(), &offsets);
        let rest = drain(&mut next, true, &mut offsets);
        assert_eq!(rest.len(), 2);
        assert_eq!(rest[0].len(), long.len().min(crate::runs::output::MAX_LINE_BYTES) + "…[truncated 11 bytes]".len());
        assert_eq!(rest[1], "last");
    }
}
