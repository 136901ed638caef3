//! The system service: socket activation (systemd-socket-activate stands in for systemd)
//! and the units `guild daemon install` writes.

use std::process::{Command, Stdio};

use guild_proto::v1::{self as pb, daemon_service_client::DaemonServiceClient};

use crate::helpers::*;

/// Whether systemd-socket-activate (which stands in for systemd) is here; says why the
/// test skips when not.
fn have_activator() -> bool {
    let found = Command::new("systemd-socket-activate")
        .arg("--version")
        .output()
        .is_ok();
    if !found {
        eprintln!("skipped: systemd-socket-activate is not installed (Debian package systemd)");
    }
    found
}

/// Starts systemd-socket-activate listening on this test's socket (and on `tcp`, when
/// given), set to exec guildd on the first connection.
fn activator(env: &Env, tcp: Option<&str>) -> std::process::Child {
    let socket_dir = env.socket.parent().unwrap();
    std::fs::create_dir(socket_dir).unwrap();
    std::fs::set_permissions(socket_dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let log = std::fs::File::create(env.root.join("activate.log")).unwrap();
    let mut command = Command::new("systemd-socket-activate");
    command.arg("-l").arg(&env.socket);
    if let Some(address) = tcp {
        command.args(["-l", address]);
    }
    let activator = command
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
    activator
}

#[test]
fn socket_activation_starts_guildd_on_first_use() {
    if !have_activator() {
        return;
    }
    let env = Env::new();
    let mut activator = activator(&env, None);

    // The first client connection starts guildd on the passed socket.
    let status = env.guild(&["daemon", "status"]).ok();
    assert!(
        status.stdout.contains(&format!("socket:   {}", env.socket.display())),
        "{status:?}"
    );
    assert!(!status.stdout.contains("tcp:"), "{status:?}");
    assert_eq!(mode(&env.socket), 0o600, "guildd makes the passed socket private");
    let pid: u32 = std::fs::read_to_string(env.data_dir.join("guildd.lock"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(pid, activator.id(), "the activator execs guildd in its place");
    // Runs work through the activated socket, and do not inherit what activated guildd.
    env.write("Guild", "[model \"m\"]\ntrain = hello\n");
    env.write(
        "hello.py",
        "import os\nprint('hello: 1')\nprint(sorted(k for k in os.environ if k.startswith('LISTEN_')))\n",
    );
    let out = env.guild(&["train"]).ok();
    assert_eq!(out.stdout, "hello: 1\n[]\n");

    env.guild(&["daemon", "stop"]).ok();
    let status = wait_child_status(&mut activator);
    assert!(status.success(), "guildd exited with {status}");
    // systemd owns the socket file: guildd leaves it in place.
    assert!(env.socket.exists());
}

/// A socket unit may pass the dashboard's TCP port too: guildd serves it in place of
/// binding one (`--listen none` notwithstanding), with the token, as its own.
#[test]
fn socket_activation_passes_the_dashboard_port_too() {
    if !have_activator() {
        return;
    }
    let env = Env::new();
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = free.local_addr().unwrap().to_string();
    drop(free);
    let mut activator = activator(&env, Some(&address));

    let status = env.guild(&["daemon", "status"]).ok();
    assert!(status.stdout.contains(&format!("tcp:      {address}")), "{status:?}");
    let page = http(&address, "GET", "/", &[], b"");
    assert_eq!(page.status, 200, "{page:?}");
    let token = env.token();
    env.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
            .unwrap()
            .connect()
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {address}: {e}"));
        let mut daemon = DaemonServiceClient::new(channel);
        let refused = daemon
            .get_status(pb::GetStatusRequest {})
            .await
            .expect_err("GetStatus over TCP without the token");
        assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
        let mut request = tonic::Request::new(pb::GetStatusRequest {});
        request
            .metadata_mut()
            .insert(guild_proto::TOKEN_HEADER, token.parse().unwrap());
        let status = daemon.get_status(request).await.expect("GetStatus with the token");
        assert_eq!(status.into_inner().tcp_address, address);
    });

    env.guild(&["daemon", "stop"]).ok();
    let status = wait_child_status(&mut activator);
    assert!(status.success(), "guildd exited with {status}");
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
