//! The system service: socket activation (systemd-socket-activate stands in for systemd)
//! and the units `guild daemon install` writes.

use std::process::{Command, Stdio};

use crate::helpers::*;

#[test]
fn socket_activation_starts_guildd_on_first_use() {
    if Command::new("systemd-socket-activate")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: systemd-socket-activate is not installed (Debian package systemd)");
        return;
    }
    let env = Env::new();
    let socket_dir = env.socket.parent().unwrap();
    std::fs::create_dir(socket_dir).unwrap();
    std::fs::set_permissions(socket_dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let log = std::fs::File::create(env.root.join("activate.log")).unwrap();
    let mut activator = Command::new("systemd-socket-activate")
        .arg("-l")
        .arg(&env.socket)
        .arg(guildd_exe())
        .arg("--data-dir")
        .arg(&env.data_dir)
        .arg("--socket")
        .arg(&env.socket)
        .args(["--listen", "none"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("cannot start systemd-socket-activate");
    // The activator listens first; nothing has started guildd yet.
    wait_until("systemd-socket-activate to listen", || env.socket.exists());
    assert!(
        !env.data_dir.join("guildd.lock").exists(),
        "guildd started before anyone connected"
    );

    // The first client connection starts guildd on the passed socket.
    let status = env.guild(&["daemon", "status"]).ok();
    assert!(
        status.stdout.contains(&format!("socket:   {}", env.socket.display())),
        "{status:?}"
    );
    assert_eq!(mode(&env.socket), 0o600, "guildd makes the passed socket private");
    let pid: u32 = std::fs::read_to_string(env.data_dir.join("guildd.lock"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(pid, activator.id(), "the activator execs guildd in its place");
    // Runs work through the activated socket.
    env.write("Guild", "[model \"m\"]\ntrain = hello\n");
    env.write("hello.py", "print('hello: 1')\n");
    let out = env.guild(&["train"]).ok();
    assert_eq!(out.stdout, "hello: 1\n");

    env.guild(&["daemon", "stop"]).ok();
    let status = wait_child_status(&mut activator);
    assert!(status.success(), "guildd exited with {status}");
    // systemd owns the socket file: guildd leaves it in place.
    assert!(env.socket.exists());
}

fn wait_child_status(child: &mut std::process::Child) -> std::process::ExitStatus {
    let mut status = None;
    wait_until("guildd to exit", || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    status.unwrap()
}

#[test]
fn daemon_install_writes_units_naming_this_guildd() {
    let env = Env::new();
    let dir = env.root.join("units");
    let out = env.guild(&["daemon", "install", "--dir", dir.to_str().unwrap()]).ok();
    assert!(
        out.stdout.contains("systemctl --user enable --now guildd.socket"),
        "{out:?}"
    );
    let service = std::fs::read_to_string(dir.join("guildd.service")).unwrap();
    let guildd = guildd_exe().canonicalize().unwrap();
    assert!(
        service.contains(&format!("ExecStart={}\n", guildd.display())),
        "{service}"
    );
    assert!(
        service.contains("KillMode=process"),
        "stopping the service must not kill runs"
    );
    assert!(service.contains("NoNewPrivileges=yes"));
    let socket = std::fs::read_to_string(dir.join("guildd.socket")).unwrap();
    assert!(socket.contains("ListenStream=%t/guild/guildd.sock") && socket.contains("SocketMode=0600"));
    // systemd itself accepts them.
    if Command::new("systemd-analyze").arg("--version").output().is_ok() {
        let verify = Command::new("systemd-analyze")
            .arg("verify")
            .arg(dir.join("guildd.socket"))
            .arg(dir.join("guildd.service"))
            .output()
            .unwrap();
        assert!(
            verify.status.success() && verify.stderr.is_empty(),
            "systemd-analyze verify: {}",
            String::from_utf8_lossy(&verify.stderr)
        );
    }
}
