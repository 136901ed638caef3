//! Signals to the process groups guildd's children lead (runs' supervisors, serve
//! workers, TensorBoard): each is started in its own group, so a signal reaches every
//! process the child started too.

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
