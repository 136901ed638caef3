//! Tails a run's captured output files (`guild.d/stdout.log`, `guild.d/stderr.log`):
//! new bytes become output rows and output scalars. Offsets advance only over whole
//! lines and are committed with the rows, so a restart neither loses nor doubles a line.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::runs::output::{LineSplitter, ScalarParser};
use crate::samples::{Batch, OutputRow, SampleRow};

pub const STDOUT_FILE: &str = "stdout.log";
pub const STDERR_FILE: &str = "stderr.log";

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
    stream: &'static str,
    path: PathBuf,
    file: Option<File>,
    /// Committed: everything before it is in run.db.
    offset: u64,
    /// The offset last put in a batch.
    reported: u64,
    /// Read but not yet a whole line.
    carry: Vec<u8>,
    splitter: LineSplitter,
}

pub struct Tailer {
    files: Vec<TailFile>,
    scalars: ScalarParser,
}

impl Tailer {
    pub fn new(guild_d: &Path, offsets: &HashMap<String, u64>) -> Tailer {
        let file = |name: &'static str, stream: &'static str| TailFile {
            name,
            stream,
            path: guild_d.join(name),
            file: None,
            offset: offsets.get(name).copied().unwrap_or(0),
            reported: offsets.get(name).copied().unwrap_or(0),
            carry: Vec::new(),
            splitter: LineSplitter::new(),
        };
        Tailer {
            files: vec![file(STDOUT_FILE, "stdout"), file(STDERR_FILE, "stderr")],
            scalars: ScalarParser::new(),
        }
    }

    /// Reads what the files gained since the last poll. With `finished`, also takes the
    /// last line that has no newline. Returns the batch to commit and whether a file
    /// had more than one poll's worth (poll again at once).
    pub fn poll(&mut self, now_ms: i64, finished: bool) -> (Batch, bool) {
        let mut batch = Batch::default();
        let mut more = false;
        for file in &mut self.files {
            let mut lines = Vec::new();
            let read_all = read_new(file, finished, &mut lines);
            more |= !read_all;
            for line in lines {
                for scalar in self.scalars.parse(&line) {
                    batch.samples.push(SampleRow {
                        key: scalar.key.into(),
                        step: scalar.step,
                        time: now_ms,
                        value: scalar.value,
                    });
                }
                batch.output.push(OutputRow {
                    time: now_ms,
                    stream: file.stream,
                    line,
                });
            }
            if file.offset != file.reported {
                batch.offsets.push((file.name.to_string(), file.offset));
                file.reported = file.offset;
            }
        }
        (batch, more)
    }
}

/// Returns false when it stopped at READ_LIMIT with more to read.
fn read_new(file: &mut TailFile, finished: bool, lines: &mut Vec<String>) -> bool {
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
    let cut = if finished || file.carry.len() > CARRY_LIMIT {
        file.carry.len()
    } else {
        file.carry.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1)
    };
    if cut > 0 {
        file.splitter.feed(&file.carry[..cut], &mut emit);
        file.carry.drain(..cut);
        file.offset += cut as u64;
    }
    // A burst may have grown the buffer to READ_LIMIT; twenty chatty runs must not each
    // keep that much.
    if file.carry.capacity() > KEEP_CAPACITY && file.carry.len() <= KEEP_CAPACITY {
        file.carry.shrink_to(KEEP_CAPACITY);
    }
    if finished && complete {
        file.splitter.finish(&mut emit);
    }
    complete
}
