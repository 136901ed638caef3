//! Wakes a run's task when its files change, through inotify: the output files in
//! `guild.d/` and the folders event files may appear in. A quiet run then costs no
//! wake-ups at all, and a new event file is found as soon as it appears rather than at
//! the next timed search. Where inotify is unavailable (or out of watches), the run task
//! reads on its timer alone.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use inotify::{EventMask, Inotify, WatchMask, Watches};
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
    fd: AsyncFd<Inotify>,
    watches: Watches,
    watched: HashSet<PathBuf>,
}

/// Folders: entries created or moved in. Not writes to the files in them: a folder's
/// watch sees every write to every file in it, at the cost noted at MASK_ONCE.
const MASK: WatchMask = WatchMask::CREATE.union(WatchMask::MOVED_TO);
/// A file watched for its next write only: the kernel drops the watch once it fires.
/// While a file has a watch, each write to it queues an event, which cost a run that
/// prints 300,000 lines a fifth more time (`bench/launch_and_capture.sh`: 370 -> 440 ms,
/// with nobody reading the events).
const MASK_ONCE: WatchMask = WatchMask::MODIFY
    .union(WatchMask::CLOSE_WRITE)
    .union(WatchMask::ONESHOT);
const CREATED: EventMask = EventMask::CREATE.union(EventMask::MOVED_TO);

impl DirWatch {
    /// None when inotify cannot be used here. Must be called within the tokio runtime.
    pub fn new() -> Option<DirWatch> {
        // Non-blocking and close-on-exec.
        let inotify = Inotify::init().ok()?;
        let watches = inotify.watches();
        // SAFETY: the Inotify owns its descriptor, keeps it open while the AsyncFd owns
        // it, and always returns the same one.
        let fd = unsafe { AsyncFd::register_with_interest(inotify, Interest::READABLE) }.ok()?;
        Some(DirWatch {
            fd,
            watches,
            watched: HashSet::new(),
        })
    }

    /// Watches `dir` for new entries (not its subfolders); false when it cannot (gone,
    /// out of watches).
    pub fn add(&mut self, dir: &Path) -> bool {
        if self.watched.contains(dir) {
            return true;
        }
        if self.watches.add(dir, MASK).is_err() {
            return false;
        }
        self.watched.insert(dir.to_path_buf());
        true
    }

    /// Watches `file` for its next write only (again after each time it fires); false
    /// when it cannot (not there yet, out of watches).
    pub fn add_once(&mut self, file: &Path) -> bool {
        self.watches.add(file, MASK_ONCE).is_ok()
    }

    /// Waits for the next changes, then takes every event queued so far.
    pub async fn changed(&mut self) -> Changes {
        let mut buf = [0u8; 4096];
        loop {
            let Ok(mut guard) = self.fd.readable_mut().await else {
                return std::future::pending().await;
            };
            let mut changes = Changes::default();
            let mut any = false;
            // Until the queue is empty (WouldBlock: the descriptor is non-blocking).
            while let Ok(events) = guard.get_inner_mut().read_events(&mut buf) {
                for event in events {
                    any = true;
                    changes = changes.merge(Changes::of(event.mask));
                }
            }
            guard.clear_ready();
            if any {
                return changes;
            }
        }
    }
}

impl Changes {
    /// What one event says. An overflowed queue counts as everything having changed.
    fn of(mask: EventMask) -> Changes {
        if mask.contains(EventMask::Q_OVERFLOW) {
            return Changes {
                written: true,
                created: true,
            };
        }
        Changes {
            // IGNORED: a watch went away (a one-shot watch that fired, with its event).
            written: !(mask - CREATED - EventMask::IGNORED).is_empty(),
            created: mask.intersects(CREATED),
        }
    }

    fn merge(self, other: Changes) -> Changes {
        Changes {
            written: self.written || other.written,
            created: self.created || other.created,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn folders_report_new_entries_only() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
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
        assert!(!queued(&mut watch));
        std::fs::create_dir(dir.join("train")).unwrap();
        assert!(watch.changed().await.created);
        assert!(!watch.add(&dir.join("missing")));
    }

    /// Whether a write is queued (a read that does not wait).
    fn queued(watch: &mut DirWatch) -> bool {
        let mut buf = [0u8; 4096];
        match watch.fd.get_mut().read_events(&mut buf) {
            Ok(events) => events.into_iter().any(|e| Changes::of(e.mask).written),
            Err(_) => false,
        }
    }

    #[tokio::test]
    async fn a_file_watched_once_reports_one_write_until_watched_again() {
        use std::io::Write;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
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
        assert!(!queued(&mut watch));
        assert!(watch.add_once(&path));
        file.write_all(b"again\n").unwrap();
        assert!(watch.changed().await.written);
        assert!(!watch.add_once(&dir.join("missing")));
    }
}
