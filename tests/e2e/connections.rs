//! Issue 13, case 4: another local user holding 1,000 silent connections to the
//! dashboard's port (no token) exhausts nothing: guildd keeps its descriptors, does not
//! spin, answers its owner at once (on the socket and on TCP), records a run's exit, and
//! closes the silent connections. Every HTTP port refuses foreign Host and Origin headers,
//! and a serve's `POST /run` takes JSON only.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use guild_proto::v1::{self as pb, RunStatus, daemon_service_client::DaemonServiceClient};

use crate::helpers::*;

/// Opens N connections to HOST PORT and holds them without sending a byte; prints
/// `open N`, then, after a line on stdin, `closed K`: how many the server closed (each
/// given up to 5 s: guildd's last closes may land just after its socket count drops).
const SIEGE_PY: &str = r#"
import resource, socket, sys
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 64), hard))
socks = [socket.create_connection((host, port), timeout=10) for _ in range(n)]
print("open", len(socks), flush=True)
sys.stdin.readline()
closed = 0
for s in socks:
    s.settimeout(5)
    try:
        closed += s.recv(1) == b""
    except socket.timeout:
        pass
    except OSError:
        closed += 1
print("closed", closed, flush=True)
"#;

/// The siege as uid 65534 (nobody): a real other local user. None (and why, printed)
/// when this test cannot switch users.
fn siege_as_another_user(addr: SocketAddr, connections: usize) -> Option<Child> {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: opening connections as another user needs root");
        return None;
    }
    // The system's interpreter: one under root's home (pyenv) is closed to other users.
    let python = if std::path::Path::new("/usr/bin/python3").is_file() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let child = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
            python,
            "-c",
            SIEGE_PY,
        ])
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .arg(connections.to_string())
        .env_remove("XDG_RUNTIME_DIR")
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn();
    match child {
        Ok(child) => Some(child),
        Err(err) => {
            eprintln!("skipped: cannot run setpriv: {err}");
            None
        }
    }
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// How many sockets a process holds open.
fn sockets(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter(|e| std::fs::read_link(e.path()).is_ok_and(|t| t.to_string_lossy().starts_with("socket:")))
                .count()
        })
        .unwrap_or(0)
}

fn descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// GetStatus over TCP with the token, on a fresh connection; how long it took.
fn tcp_status(env: &Env, addr: SocketAddr, token: &str) -> Duration {
    let started = Instant::now();
    env.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
        let mut request = tonic::Request::new(pb::GetStatusRequest {});
        request
            .metadata_mut()
            .insert(guild_proto::TOKEN_HEADER, token.parse().unwrap());
        tokio::time::timeout(TIMEOUT, DaemonServiceClient::new(channel).get_status(request))
            .await
            .expect("GetStatus over TCP hung")
            .expect("GetStatus over TCP");
    });
    started.elapsed()
}

/// Starts guildd (TCP on a free loopback port) with an open-file limit of `nofile` (soft
/// and hard, as a small system's default would be), and waits until it answers.
fn start_guildd_with_file_limit(env: &Env, nofile: u64) -> (Child, pb::DaemonStatus) {
    use std::os::unix::process::CommandExt;
    let log = std::fs::File::create(env.root.join("guildd.out")).unwrap();
    let mut command = env.guildd_command(&[
        "--data-dir",
        env.data_dir.to_str().unwrap(),
        "--socket",
        env.socket.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    command.stdout(log.try_clone().unwrap()).stderr(log);
    // SAFETY: setrlimit is async-signal-safe; it only lowers this child's own limit.
    unsafe {
        command.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: nofile,
                rlim_max: nofile,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command.spawn().expect("cannot start guildd");
    let mut status = None;
    wait_until("guildd to answer", || {
        status = env.try_status();
        status.is_some()
    });
    (child, status.unwrap())
}

#[test]
fn a_thousand_idle_connections_from_another_user_stall_nothing() {
    let env = Env::new();
    env.write(
        "Guild",
        "[project]\nstats_interval = 0\n\n[model \"m\"]\ntrain = waiter\n",
    );
    env.write("waiter.py", WAITER_PY);
    // 1,024 descriptors, as many systems give a process: 1,000 connections would take
    // nearly all of them if guildd let them.
    let (mut daemon, status) = start_guildd_with_file_limit(&env, 1024);
    let pid = status.pid;
    let addr: SocketAddr = status.tcp_address.parse().unwrap();
    let token = env.token();
    let (id, run_dir) = env.guild(&["train", "--background"]).ok().started_run();
    env.wait_output(&id, |l| l.starts_with("waiting for"));
    let baseline = sockets(pid);

    let Some(mut siege) = siege_as_another_user(addr, 1000) else {
        return;
    };
    let lines = lines_of(siege.stdout.take().unwrap());
    let sieged_at = Instant::now();
    let cpu_at = cpu_ticks(pid);
    let open = expect_line(&lines, "open", |l| l.starts_with("open "));
    assert_eq!(open, "open 1000", "the other user could not even connect");

    // The owner is answered at once, on the socket and on TCP (the idlest connection
    // makes room).
    for _ in 0..5 {
        let started = Instant::now();
        env.guild(&["runs"]).ok();
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "guild runs took {:?}",
            started.elapsed()
        );
        let took = tcp_status(&env, addr, &token);
        assert!(took < Duration::from_secs(1), "GetStatus over TCP took {took:?}");
    }
    assert!(
        descriptors(pid) < 1024 / 4 + 200,
        "guildd holds {} descriptors under siege",
        descriptors(pid)
    );
    // A run that exits 0 meanwhile is recorded completed: its exit file could be opened.
    std::fs::write(env.project.join("go"), "").unwrap();
    let done = env.wait_run(
        &id,
        &[
            RunStatus::Completed,
            RunStatus::Error,
            RunStatus::Failed,
            RunStatus::Terminated,
        ],
    );
    assert_eq!(done.status(), RunStatus::Completed, "{done:?}");
    assert!(run_dir.join("guild.d/exit").is_file());

    // Silent connections are closed (10 s to send a first request): guildd's sockets
    // come back to what they were, and the other user sees every connection closed.
    wait_until("guildd to close the silent connections", || {
        sockets(pid) <= baseline + 1
    });
    let spent = (cpu_ticks(pid) - cpu_at) as f64 / 100.0;
    let elapsed = sieged_at.elapsed().as_secs_f64();
    assert!(
        spent / elapsed < 0.5,
        "guildd used {spent:.2} s of CPU in {elapsed:.1} s under siege (spinning?)"
    );
    writeln!(siege.stdin.as_mut().unwrap()).unwrap();
    let closed = expect_line(&lines, "closed", |l| l.starts_with("closed "));
    assert_eq!(closed, "closed 1000");
    assert!(wait_child(siege, "the siege").success());
    env.guild(&["daemon", "stop"]).ok();
    let _ = daemon.wait();
}

/// One request with this Host and extra headers; the status code and body.
fn request(addr: &str, method: &str, path: &str, host: &str, extra: &[(&str, &str)], body: &str) -> (u16, String) {
    let mut headers = vec![("Host", host)];
    headers.extend_from_slice(extra);
    let reply = http(addr, method, path, &headers, body.as_bytes());
    (reply.status, reply.body)
}

const JSON: &[(&str, &str)] = &[("Content-Type", "application/json")];

fn get(addr: &str, path: &str, host: &str, extra: &[(&str, &str)]) -> (u16, String) {
    request(addr, "GET", path, host, extra, "")
}

fn post(addr: &str, path: &str, host: &str, extra: &[(&str, &str)], body: &str) -> (u16, String) {
    request(addr, "POST", path, host, extra, body)
}

#[test]
fn foreign_hosts_and_pages_are_refused_on_every_port() {
    let env = Env::new();
    env.write(
        "Guild",
        "[project]\nstats_interval = 0\n\n[model \"m\"]\ntrain = ok\nserve = ok\n",
    );
    env.write("ok.py", OK_PY);
    let (_, status) = env.start_guildd(&["--listen", "127.0.0.1:0"]);
    let addr = status.tcp_address.clone();
    let port = addr.rsplit(':').next().unwrap().to_string();

    // The dashboard's port: its page, /tb/ and the code exchange.
    for host in [addr.as_str(), "localhost", &format!("localhost:{port}"), "[::1]:6333"] {
        assert_eq!(get(&addr, "/", host, &[]).0, 200, "Host {host}");
    }
    for path in ["/", "/tb/", "/auth/code", "/guild.v1.DaemonService/GetStatus"] {
        let (code, body) = get(&addr, path, &format!("rebound.example:{port}"), &[]);
        assert_eq!(code, 421, "{path}: {body}");
        assert!(body.contains("localhost, 127.0.0.1, [::1]"), "{body}");
    }
    let (code, body) = post(
        &addr,
        "/auth/code",
        &addr,
        &[("Origin", "https://evil.example"), ("Content-Type", "text/plain")],
        "{\"code\":\"x\"}",
    );
    assert_eq!(code, 403, "{body}");
    // The dashboard's bundle goes gzipped to a client that takes it.
    let (code, _) = get(&addr, "/", &addr, &[("Accept-Encoding", "gzip")]);
    assert_eq!(code, 200);

    // A serve's port: the same check, and POST /run takes JSON only.
    let (id, _) = env.guild(&["train"]).ok().started_run();
    // The op serves no model: StartServe answers once its worker has exited.
    let serve = start_serve(
        &env,
        pb::StartServeRequest {
            run: id,
            port: Some(0),
            ..Default::default()
        },
    );
    assert_eq!(serve.state(), pb::ServeState::NoModel, "{serve:?}");
    let serve = serve.address;
    assert!(get(&serve, "/stats", &serve, &[]).1.contains("no_model"));
    let (code, body) = post(&serve, "/run", "rebound.example", JSON, "[[0]]");
    assert_eq!(code, 421, "{body}");
    let (code, body) = post(
        &serve,
        "/run",
        &serve,
        &[("Origin", "http://evil.example"), ("Content-Type", "application/json")],
        "[[0]]",
    );
    assert_eq!(code, 403, "{body}");
    // A page's form or text/plain post needs no preflight: refused as such.
    let (code, body) = post(&serve, "/run", &serve, &[("Content-Type", "text/plain")], "[[0]]");
    assert_eq!(code, 415, "{body}");
    assert!(body.contains("application/json"), "{body}");
    let (code, body) = post(&serve, "/run", &serve, &[], "[[0]]");
    assert_eq!(code, 415, "{body}");
    // JSON from this machine goes through (here: the op serves no model, so 404).
    let (code, body) = post(&serve, "/run", &serve, JSON, "[[0]]");
    assert_eq!(code, 404, "{body}");
}

#[test]
fn a_silent_or_slow_client_is_closed() {
    let env = Env::new();
    let (_, status) = env.start_guildd(&["--listen", "127.0.0.1:0"]);
    let addr = status.tcp_address.clone();
    // Silent from the start, and headers that never end: both closed within about 10 s.
    let silent = TcpStream::connect(&addr).unwrap();
    let mut slow = TcpStream::connect(&addr).unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .unwrap();
    let started = Instant::now();
    for mut stream in [silent, slow] {
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut buf = [0u8; 512];
        let closed = loop {
            match stream.read(&mut buf) {
                Ok(0) => break true,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
                Err(_) => break false,
            }
        };
        assert!(closed, "the connection stayed open past {TIMEOUT:?}");
    }
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(9) && took < Duration::from_secs(20),
        "closed after {took:?}"
    );
}
