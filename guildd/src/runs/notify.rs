//! Wakes a run's task when its files change, through inotify: the output files in
//! `guild.d/` and the folders event files may appear in. A quiet run then costs no
//! wake-ups at all, and a new event file is found as soon as it appears rather than at
//! the next timed search. Where inotify is unavailable (or out of watches), the run task
//! reads on its timer alone.

use std::collections::HashSet;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// What changed since the last wait.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Changes {
    /// Something was written.
    pub written: bool,
    /// A file or folder was created or moved in: search for new event files.
    pub created: bool,
}

pub struct DirWatch {
    fd: AsyncFd<OwnedFd>,
    watched: HashSet<PathBuf>,
}

/// Folders: entries created or moved in. Not writes to the files in them: a folder's
/// watch sees every write to every file in it, at the cost noted at MASK_ONCE.
const MASK: u32 = libc::IN_CREATE | libc::IN_MOVED_TO;
/// A file watched for its next write only: the kernel drops the watch once it fires.
/// While a file has a watch, each write to it queues an event, which cost a run that
/// prints 300,000 lines a fifth more time (`bench/launch_and_capture.sh`: 370 -> 440 ms,
/// with nobody reading the events).
const MASK_ONCE: u32 = libc::IN_MODIFY | libc::IN_CLOSE_WRITE | libc::IN_ONESHOT;
const CREATED: u32 = libc::IN_CREATE | libc::IN_MOVED_TO;

impl DirWatch {
    /// None when inotify cannot be used here. Must be called within the tokio runtime.
    pub fn new() -> Option<DirWatch> {
        // SAFETY: inotify_init1 takes flags only; a negative result is an error.
        let raw = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if raw < 0 {
            return None;
        }
        // SAFETY: `raw` is a new descriptor owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: the OwnedFd is open, stays open while the AsyncFd owns it, and always
        // returns the same descriptor.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.ok()?;
        Some(DirWatch {
            fd,
            watched: HashSet::new(),
        })
    }

    /// Watches `dir` for new entries (not its subfolders); false when it cannot (gone,
    /// out of watches).
    pub fn add(&mut self, dir: &Path) -> bool {
        if self.watched.contains(dir) {
            return true;
        }
        if !self.add_watch(dir, MASK) {
            return false;
        }
        self.watched.insert(dir.to_path_buf());
        true
    }

    /// Watches `file` for its next write only (again after each time it fires); false
    /// when it cannot (not there yet, out of watches).
    pub fn add_once(&mut self, file: &Path) -> bool {
        self.add_watch(file, MASK_ONCE)
    }

    /// inotify_add_watch: false when it fails.
    fn add_watch(&self, path: &Path, mask: u32) -> bool {
        let Ok(path) = CString::new(path.as_os_str().as_bytes()) else {
            return false;
        };
        // SAFETY: a valid descriptor and a NUL-terminated path.
        let wd = unsafe { libc::inotify_add_watch(self.fd.get_ref().as_raw_fd(), path.as_ptr(), mask) };
        wd >= 0
    }

    /// Waits for the next changes, then takes every event queued so far.
    pub async fn changed(&self) -> Changes {
        loop {
            let Ok(mut guard) = self.fd.readable().await else {
                return std::future::pending().await;
            };
            let mut changes = Changes::default();
            let mut any = false;
            let mut buf = [0u8; 4096];
            loop {
                // SAFETY: reading into a buffer of the length given.
                let n = unsafe { libc::read(self.fd.get_ref().as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                if n <= 0 {
                    break;
                }
                any = true;
                changes = changes.merge(parse(&buf[..n as usize]));
            }
            guard.clear_ready();
            if any {
                return changes;
            }
        }
    }
}

impl Changes {
    fn merge(self, other: Changes) -> Changes {
        Changes {
            written: self.written || other.written,
            created: self.created || other.created,
        }
    }
}

/// The masks of a buffer of `struct inotify_event`s (16-byte header, then `len` bytes of
/// name). An overflowed queue counts as everything having changed.
fn parse(mut buf: &[u8]) -> Changes {
    let mut changes = Changes::default();
    while buf.len() >= 16 {
        let mask = u32::from_ne_bytes([buf[4], buf[5], buf[6], buf[7]]);
        let len = u32::from_ne_bytes([buf[12], buf[13], buf[14], buf[15]]) as usize;
        if mask & libc::IN_Q_OVERFLOW != 0 {
            return Changes {
                written: true,
                created: true,
            };
        }
        // IN_IGNORED: a watch went away (a one-shot watch that fired, with its event).
        changes.written |= mask & !(CREATED | libc::IN_IGNORED) != 0;
        changes.created |= mask & CREATED != 0;
        buf = buf.get(16 + len..).unwrap_or_default();
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn folders_report_new_entries_only() {
        let dir = tempfile_dir("notify");
        let mut watch = DirWatch::new().expect("inotify");
        assert!(watch.add(&dir));
        std::fs::write(dir.join("a.log"), "x").unwrap();
        let first = watch.changed().await;
        assert!(first.created, "{first:?}");
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join("a.log"))
            .unwrap();
        use std::io::Write;
        // Writes to a file in a watched folder are not reported (the file's own one-shot
        // watch is what sees those).
        (&file).write_all(b"more").unwrap();
        assert!(!queued(&watch));
        std::fs::create_dir(dir.join("train")).unwrap();
        assert!(watch.changed().await.created);
        assert!(!watch.add(&dir.join("missing")));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Whether an event is queued (a read that does not wait).
    fn queued(watch: &DirWatch) -> bool {
        let mut buf = [0u8; 4096];
        // SAFETY: reading into a buffer of the length given; the descriptor is non-blocking.
        let n = unsafe { libc::read(watch.fd.get_ref().as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        n > 0 && parse(&buf[..n as usize]).written
    }

    #[tokio::test]
    async fn a_file_watched_once_reports_one_write_until_watched_again() {
        use std::io::Write;
        let dir = tempfile_dir("notify-once");
        let path = dir.join("stdout.log");
        let mut file = std::fs::File::create(&path).unwrap();
        let mut watch = DirWatch::new().expect("inotify");
        assert!(watch.add_once(&path));
        file.write_all(b"one\n").unwrap();
        assert!(watch.changed().await.written);
        // The watch is gone: later writes queue nothing.
        for _ in 0..100 {
            file.write_all(b"more\n").unwrap();
        }
        assert!(!queued(&watch));
        assert!(watch.add_once(&path));
        file.write_all(b"again\n").unwrap();
        assert!(watch.changed().await.written);
        assert!(!watch.add_once(&dir.join("missing")));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("guild-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
