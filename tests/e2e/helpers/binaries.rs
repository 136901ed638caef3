//! The binaries under test (`guild`, `guildd`, from the same target folder as this test)
//! and what a finished command left: its exit status and output.

use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::OnceLock;

/// Environment variables that would change what the binaries do; tests set their own.
pub(super) const CLEARED_ENV: [&str; 8] = [
    "GUILD_DATA_DIR",
    "GUILD_GPUS",
    "GUILD_MAX_RUNS",
    "GUILD_SOCKET",
    "GUILD_LISTEN",
    "GUILD_PYTHON",
    "GUILD_LOG",
    "XDG_RUNTIME_DIR",
];

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

/// A finished command: its exit code and its output as text.
pub struct Out {
    pub what: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub(super) fn new(what: String, output: std::process::Output) -> Out {
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
