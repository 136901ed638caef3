//! `guild tensorboard`: TensorBoard started by guildd for a run whose script wrote event
//! files, its scalars read through the `/tb/` proxy on the dashboard's port (token
//! required), reused for the same runs, and gone after stop, idleness and shutdown.
//!
//! Needs `tensorboard` and `tensorboardX` for python3 (`pip install tensorboard
//! tensorboardX`); without them the tests say so and pass, unless
//! GUILD_REQUIRE_TENSORBOARD is set.

use guild_proto::v1::{self as pb, tensor_board_service_client::TensorBoardServiceClient};
use serde_json::Value;

use crate::helpers::*;

/// Writes `loss` = 1/(step+1) for steps 0..5 under `RUNDIR/train` with tensorboardX.
const EVENTS_PY: &str = r#"import os
from tensorboardX import SummaryWriter
w = SummaryWriter(os.path.join(os.environ["RUNDIR"], "train"))
for step in range(5):
    w.add_scalar("loss", 1.0 / (step + 1), step)
w.close()
print("wrote events")
"#;

/// TensorBoard itself and tensorboardX (for the event files); `GUILD_REQUIRE_TENSORBOARD`
/// makes their absence a failure.
fn have_tensorboard() -> bool {
    python_imports(
        "tensorboard, tensorboardX",
        "GUILD_REQUIRE_TENSORBOARD",
        "pip install tensorboard tensorboardX",
    )
}

/// A project whose train op writes event files, a daemon serving TCP, one trained run
/// with a label: (env, run id, TCP address, token).
fn project_with_events() -> (Env, String, String, String) {
    let env = Env::new();
    env.write("Guild", "[model \"m\"]\ntrain = events\n");
    env.write("events.py", EVENTS_PY);
    let (_, status) = env.start_guildd(&["--listen", "127.0.0.1:0"]);
    let (id, _) = env.guild(&["train", "--label", "first: try"]).ok().started_run();
    let token = env.token();
    (env, id, status.tcp_address, token)
}

/// GET through the proxy with the token header.
#[track_caller]
fn get(address: &str, token: &str, path: &str) -> Reply {
    http(address, "GET", path, &[("x-guild-token", token)], b"")
}

/// Asks the proxy (bounded backoff) until TensorBoard lists the run's `loss` tag: it
/// loads event files in the background after it starts.
#[track_caller]
fn wait_for_tags(address: &str, token: &str, tb_run: &str) -> Value {
    let mut tags = Value::Null;
    wait_until("TensorBoard to load the run's scalars", || {
        let reply = get(address, token, "/tb/data/plugin/scalars/tags");
        assert_eq!(reply.status, 200, "{reply:?}");
        tags = reply.json();
        tags[tb_run]["loss"].is_object()
    });
    tags
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn tensorboard_through_the_dashboard_port() {
    if !have_tensorboard() {
        return;
    }
    let (env, id, address, token) = project_with_events();

    // Before TensorBoard runs, the proxy says how to start it; without the token, 401.
    let reply = get(&address, &token, "/tb/data/runs");
    assert_eq!(reply.status, 503, "{reply:?}");
    assert!(reply.body.contains("guild tensorboard"), "{reply:?}");

    let out = env.guild(&["tensorboard", &id]).ok();
    let lines = out.stdout_lines();
    assert_eq!(lines.len(), 2, "{out:?}");
    assert_eq!(lines[0], format!("http://{address}/tb/?token={token}"), "{out:?}");
    let direct = lines[1]
        .strip_prefix("http://")
        .and_then(|u| u.strip_suffix("/tb/"))
        .unwrap_or_else(|| panic!("direct URL: {out:?}"))
        .to_string();
    let info = env.block_on(async {
        TensorBoardServiceClient::new(env.channel().await)
            .get_tensor_board(pb::GetTensorBoardRequest {})
            .await
            .unwrap()
            .into_inner()
    });
    assert!(info.running && info.pid > 0, "{info:?}");
    assert_eq!(info.address, direct);
    assert_eq!(info.runs.len(), 1, "{info:?}");
    // Named by id and label (`:` would break --logdir_spec).
    let name = format!("{id} (first_ try)");
    assert_eq!(info.runs[0].name, name);
    let tb_run = format!("{name}/train");

    // Scalars through TensorBoard's JSON routes, via the proxy.
    let tags = wait_for_tags(&address, &token, &tb_run);
    assert_eq!(tags.as_object().map(|o| o.len()), Some(1), "{tags:#}");
    let path = format!(
        "/tb/data/plugin/scalars/scalars?run={}&tag=loss",
        percent_encode(&tb_run)
    );
    let scalars = get(&address, &token, &path);
    assert_eq!(scalars.status, 200, "{scalars:?}");
    let points = scalars.json();
    let points = points.as_array().expect("[[wall_time, step, value], ...]");
    let steps: Vec<i64> = points.iter().map(|p| p[1].as_i64().unwrap()).collect();
    let values: Vec<f64> = points.iter().map(|p| p[2].as_f64().unwrap()).collect();
    assert_eq!(steps, [0, 1, 2, 3, 4]);
    for (step, value) in values.iter().enumerate() {
        assert!((value - 1.0 / (step as f64 + 1.0)).abs() < 1e-6, "{values:?}");
    }
    // The same answer from TensorBoard itself.
    let same = http(&direct, "GET", &path, &[], b"");
    assert_eq!(same.json(), scalars.json());

    // TensorBoard's own redirects point back through the proxy.
    let bare = get(&address, &token, "/tb");
    assert_eq!((bare.status, bare.header("location")), (301, Some("/tb/")), "{bare:?}");

    // The token: refused without it; `?token=` once sets a cookie and drops it from the URL.
    let refused = http(&address, "GET", "/tb/data/runs", &[], b"");
    assert_eq!(refused.status, 401, "{refused:?}");
    let wrong = http(
        &address,
        "GET",
        "/tb/data/runs",
        &[("x-guild-token", &"0".repeat(64))],
        b"",
    );
    assert_eq!(wrong.status, 401, "{wrong:?}");
    let login = http(&address, "GET", &format!("/tb/?token={token}"), &[], b"");
    assert_eq!(login.status, 303, "{login:?}");
    assert_eq!(login.header("location"), Some("/tb/"));
    let cookie = login.header("set-cookie").expect("a cookie").to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Path=/tb"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap();
    let page = http(&address, "GET", "/tb/", &[("Cookie", pair)], b"");
    assert_eq!(page.status, 200, "{:?}", page.status);
    assert!(page.body.contains("<"), "TensorBoard's page");
    let runs = http(&address, "GET", "/tb/data/runs", &[("Cookie", pair)], b"").json();
    assert_eq!(runs, serde_json::json!([tb_run]));

    // The same runs reuse the running TensorBoard.
    let again = env.guild(&["tensorboard", &id]).ok();
    assert!(again.stderr.contains("already running"), "{again:?}");
    assert_eq!(again.stdout_lines()[1], lines[1]);

    // --stop ends it; the proxy says so.
    let stopped = env.guild(&["tensorboard", "--stop"]).ok();
    assert!(
        stopped
            .stderr
            .contains(&format!("Stopped TensorBoard (pid {})", info.pid)),
        "{stopped:?}"
    );
    assert!(!process_alive(info.pid), "TensorBoard outlived --stop");
    assert_eq!(get(&address, &token, "/tb/data/runs").status, 503);
}

#[test]
fn tensorboard_stops_when_idle_and_with_the_daemon() {
    if !have_tensorboard() {
        return;
    }
    let (env, id, address, token) = project_with_events();
    let start = |idle_seconds: u32| {
        env.block_on(async {
            TensorBoardServiceClient::new(env.channel().await)
                .start_tensor_board(pb::StartTensorBoardRequest {
                    runs: vec![id.clone()],
                    idle_seconds,
                    ..Default::default()
                })
                .await
                .unwrap_or_else(|s| panic!("StartTensorBoard: {s}"))
                .into_inner()
        })
    };
    let get_info = || {
        env.block_on(async {
            TensorBoardServiceClient::new(env.channel().await)
                .get_tensor_board(pb::GetTensorBoardRequest {})
                .await
                .unwrap()
                .into_inner()
        })
    };

    // Idle: no request through /tb/ for a second, and it stops on its own.
    let idle = start(1);
    assert!(idle.running && idle.pid > 0, "{idle:?}");
    wait_until("TensorBoard to stop when idle", || !get_info().running);
    wait_until("the idle TensorBoard to exit", || !process_alive(idle.pid));
    assert_eq!(get(&address, &token, "/tb/data/runs").status, 503);

    // Shutdown: the daemon takes TensorBoard with it.
    let info = start(0);
    assert_eq!(info.idle_seconds, 600);
    assert_ne!(info.pid, idle.pid);
    let daemon_pid = env.try_status().expect("daemon status").pid;
    env.guild(&["daemon", "stop"]).ok();
    wait_until("guildd to exit", || !process_alive(daemon_pid));
    assert!(!process_alive(info.pid), "TensorBoard outlived the daemon");

    // A daemon killed outright leaves TensorBoard running; the next daemon stops it.
    let (daemon_pid, _) = env.start_guildd(&["--listen", "127.0.0.1:0"]);
    let orphan = start(0);
    // SAFETY: the daemon this test started.
    unsafe { libc::kill(daemon_pid as libc::pid_t, libc::SIGKILL) };
    wait_until("guildd to die", || !process_alive(daemon_pid));
    assert!(process_alive(orphan.pid), "TensorBoard died with a killed daemon");
    env.start_guildd(&["--listen", "127.0.0.1:0"]);
    wait_until("the next daemon to stop the left-over TensorBoard", || {
        !process_alive(orphan.pid)
    });
    assert!(!get_info().running);
}

#[test]
fn a_missing_tensorboard_says_how_to_install_it() {
    let env = Env::new();
    env.write("Guild", "[model \"m\"]\ntrain = ok\n");
    env.write("ok.py", OK_PY);
    env.guild(&["train"]).ok();
    // A PATH without tensorboard, and a "python" that cannot import it.
    let bin = env.root.join("bin");
    std::fs::create_dir(&bin).unwrap();
    let out = env.guild_env(&["tensorboard"], &[("PATH", bin.to_str().unwrap())]);
    let out = out.exits(1);
    assert!(out.stderr.contains("pip install tensorboard"), "{out:?}");
}
