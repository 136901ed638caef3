//! Runs on a real one-node Slurm cluster (Debian's slurmctld, slurmd and munge), started
//! by each test from `tests/slurm/cluster.sh` (its config: `tests/slurm/slurm.conf.in`)
//! and stopped when the test ends, however it ends. The tests take turns: one cluster
//! at a time can listen on Slurm's ports. Without Slurm (or root, which starting the
//! daemons by hand needs) they say why they skip; `GUILD_REQUIRE_SLURM=1` (CI) makes
//! that a failure.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use guild_proto::v1::{self as pb, RunStatus, series_service_client::SeriesServiceClient};

use crate::helpers::*;

/// One cluster at a time (Slurm's ports are the machine's).
static CLUSTER: Mutex<()> = Mutex::new(());

/// A cluster this test started; stopped (its jobs cancelled first) on drop.
struct Cluster {
    dir: tempfile::TempDir,
    conf: String,
    _turn: std::sync::MutexGuard<'static, ()>,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("slurm/cluster.sh")
}

impl Cluster {
    /// Starts the cluster, or says why it cannot (None) when Slurm is not installed or
    /// this is not root; with GUILD_REQUIRE_SLURM set, that is a failure.
    fn start() -> Option<Cluster> {
        let missing: Vec<&str> = ["slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "sinfo", "munged"]
            .into_iter()
            .filter(|tool| {
                !Command::new("sh")
                    .args(["-c", &format!("command -v {tool}")])
                    .output()
                    .is_ok_and(|o| o.status.success())
            })
            .collect();
        // SAFETY: geteuid cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        let why = if !missing.is_empty() {
            Some(format!(
                "Slurm is not installed here (no {}): apt-get install -y slurmctld slurmd slurm-client munge",
                missing.join(", ")
            ))
        } else if !root {
            Some("starting a Slurm cluster by hand needs root".to_string())
        } else {
            None
        };
        if let Some(why) = why {
            assert!(
                std::env::var_os("GUILD_REQUIRE_SLURM").is_none(),
                "GUILD_REQUIRE_SLURM is set: {why}"
            );
            eprintln!("skipped: {why}");
            return None;
        }
        let turn = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::Builder::new().prefix("gslurm").tempdir_in("/tmp").unwrap();
        let out = Command::new("bash")
            .arg(script())
            .arg("start")
            .arg(dir.path())
            .output()
            .expect("cannot run tests/slurm/cluster.sh");
        let cluster = Cluster {
            conf: String::from_utf8_lossy(&out.stdout).trim().to_string(),
            dir,
            _turn: turn,
        };
        assert!(
            out.status.success() && !cluster.conf.is_empty(),
            "the Slurm cluster did not start: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            cluster.logs()
        );
        Some(cluster)
    }

    fn logs(&self) -> String {
        let mut text = String::new();
        for name in ["slurmctld.log", "slurmd.log"] {
            if let Ok(log) = std::fs::read_to_string(self.dir.path().join(name)) {
                let tail: Vec<&str> = log.lines().rev().take(30).collect();
                text.push_str(&format!("--- {name} (last lines) ---\n"));
                for line in tail.into_iter().rev() {
                    text.push_str(line);
                    text.push('\n');
                }
            }
        }
        text
    }

    /// `guild ARGS...` with this cluster's SLURM_CONF (the daemon it starts talks to it).
    fn guild(&self, env: &Env, args: &[&str]) -> Out {
        env.guild_env(args, &[("SLURM_CONF", self.conf.as_str())])
    }

    /// A Slurm command against this cluster; its stdout.
    fn slurm(&self, program: &str, args: &[&str]) -> String {
        let out = Command::new(program)
            .args(args)
            .env("SLURM_CONF", &self.conf)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The job's state as scontrol shows it.
    fn job_state(&self, job: &str) -> String {
        let out = self.slurm("scontrol", &["-o", "show", "job", job]);
        out.split_whitespace()
            .find_map(|w| w.strip_prefix("JobState="))
            .unwrap_or("")
            .to_string()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
        let _ = Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(self.dir.path())
            .status();
    }
}

fn attr(detail: &pb::RunDetail, name: &str) -> Option<String> {
    detail.attrs.iter().find(|a| a.name == name).map(|a| a.value.clone())
}

fn is_final(run: &pb::Run) -> bool {
    !matches!(
        run.status(),
        RunStatus::Pending | RunStatus::Queued | RunStatus::Running | RunStatus::Unspecified
    )
}

const LIVE_GUILD: &str = "[project]\nstats_interval = 0.5\n\n[model \"blocker\"]\ntrain = sleeper\n\n\
                          [model \"live\"]\ntrain = live\n";

/// Output scalars and (with tensorboardX) event-file scalars, then waits for `go`.
const LIVE_PY: &str = r#"
import os, time
print("step: 1")
print("loss: 0.9", flush=True)
try:
    from tensorboardX import SummaryWriter
except ImportError:
    SummaryWriter = None
train = os.path.join(os.environ["RUNDIR"], "train")
# Closed to be sure every record is in the file (tensorboardX writes from a thread of
# its own, and flush() does not wait for it).
if SummaryWriter:
    w = SummaryWriter(train)
    for step in range(3):
        w.add_scalar("acc", 0.1 * (step + 1), step)
    w.close()
print("waiting for go", flush=True)
deadline = time.time() + 120
while not os.path.exists("go") and time.time() < deadline:
    time.sleep(0.05)
print("step: 2")
print("loss: 0.5", flush=True)
if SummaryWriter:
    # A second event file, appearing while the run goes on.
    time.sleep(1.1)
    w = SummaryWriter(train)
    w.add_scalar("acc", 0.9, 3)
    w.close()
time.sleep(1.5)
print("done")
"#;

#[test]
fn slurm_runs_queue_stream_live_and_stop() {
    let Some(cluster) = Cluster::start() else { return };
    let tbx = tensorboardx_available();
    let env = Env::new();
    env.write("Guild", LIVE_GUILD);
    env.write("sleeper.py", SLEEPER_PY);
    env.write("live.py", LIVE_PY);

    // A job that takes the whole node.
    let out = cluster
        .guild(
            &env,
            &["train", "blocker", "--slurm", "--background", "--sbatch=--exclusive"],
        )
        .ok();
    assert!(out.stderr.contains("Slurm job "), "{out:?}");
    let (blocker, _) = out.started_run();
    env.wait_run(&blocker, &[RunStatus::Running]);
    env.wait_output(&blocker, |l| l == "ready");
    let blocker_job = attr(&env.get_run(&blocker), "slurm_job_id").expect("slurm_job_id attr");
    let info = cluster.guild(&env, &["runs", "info", &blocker]).ok();
    assert!(
        info.stdout.contains(&format!("slurm_job_id: {blocker_job}")),
        "{info:?}"
    );

    // The next jobs wait: queued, with Slurm's reason.
    let (live, live_dir) = cluster
        .guild(&env, &["train", "live", "--slurm", "-b"])
        .ok()
        .started_run();
    let (doomed, _) = cluster
        .guild(&env, &["train", "live", "--slurm", "-b"])
        .ok()
        .started_run();
    let queued = env.wait_run_until(&live, "queued with Slurm's reason", TIMEOUT, |r| {
        r.status() == RunStatus::Queued
            && ["Resources", "Priority"]
                .iter()
                .any(|why| r.reason.ends_with(&format!("pending: {why}")))
    });
    assert!(queued.reason.starts_with("Slurm job "), "{queued:?}");
    let runs = cluster.guild(&env, &["runs"]).ok();
    assert!(
        runs.stdout.lines().any(|l| l.contains(&live) && l.contains("queued")),
        "{runs:?}"
    );
    let status = cluster.guild(&env, &["status"]).ok();
    assert!(status.stdout.contains("slurm:    reachable"), "{status:?}");
    assert!(status.stdout.contains("3 runs on it"), "{status:?}");

    // guild stop of a queued job cancels it: it never ran.
    cluster.guild(&env, &["stop", &doomed]).ok();
    let cancelled = env.wait_run_until(&doomed, "ended", TIMEOUT, is_final);
    assert_eq!(cancelled.status(), RunStatus::Terminated, "{cancelled:?}");
    assert!(cancelled.reason.contains("CANCELLED"), "{cancelled:?}");
    assert_eq!(cancelled.started_ms, 0, "{cancelled:?}");

    // guild stop of a running job: scancel, and the run is terminated with Slurm's word.
    cluster.guild(&env, &["stop", &blocker]).ok();
    let stopped = env.wait_run_until(&blocker, "ended", TIMEOUT, is_final);
    assert_eq!(stopped.status(), RunStatus::Terminated, "{stopped:?}");
    assert!(stopped.reason.contains("CANCELLED"), "{stopped:?}");
    assert_eq!(cluster.job_state(&blocker_job), "CANCELLED");

    // The queued run starts and its scalars arrive while it runs (WatchSeries).
    let mut keys = vec!["loss".to_string()];
    if tbx {
        keys.push("tf/train/acc".to_string());
    }
    env.block_on(async {
        let mut client = SeriesServiceClient::new(env.channel().await);
        let mut stream = client
            .watch_series(pb::WatchSeriesRequest {
                run: live.clone(),
                keys: keys.clone(),
                after_cursor: 0,
            })
            .await
            .expect("WatchSeries")
            .into_inner();
        let (mut loss, mut acc) = (Vec::new(), Vec::new());
        while loss.is_empty() || (tbx && acc.len() < 3) {
            let update = tokio::time::timeout(TIMEOUT, stream.message())
                .await
                .expect("no samples within the timeout")
                .expect("WatchSeries stream")
                .expect("the stream ended before the samples came");
            for series in update.series {
                let steps = series.samples.iter().map(|s| s.step);
                match series.key.as_str() {
                    "loss" => loss.extend(steps),
                    _ => acc.extend(steps),
                }
            }
        }
        assert_eq!(loss, [1]);
        if tbx {
            assert_eq!(acc, [0, 1, 2]);
        }
    });
    let running = env.get_run(&live).run.unwrap();
    assert_eq!(
        running.status(),
        RunStatus::Running,
        "the samples came while it ran: {running:?}"
    );
    std::fs::write(env.project.join("go"), "").unwrap();
    let done = env.wait_run_until(&live, "ended", TIMEOUT, is_final);
    assert_eq!(done.status(), RunStatus::Completed, "{done:?}\n{}", env.daemon_log());

    let detail = env.get_run(&live);
    assert_eq!(attr(&detail, "slurm_state").as_deref(), Some("COMPLETED"));
    assert!(
        attr(&detail, "slurm_node").is_some_and(|n| !n.is_empty()),
        "{:?}",
        detail.attrs
    );
    assert!(
        attr(&detail, "cpu_cores").is_some(),
        "the node's facts: {:?}",
        detail.attrs
    );
    env.block_on(async {
        let mut db = open_run_db(&live_dir).await;
        let loss: Vec<(i64, f64)> = sqlx::query_as("SELECT step, value FROM scalar WHERE key = 'loss' ORDER BY step")
            .fetch_all(&mut db)
            .await
            .unwrap();
        assert_eq!(loss, [(1, 0.9), (2, 0.5)]);
        if tbx {
            let acc: i64 = sqlx::query_scalar("SELECT count(*) FROM scalar WHERE key = 'tf/train/acc'")
                .fetch_one(&mut db)
                .await
                .unwrap();
            assert_eq!(acc, 4);
        }
        // Stats from the node, through guild.d/node.jsonl.
        for key in ["sys/cpu/util", "sys/mem/used", "op/mem/rss", "op/cpu/util"] {
            let count: i64 = sqlx::query_scalar("SELECT count(*) FROM scalar WHERE key = ?")
                .bind(key)
                .fetch_one(&mut db)
                .await
                .unwrap();
            assert!(count >= 1, "no {key} samples");
        }
        let lines: Vec<(String, String)> = output_rows(&mut db).await;
        let text: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(
            text,
            ["step: 1", "loss: 0.9", "waiting for go", "step: 2", "loss: 0.5", "done"]
        );
    });

    // A sweep with --slurm: each trial a job of its own, the sweep in guildd.
    let sweep_env = Env::new();
    sweep_env.write("Guild", "[project]\nstats_interval = 0\n\n[model \"p\"]\ntrain = probe\n\n[flags]\nx = 0\n");
    sweep_env.write("probe.py", "import argparse\np = argparse.ArgumentParser()\np.add_argument('--x', type=float)\nprint(f\"loss: {(p.parse_args().x - 3) ** 2}\")\n");
    let out = cluster.guild(&sweep_env, &["train", "x=[1,2,3,4]", "--slurm", "--parallel", "4"]).ok();
    let sweep = crate::sweeps::get_sweep(&sweep_env, &out.started_run().0);
    assert_eq!(sweep.trials.len(), 4, "{sweep:?}");
    let mut jobs = std::collections::BTreeSet::new();
    for trial in &sweep.trials {
        let run = trial.run.as_ref().expect("trial run");
        assert_eq!(run.status(), RunStatus::Completed, "{trial:?}");
        let job = attr(&sweep_env.get_run(&run.id), "slurm_job_id").expect("each trial is a Slurm job");
        jobs.insert(job);
    }
    assert_eq!(jobs.len(), 4, "four jobs: {jobs:?}");
    assert!(out.stdout.lines().any(|l| l.contains("(best)") && l.contains(" 3")), "{out:?}");

    let status = cluster.guild(&env, &["status"]).ok();
    assert!(status.stdout.contains("0 runs on it"), "{status:?}");
}

const RESTART_GUILD: &str = "[project]\nstats_interval = 0\n\n[model \"forever\"]\ntrain = forever\n\n\
                             [model \"counter\"]\ntrain = counter\n";

const FOREVER_PY: &str = r#"
import time
for i in range(1200):
    print(f"tick {i}", flush=True)
    time.sleep(0.5)
"#;

/// Prints numbered lines until `go` exists, then exits 3.
const COUNTER_PY: &str = r#"
import os, sys, time
i = 0
deadline = time.time() + 120
while not os.path.exists("go") and time.time() < deadline:
    print(f"line {i}", flush=True)
    i += 1
    time.sleep(0.01)
print("line done", flush=True)
sys.exit(3)
"#;

/// `sbatch` for a guildd that dies between sbatch's answer and recording the job id: the
/// real sbatch submits, then the guildd that called it is killed before it reads the
/// answer.
const SBATCH_THEN_KILL: &str = "#!/bin/sh\nout=$(REAL_SBATCH \"$@\") || exit $?\nkill -9 $PPID\necho \"$out\"\n";

#[test]
fn a_job_submitted_just_before_guildd_died_is_found_by_its_name() {
    let Some(cluster) = Cluster::start() else { return };
    let env = Env::new();
    env.write("Guild", "[project]\nstats_interval = 0\n\n[model \"m\"]\ntrain = hello\n");
    env.write("hello.py", "print('hello from the job', flush=True)\n");
    let which = Command::new("sh").args(["-c", "command -v sbatch"]).output().unwrap();
    let real = String::from_utf8_lossy(&which.stdout).trim().to_string();
    let bin = env.root.join("killing-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let wrapper = bin.join("sbatch");
    std::fs::write(&wrapper, SBATCH_THEN_KILL.replace("REAL_SBATCH", &real)).unwrap();
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());

    // This command starts a guildd whose sbatch is the wrapper: it dies mid-submission.
    let out = env.guild_env(
        &["train", "--slurm", "-b"],
        &[("SLURM_CONF", cluster.conf.as_str()), ("PATH", path.as_str())],
    );
    assert_ne!(out.status.code(), Some(0), "{out:?}");
    let runs: Vec<_> = std::fs::read_dir(env.project.join("runs")).unwrap().flatten().collect();
    assert_eq!(runs.len(), 1, "one run folder");
    let id = runs[0].file_name().to_string_lossy().into_owned();
    let named = format!("--name=guild-{id}");
    let jobs = cluster.slurm("squeue", &["-h", "-t", "all", "-o", "%i", &named]);
    let jobs: Vec<&str> = jobs.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    assert_eq!(jobs.len(), 1, "the job was submitted once: {jobs:?}");

    // The next daemon finds the job by the run's name, records it and follows it.
    cluster.guild(&env, &["runs"]).ok();
    let done = env.wait_run_until(&id, "ended", TIMEOUT, is_final);
    assert_eq!(done.status(), RunStatus::Completed, "{done:?}");
    assert_eq!(attr(&env.get_run(&id), "slurm_job_id").as_deref(), Some(jobs[0]));
    let lines: Vec<String> = run_db_output(&env, &runs[0].path()).into_iter().map(|(_, l)| l).collect();
    assert_eq!(lines, ["hello from the job"]);
    let again = cluster.slurm("squeue", &["-h", "-t", "all", "-o", "%i", &named]);
    assert_eq!(again.lines().filter(|l| !l.trim().is_empty()).count(), 1, "submitted again: {again}");
}

#[test]
fn slurm_runs_survive_kill_9_of_guildd_and_time_limits() {
    let Some(cluster) = Cluster::start() else { return };
    let env = Env::new();
    env.write("Guild", RESTART_GUILD);
    env.write("forever.py", FOREVER_PY);
    env.write("counter.py", COUNTER_PY);

    // One minute is Slurm's smallest time limit.
    let (forever, forever_dir) = cluster
        .guild(&env, &["train", "forever", "--slurm", "-b", "--sbatch=--time=1"])
        .ok()
        .started_run();
    let (counter, counter_dir) = cluster
        .guild(&env, &["train", "counter", "--slurm", "-b"])
        .ok()
        .started_run();
    env.wait_run(&forever, &[RunStatus::Running]);
    env.wait_output(&counter, |l| l == "line 10");

    // guildd dies hard; the counter's job ends while no guildd runs.
    let daemon = env.try_status().expect("the daemon answers").pid;
    // SAFETY: kill(2) of the daemon this test started (through the CLI).
    unsafe { libc::kill(daemon as libc::pid_t, libc::SIGKILL) };
    wait_until("the killed daemon to be gone", || !process_alive(daemon));
    std::fs::write(env.project.join("go"), "").unwrap();
    wait_until("the counter's job to record its exit", || {
        counter_dir.join("guild.d/exit").exists()
    });

    // The next daemon follows both jobs again by their ids.
    cluster.guild(&env, &["runs"]).ok();
    let counted = env.wait_run_until(&counter, "ended", TIMEOUT, is_final);
    assert_eq!(counted.status(), RunStatus::Error, "{counted:?}");
    assert_eq!(counted.exit_status, Some(3));
    env.block_on(async {
        let mut db = open_run_db(&counter_dir).await;
        let lines: Vec<String> = sqlx::query_scalar("SELECT line FROM output ORDER BY seq")
            .fetch_all(&mut db)
            .await
            .unwrap();
        assert_eq!(lines.last().map(String::as_str), Some("line done"));
        let numbered = &lines[..lines.len() - 1];
        assert!(numbered.len() > 10, "{} lines", numbered.len());
        for (i, line) in numbered.iter().enumerate() {
            assert_eq!(line, &format!("line {i}"), "a line lost or doubled at {i}");
        }
    });
    let still = env.get_run(&forever).run.unwrap();
    assert_eq!(still.status(), RunStatus::Running, "{still:?}");

    // The time limit ends the other job: failed, with Slurm's state as the reason.
    let timed_out = env.wait_run_until(&forever, "ended by its time limit", Duration::from_secs(180), is_final);
    assert_eq!(timed_out.status(), RunStatus::Failed, "{timed_out:?}");
    assert!(timed_out.reason.contains("TIMEOUT"), "{timed_out:?}");
    let job = attr(&env.get_run(&forever), "slurm_job_id").expect("slurm_job_id");
    assert_eq!(cluster.job_state(&job), "TIMEOUT");
    // Its output was followed across the restart, each line once.
    let ticks: Vec<String> = run_db_output(&env, &forever_dir)
        .into_iter()
        .map(|(_, line)| line)
        .collect();
    assert!(ticks.len() > 60, "{} lines", ticks.len());
    for (i, line) in ticks.iter().enumerate() {
        assert_eq!(line, &format!("tick {i}"));
    }
}

/// What needs no cluster: options checked where they are given, and a submission that
/// cannot happen failing the run with the reason.
#[test]
fn slurm_options_are_checked_and_a_failed_submission_says_why() {
    let env = Env::new();
    env.write("Guild", "[model \"m\"]\ntrain = ok\nsbatch = --partition=gpu\n");
    env.write("ok.py", OK_PY);
    let out = env.guild(&["train", "--sbatch=--time=1"]).exits(2);
    assert!(out.stderr.contains("--slurm"), "{out:?}");
    // A guildd whose PATH has no sbatch (this command starts it): the run fails to
    // start, saying so.
    let out = env
        .guild_env(&["train", "--slurm", "-b"], &[("PATH", "/nonexistent")])
        .exits(1);
    assert!(
        out.stderr
            .contains("cannot submit the run to Slurm: sbatch is not on guildd's PATH"),
        "{out:?}"
    );
    let (id, run_dir) = out.started_run();
    let run = env.get_run(&id).run.unwrap();
    assert_eq!(run.status(), RunStatus::Failed);
    // The script it would have submitted is there.
    let script = std::fs::read_to_string(run_dir.join("guild.d/slurm.sh")).unwrap();
    assert!(script.contains(" supervise --node-stats "), "{script}");
    let out = env.guild(&["train", "--slurm", "--sbatch", "notanoption"]).exits(1);
    assert!(
        out.stderr.contains("\"notanoption\" is not an sbatch option"),
        "{out:?}"
    );
    env.write("Guild", "[model \"m\"]\ntrain = ok\nsbatch = --comment=\"unclosed\n");
    let out = env.guild(&["train", "--slurm"]).exits(1);
    assert!(out.stderr.contains("sbatch in model \"m\""), "{out:?}");
}
