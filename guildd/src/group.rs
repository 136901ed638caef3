//! Signals to the process groups guildd's children lead (runs' supervisors, serve
//! workers, TensorBoard): each is started in its own group, so a signal reaches every
//! process the child started too, even after the child itself is gone; and whether a
//! run's group still has its op.

use std::time::Duration;

use tokio::process::Child;

/// Sends `signal` to the group `pid` leads (nothing for pid 0).
pub fn signal_group(pid: u32, signal: libc::c_int) {
    if pid > 0 {
        // SAFETY: kill(2) with a negative pid signals the group the child leads; callers
        // pass the pid of their own child (or of a run they verified by start time).
        unsafe {
            libc::kill(-(pid as libc::pid_t), signal);
        }
    }
}

pub fn kill_group(pid: u32) {
    signal_group(pid, libc::SIGKILL);
}

/// SIGTERM to the child's group; SIGKILL when the child has not ended after `grace`.
/// Reaps the child.
pub async fn terminate(child: &mut Child, pid: u32, grace: Duration) {
    signal_group(pid, libc::SIGTERM);
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        kill_group(pid);
        let _ = child.wait().await;
    }
}

/// Whether a process of the group `pgid` is alive with `GUILD_RUN_ID=run_id` in its
/// environment: a run's op (its group is the one its supervisor leads, named by the
/// supervisor's pid), whether or not the supervisor still lives. Zombies do not count,
/// nor does an unrelated group that took the pid later (its processes lack the run's id).
pub fn run_group_alive(pgid: u32, run_id: &str) -> bool {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return false;
    };
    if pgid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the group has a process (zombies included).
    if unsafe { libc::kill(-pgid, 0) } != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
        return false;
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    let marker = format!("GUILD_RUN_ID={run_id}");
    entries.flatten().any(|entry| {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            return false;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        // After the command name (which may hold spaces and parentheses): state, ppid, pgrp.
        let mut fields = stat[stat.rfind(')').map_or(stat.len(), |i| i + 1)..].split_whitespace();
        let (state, group) = (fields.next(), fields.nth(1).and_then(|g| g.parse::<libc::pid_t>().ok()));
        if group != Some(pgid) || state == Some("Z") || state == Some("X") {
            return false;
        }
        std::fs::read(format!("/proc/{pid}/environ"))
            .is_ok_and(|env| env.split(|&b| b == 0).any(|var| var == marker.as_bytes()))
    })
}
