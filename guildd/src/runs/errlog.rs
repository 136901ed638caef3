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
    format!(
        "{} {message}\n",
        guild_proto::time::display(guild_proto::time::now_ms())
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_that_cannot_be_written_wait_and_are_written_once() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let Some(_mount) = crate::testing::Tmpfs::mount(dir, "64k") else {
            return;
        };
        let mut log = ErrorLog::new(&dir);
        log.append("before");
        let fill = dir.join("fill");
        crate::testing::fill(&fill);
        for i in 0..3 {
            log.append(&format!("during {i} {}", "z".repeat(3000)));
        }
        assert!(!log.flush(), "the disk did not fill");
        std::fs::remove_file(&fill).unwrap();
        assert!(log.flush());
        let text = std::fs::read_to_string(dir.join(ERRORS_FILE)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].ends_with(" before"));
        for (i, line) in lines[1..].iter().enumerate() {
            assert!(
                line.contains(&format!(" during {i} zzz")) && line.ends_with('z'),
                "{line}"
            );
        }
    }
}
