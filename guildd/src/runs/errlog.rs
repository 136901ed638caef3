//! A run's `guild.d/errors.log`: what went wrong around the run, one timestamped line
//! each. A run's task keeps what it cannot write yet (the run folder is full) and writes
//! it, in order, before its next line: nothing said is lost, and nothing is written twice.

use std::io::Write;
use std::path::{Path, PathBuf};

pub const ERRORS_FILE: &str = "errors.log";
/// At most this much waits in memory; later lines are counted, and the count written
/// once there is room.
const UNWRITTEN_LIMIT: usize = 64 * 1024;

/// Appends a line to the run's errors.log, once: for those with no task to try again.
/// Returns whether it was written.
pub fn append_error(guild_d: &Path, message: &str) -> bool {
    let mut log = ErrorLog::new(guild_d);
    log.append(message);
    log.unwritten.is_empty()
}

fn line(message: &str) -> String {
    format!("{} {message}\n", guild_proto::time::display(guild_proto::time::now_ms()))
}

pub struct ErrorLog {
    path: PathBuf,
    /// Bytes not written yet: whole lines, less what a short write took of the first.
    unwritten: Vec<u8>,
    /// Lines left out to keep `unwritten` under UNWRITTEN_LIMIT.
    dropped: usize,
}

impl ErrorLog {
    pub fn new(guild_d: &Path) -> ErrorLog {
        ErrorLog {
            path: guild_d.join(ERRORS_FILE),
            unwritten: Vec::new(),
            dropped: 0,
        }
    }

    /// Appends a line (after any still waiting).
    pub fn append(&mut self, message: &str) {
        let line = line(message);
        if self.unwritten.len() + line.len() > UNWRITTEN_LIMIT {
            self.dropped += 1;
        } else {
            self.unwritten.extend_from_slice(line.as_bytes());
        }
        self.flush();
    }

    /// Writes what is waiting; true when nothing is left.
    pub fn flush(&mut self) -> bool {
        if self.unwritten.is_empty() && self.dropped == 0 {
            return true;
        }
        let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(&self.path) else {
            return false;
        };
        loop {
            if self.unwritten.is_empty() {
                if self.dropped == 0 {
                    return true;
                }
                // The note takes the place of the lines it counts.
                let note = line(&format!(
                    "{} more lines were left out of errors.log while it could not be written",
                    self.dropped
                ));
                self.unwritten.extend_from_slice(note.as_bytes());
                self.dropped = 0;
            }
            match file.write(&self.unwritten) {
                Ok(0) => return false,
                Ok(n) => {
                    self.unwritten.drain(..n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
    }
}
