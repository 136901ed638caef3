//! The queue: guildd gives each run the GPUs it asks for (never one GPU to two runs at
//! once), at most `--max-runs` at once, keeps the rest `queued` (in index.db, across a
//! `kill -9` of guildd), and `guild stop` cancels a queued run. A probe op records its
//! `CUDA_VISIBLE_DEVICES`, `GPU_COUNT`, start and end in a shared log.

use std::collections::HashMap;

use guild_proto::v1::RunStatus;

use crate::helpers::*;

/// Appends `RUN start|end TIME CUDA_VISIBLE_DEVICES GPU_COUNT` to `--log`; waits for the
/// `--wait` file when given, then `--hold` seconds; prints `loss: f(x, y)`.
pub const PROBE: &str = r#"import argparse, os, sys, time
p = argparse.ArgumentParser()
p.add_argument("--log")
p.add_argument("--hold", type=float, default=0)
p.add_argument("--wait", default="none")
p.add_argument("--x", type=float, default=0)
p.add_argument("--y", type=float, default=0)
p.add_argument("--z", default="a")
p.add_argument("--fail", default="no")
a, _ = p.parse_known_args()
run = os.environ["GUILD_RUN_ID"]
cvd = os.environ.get("CUDA_VISIBLE_DEVICES", "-") or "none"
n = os.environ.get("GPU_COUNT", "-")
def log(what):
    fd = os.open(a.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, f"{run} {what} {time.time():.6f} {cvd} {n}\n".encode())
    os.close(fd)
log("start")
print("visible=" + cvd)
while a.wait != "none" and not os.path.exists(a.wait):
    time.sleep(0.02)
time.sleep(a.hold)
print(f"loss: {(a.x - 0.3) ** 2 + (a.y - 2) ** 2}")
log("end")
sys.exit(1 if a.fail == "yes" else 0)
"#;

pub fn probe_env() -> Env {
    let env = Env::new();
    let log = env.root.join("events.log");
    env.write(
        "Guild",
        &format!(
            "[project]\nstats_interval = 0\n\n[model \"m\"]\ntrain = probe\n\n[flags]\nlog = {}\nhold = 0\nwait = none\nx = 0\ny = 0\nz = a\nfail = no\n",
            log.display()
        ),
    );
    env.write("probe.py", PROBE);
    env
}

/// One run's life as the probe logged it.
#[derive(Debug, Clone)]
pub struct Life {
    pub start: f64,
    pub end: f64,
    pub gpus: Vec<String>,
    pub gpu_count: String,
}

pub fn lives(env: &Env) -> HashMap<String, Life> {
    let text = std::fs::read_to_string(env.root.join("events.log")).unwrap_or_default();
    let mut lives: HashMap<String, Life> = HashMap::new();
    for line in text.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        assert_eq!(parts.len(), 5, "bad probe line {line:?}");
        let life = lives.entry(parts[0].to_string()).or_insert(Life {
            start: f64::NAN,
            end: f64::NAN,
            gpus: Vec::new(),
            gpu_count: parts[4].to_string(),
        });
        let time: f64 = parts[2].parse().unwrap();
        if parts[1] == "start" {
            life.start = time;
            life.gpus = parts[3].split(',').map(str::to_string).collect();
        } else {
            life.end = time;
        }
    }
    lives
}

/// The most lives that overlap at any moment.
fn most_at_once(lives: &[&Life]) -> usize {
    let mut events: Vec<(f64, i32)> = lives.iter().flat_map(|l| [(l.start, 1), (l.end, -1)]).collect();
    // At the same instant an end counts before a start.
    events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut now, mut most) = (0i32, 0i32);
    for (_, delta) in events {
        now += delta;
        most = most.max(now);
    }
    most as usize
}

/// No GPU is in two overlapping lives.
fn assert_no_gpu_shared(lives: &HashMap<String, Life>) {
    let all: Vec<(&String, &Life)> = lives.iter().collect();
    for (i, (a_id, a)) in all.iter().enumerate() {
        for (b_id, b) in &all[i + 1..] {
            let overlap = a.start < b.end && b.start < a.end;
            let shared: Vec<&String> = a.gpus.iter().filter(|g| b.gpus.contains(g)).collect();
            assert!(
                !overlap || shared.is_empty(),
                "GPU {shared:?} given to {a_id} and {b_id} at once: {a:?} {b:?}"
            );
        }
    }
}

fn start_background(env: &Env, args: &[&str]) -> (String, Out) {
    let mut all = vec!["train", "--background"];
    all.extend_from_slice(args);
    let out = env.guild(&all).ok();
    let id = out.stdout.trim().to_string();
    assert!(!id.is_empty(), "{out:?}");
    (id, out)
}

const ENDED: &[RunStatus] = &[
    RunStatus::Completed,
    RunStatus::Error,
    RunStatus::Failed,
    RunStatus::Terminated,
];

#[test]
fn ten_one_gpu_runs_on_four_gpus_never_share_one() {
    let env = probe_env();
    env.start_guildd(&["--gpus", "0,1,2,3"]);
    let mut ids = Vec::new();
    let mut queued = 0;
    for _ in 0..10 {
        let (id, out) = start_background(&env, &["--gpus", "1", "hold=1.0"]);
        queued += out.stderr.contains("Queued at position") as usize;
        ids.push(id);
    }
    assert!(queued >= 1, "no run was queued, though 10 asked for 4 GPUs");
    // The listing shows the queue's order while runs wait.
    let listed = env.runs_json();
    let positions: Vec<u64> = listed
        .iter()
        .filter(|r| r["status"] == "queued")
        .filter_map(|r| r["queue_position"].as_u64())
        .collect();
    if !positions.is_empty() {
        let mut sorted = positions.clone();
        sorted.sort();
        assert_eq!(sorted, (1..=positions.len() as u64).collect::<Vec<_>>(), "{listed:?}");
    }
    for id in &ids {
        let run = env.wait_run(id, ENDED);
        assert_eq!(run.status(), RunStatus::Completed, "{run:?}");
    }
    let lives = lives(&env);
    assert_eq!(lives.len(), 10, "{lives:?}");
    for (id, life) in &lives {
        assert_eq!(life.gpus.len(), 1, "{id}: {life:?}");
        assert!(["0", "1", "2", "3"].contains(&life.gpus[0].as_str()), "{id}: {life:?}");
        assert_eq!(life.gpu_count, "1", "{id}");
    }
    let all: Vec<&Life> = lives.values().collect();
    let most = most_at_once(&all);
    assert!(most <= 4, "{most} runs at once on 4 GPUs");
    assert_no_gpu_shared(&lives);
    // The attrs say what each run was given.
    let attrs = env.get_run(&ids[9]).attrs;
    let given = attrs
        .iter()
        .find(|a| a.name == "gpus_assigned")
        .map(|a| a.value.clone());
    assert_eq!(given.map(|g| g.len()), Some(1), "{attrs:?}");
}

#[test]
fn two_gpu_runs_get_pairs_only() {
    let env = probe_env();
    env.start_guildd(&["--gpus", "0,1,2,3"]);
    let ids: Vec<String> = (0..4)
        .map(|_| start_background(&env, &["--gpus", "2", "hold=0.5"]).0)
        .collect();
    for id in &ids {
        assert_eq!(env.wait_run(id, ENDED).status(), RunStatus::Completed);
    }
    let lives = lives(&env);
    for (id, life) in &lives {
        assert_eq!(life.gpus.len(), 2, "{id}: {life:?}");
        assert_eq!(life.gpu_count, "2", "{id}");
    }
    let all: Vec<&Life> = lives.values().collect();
    assert!(most_at_once(&all) <= 2);
    assert_no_gpu_shared(&lives);
}

#[test]
fn a_run_asking_for_more_gpus_than_there_are_is_refused() {
    let env = probe_env();
    env.start_guildd(&["--gpus", "0,1"]);
    let out = env.guild(&["train", "--gpus", "3"]).exits(1);
    assert!(out.stderr.contains("asks for 3 GPUs and guildd has 2 (0,1)"), "{out:?}");
    assert!(env.runs_json().is_empty(), "nothing was started");
}

#[test]
fn queued_runs_survive_kill_9_of_guildd_and_start_after_restart() {
    let env = probe_env();
    let gate = env.root.join("gate");
    let gate_flag = format!("wait={}", gate.display());
    let (pid, _) = env.start_guildd(&["--gpus", "7"]);
    let (first, _) = start_background(&env, &["--gpus", "1", &gate_flag]);
    env.wait_run(&first, &[RunStatus::Running]);
    let (second, out) = start_background(&env, &["--gpus", "1"]);
    assert!(out.stderr.contains("Queued at position 1"), "{out:?}");
    let (third, out) = start_background(&env, &["--gpus", "1"]);
    assert!(out.stderr.contains("Queued at position 2"), "{out:?}");
    // SAFETY: kill(2) of the daemon this test started.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    // The lock is free once the daemon's last thread is gone (one may still be finishing
    // a write while the rest is a zombie).
    let lock = env.data_dir.join("guildd.lock");
    wait_until("the killed daemon to release its lock", || {
        std::fs::File::open(&lock).map_or(true, |file| file.try_lock().is_ok())
    });

    env.start_guildd(&["--gpus", "7"]);
    let listed = env.runs_json();
    let status_of = |id: &str| {
        listed
            .iter()
            .find(|r| r["id"] == id)
            .map(|r| (r["status"].clone(), r["queue_position"].clone()))
    };
    assert_eq!(status_of(&first).map(|s| s.0), Some("running".into()), "{listed:?}");
    assert_eq!(status_of(&second), Some(("queued".into(), 1.into())), "{listed:?}");
    assert_eq!(status_of(&third), Some(("queued".into(), 2.into())), "{listed:?}");
    std::fs::write(&gate, "go").unwrap();
    for id in [&first, &second, &third] {
        assert_eq!(env.wait_run(id, ENDED).status(), RunStatus::Completed, "{id}");
    }
    let lives = lives(&env);
    for id in [&first, &second, &third] {
        assert_eq!(lives[id.as_str()].gpus, ["7"], "{id}");
    }
    assert!(lives[first.as_str()].end <= lives[second.as_str()].start);
    assert!(lives[second.as_str()].end <= lives[third.as_str()].start);
}

#[test]
fn a_daemon_stopping_its_runs_starts_no_queued_one_on_the_way_out() {
    let env = probe_env();
    let gate = env.root.join("gate");
    let gate_flag = format!("wait={}", gate.display());
    env.start_guildd(&["--gpus", "7"]);
    let (first, _) = start_background(&env, &["--gpus", "1", &gate_flag]);
    env.wait_run(&first, &[RunStatus::Running]);
    let (second, out) = start_background(&env, &["--gpus", "1"]);
    assert!(out.stderr.contains("Queued at position 1"), "{out:?}");

    // Stopping the first run frees its GPU while guildd ends: the second must not take it.
    env.guild(&["daemon", "stop", "--stop-runs"]).ok();
    let lock = env.data_dir.join("guildd.lock");
    wait_until("the daemon to release its lock", || {
        std::fs::File::open(&lock).map_or(true, |file| file.try_lock().is_ok())
    });

    // The next daemon finds it queued and starts it (at once: its GPU is free).
    let restarted_ms = guild_proto::time::now_ms();
    env.start_guildd(&["--gpus", "7"]);
    let done = env.wait_run(&second, ENDED);
    assert_eq!(done.status(), RunStatus::Completed, "{done:?}");
    let started = done.started_ms;
    assert!(
        started >= restarted_ms,
        "{second} started {} ms before the next daemon did",
        restarted_ms - started
    );
    assert_eq!(env.get_run(&first).run.map(|r| r.status()), Some(RunStatus::Terminated));
    let lives = lives(&env);
    assert!(lives[second.as_str()].start * 1000.0 >= restarted_ms as f64, "{lives:?}");
}

#[test]
fn stop_cancels_a_queued_run_and_priority_moves_one_up() {
    let env = probe_env();
    let gate = env.root.join("gate");
    let gate_flag = format!("wait={}", gate.display());
    env.start_guildd(&["--max-runs", "1"]);
    let (first, _) = start_background(&env, &[&gate_flag]);
    env.wait_run(&first, &[RunStatus::Running]);
    let (cancelled, _) = start_background(&env, &[]);
    let (later, _) = start_background(&env, &[]);
    let (urgent, out) = start_background(&env, &["--priority", "5"]);
    assert!(out.stderr.contains("Queued at position 1"), "{out:?}");
    let (last, _) = start_background(&env, &[]);
    // A queued run's priority changes while it waits: `last` goes before `later`.
    let out = env.guild(&["runs", "priority", &last, "1"]).ok();
    assert_eq!(out.stdout.trim(), format!("{last}: priority 1, queued #2"), "{out:?}");
    let out = env.guild(&["runs", "priority", &first, "9"]).exits(1);
    assert!(out.stderr.contains("is not queued"), "{out:?}");
    let out = env.guild(&["stop", &cancelled]).ok();
    assert!(out.status.success(), "{out:?}");
    let run = env.wait_run(&cancelled, ENDED);
    assert_eq!(run.status(), RunStatus::Terminated);
    assert_eq!(run.reason, "cancelled while queued");
    std::fs::write(&gate, "go").unwrap();
    for id in [&first, &urgent, &later] {
        assert_eq!(env.wait_run(id, ENDED).status(), RunStatus::Completed);
    }
    let lives = lives(&env);
    assert!(!lives.contains_key(&cancelled), "a cancelled run never starts");
    assert!(
        lives[urgent.as_str()].end <= lives[later.as_str()].start,
        "priority 5 went first"
    );
    // Runs that asked for no GPU keep the environment's CUDA_VISIBLE_DEVICES (none here).
    assert_eq!(lives[first.as_str()].gpus, ["-"]);
}
