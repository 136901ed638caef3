//! Processes guildd starts and follows: runs' supervisors (each in a session of its
//! own), serve workers and TensorBoard (each in a process group of its own), so a signal
//! reaches every process the child started too, even after the child itself is gone.
//! What `/proc/PID/stat` says of a process (its state, group and start time), which with
//! the pid identifies a process across daemon restarts.

use std::time::Duration;

use tokio::process::{Child, Command};

/// Starts `cmd` as the leader of a new session (and process group): the run outlives the
/// daemon, and a stop reaches the whole tree.
pub fn in_new_session(cmd: &mut Command) -> &mut Command {
    // SAFETY: setsid is async-signal-safe, and the closure touches nothing else.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

/// Starts `cmd` as the leader of a process group of its own.
pub fn in_own_group(cmd: &mut Command) -> &mut Command {
    cmd.process_group(0)
}

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

/// What `/proc/PID/stat` says of a process.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stat {
    /// `R`, `S`, `Z` (a zombie), `X` (dead), ...
    pub state: char,
    pub ppid: u32,
    pub pgrp: i32,
    /// CPU time in user and kernel mode, in clock ticks.
    pub utime: u64,
    pub stime: u64,
    /// Start time in clock ticks since boot.
    pub start_time: u64,
    /// Virtual memory size in bytes.
    pub vsize: u64,
    /// Resident set size in pages.
    pub rss_pages: u64,
}

impl Stat {
    /// The process's stat, None when it is gone.
    pub fn of(pid: u32) -> Option<Stat> {
        Stat::parse(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
    }

    /// Parses a stat line. The command name (field 2) may hold spaces and parentheses:
    /// fields are read after its last `)`.
    pub fn parse(line: &str) -> Option<Stat> {
        let rest = &line[line.rfind(')')? + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // After the name: state (3), ppid (4), pgrp (5), ... utime (14), stime (15),
        // ... starttime (22), vsize (23), rss (24); here numbered from state = 0.
        Some(Stat {
            state: fields.first()?.chars().next()?,
            ppid: fields.get(1)?.parse().ok()?,
            pgrp: fields.get(2)?.parse().ok()?,
            utime: fields.get(11)?.parse().ok()?,
            stime: fields.get(12)?.parse().ok()?,
            start_time: fields.get(19)?.parse().ok()?,
            vsize: fields.get(20)?.parse().ok()?,
            rss_pages: fields.get(21)?.parse().ok()?,
        })
    }

    /// A zombie or a dead process: it has ended, whatever its pid still shows.
    pub fn ended(&self) -> bool {
        matches!(self.state, 'Z' | 'X')
    }
}

/// The process's start time in clock ticks since boot: with the pid, it identifies a
/// process across daemon restarts.
pub fn start_time(pid: u32) -> Option<u64> {
    Stat::of(pid).map(|s| s.start_time)
}

/// Whether `pid` is still the process that was started with `start` (not a reused pid,
/// not a zombie); any live process of that pid when `start` is unknown.
pub fn same_process(pid: u32, start: Option<u64>) -> bool {
    match Stat::of(pid) {
        Some(stat) if !stat.ended() => start.is_none_or(|start| stat.start_time == start),
        _ => false,
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
        match Stat::of(pid) {
            Some(stat) if stat.pgrp == pgid && !stat.ended() => {}
            _ => return false,
        }
        std::fs::read(format!("/proc/{pid}/environ"))
            .is_ok_and(|env| env.split(|&b| b == 0).any(|var| var == marker.as_bytes()))
    })
}

/// Lowers this thread's priority (a thread id is a process id to setpriority): work
/// that can wait, below the runs being recorded.
pub fn lower_thread_priority(nice: libc::c_int) {
    // SAFETY: setpriority on this thread only.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, nice);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_names_parse() {
        let line = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 123456 1000 10 \
                    18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let stat = Stat::parse(line).unwrap();
        assert_eq!(
            stat,
            Stat {
                state: 'S',
                ppid: 1,
                pgrp: 4242,
                utime: 7,
                stime: 3,
                start_time: 123456,
                vsize: 1000,
                rss_pages: 10,
            }
        );
        assert!(!stat.ended());
        assert!(Stat::parse("4242 (x) Z").is_none());
    }

    #[test]
    fn this_process_is_itself_and_its_start_time_stays() {
        let me = std::process::id();
        let start = start_time(me).unwrap();
        assert!(same_process(me, Some(start)));
        assert!(same_process(me, None));
        assert!(!same_process(me, Some(start + 1)));
        assert_eq!(Stat::of(me).unwrap().pgrp, unsafe { libc::getpgrp() });
    }
}
