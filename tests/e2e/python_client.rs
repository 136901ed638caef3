//! The Python examples (`examples/python/`, grpcio with stubs generated from proto/)
//! against a real guildd: start a run with flags over the Unix socket, stream its series
//! over TCP with the token while it trains, list and compare runs, and find every
//! service through server reflection and the health service.
//!
//! Needs `pip install grpcio grpcio-tools grpcio-reflection grpcio-health-checking`.
//! Without them the test says so and passes, unless GUILD_REQUIRE_PYTHON_CLIENT is set
//! (CI sets it).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use guild_proto::v1::RunStatus;

use crate::helpers::*;

/// Prints a loss sample, waits for the file `go`, prints a second one.
const TRAINER_PY: &str = r#"import argparse, os, time
p = argparse.ArgumentParser()
p.add_argument("--lr", type=float)
a, _ = p.parse_known_args()
print("loss: %r (step 1)" % (a.lr * 4), flush=True)
deadline = time.monotonic() + 60
while not os.path.exists("go") and time.monotonic() < deadline:
    time.sleep(0.02)
print("loss: %r (step 2)" % (a.lr * 2), flush=True)
"#;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/python")
}

/// `python3 examples/python/SCRIPT ARGS` with this test's data dir and socket.
fn script(env: &Env, name: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new("python3");
    cmd.arg(examples().join(name))
        .args(args)
        .env("GUILD_DATA_DIR", &env.data_dir)
        .env("GUILD_SOCKET", &env.socket)
        .env_remove("XDG_RUNTIME_DIR")
        .current_dir(&env.project)
        .stdin(Stdio::null());
    cmd
}

#[track_caller]
fn run_script(env: &Env, name: &str, args: &[&str]) -> String {
    let output = script(env, name, args).output().expect("cannot run python3");
    assert!(
        output.status.success(),
        "{name} {args:?} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn python_scripts_against_a_real_daemon() {
    if !python_imports(
        "grpc, grpc_tools, grpc_reflection, grpc_health",
        "GUILD_REQUIRE_PYTHON_CLIENT",
        "pip install grpcio grpcio-tools grpcio-reflection grpcio-health-checking",
    ) {
        return;
    }
    let env = Env::new();
    env.write("Guild", "[model \"net\"]\ntrain = trainer\n\n[flags]\nlr = 0.1\n");
    env.write("trainer.py", TRAINER_PY);
    // A daemon serving TCP on a free loopback port, with its token.
    env.guild(&["daemon", "start", "--listen", "127.0.0.1:0"]).ok();
    let tcp = env.try_status().expect("the daemon answers").tcp_address;
    assert!(!tcp.is_empty(), "no TCP address");
    wait_until("DATA_DIR/token", || env.data_dir.join("token").is_file());

    // Start a run with a flag over the Unix socket.
    let project = env.project.to_str().unwrap().to_string();
    let out = run_script(&env, "start_run.py", &[&project, "net", "lr=0.25", "--label", "py"]);
    let id = out.trim().to_string();
    assert!(id.ends_with("-net"), "start_run.py printed {out:?}");
    env.wait_run(&id, &[RunStatus::Running]);

    // Stream its series over TCP while it trains: the first sample comes before the run
    // can end (it waits for `go`), the second after.
    let mut watch = script(&env, "watch_series.py", &["--tcp", &tcp, &id, "loss"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start watch_series.py");
    let lines = lines_of(watch.stdout.take().unwrap());
    let first = expect_line(&lines, "first loss sample", |l| l.starts_with("loss "));
    assert_eq!(first, "loss 1 1.0");
    assert_eq!(
        env.get_run(&id).run.unwrap().status(),
        RunStatus::Running,
        "it streamed while training"
    );
    std::fs::write(env.project.join("go"), "").unwrap();
    let second = expect_line(&lines, "second loss sample", |l| l.starts_with("loss "));
    assert_eq!(second, "loss 2 0.5");
    let status = wait_child(watch, "watch_series.py");
    assert!(status.success(), "watch_series.py exited {status}");
    env.wait_run(&id, &[RunStatus::Completed]);

    // List runs and compare them, over either transport.
    let listed: serde_json::Value = serde_json::from_str(&run_script(&env, "list_runs.py", &["--json"])).unwrap();
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["status"], "completed");
    assert_eq!(listed[0]["label"], "py");
    let csv = run_script(&env, "compare.py", &["--tcp", &tcp, "1"]);
    assert_eq!(csv, format!("id,model,status,lr,loss\n{id},net,completed,0.25,0.5\n"));

    // Reflection lists every service (as grpcurl and evans see them); health says SERVING.
    for args in [vec![], vec!["--tcp", tcp.as_str()]] {
        let out = run_script(&env, "reflect.py", &args);
        for expected in [
            "guild.v1.RunService: StartRun ListRuns GetRun StopRun DeleteRun WatchRuns",
            "guild.v1.CompareService: CompareRuns",
            "guild.v1.SeriesService: ListSeries GetSeries WatchSeries",
            "grpc.health.v1.Health: Check Watch",
            "health '': SERVING",
            "health 'guild.v1.RunService': SERVING",
        ] {
            assert!(out.contains(expected), "reflect.py {args:?} lacks {expected:?}:\n{out}");
        }
    }

    // A sweep started from Python, and its best trial (loss = lr * 2 at the last step).
    let out = run_script(&env, "sweep.py", &[&project, "net", "lr=[0.5,0.25]", "--minimize", "loss"]);
    let best = out.lines().find(|l| l.starts_with("best ")).unwrap_or_else(|| panic!("sweep.py printed {out:?}"));
    assert!(best.starts_with("best 2 ") && best.ends_with(" 0.5 lr=0.25"), "{out}");
}
