//! Processes tests look at or clean up, read from /proc: alive or not, signals caught,
//! a run's whole tree, peak memory, and what a test leaves behind.

use std::path::Path;

/// Kills every process whose command line mentions `root`: run supervisors with their
/// process group (the op), everything else alone.
pub(super) fn kill_leftovers(root: &Path) {
    let needle = root.as_os_str().as_encoded_bytes();
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if !cmdline.windows(needle.len()).any(|w| w == needle) {
            continue;
        }
        let supervisor = cmdline.split(|&b| b == 0).nth(1) == Some(b"supervise".as_slice());
        // SAFETY: plain kill(2) on pids (or the group of a supervisor, which leads its
        // own session) that this test's folder identifies as its own.
        unsafe {
            if supervisor {
                libc::kill(-(pid as libc::pid_t), libc::SIGKILL);
            }
            libc::kill(pid as libc::pid_t, libc::SIGKILL);
        }
    }
}

/// Whether `pid` is a live process (not gone, not a zombie).
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Whether `pid` has installed a handler for `signal` (/proc/PID/status SigCgt).
pub fn catches_signal(pid: u32, signal: libc::c_int) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|mask| mask & (1u64 << (signal - 1)) != 0)
}

/// The live (not zombie) processes started for a run: those with its folder as `RUNDIR`
/// in their environment (the supervisor and the op's whole tree). Not by `GUILD_RUN_ID`
/// alone: runs of other daemons on the machine may have the same id.
pub fn run_processes(run_dir: &Path) -> Vec<u32> {
    let marker = [b"RUNDIR=".as_slice(), run_dir.as_os_str().as_encoded_bytes()].concat();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter(|pid| process_alive(*pid))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|v| v == marker.as_slice()))
        })
        .collect()
}

/// A process's peak resident memory (VmHWM), in bytes.
pub fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("cannot read /proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or_else(|| panic!("no VmHWM in /proc/{pid}/status"))
}
