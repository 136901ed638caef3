//! One test's world, [`Env`]: a private temp folder with the data dir, socket and project,
//! the `guild` and `guildd` commands pointed at them, and clean-up of everything the
//! test started when it ends.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use guild_proto::v1 as pb;

use super::binaries::{CLEARED_ENV, Out, guild_exe, guildd_exe};
use super::processes::kill_leftovers;
use super::waits::{TIMEOUT, wait_until};

/// One test's world: a temp folder (under /tmp, so the socket path stays short) holding
/// the data dir `d`, the socket `s/guildd.sock` (its folder is created by the daemon) and
/// the project `p`. Dropping it stops the daemon and any run it left behind.
pub struct Env {
    _tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub data_dir: PathBuf,
    pub socket: PathBuf,
    pub project: PathBuf,
    pub(super) rt: tokio::runtime::Runtime,
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

    /// The data dir's TCP token, once guildd has written it.
    #[track_caller]
    pub fn token(&self) -> String {
        let path = self.data_dir.join("token");
        wait_until("guildd to write its token", || {
            std::fs::read_to_string(&path).is_ok_and(|t| t.trim().len() == 64)
        });
        std::fs::read_to_string(&path).unwrap().trim().to_string()
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
