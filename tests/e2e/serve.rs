//! `guild serve`: a trained example run served for real over HTTP, every error status,
//! a killed worker coming back, concurrent clients in order, and serves ending with
//! `--stop` and with the daemon.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use guild_proto::v1::{self as pb, ServeState};
use serde_json::{Value, json};

use crate::helpers::*;

/// `POST /run` with a JSON body.
#[track_caller]
fn post_run(address: &str, body: &str) -> Reply {
    http(
        address,
        "POST",
        "/run",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
}

/// `guild serve RUN --port 0 EXTRA...`: the URL it prints, as `host:port`.
#[track_caller]
fn guild_serve(env: &Env, run: &str, extra: &[&str]) -> String {
    let mut args = vec!["serve", run, "--port", "0"];
    args.extend_from_slice(extra);
    let out = env.guild(&args).ok();
    let url = out.stdout.trim();
    assert!(out.stderr.contains("POST http://"), "{out:?}");
    url.strip_prefix("http://")
        .unwrap_or_else(|| panic!("no URL on stdout: {out:?}"))
        .to_string()
}

// ------------------------------------------------------------------ the example, served

/// Rows of the example's test split: 64 pixel values each.
fn test_images(project: &Path, count: usize) -> Vec<Vec<f64>> {
    let text = std::fs::read_to_string(project.join("data/test.csv")).expect("data/test.csv");
    text.lines()
        .take(count)
        .map(|l| l.split(',').skip(1).map(|v| v.parse().unwrap()).collect())
        .collect()
}

/// What `python3 -um intro --serve --rundir RUN` answers through a pipe, one reply per
/// request line.
fn direct_replies(project: &Path, run_dir: &Path, requests: &[String]) -> Vec<Value> {
    let mut child = Command::new("python3")
        .args(["-um", "intro", "--serve", "--rundir"])
        .arg(run_dir)
        .current_dir(project)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot start python3 -um intro --serve");
    let mut stdin = child.stdin.take().unwrap();
    for request in requests {
        writeln!(stdin, "{request}").unwrap();
    }
    drop(stdin);
    let replies: Vec<Value> = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).expect("reply is JSON"))
        .collect();
    assert!(wait_child(child, "intro --serve").success());
    assert_eq!(replies.len(), requests.len(), "one reply per request");
    replies
}

/// Trains the example (one epoch) and returns (run id, run dir).
fn trained_example(env: &Env) -> (String, std::path::PathBuf) {
    env.guild(&["prepare"]).ok();
    let train = env.guild(&["train", "epochs=1"]).ok();
    train.started_run()
}

#[test]
fn serve_the_example_for_real() {
    let env = Env::mnist();
    let (id, run_dir) = trained_example(&env);
    let address = guild_serve(&env, "1", &[]);
    // `guild serve` returns once the worker is ready: the first request is answered.
    let images = test_images(&env.project, 40);
    let request = json!([images[0], {"image": images[1]}, images[2]]).to_string();
    let reply = post_run(&address, &request);
    assert_eq!(reply.status, 200, "{reply:?}");
    let serve = serve_of(&env, &id).expect("the serve is listed");
    assert_eq!(serve.state(), ServeState::Ready, "{serve:?}");
    assert_eq!(serve.url, format!("http://{address}"));
    assert_eq!(serve.model, "intro");
    assert!(serve.pid > 0, "{serve:?}");
    assert!(
        serve.argv.windows(2).any(|w| w[0] == "-um" && w[1] == "intro"),
        "{serve:?}"
    );
    assert!(serve.argv.contains(&"--serve".to_string()), "{serve:?}");
    assert!(
        serve.argv.contains(&run_dir.to_string_lossy().into_owned()),
        "$RUNDIR expanded: {serve:?}"
    );

    // Predictions match what the script computes directly, instance by instance.
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let outputs = reply.json();
    let direct = direct_replies(&env.project, &run_dir, std::slice::from_ref(&request));
    assert_eq!(outputs, direct[0], "served and direct predictions differ");
    let scores = outputs[0]["prediction"].as_array().expect("prediction list");
    assert_eq!(scores.len(), 10, "{reply:?}");

    // The README's request, the file the example ships, as `curl -d @request.json` sends it.
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/mnist/request.json");
    let shipped = std::fs::read_to_string(&shipped).expect("examples/mnist/request.json");
    let reply = post_run(&address, &shipped.replace('\n', ""));
    assert_eq!(reply.status, 200, "{reply:?}");
    let outputs = reply.json();
    let outputs = outputs.as_array().expect("a list of outputs");
    assert_eq!(outputs.len(), 2, "one output per instance: {reply:?}");
    for output in outputs {
        let scores = output["prediction"].as_array().expect("prediction list");
        let total: f64 = scores.iter().map(|s| s.as_f64().unwrap()).sum();
        assert!(scores.len() == 10 && (total - 1.0).abs() < 1e-6, "{output}");
    }

    // 400: bad JSON (guildd's own check), not a list, and an instance the worker rejects.
    let bad = post_run(&address, "[[0.1, 0.2");
    assert_eq!(bad.status, 400, "{bad:?}");
    assert!(bad.error().starts_with("invalid JSON"), "{bad:?}");
    let object = post_run(&address, r#"{"image": []}"#);
    assert_eq!(object.status, 400, "{object:?}");
    assert!(
        object.error().contains("expected a JSON list of instances"),
        "{object:?}"
    );
    let rejected = post_run(&address, "[[1, 2, 3]]");
    assert_eq!(rejected.status, 400, "{rejected:?}");
    assert_eq!(
        rejected.error(),
        "instance 0: expected 64 values, got 3",
        "{rejected:?}"
    );
    // A request body with newlines still travels as one line.
    let multiline = json!([images[3]]).to_string().replace(',', ",\n");
    let reply = post_run(&address, &multiline);
    assert_eq!(reply.status, 200, "{reply:?}");
    // Other paths and methods.
    assert_eq!(http(&address, "GET", "/run", &[], b"").status, 405);
    assert_eq!(http(&address, "GET", "/nope", &[], b"").status, 404);

    // 8 concurrent clients, each on its own connection, get their own answers in order.
    let singles: Vec<String> = images.iter().map(|x| json!([x]).to_string()).collect();
    let expected = direct_replies(&env.project, &run_dir, &singles);
    let threads: Vec<_> = (0..8)
        .map(|client| {
            let (address, singles, expected) = (address.clone(), singles.clone(), expected.clone());
            std::thread::spawn(move || {
                let mut conn = Conn::open(&address);
                for i in 0..25 {
                    let k = (client * 7 + i * 3) % singles.len();
                    let reply = conn.request(
                        "POST",
                        "/run",
                        &[("Content-Type", "application/json")],
                        singles[k].as_bytes(),
                    );
                    assert_eq!(reply.status, 200, "client {client} request {i}: {reply:?}");
                    assert_eq!(
                        reply.json(),
                        expected[k],
                        "client {client} request {i} got another answer"
                    );
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("a client failed");
    }

    // /stats counts every request, and reports latency and throughput.
    let stats = http(&address, "GET", "/stats", &[], b"").json();
    assert_eq!(stats["run"], id.as_str());
    assert_eq!(stats["state"], "ready");
    assert_eq!(stats["requests"], 6 + 200, "{stats:#}");
    assert_eq!(stats["errors"], 3, "{stats:#}");
    assert_eq!(stats["instances"], 3 + 2 + 1 + 200, "answered instances: {stats:#}");
    for key in ["p50", "p90", "p99", "max", "mean"] {
        assert!(
            stats["latency_ms"][key].as_f64().is_some_and(|v| v > 0.0),
            "{key}: {stats:#}"
        );
        assert!(
            stats["batch_time_ms"][key].as_f64().is_some_and(|v| v > 0.0),
            "{key}: {stats:#}"
        );
    }
    assert!(
        stats["predictions_per_second"].as_f64().is_some_and(|v| v > 0.0),
        "{stats:#}"
    );

    // `guild status` lists the serve.
    let status = env.guild(&["status"]).ok();
    assert!(
        status
            .stdout
            .lines()
            .any(|l| l.contains(&id) && l.contains(&address) && l.contains("ready")),
        "{status:?}"
    );

    // A killed worker comes back: a new pid, the same answers, and the failure logged.
    let old_pid = serve.pid;
    // SAFETY: the worker guildd reported for this test's run.
    unsafe { libc::kill(old_pid as libc::pid_t, libc::SIGKILL) };
    let back = wait_serve(&env, &id, "ready again", |s| {
        s.state() == ServeState::Ready && s.pid != old_pid && s.pid > 0
    });
    assert_eq!(back.restarts, 1, "{back:?}");
    let reply = post_run(&address, &request);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json(), direct[0]);
    let errors = std::fs::read_to_string(run_dir.join("guild.d/errors.log")).unwrap();
    assert!(
        errors.contains(&format!("serve: the serve worker (pid {old_pid})")) && errors.contains("signal 9"),
        "errors.log: {errors}"
    );
    let log = std::fs::read_to_string(run_dir.join("guild.d/serve.log")).unwrap();
    assert_eq!(
        log.matches("guildd starts the serve worker").count(),
        2,
        "serve.log: {log}"
    );
    assert!(log.contains("serving intro model"), "the worker's stderr: {log}");

    // Asking again returns the running serve; --stop ends it and its worker.
    let again = env.guild(&["serve", &id]).ok();
    assert!(again.stderr.contains("already served"), "{again:?}");
    assert_eq!(again.stdout.trim(), format!("http://{address}"));
    let stopped = env.guild(&["serve", "--stop", &id]).ok();
    assert!(stopped.stderr.contains(&format!("Stopped serving {id}")), "{stopped:?}");
    assert!(!process_alive(back.pid), "the worker outlived --stop");
    assert!(serve_of(&env, &id).is_none());
    assert!(
        TcpStream::connect(&address).is_err(),
        "the port still answers after --stop"
    );
    let missing = env.guild(&["serve", "--stop", &id]).exits(1);
    assert!(missing.stderr.contains("is not being served"), "{missing:?}");
}

/// StartServe for a run on a free port.
#[track_caller]
fn start_serve_of(env: &Env, run: &str) -> pb::Serve {
    start_serve(
        env,
        pb::StartServeRequest {
            run: run.to_string(),
            port: Some(0),
            ..Default::default()
        },
    )
}

#[test]
fn runs_with_nothing_to_serve_answer_404() {
    let env = Env::mnist();
    // The prepare run of intro: a serve op, but no trained model in its folder.
    let prepare = env.guild(&["prepare"]).ok();
    let (prepare_id, prepare_dir) = prepare.started_run();
    // expert has no serve op at all.
    let expert = env.guild(&["run", "expert:prepare"]).ok();
    let (expert_id, _) = expert.started_run();

    // Nothing to serve is a failed command, with the reason; the port answers 404.
    let out = env.guild(&["serve", &expert_id, "--port", "0"]).exits(1);
    assert!(
        out.stderr
            .contains(&format!("guild: run {expert_id} has no model to serve: "))
            && out.stderr.contains("model \"expert\" has no serve op"),
        "{out:?}"
    );
    assert!(out.stdout.is_empty(), "{out:?}");
    let address = serve_of(&env, &expert_id).expect("the serve is listed").address;
    let reply = post_run(&address, "[[0]]");
    assert_eq!(reply.status, 404, "{reply:?}");
    let message = reply.error();
    assert!(
        message.contains(&format!("run {expert_id} has no model to serve"))
            && message.contains("model \"expert\" has no serve op"),
        "{message}"
    );
    assert_eq!(
        serve_of(&env, &expert_id).expect("the serve is listed").state(),
        ServeState::NoModel
    );

    // A worker that exits before its first answer: StartServe answers once it has.
    let serve = start_serve_of(&env, &prepare_id);
    assert_eq!(serve.state(), ServeState::NoModel, "{serve:?}");
    assert!(
        serve
            .reason
            .contains("exited (exit status 2) before it answered its first request")
            && serve.reason.contains("no trained model at"),
        "{serve:?}"
    );
    let reply = post_run(&serve.address, "[[0]]");
    assert_eq!(reply.status, 404, "{reply:?}");
    assert!(reply.error().contains("train the intro model first"), "{reply:?}");
    let errors = std::fs::read_to_string(prepare_dir.join("guild.d/errors.log")).unwrap();
    assert!(errors.contains("serve: the serve worker exited"), "{errors}");
    // Not restarted: one start in the log.
    let log = std::fs::read_to_string(prepare_dir.join("guild.d/serve.log")).unwrap();
    assert_eq!(log.matches("guildd starts the serve worker").count(), 1, "{log}");

    // Serving it again tries again (a model may have been trained since).
    let again = start_serve_of(&env, &prepare_id);
    assert_eq!(again.state(), ServeState::NoModel, "{again:?}");
    assert!(!again.existing, "{again:?}");
    let log = std::fs::read_to_string(prepare_dir.join("guild.d/serve.log")).unwrap();
    assert_eq!(log.matches("guildd starts the serve worker").count(), 2, "{log}");
}

/// A worker that answers only once `go` exists, echoes each instance, and for the
/// instance "hang" waits for `release` (60 s at most), for "crash" exits 3.
const WORKER_PY: &str = r#"import json, os, sys, time

def wait_for(path):
    deadline = time.monotonic() + 60
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.01)

sys.stderr.write("worker waiting for go\n")
wait_for("go")
for line in sys.stdin:
    request = json.loads(line)
    if None in request:
        print(json.dumps({"error": "null is not an instance"}), flush=True)
        continue
    out = []
    for x in request:
        if x == "hang":
            wait_for("release")
        if x == "crash":
            sys.stderr.write("crashing as asked\n")
            os._exit(3)
        if x == "chatter":
            print("some debugging output", flush=True)
            continue
        out.append({"echo": x})
    print(json.dumps(out), flush=True)
"#;

const WORKER_GUILD: &str = "[model \"m\"]\ntrain = ok\nserve = worker\n";

#[test]
fn starting_timeouts_crashes_and_a_full_queue() {
    let env = Env::new();
    env.write("Guild", WORKER_GUILD);
    env.write("ok.py", OK_PY);
    env.write("worker.py", WORKER_PY);
    let (id, run_dir) = env.guild(&["train"]).ok().started_run();

    // While the worker starts (it waits for `go` before reading its stdin) the port
    // answers 503 and `guild serve` has not returned; it returns once the worker is
    // ready, and the next request is answered.
    let mut serving = env
        .guild_command(&["serve", &id, "--port", "0", "--timeout", "1", "--queue", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot start guild serve");
    let printed = lines_of(serving.stdout.take().unwrap());
    let serve = wait_serve(&env, &id, "started", |s| s.pid > 0);
    assert_eq!(serve.state(), ServeState::Starting, "{serve:?}");
    let address = serve.address.clone();
    let reply = post_run(&address, "[1]");
    assert_eq!(reply.status, 503, "{reply:?}");
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert!(reply.error().contains("is starting"), "{reply:?}");
    assert!(
        serving.try_wait().unwrap().is_none(),
        "guild serve returned while the worker was starting"
    );
    env.write("go", "");
    assert!(wait_child(serving, "guild serve").success());
    assert_eq!(
        expect_line(&printed, "URL", |l| l.starts_with("http://")),
        format!("http://{address}")
    );
    assert_eq!(serve_of(&env, &id).unwrap().state(), ServeState::Ready);
    let reply = post_run(&address, r#"[1, "two"]"#);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json(), json!([{"echo": 1}, {"echo": "two"}]));
    let reply = post_run(&address, "[3, null]");
    assert_eq!(reply.status, 400, "{reply:?}");
    assert_eq!(reply.error(), "null is not an instance");

    // A request the worker does not answer in time: 504, and the hung worker is replaced.
    let started = Instant::now();
    let reply = post_run(&address, r#"["hang"]"#);
    assert_eq!(reply.status, 504, "{reply:?}");
    assert!(reply.error().contains("within 1 s"), "{reply:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    let serve = wait_serve(&env, &id, "ready again", |s| {
        s.state() == ServeState::Ready && s.restarts == 1
    });
    let errors = std::fs::read_to_string(run_dir.join("guild.d/errors.log")).unwrap();
    assert!(errors.contains("did not answer a request within 1 s"), "{errors}");

    // A worker that exits while answering: 503 for that request, then it comes back.
    let reply = post_run(&address, r#"["crash"]"#);
    assert_eq!(reply.status, 503, "{reply:?}");
    assert!(reply.error().contains("the worker did not answer"), "{reply:?}");
    wait_serve(&env, &id, "ready again", |s| {
        s.state() == ServeState::Ready && s.restarts == 2 && s.pid != serve.pid
    });
    let errors = std::fs::read_to_string(run_dir.join("guild.d/errors.log")).unwrap();
    assert!(
        errors.contains("exit status 3") && errors.contains("crashing as asked"),
        "{errors}"
    );

    // A worker that prints something else on stdout breaks the pairing: 503, replaced.
    let reply = post_run(&address, r#"["chatter"]"#);
    assert_eq!(reply.status, 503, "{reply:?}");
    assert!(reply.error().contains("not a JSON reply"), "{reply:?}");
    wait_serve(&env, &id, "ready again", |s| {
        s.state() == ServeState::Ready && s.restarts == 3
    });
    assert_eq!(post_run(&address, "[5]").json(), json!([{"echo": 5}]));

    let stats = http(&address, "GET", "/stats", &[], b"").json();
    assert_eq!(stats["max_queue"], 2, "{stats:#}");
    env.guild(&["serve", "--stop", &id]).ok();

    // The queue bound: with one slot taken by a hanging request and one waiting behind
    // it, a third request is turned away at once.
    let address = guild_serve(&env, &id, &["--timeout", "30", "--queue", "2"]);
    assert_eq!(serve_of(&env, &id).unwrap().state(), ServeState::Ready);
    let mut waiting = Vec::new();
    for (body, queued) in [(r#"["hang"]"#, 1), ("[7]", 2)] {
        let target = address.clone();
        waiting.push(std::thread::spawn(move || post_run(&target, body)));
        wait_until(&format!("{queued} request(s) queued (GET /stats)"), || {
            http(&address, "GET", "/stats", &[], b"").json()["queued"] == queued
        });
    }
    let reply = post_run(&address, "[8]");
    assert_eq!(reply.status, 503, "{reply:?}");
    assert!(reply.error().contains("too many requests"), "{reply:?}");
    env.write("release", "");
    let answers: Vec<Reply> = waiting.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(answers[0].json(), json!([{"echo": "hang"}]), "{answers:?}");
    assert_eq!(answers[1].json(), json!([{"echo": 7}]), "{answers:?}");
}

#[test]
fn serves_end_with_the_daemon() {
    let env = Env::new();
    env.write("Guild", WORKER_GUILD);
    env.write("ok.py", OK_PY);
    env.write("worker.py", WORKER_PY);
    env.write("go", "");
    let (daemon_pid, _) = env.start_guildd(&["--listen", "none"]);
    let (id, _) = env.guild(&["train"]).ok().started_run();
    let serve = start_serve(
        &env,
        pb::StartServeRequest {
            run: id.clone(),
            port: Some(0),
            ..Default::default()
        },
    );
    assert!(serve.address.starts_with("127.0.0.1:"), "{serve:?}");
    assert_eq!(
        serve.state(),
        ServeState::Ready,
        "StartServe answers once the worker is ready: {serve:?}"
    );
    // A port taken by another serve is refused with a way out.
    let port: u32 = serve.address.rsplit(':').next().unwrap().parse().unwrap();
    let (other, _) = env.guild(&["train"]).ok().started_run();
    let refused = env.block_on(async {
        serves(&env)
            .await
            .start_serve(pb::StartServeRequest {
                run: other,
                port: Some(port),
                ..Default::default()
            })
            .await
            .expect_err("a second serve on a taken port")
    });
    assert!(refused.message().contains("port is in use"), "{refused:?}");

    env.guild(&["daemon", "stop"]).ok();
    wait_until("guildd to exit", || !process_alive(daemon_pid));
    assert!(!process_alive(serve.pid), "the worker outlived the daemon");
    assert!(
        TcpStream::connect(&serve.address).is_err(),
        "the port outlived the daemon"
    );
}
