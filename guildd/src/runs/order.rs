//! The order of a run's two output streams. The op writes stdout and stderr straight to
//! two files, which keep no common order; this notes, as each stderr write lands, how
//! long stdout was then: a line `STDERR_SIZE STDOUT_SIZE` in `guild.d/order.log`, which
//! the tailer uses to store a stderr line before the stdout lines written after it.
//!
//! A thread of its own per followed run, asleep in inotify on stderr alone (a watch on
//! stdout would cost the op an event for each of its writes, and wake this thread for
//! them). At each wake it reads both sizes: stdout written within the microseconds
//! between a stderr write and the wake counts as before it, so lines printed that close
//! together may store the stderr line after the stdout line just behind it.
//!
//! In guildd, not in the supervisor: closing an inotify instance waits for the kernel's
//! mark reaper (10-18 ms measured here), which must not delay the supervisor's exit (the
//! end of every run); here the thread closes it on its own time after the run.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use inotify::{Inotify, WatchMask};

use super::tail::{ORDER_FILE, ORDER_MAX_BYTES, STDERR_FILE, STDOUT_FILE};

/// How often the thread looks at whether its run is still followed.
const STOP_CHECK_MS: i32 = 1000;

/// Stops the notes when dropped (the thread ends within a second).
pub struct OrderNotes {
    stop: Arc<AtomicBool>,
}

impl Drop for OrderNotes {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

struct Watcher {
    inotify: Inotify,
    stdout: File,
    stderr: File,
    notes: File,
    stop: Arc<AtomicBool>,
}

impl OrderNotes {
    /// Starts noting for the run whose `guild.d` this is. None where it cannot (no output
    /// files, no inotify, no thread): the tailer then orders each read stdout first.
    pub fn start(guild_d: &Path) -> Option<OrderNotes> {
        let stdout = File::open(guild_d.join(STDOUT_FILE)).ok()?;
        let stderr = File::open(guild_d.join(STDERR_FILE)).ok()?;
        let inotify = Inotify::init().ok()?;
        inotify.watches().add(guild_d.join(STDERR_FILE), WatchMask::MODIFY).ok()?;
        let notes = std::fs::OpenOptions::new().create(true).append(true).open(guild_d.join(ORDER_FILE)).ok()?;
        let stop = Arc::new(AtomicBool::new(false));
        let watcher = Watcher {
            inotify,
            stdout,
            stderr,
            notes,
            stop: stop.clone(),
        };
        std::thread::Builder::new()
            .name("guild-order".into())
            .stack_size(64 * 1024)
            .spawn(move || watcher.run())
            .ok()?;
        Some(OrderNotes { stop })
    }
}

impl Watcher {
    fn run(mut self) {
        let size = |f: &File| f.metadata().map(|m| m.len()).ok();
        let Some(mut last_err) = size(&self.stderr) else {
            return;
        };
        let mut written = self.notes.metadata().map_or(0, |m| m.len());
        let mut buffer = [0u8; 4096];
        while !self.stop.load(Ordering::Relaxed) {
            let mut fd = libc::pollfd {
                fd: self.inotify.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one pollfd, valid for the call.
            if unsafe { libc::poll(&mut fd, 1, STOP_CHECK_MS) } <= 0 {
                continue;
            }
            // Drained: what matters is the sizes now.
            while self.inotify.read_events(&mut buffer).is_ok_and(|mut events| events.next().is_some()) {}
            let (Some(err), Some(out)) = (size(&self.stderr), size(&self.stdout)) else {
                return;
            };
            if err > last_err {
                let note = format!("{err} {out}\n");
                written += note.len() as u64;
                // A note that cannot be written (a full disk) costs only the order.
                if written > ORDER_MAX_BYTES || self.notes.write_all(note.as_bytes()).is_err() {
                    return;
                }
                last_err = err;
            }
        }
    }
}
