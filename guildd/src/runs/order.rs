//! The order of a run's two output streams. The op writes stdout and stderr straight to
//! two files, which keep no common order; this notes, as each stderr write lands, how
//! long stdout was then: a line `STDERR_SIZE STDOUT_SIZE` in `guild.d/order.log`, which
//! the tailer uses to store a stderr line before the stdout lines written after it.
//!
//! A thread of its own per followed run, asleep in inotify: its queue keeps the order of
//! the writes to both files (consecutive writes to one file fold into one event). At each
//! wake it reads the sizes: stderr then stdout in one batch takes stdout's size from the
//! look before, otherwise stdout's size now. So the order is exact while the thread sees
//! the writes one by one; when stdout, stderr and stdout again land in one batch, the
//! stderr line goes before that batch's stdout. After a batch of stdout writes alone it
//! pauses a millisecond, so an op flooding stdout wakes it at most 1,000 times a second.
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
use std::time::Duration;

use inotify::{Inotify, WatchDescriptor, WatchMask};

use super::tail::{ORDER_FILE, ORDER_MAX_BYTES, STDERR_FILE, STDOUT_FILE};

/// How often the thread looks at whether its run is still followed.
const STOP_CHECK_MS: i32 = 1000;
/// The pause after a wake by stdout alone.
const STDOUT_PAUSE: Duration = Duration::from_millis(1);

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
    stdout_watch: WatchDescriptor,
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
        let mut watches = inotify.watches();
        watches.add(guild_d.join(STDERR_FILE), WatchMask::MODIFY).ok()?;
        let stdout_watch = watches.add(guild_d.join(STDOUT_FILE), WatchMask::MODIFY).ok()?;
        let notes = std::fs::OpenOptions::new().create(true).append(true).open(guild_d.join(ORDER_FILE)).ok()?;
        let stop = Arc::new(AtomicBool::new(false));
        let watcher = Watcher {
            inotify,
            stdout_watch,
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
        let (Some(mut last_err), Some(mut last_out)) = (size(&self.stderr), size(&self.stdout)) else {
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
            let Ok(events) = self.inotify.read_events(&mut buffer) else {
                continue;
            };
            let (mut err_seen, mut out_after_err) = (false, false);
            for event in events {
                if event.wd == self.stdout_watch {
                    out_after_err |= err_seen;
                } else {
                    err_seen = true;
                }
            }
            let (Some(err), Some(out)) = (size(&self.stderr), size(&self.stdout)) else {
                return;
            };
            if !err_seen {
                last_out = out;
                std::thread::sleep(STDOUT_PAUSE);
                continue;
            }
            if err > last_err {
                let before = if out_after_err { last_out } else { out };
                let note = format!("{err} {before}\n");
                written += note.len() as u64;
                // A note that cannot be written (a full disk) costs only the order.
                if written > ORDER_MAX_BYTES || self.notes.write_all(note.as_bytes()).is_err() {
                    return;
                }
                last_err = err;
            }
            last_out = out;
        }
    }
}
