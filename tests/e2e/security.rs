//! Who may talk to the daemon: only its own user on the Unix socket (mode 0600, and
//! SO_PEERCRED even when the mode is loosened).

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::helpers::*;

/// Runs `guild ARGS` as uid/gid 65534 (nobody) through setpriv; None when this test
/// cannot switch users (not root, or no setpriv).
fn guild_as_nobody(env: &Env, args: &[&str]) -> Option<std::process::Output> {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: switching to another user needs root");
        return None;
    }
    let output = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(guild_exe())
        .args(args)
        .env("GUILD_SOCKET", &env.socket)
        .env("GUILD_DATA_DIR", env.root.join("nobody-data"))
        .env_remove("XDG_RUNTIME_DIR")
        .output();
    match output {
        Ok(output) => Some(output),
        Err(err) => {
            eprintln!("skipped: cannot run setpriv: {err}");
            None
        }
    }
}

fn open_up(path: &std::path::Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn another_user_is_refused_even_through_a_loosened_socket() {
    let env = Env::new();
    env.start_guildd(&["--listen", "none"]);
    // As made: the socket folder is private, so the other user cannot even reach it.
    assert_eq!(mode(env.socket.parent().unwrap()), 0o700);
    assert_eq!(mode(&env.socket), 0o600);
    open_up(&env.root, 0o755);
    let Some(closed) = guild_as_nobody(&env, &["daemon", "status"]) else {
        return;
    };
    assert!(!closed.status.success(), "{closed:?}");

    // Loosen every mode: the daemon still refuses the peer by its uid.
    open_up(env.socket.parent().unwrap(), 0o755);
    open_up(&env.socket, 0o666);
    let refused = guild_as_nobody(&env, &["daemon", "status"]).unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{refused:?}");
    assert!(stderr.contains("uid 65534 may not use it"), "{stderr}");
    // The owner still gets in.
    env.guild(&["daemon", "status"]).ok();
}
