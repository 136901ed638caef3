//! What every end-to-end test needs: the real binaries, a private data dir, socket and
//! project per test, the `guild` CLI as a user runs it, a gRPC client over the socket,
//! and waits that ask the daemon (or the system) instead of sleeping.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use guild_proto::v1::{
    self as pb, RunStatus, daemon_service_client::DaemonServiceClient, output_service_client::OutputServiceClient,
    run_service_client::RunServiceClient,
};
use tonic::transport::Channel;

/// The longest any wait may take before the test fails. Runs here take well under a
/// second; the margin is for a loaded 2-core machine.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// Environment variables that would change what the binaries do; tests set their own.
const CLEARED_ENV: [&str; 6] = [
    "GUILD_DATA_DIR",
    "GUILD_SOCKET",
    "GUILD_LISTEN",
    "GUILD_PYTHON",
    "GUILD_LOG",
    "XDG_RUNTIME_DIR",
];

// ------------------------------------------------------------------ binaries

/// target/<profile>, found from this test executable (target/<profile>/deps/e2e-HASH).
fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("cannot find the test executable");
        let deps = exe.parent().expect("test executable has no folder");
        let dir = if deps.file_name().is_some_and(|n| n == "deps") {
            deps.parent().unwrap_or(deps)
        } else {
            deps
        };
        for name in ["guild", "guildd"] {
            assert!(
                dir.join(name).is_file(),
                "{} is missing: run `cargo build --workspace` first",
                dir.join(name).display()
            );
        }
        dir.to_path_buf()
    })
}

pub fn guild_exe() -> PathBuf {
    bin_dir().join("guild")
}

pub fn guildd_exe() -> PathBuf {
    bin_dir().join("guildd")
}

// ------------------------------------------------------------------ command output

/// A finished command: its exit code and its output as text.
pub struct Out {
    pub what: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    fn new(what: String, output: std::process::Output) -> Out {
        Out {
            what,
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Asserts exit status 0 and returns self.
    #[track_caller]
    pub fn ok(self) -> Out {
        assert!(self.status.success(), "expected success from {self:?}");
        self
    }

    /// Asserts the exit code and returns self.
    #[track_caller]
    pub fn exits(self, code: i32) -> Out {
        assert_eq!(self.status.code(), Some(code), "expected exit {code} from {self:?}");
        self
    }

    pub fn stdout_lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// `Run ID (MODEL:OP) in DIR` from stderr: (ID, DIR).
    #[track_caller]
    pub fn started_run(&self) -> (String, PathBuf) {
        for line in self.stderr.lines() {
            if let Some(rest) = line.strip_prefix("Run ")
                && let Some((id, rest)) = rest.split_once(' ')
                && let Some((_, dir)) = rest.split_once(") in ")
            {
                return (id.to_string(), PathBuf::from(dir));
            }
        }
        panic!("no `Run ID (MODEL:OP) in DIR` line on stderr of {self:?}")
    }
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` ({})\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.what, self.status, self.stdout, self.stderr
        )
    }
}

// ------------------------------------------------------------------ the per-test environment

/// One test's world: a temp folder (under /tmp, so the socket path stays short) holding
/// the data dir `d`, the socket `s/guildd.sock` (its folder is created by the daemon) and
/// the project `p`. Dropping it stops the daemon and any run it left behind.
pub struct Env {
    _tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub data_dir: PathBuf,
    pub socket: PathBuf,
    pub project: PathBuf,
    rt: tokio::runtime::Runtime,
    /// Daemons this test started itself (not through the CLI): reaped on drop.
    daemons: Mutex<Vec<Child>>,
}

impl Env {
    /// An empty project.
    pub fn new() -> Env {
        let tmp = tempfile::Builder::new()
            .prefix("ge")
            .tempdir_in("/tmp")
            .expect("cannot create a temp dir in /tmp");
        let root = tmp.path().canonicalize().expect("cannot canonicalize temp dir");
        let project = root.join("p");
        std::fs::create_dir(&project).expect("cannot create the project folder");
        let socket = root.join("s").join("guildd.sock");
        assert!(
            socket.as_os_str().len() < 100,
            "socket path too long: {}",
            socket.display()
        );
        Env {
            _tmp: tmp,
            data_dir: root.join("d"),
            socket,
            project,
            root,
            rt: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("cannot build a tokio runtime"),
            daemons: Mutex::new(Vec::new()),
        }
    }

    /// A copy of the MNIST example's sources (Guild and *.py; not its data or runs).
    pub fn mnist() -> Env {
        let env = Env::new();
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/mnist");
        let mut copied = 0;
        for entry in std::fs::read_dir(&example).expect("cannot read examples/mnist") {
            let path = entry.expect("cannot read examples/mnist").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_file() && (name == "Guild" || name.ends_with(".py")) {
                std::fs::copy(&path, env.project.join(&name)).expect("cannot copy example");
                copied += 1;
            }
        }
        assert!(copied >= 3, "examples/mnist lacks its Guild file or scripts");
        env
    }

    /// Writes a file into the project.
    pub fn write(&self, name: &str, text: &str) {
        let path = self.project.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write {name}: {e}"));
    }

    /// `guild -C PROJECT ARGS...` against this test's daemon, ready to spawn.
    pub fn guild_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(guild_exe());
        for name in CLEARED_ENV {
            cmd.env_remove(name);
        }
        cmd.env("GUILD_DATA_DIR", &self.data_dir)
            .env("GUILD_SOCKET", &self.socket)
            .arg("-C")
            .arg(&self.project)
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `guild ARGS...` to its end.
    pub fn guild(&self, args: &[&str]) -> Out {
        self.guild_env(args, &[])
    }

    /// Runs `guild ARGS...` with extra environment variables.
    pub fn guild_env(&self, args: &[&str], vars: &[(&str, &str)]) -> Out {
        let mut cmd = self.guild_command(args);
        cmd.envs(vars.iter().copied());
        let output = cmd.output().expect("cannot run guild");
        Out::new(format!("guild {}", args.join(" ")), output)
    }

    /// `guildd ARGS...` with this test's environment cleared of GUILD_* variables.
    pub fn guildd_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(guildd_exe());
        for name in CLEARED_ENV {
            cmd.env_remove(name);
        }
        cmd.args(args).stdin(Stdio::null());
        cmd
    }

    /// Runs `guildd ARGS...` to its end (for start-up failures).
    pub fn guildd(&self, args: &[&str]) -> Out {
        let output = self.guildd_command(args).output().expect("cannot run guildd");
        Out::new(format!("guildd {}", args.join(" ")), output)
    }

    /// Starts `guildd --data-dir D --socket S EXTRA...` as this test's child (its output
    /// goes to `ROOT/guildd.out`) and waits until it answers on the socket.
    pub fn start_guildd(&self, extra: &[&str]) -> (u32, pb::DaemonStatus) {
        let log_path = self.root.join("guildd.out");
        let log = std::fs::File::create(&log_path).unwrap();
        let data_dir = self.data_dir.to_str().unwrap();
        let socket = self.socket.to_str().unwrap();
        let mut args = vec!["--data-dir", data_dir, "--socket", socket];
        args.extend_from_slice(extra);
        let mut child = self
            .guildd_command(&args)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot start guildd");
        let pid = child.id();
        let deadline = Instant::now() + TIMEOUT;
        let mut pause = Duration::from_millis(2);
        let status = loop {
            if let Some(status) = self.try_status() {
                break status;
            }
            if let Ok(Some(exit)) = child.try_wait() {
                panic!(
                    "guildd exited ({exit}) before it answered:\n{}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "guildd did not answer on {} within {TIMEOUT:?}",
                self.socket.display()
            );
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        };
        self.daemons.lock().unwrap().push(child);
        (pid, status)
    }

    // -------------------------------------------------------------- gRPC

    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.rt.block_on(future)
    }

    /// A channel over this test's socket; panics when nothing answers.
    pub async fn channel(&self) -> Channel {
        guild_proto::connect::connect_unix(&self.socket)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to guildd at {}: {e}", self.socket.display()))
    }

    pub async fn runs_client(&self) -> RunServiceClient<Channel> {
        RunServiceClient::new(self.channel().await)
    }

    /// The daemon's status, or None when nothing answers on the socket.
    pub fn try_status(&self) -> Option<pb::DaemonStatus> {
        self.block_on(async {
            let channel = guild_proto::connect::connect_unix(&self.socket).await.ok()?;
            DaemonServiceClient::new(channel)
                .get_status(pb::GetStatusRequest {})
                .await
                .ok()
                .map(|r| r.into_inner())
        })
    }

    /// Asks the daemon (GetStatus, short backoff) until it follows no run. A run's end is
    /// in the index (what WatchRuns and GetRun report) a moment before the daemon drops
    /// its handle on the run; StopRun still accepts the run until then.
    #[track_caller]
    pub fn wait_idle(&self) {
        wait_until("the daemon to follow no run", || {
            self.try_status().is_some_and(|s| s.running_runs == 0)
        });
    }

    /// GetRun: a run and its flags, attrs and series.
    #[track_caller]
    pub fn get_run(&self, selector: &str) -> pb::RunDetail {
        self.block_on(async {
            self.runs_client()
                .await
                .get_run(pb::GetRunRequest {
                    run: selector.to_string(),
                })
                .await
                .unwrap_or_else(|s| panic!("GetRun {selector}: {s}"))
                .into_inner()
        })
    }

    /// Waits (watching the daemon's WatchRuns stream) until the run has one of `want`.
    /// Reconnects if the stream breaks (a daemon restart); fails after [`TIMEOUT`].
    #[track_caller]
    pub fn wait_run(&self, id: &str, want: &[RunStatus]) -> pb::Run {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        self.block_on(async {
            let mut last: Option<pb::Run> = None;
            let mut problem: String;
            let mut pause = Duration::from_millis(5);
            loop {
                let attempt = async {
                    let channel = guild_proto::connect::connect_unix(&self.socket)
                        .await
                        .map_err(|e| format!("connect: {e}"))?;
                    let mut stream = RunServiceClient::new(channel)
                        .watch_runs(pb::WatchRunsRequest { run: id.to_string() })
                        .await
                        .map_err(|s| format!("WatchRuns: {s}"))?
                        .into_inner();
                    while let Some(event) = stream.message().await.map_err(|s| format!("WatchRuns stream: {s}"))? {
                        if let Some(run) = event.run {
                            if want.contains(&run.status()) {
                                return Ok(run);
                            }
                            last = Some(run);
                        }
                    }
                    Err("the WatchRuns stream ended".to_string())
                };
                match tokio::time::timeout_at(deadline, attempt).await {
                    Ok(Ok(run)) => return run,
                    Ok(Err(err)) => problem = err,
                    Err(_) => problem = "timed out".into(),
                }
                if tokio::time::Instant::now() >= deadline {
                    panic!(
                        "run {id} did not reach {want:?} within {TIMEOUT:?} ({problem}); last seen: {last:#?}\n{}",
                        self.daemon_log()
                    );
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(100));
            }
        })
    }

    /// Follows the run's output (ReadOutput with follow) until a line satisfies `pred`.
    #[track_caller]
    pub fn wait_output(&self, id: &str, pred: impl Fn(&str) -> bool) -> String {
        let result = self.block_on(async {
            let read = async {
                let mut stream = OutputServiceClient::new(self.channel().await)
                    .read_output(pb::ReadOutputRequest {
                        run: id.to_string(),
                        from_seq: 0,
                        follow: true,
                    })
                    .await
                    .map_err(|s| s.to_string())?
                    .into_inner();
                let mut seen = Vec::new();
                while let Some(chunk) = stream.message().await.map_err(|s| s.to_string())? {
                    for line in chunk.lines {
                        if pred(&line.text) {
                            return Ok(line.text);
                        }
                        seen.push(line.text);
                    }
                }
                Err(format!("the run ended without such a line; it printed {seen:?}"))
            };
            tokio::time::timeout(TIMEOUT, read)
                .await
                .unwrap_or_else(|_| Err(format!("no such line within {TIMEOUT:?}")))
        });
        result.unwrap_or_else(|e| panic!("waiting for output of run {id}: {e}"))
    }

    /// Every output line of a run (ReadOutput without follow).
    pub fn output_lines(&self, id: &str) -> Vec<pb::OutputLine> {
        self.block_on(async {
            let mut stream = OutputServiceClient::new(self.channel().await)
                .read_output(pb::ReadOutputRequest {
                    run: id.to_string(),
                    from_seq: 0,
                    follow: false,
                })
                .await
                .unwrap_or_else(|s| panic!("ReadOutput {id}: {s}"))
                .into_inner();
            let mut lines = Vec::new();
            while let Some(chunk) = stream.message().await.expect("ReadOutput stream") {
                lines.extend(chunk.lines);
            }
            lines
        })
    }

    /// `guild runs --json`, parsed.
    #[track_caller]
    pub fn runs_json(&self) -> Vec<serde_json::Value> {
        let out = self.guild(&["runs", "--json"]).ok();
        let value: serde_json::Value = serde_json::from_str(out.stdout.trim())
            .unwrap_or_else(|e| panic!("`guild runs --json` is not JSON ({e}): {out:?}"));
        value
            .as_array()
            .unwrap_or_else(|| panic!("`guild runs --json` is not an array: {out:?}"))
            .clone()
    }

    pub fn daemon_log(&self) -> String {
        let mut log = String::new();
        for path in [self.data_dir.join("guildd.log"), self.root.join("guildd.out")] {
            if let Ok(text) = std::fs::read_to_string(&path) {
                log.push_str(&format!("--- {} ---\n{text}", path.display()));
            }
        }
        log
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.daemon_log());
        }
        // Stop the daemon and its runs the way a user does.
        let _ = Command::new(guild_exe())
            .env("GUILD_DATA_DIR", &self.data_dir)
            .env("GUILD_SOCKET", &self.socket)
            .args(["daemon", "stop", "--stop-runs"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        // Reap the daemons this test started itself.
        if let Ok(mut daemons) = self.daemons.lock() {
            for child in daemons.iter_mut() {
                let deadline = Instant::now() + Duration::from_secs(10);
                while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(10));
                }
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        // Anything still running from this test's folder (a run left by a stopped
        // daemon, a daemon that did not stop): kill it.
        kill_leftovers(&self.root);
    }
}

/// Kills every process whose command line mentions `root`: run supervisors with their
/// process group (the op), everything else alone.
fn kill_leftovers(root: &Path) {
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

// ------------------------------------------------------------------ waiting on what is not ours

/// Polls `check` with a short backoff until it holds; fails after [`TIMEOUT`]. Only for
/// things nothing can be asked about (another process's end, a file it writes).
#[track_caller]
pub fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    let mut pause = Duration::from_millis(2);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
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

/// The permission bits of a path.
pub fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("cannot stat {}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Sends each line a pipe gives to the returned channel (from a thread).
pub fn lines_of(pipe: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Takes lines from `rx` until one satisfies `pred`; fails after [`TIMEOUT`] or at EOF.
#[track_caller]
pub fn expect_line(rx: &Receiver<String>, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + TIMEOUT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if pred(&line) => return line,
            Ok(line) => seen.push(line),
            Err(RecvTimeoutError::Timeout) => {
                panic!("no {what} line within {TIMEOUT:?}; got {seen:?}")
            }
            Err(RecvTimeoutError::Disconnected) => {
                panic!("the stream closed without a {what} line; got {seen:?}")
            }
        }
    }
}

/// Waits for a child of this test to exit; kills it and fails after [`TIMEOUT`].
#[track_caller]
pub fn wait_child(mut child: Child, what: &str) -> ExitStatus {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    match rx.recv_timeout(TIMEOUT) {
        Ok(status) => status.expect("wait failed"),
        Err(_) => {
            // SAFETY: our own child.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            panic!("{what} did not exit within {TIMEOUT:?}")
        }
    }
}

// ------------------------------------------------------------------ full disks and process groups

/// A small tmpfs mounted for one test, unmounted when dropped however the test ends.
pub struct Tmpfs {
    pub dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`mount -o size=`, e.g. "4m") on `dir`, created if needed.
    /// Where that cannot be done (not root), prints why the test skips and returns None;
    /// with GUILD_REQUIRE_ROOT set (CI sets it) that is a failure instead.
    pub fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output();
        match out {
            Ok(out) if out.status.success() => Some(Tmpfs { dir: dir.to_path_buf() }),
            other => {
                let why = format!("cannot mount a tmpfs on {} (this test needs root): {other:?}", dir.display());
                assert!(std::env::var_os("GUILD_REQUIRE_ROOT").is_none(), "GUILD_REQUIRE_ROOT is set: {why}");
                eprintln!("skipped: {why}");
                None
            }
        }
    }

    /// Fills the file system with one file of zeros; returns the file (remove it to free
    /// the space).
    pub fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.dir.join(".filler");
        let mut file = std::fs::File::create(&path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        let chunk = vec![0u8; 64 * 1024];
        while file.write_all(&chunk).is_ok() {}
        while file.write_all(&chunk[..512]).is_ok() {}
        while file.write_all(&chunk[..1]).is_ok() {}
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
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

// ------------------------------------------------------------------ run.db

/// Opens a run's `guild.d/run.db` with sqlx.
pub async fn open_run_db(run_dir: &Path) -> sqlx::sqlite::SqliteConnection {
    use sqlx::Connection;
    let path = run_dir.join("guild.d").join("run.db");
    assert!(path.is_file(), "{} does not exist", path.display());
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&path);
    sqlx::sqlite::SqliteConnection::connect_with(&options)
        .await
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()))
}

/// `SELECT name, value FROM <table> ORDER BY rowid` for `attr` and `flag`.
pub async fn pairs(conn: &mut sqlx::sqlite::SqliteConnection, table: &str) -> Vec<(String, String)> {
    sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(format!(
        "SELECT name, value FROM {table} ORDER BY rowid"
    )))
    .fetch_all(conn)
    .await
    .unwrap_or_else(|e| panic!("SELECT from {table}: {e}"))
}

/// `(stream, line)` of every output row, in seq order.
pub async fn output_rows(conn: &mut sqlx::sqlite::SqliteConnection) -> Vec<(String, String)> {
    sqlx::query_as::<_, (String, String)>("SELECT stream, line FROM output ORDER BY seq")
        .fetch_all(conn)
        .await
        .expect("SELECT from output")
}

/// Reads the output rows of a finished run straight from its run.db.
pub fn run_db_output(env: &Env, run_dir: &Path) -> Vec<(String, String)> {
    env.block_on(async {
        let mut conn = open_run_db(run_dir).await;
        output_rows(&mut conn).await
    })
}

// ------------------------------------------------------------------ scripts for test projects

/// Prints a line, a step and a scalar, and exits 0.
pub const OK_PY: &str = r#"print("hello from ok")
print("step: 1")
print("loss: 0.5")
"#;

/// Prints a line and exits 3.
pub const EXIT3_PY: &str = r#"import sys
print("about to exit 3")
sys.exit(3)
"#;

/// Prints `ready`, then sleeps in short naps for up to 60 s.
pub const SLEEPER_PY: &str = r#"import time
print("ready", flush=True)
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    time.sleep(0.05)
print("slept 60 s without being stopped")
"#;

/// Waits until the file `--go` (relative to the project folder, the op's working
/// directory) exists, then prints and exits with `--code`.
pub const WAITER_PY: &str = r#"import argparse, os, sys, time
p = argparse.ArgumentParser()
p.add_argument("--go", default="go")
p.add_argument("--code", type=int, default=0)
a = p.parse_args()
print("waiting for " + a.go, flush=True)
deadline = time.monotonic() + 60
while not os.path.exists(a.go):
    if time.monotonic() > deadline:
        print("gave up waiting")
        sys.exit(9)
    time.sleep(0.02)
print("exiting with %d" % a.code)
sys.exit(a.code)
"#;
