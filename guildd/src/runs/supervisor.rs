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

/// Entry point of `guildd supervise [--node-stats SECONDS] GUILD_D PROGRAM [ARGS...]`.
/// Never returns. `--node-stats` (a Slurm job) also says on the node when the op starts
/// and samples its stats into `guild.d/node.jsonl` (see `slurm::node`).
pub fn main(args: &[String]) -> ! {
    let (node_stats, args) = match args.first().map(String::as_str) {
        Some("--node-stats") => match args.get(1).and_then(|s| s.parse::<f64>().ok()) {
            Some(seconds) => (Some(seconds), &args[2..]),
            None => {
                eprintln!("guildd supervise: --node-stats takes a number of seconds");
                std::process::exit(2);
            }
        },
        _ => (None, args),
    };
    let (Some(guild_d), Some(program)) = (args.first(), args.get(1)) else {
        eprintln!("usage: guildd supervise [--node-stats SECONDS] GUILD_D PROGRAM [ARGS...]");
        std::process::exit(2);
    };
    let guild_d = Path::new(guild_d);
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        // SAFETY: the handler only stores into an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(sig, note_signal as extern "C" fn(libc::c_int) as libc::sighandler_t);
        }
    }
    let record = match Command::new(program).args(&args[2..]).spawn() {
        Err(err) => {
            let reason = format!("cannot start {program}: {err}");
            tell(&format!("guild: {reason}"));
            ExitRecord::Failed {
                reason,
                ended_ms: guild_proto::time::now_ms(),
            }
        }
        Ok(mut child) => {
            let stats = node_stats
                .and_then(|interval| crate::slurm::node::NodeStats::start(guild_d, std::process::id(), interval));
            let waited = child.wait();
            // The last sample is written before the exit file, so it is read before the end.
            if let Some(stats) = stats {
                stats.finish();
            }
            match waited {
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
            }
        }
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
                tell(&format!(
                    "guild: cannot record the exit status in {}: {err}",
                    guild_d.display()
                ));
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
