//! Issue 13, case 7: guildd killed with SIGKILL at random moments of an export, import,
//! delete, restore or purge. After the next start each operation is done or not started:
//! no `DEST.partial`, no `.import-*` folder, no half-copied or half-purged run, no run
//! listed whose folder is in the trash, and a half-purged run is never restored.
//!
//! Each operation runs first to measure how long it takes, then again and again with the
//! daemon killed after a random part of that time (the seed is printed to replay a
//! failure with GUILD_TEST_SEED).

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::*;

/// Files the run writes into its folder: enough that each operation takes a while.
const FILES: usize = 2000;

const MANY_PY: &str = r#"import os
d = os.path.join(os.environ["RUNDIR"], "files")
os.makedirs(d)
for i in range(2000):
    with open(os.path.join(d, "f%04d.txt" % i), "w") as f:
        f.write("x" * 512)
print("loss: 0.5")
"#;

/// Regular files under a folder (not following links).
fn count_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => count_files(&e.path()),
            Ok(t) if t.is_file() => 1,
            _ => 0,
        })
        .sum()
}

/// Every name in a folder.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Whether nobody holds the data folder's lock (taken and released at once).
fn lock_is_free(path: &Path) -> bool {
    // Closing the file releases the lock.
    std::fs::File::open(path).map_or(true, |file| file.try_lock().is_ok())
}

struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = std::env::var("GUILD_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("random kill moments: GUILD_TEST_SEED={seed}");
        Rng(seed)
    }

    /// A duration from zero to `max`.
    fn upto(&mut self, max: Duration) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        max.mul_f64((self.0 % 10_000) as f64 / 10_000.0)
    }
}

struct Crash<'a> {
    env: &'a Env,
    rng: Rng,
    /// The run's own files, as the source run has them.
    files: usize,
}

impl Crash<'_> {
    fn daemon_pid(&self) -> u32 {
        self.env.try_status().expect("the daemon answers").pid
    }

    fn start(&self, args: &[&str]) -> Child {
        self.env
            .guild_command(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot run guild")
    }

    /// Runs `guild ARGS` to its end: how long it took.
    fn timed(&self, args: &[&str]) -> Duration {
        let started = Instant::now();
        self.env.guild(args).ok();
        started.elapsed()
    }

    /// Starts `guild ARGS`, kills the daemon after a random part of `typical`, then starts
    /// a new daemon (which finishes or undoes what was left before it answers). Returns
    /// whether the command had finished before the kill.
    fn kill_during(&mut self, args: &[&str], typical: Duration) -> bool {
        let pid = self.daemon_pid();
        let mut command = self.start(args);
        std::thread::sleep(self.rng.upto(typical));
        let finished = matches!(command.try_wait(), Ok(Some(status)) if status.success());
        // SAFETY: kill(2) of the daemon this test started.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        let _ = command.wait();
        // The lock is free once the daemon's last thread is gone (one may be finishing an
        // fsync while the rest is a zombie), unless the command started a daemon itself.
        let lock = self.env.data_dir.join("guildd.lock");
        wait_until("the killed daemon to release its lock", || {
            self.env.try_status().is_some() || lock_is_free(&lock)
        });
        eprintln!(
            "killed guildd during `guild {}`: {}",
            args.join(" "),
            if finished { "after it finished" } else { "midway" }
        );
        // A command that had not reached the daemon yet starts one itself (as a user's
        // would), and has waited for it to answer; otherwise start one.
        if self.env.try_status().is_none() {
            self.env.start_guildd(&["--listen", "none"]);
        }
        assert!(
            names(&self.env.data_dir.join("journal")).is_empty(),
            "the new daemon left management records: {:?}",
            names(&self.env.data_dir.join("journal"))
        );
        finished
    }

    fn listed(&self) -> Vec<(String, PathBuf)> {
        self.env
            .runs_json()
            .iter()
            .map(|r| {
                (
                    r["id"].as_str().unwrap().to_string(),
                    PathBuf::from(r["run_dir"].as_str().unwrap()),
                )
            })
            .collect()
    }

    fn deleted(&self) -> Vec<String> {
        let out = self.env.guild(&["runs", "--deleted", "--json"]).ok();
        let value: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    }

    /// A run folder is whole: every file of the run and a run.db that knows its id.
    #[track_caller]
    fn assert_whole(&self, run_dir: &Path, id: &str) {
        assert_eq!(
            count_files(&run_dir.join("files")),
            self.files,
            "{} is not whole",
            run_dir.display()
        );
        let attrs = self.env.block_on(async {
            let mut conn = open_run_db(run_dir).await;
            pairs(&mut conn, "attr").await
        });
        assert!(
            attrs.iter().any(|(n, v)| n == "id" && v == id),
            "{}: run.db does not name {id}",
            run_dir.display()
        );
    }
}

#[test]
fn kill_9_mid_management_leaves_each_operation_done_or_not_started() {
    let env = Env::new();
    env.write(
        "Guild",
        "[project]\nstats_interval = 0\n\n[model \"m\"]\ntrain = many\n",
    );
    env.write("many.py", MANY_PY);
    env.start_guildd(&["--listen", "none"]);
    let (id, run_dir) = env.guild(&["train"]).ok().started_run();
    let mut crash = Crash {
        env: &env,
        rng: Rng::new(),
        files: FILES,
    };
    crash.assert_whole(&run_dir, &id);
    let runs = env.project.join("runs");
    let rounds = 6;

    // Export to a .tar.gz, and to a folder.
    let archive = env.root.join("out.tar.gz");
    let typical = crash.timed(&["export", &id, archive.to_str().unwrap()]);
    let folder = env.root.join("exported");
    let typical_folder = crash.timed(&["export", &id, folder.to_str().unwrap()]);
    let reference = std::fs::read(&archive).unwrap();
    for _ in 0..rounds {
        std::fs::remove_file(&archive).unwrap_or(());
        crash.kill_during(&["export", &id, archive.to_str().unwrap()], typical);
        assert!(
            !names(&env.root).iter().any(|n| n.contains(".partial")),
            "export left {:?}",
            names(&env.root)
        );
        if archive.exists() {
            // Whole: it imports (checked below with the same bytes) and is as long as one
            // written without a kill, give or take gzip's timestamps.
            let len = std::fs::metadata(&archive).unwrap().len();
            assert!(
                len.abs_diff(reference.len() as u64) < 64,
                "a partial archive: {len} bytes"
            );
        }
        std::fs::remove_dir_all(&folder).unwrap_or(());
        crash.kill_during(&["export", &id, folder.to_str().unwrap()], typical_folder);
        for name in names(&folder) {
            assert_eq!(name, id, "export left {name} in {}", folder.display());
            crash.assert_whole(&folder.join(&name), &id);
        }
    }
    std::fs::remove_file(&archive).unwrap_or(());
    std::fs::write(&archive, &reference).unwrap();

    // Import into another project: the run is listed and whole, or absent with nothing
    // left of it; a later import always works.
    let other = env.root.join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("Guild"), "[project]\n\n[model \"m\"]\ntrain = many\n").unwrap();
    let other_runs = other.join("runs");
    let import_args: Vec<String> = vec![
        "import".into(),
        archive.to_string_lossy().into_owned(),
        "--rename".into(),
        "-C".into(),
        other.to_string_lossy().into_owned(),
    ];
    let import_args: Vec<&str> = import_args.iter().map(String::as_str).collect();
    let import = |crash: &mut Crash, kill: Option<Duration>| match kill {
        None => crash.timed(&import_args),
        Some(typical) => {
            crash.kill_during(&import_args, typical);
            Duration::ZERO
        }
    };
    let typical_import = import(&mut crash, None);
    for _ in 0..rounds {
        let before: Vec<String> = crash.listed().into_iter().map(|(i, _)| i).collect();
        import(&mut crash, Some(typical_import));
        let listed = crash.listed();
        let in_other: Vec<&(String, PathBuf)> = listed.iter().filter(|(_, d)| d.starts_with(&other_runs)).collect();
        for (run, dir) in &in_other {
            crash.assert_whole(dir, run);
        }
        let folders: Vec<String> = names(&other_runs).into_iter().filter(|n| n != ".trash").collect();
        let indexed: Vec<String> = in_other
            .iter()
            .map(|(i, _)| i.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(
            folders, indexed,
            "folders in the runroot that the index does not list, or the reverse"
        );
        assert!(listed.len() >= before.len());
    }
    let out = env.guild(&import_args);
    assert!(out.status.success(), "an import after the kills: {out:?}");

    // Delete and restore, turn about: listed with its folder in place, or deleted with
    // its folder in the trash; never listed with its folder gone.
    let typical_delete = crash.timed(&["runs", "delete", &id]);
    let typical_restore = crash.timed(&["runs", "restore", &id]);
    for round in 0..rounds * 2 {
        let listed_now = crash.listed().iter().any(|(i, _)| *i == id);
        if listed_now {
            crash.kill_during(&["runs", "delete", &id], typical_delete);
        } else {
            crash.kill_during(&["runs", "restore", &id], typical_restore);
        }
        let listed = crash.listed().iter().any(|(i, _)| *i == id);
        let deleted = crash.deleted().contains(&id);
        assert!(listed != deleted, "round {round}: listed {listed}, deleted {deleted}");
        if listed {
            crash.assert_whole(&run_dir, &id);
            assert!(!runs.join(".trash").join(&id).exists());
        } else {
            crash.assert_whole(&runs.join(".trash").join(&id), &id);
            assert!(!run_dir.exists());
        }
    }
    if crash.deleted().contains(&id) {
        env.guild(&["runs", "restore", &id]).ok();
    }

    // Purge: a deleted copy is either still deleted and whole (and restores whole), or
    // gone with nothing left in the trash.
    let deleted_copy = |env: &Env| {
        let copy = env.guild(&["import", archive.to_str().unwrap(), "--rename"]).ok();
        let copy_id = copy
            .stdout
            .split_whitespace()
            .nth(3)
            .unwrap_or_else(|| panic!("no new id in {copy:?}"))
            .to_string();
        env.guild(&["runs", "delete", &copy_id]).ok();
        copy_id
    };
    let typical_purge = crash.timed(&["runs", "purge", &deleted_copy(&env)]);
    for round in 0..rounds {
        let copy_id = deleted_copy(&env);
        crash.kill_during(&["runs", "purge", &copy_id], typical_purge);
        let trash = names(&runs.join(".trash"));
        assert!(
            !trash.iter().any(|n| n.starts_with(".purge-")),
            "round {round}: a purge left {trash:?}"
        );
        if crash.deleted().contains(&copy_id) {
            crash.assert_whole(&runs.join(".trash").join(&copy_id), &copy_id);
            env.guild(&["runs", "restore", &copy_id]).ok();
            crash.assert_whole(&runs.join(&copy_id), &copy_id);
            let restored = env.get_run(&copy_id).run.unwrap();
            assert_eq!(restored.status(), guild_proto::v1::RunStatus::Completed);
            env.guild(&["runs", "delete", &copy_id]).ok();
            env.guild(&["runs", "purge", &copy_id]).ok();
        } else {
            assert!(
                !runs.join(".trash").join(&copy_id).exists(),
                "round {round}: purged but its folder stays"
            );
            assert!(!crash.listed().iter().any(|(i, _)| *i == copy_id));
        }
    }
    assert!(
        names(&runs.join(".trash")).is_empty(),
        "{:?}",
        names(&runs.join(".trash"))
    );
    assert!(
        !names(&runs).iter().any(|n| n.starts_with(".import-")),
        "{:?}",
        names(&runs)
    );
}
