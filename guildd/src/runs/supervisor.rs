//! The per-run supervisor: `guildd supervise GUILD_D PROGRAM ARGS...`.
//!
//! guildd starts this small process (its own binary) in a new session for every run.
//! It starts the op with the output files it inherited, waits for it, and writes the
//! true exit status to `guild.d/exit` before it exits (waiting for room when the disk is
//! full). So a run keeps going, and its outcome is known, even when guildd itself dies;
//! a restarted guildd reads the file.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};

/// The signal the supervisor got while the op ran (0: none). The op got it too:
/// stops are sent to the whole process group.
static SIGNALLED: AtomicI32 = AtomicI32::new(0);

extern "C" fn note_signal(sig: libc::c_int) {
    SIGNALLED.store(sig, Ordering::SeqCst);
}

/// What `guild.d/exit` says. One JSON object, written atomically.
#[derive(Debug, Clone, PartialEq)]
pub enum ExitRecord {
    /// The op exited with this code.
    Exited { code: i32, ended_ms: i64 },
    /// The op was killed by this signal.
    Signalled { signal: i32, ended_ms: i64 },
    /// The op could not be started.
    Failed { reason: String, ended_ms: i64 },
}

impl ExitRecord {
    pub fn to_json(&self) -> String {
        let value = match self {
            ExitRecord::Exited { code, ended_ms } => {
                serde_json::json!({"exit_code": code, "ended_ms": ended_ms})
            }
            ExitRecord::Signalled { signal, ended_ms } => {
                serde_json::json!({"signal": signal, "ended_ms": ended_ms})
            }
            ExitRecord::Failed { reason, ended_ms } => {
                serde_json::json!({"failed": reason, "ended_ms": ended_ms})
            }
        };
        value.to_string()
    }

    pub fn parse(text: &str) -> Option<ExitRecord> {
        let value: serde_json::Value = serde_json::from_str(text).ok()?;
        let ended_ms = value.get("ended_ms")?.as_i64()?;
        if let Some(code) = value.get("exit_code").and_then(|v| v.as_i64()) {
            return Some(ExitRecord::Exited {
                code: code as i32,
                ended_ms,
            });
        }
        if let Some(signal) = value.get("signal").and_then(|v| v.as_i64()) {
            return Some(ExitRecord::Signalled {
                signal: signal as i32,
                ended_ms,
            });
        }
        let reason = value.get("failed")?.as_str()?.to_string();
        Some(ExitRecord::Failed { reason, ended_ms })
    }

    pub fn read(guild_d: &Path) -> Option<ExitRecord> {
        std::fs::read_to_string(guild_d.join(EXIT_FILE))
            .ok()
            .as_deref()
            .and_then(ExitRecord::parse)
    }

    pub fn ended_ms(&self) -> i64 {
        match self {
            ExitRecord::Exited { ended_ms, .. }
            | ExitRecord::Signalled { ended_ms, .. }
            | ExitRecord::Failed { ended_ms, .. } => *ended_ms,
        }
    }
}

pub const EXIT_FILE: &str = "exit";

/// Entry point of `guildd supervise`. Never returns.
pub fn main(args: &[String]) -> ! {
    let (Some(guild_d), Some(program)) = (args.first(), args.get(1)) else {
        eprintln!("usage: guildd supervise GUILD_D PROGRAM [ARGS...]");
        std::process::exit(2);
    };
    let guild_d = Path::new(guild_d);
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        // SAFETY: the handler only stores into an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(sig, note_signal as extern "C" fn(libc::c_int) as libc::sighandler_t);
        }
    }
    // Watched before the op starts, so its first stderr line is noted too.
    let order = OrderNotes::new(guild_d);
    let record = match Command::new(program).args(&args[2..]).spawn() {
        Err(err) => {
            let reason = format!("cannot start {program}: {err}");
            tell(&format!("guild: {reason}"));
            ExitRecord::Failed {
                reason,
                ended_ms: guild_proto::time::now_ms(),
            }
        }
        Ok(mut child) => match {
            if let Some(order) = order {
                std::thread::spawn(move || order.run());
            }
            child.wait()
        } {
            Ok(status) => {
                use std::os::unix::process::ExitStatusExt;
                let ended_ms = guild_proto::time::now_ms();
                match (status.code(), status.signal()) {
                    (Some(code), _) => ExitRecord::Exited { code, ended_ms },
                    (None, Some(signal)) => ExitRecord::Signalled { signal, ended_ms },
                    (None, None) => ExitRecord::Failed {
                        reason: "unknown exit status".into(),
                        ended_ms,
                    },
                }
            }
            Err(err) => ExitRecord::Failed {
                reason: format!("lost track of the op's process: {err}"),
                ended_ms: guild_proto::time::now_ms(),
            },
        },
    };
    // A full disk is waited out: the exit status is known only here.
    let mut pause = std::time::Duration::from_millis(50);
    let mut told = false;
    loop {
        match write_atomically(&guild_d.join(EXIT_FILE), record.to_json().as_bytes()) {
            Ok(()) => break,
            Err(err) if matches!(err.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT)) => {
                if !told {
                    tell(&format!(
                        "guild: cannot record the exit status in {} yet: {err}; trying again",
                        guild_d.display()
                    ));
                    told = true;
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_secs(1));
            }
            Err(err) => {
                tell(&format!("guild: cannot record the exit status in {}: {err}", guild_d.display()));
                std::process::exit(1);
            }
        }
    }
    let code = if matches!(record, ExitRecord::Failed { .. }) {
        127
    } else {
        0
    };
    std::process::exit(code)
}

/// Notes how long stdout was when each write to stderr landed: a line
/// `STDERR_SIZE STDOUT_SIZE` in `guild.d/order.log`, which the tailer uses to store the
/// two streams in the order they were written.
///
/// One inotify instance watches both files: its queue keeps the order of the writes
/// (consecutive writes to one file fold into one event). Each time it wakes, this thread
/// reads the sizes: a stderr write followed by stdout writes in one batch takes stdout's
/// size from the look before; otherwise stdout's size now. So the order is exact while
/// this thread keeps up with the writes, which a printing op leaves it time to do; when
/// it falls behind (stdout, stderr and stdout again in one batch), the stderr line is
/// put before that batch's stdout. After a batch of stdout writes alone it pauses 100 µs,
/// so an op flooding stdout wakes it at most 10,000 times a second.
struct OrderNotes {
    inotify: inotify::Inotify,
    stdout_watch: inotify::WatchDescriptor,
    notes: std::fs::File,
}

impl OrderNotes {
    /// None when the op's output is not two regular files, or inotify is unavailable:
    /// the tailer then orders by poll.
    fn new(guild_d: &Path) -> Option<OrderNotes> {
        if !(size_of_fd(1).is_some() && size_of_fd(2).is_some()) {
            return None;
        }
        let inotify = inotify::Inotify::init().ok()?;
        let watches = inotify.watches();
        watches.clone().add(guild_d.join(super::tail::STDERR_FILE), inotify::WatchMask::MODIFY).ok()?;
        let stdout_watch = watches.clone().add(guild_d.join(super::tail::STDOUT_FILE), inotify::WatchMask::MODIFY).ok()?;
        let notes = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(guild_d.join(super::tail::ORDER_FILE))
            .ok()?;
        Some(OrderNotes {
            inotify,
            stdout_watch,
            notes,
        })
    }

    fn run(mut self) {
        let mut buffer = [0u8; 4096];
        let (mut last_err, mut last_out, mut written) = (0, size_of_fd(1).unwrap_or(0), 0u64);
        loop {
            let Ok(events) = self.inotify.read_events_blocking(&mut buffer) else {
                return;
            };
            let (mut err_seen, mut out_after_err) = (false, false);
            for event in events {
                if event.wd == self.stdout_watch {
                    out_after_err |= err_seen;
                } else {
                    err_seen = true;
                }
            }
            let (Some(err), Some(out)) = (size_of_fd(2), size_of_fd(1)) else {
                return;
            };
            if !err_seen {
                last_out = out;
                std::thread::sleep(std::time::Duration::from_micros(100));
                continue;
            }
            if err > last_err {
                let before = if out_after_err { last_out } else { out };
                let note = format!("{err} {before}\n");
                written += note.len() as u64;
                // A note that cannot be written (a full disk) costs only the order.
                if written > super::tail::ORDER_MAX_BYTES || self.notes.write_all(note.as_bytes()).is_err() {
                    return;
                }
                last_err = err;
            }
            last_out = out;
        }
    }
}

/// The size of the regular file open as `fd` (None: not a regular file).
fn size_of_fd(fd: libc::c_int) -> Option<u64> {
    // SAFETY: fstat writes into the zeroed struct it is given and reads nothing else.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut stat) } != 0 || stat.st_mode & libc::S_IFMT != libc::S_IFREG {
        return None;
    }
    Some(stat.st_size as u64)
}

/// A line on stderr (the run's stderr.log): never a panic when that cannot be written
/// (a full disk), as `eprintln!` would.
fn tell(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Whole or absent (a rename), not synced: the same promise as run.db's commits
/// (synchronous = NORMAL), which survive the daemon's death but not the machine's power
/// failing. A sync here was 1-3 ms at the end of every run.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    drop(file);
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_records_round_trip() {
        for record in [
            ExitRecord::Exited { code: 3, ended_ms: 5 },
            ExitRecord::Signalled {
                signal: 15,
                ended_ms: 6,
            },
            ExitRecord::Failed {
                reason: "cannot start \"x\"".into(),
                ended_ms: 7,
            },
        ] {
            assert_eq!(ExitRecord::parse(&record.to_json()), Some(record));
        }
        assert_eq!(ExitRecord::parse("{"), None);
        assert_eq!(ExitRecord::parse("{\"exit_code\": 1}"), None);
    }
}
