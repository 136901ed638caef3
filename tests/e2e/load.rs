//! Load: many runs printing and logging scalars fast, many WatchSeries/ReadOutput
//! subscribers (some deliberately slow), and CLI calls in a loop, all at once. Afterwards
//! every line and sample is in run.db, no request failed, and the daemon's memory stayed
//! bounded. The test runs a small load; `bench/load.sh` runs the full one
//! (GUILD_LOAD=full: 20 runs, 50 subscribers).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use guild_proto::v1::series_service_client::SeriesServiceClient;
use guild_proto::v1::{self as pb, RunStatus, output_service_client::OutputServiceClient};

use crate::helpers::*;

struct Scale {
    runs: usize,
    subscribers: usize,
    lines: u64,
}

fn scale() -> Scale {
    match std::env::var("GUILD_LOAD").as_deref() {
        Ok("full") => Scale {
            runs: 20,
            subscribers: 50,
            lines: 50_000,
        },
        _ => Scale {
            runs: 4,
            subscribers: 10,
            lines: 5_000,
        },
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("VmRSS:")
                    .map(|v| v.trim().trim_end_matches(" kB").trim().to_string())
            })
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn load_loses_nothing_and_memory_stays_bounded() {
    let scale = scale();
    let env = Env::new();
    env.write(
        "Guild",
        "[project]\nstats_interval = 0.5\n\n[model \"m\"]\ntrain = chatty\n\n[flags]\nlines = 1000\n",
    );
    // Each run prints `lines` output lines, each also an output scalar, in bursts.
    env.write(
        "chatty.py",
        "import argparse, sys\np = argparse.ArgumentParser()\np.add_argument('--lines', type=int)\n\
         n = p.parse_known_args()[0].lines\nw = sys.stdout.write\nfor i in range(n):\n    w(f'x: {i}\\n')\n    \
         if i % 200 == 0: sys.stdout.flush()\n",
    );
    env.guild(&["daemon", "start", "--listen", "none"]).ok();
    let daemon = env.try_status().expect("daemon").pid;
    let lines = scale.lines.to_string();
    let lines_flag = format!("lines={lines}");
    let started = Instant::now();

    // Start the runs from several threads at once.
    let ids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..scale.runs)
            .map(|_| {
                s.spawn(|| {
                    env.guild(&["train", &lines_flag, "--background"])
                        .ok()
                        .stdout
                        .trim()
                        .to_string()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let failures = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let peak_rss = Arc::new(AtomicU64::new(rss_kib(daemon)));

    // CLI calls in a loop until the runs are done (bounded by the runs' own end).
    let cli_calls = std::thread::scope(|s| {
        let cli = s.spawn(|| {
            let mut calls = 0u64;
            while !done.load(Ordering::SeqCst) && calls < 2000 {
                let out = env.guild(&["runs", "--all"]);
                if !out.status.success() {
                    failures.fetch_add(1, Ordering::SeqCst);
                }
                calls += 1;
                peak_rss.fetch_max(rss_kib(daemon), Ordering::SeqCst);
            }
            calls
        });

        // Subscribers: even ones follow series, odd ones output; every third is slow.
        let received = env.block_on(async {
            let channel = env.channel().await;
            let mut tasks = tokio::task::JoinSet::new();
            for n in 0..scale.subscribers {
                let id = ids[n % ids.len()].clone();
                let channel = channel.clone();
                let slow = n % 3 == 2;
                tasks.spawn(async move {
                    let mut got = 0u64;
                    if n % 2 == 0 {
                        let mut stream = SeriesServiceClient::new(channel)
                            .watch_series(pb::WatchSeriesRequest {
                                run: id,
                                keys: vec!["x".into()],
                                after_cursor: 0,
                            })
                            .await
                            .map_err(|s| s.to_string())?
                            .into_inner();
                        while let Some(update) = stream.message().await.map_err(|s| s.to_string())? {
                            got += update.series.iter().map(|s| s.samples.len() as u64).sum::<u64>();
                            if slow {
                                // A deliberately slow consumer: the daemon must not buffer for it.
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                        }
                    } else {
                        let mut stream = OutputServiceClient::new(channel)
                            .read_output(pb::ReadOutputRequest {
                                run: id,
                                from_seq: 0,
                                follow: true,
                            })
                            .await
                            .map_err(|s| s.to_string())?
                            .into_inner();
                        while let Some(chunk) = stream.message().await.map_err(|s| s.to_string())? {
                            got += chunk.lines.len() as u64;
                            if slow {
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                        }
                    }
                    Ok::<u64, String>(got)
                });
            }
            let mut received = Vec::new();
            while let Some(result) = tasks.join_next().await {
                received.push(result.expect("subscriber task").expect("subscriber stream"));
            }
            received
        });
        for id in &ids {
            env.wait_run(id, &[RunStatus::Completed]);
        }
        done.store(true, Ordering::SeqCst);
        let calls = cli.join().unwrap();
        // Every subscriber, slow or fast, got every sample or line of its run exactly once.
        for (n, got) in received.iter().enumerate() {
            assert_eq!(*got, scale.lines, "subscriber {n} received {got} of {}", scale.lines);
        }
        calls
    });

    // Every line and sample each run wrote is in its run.db.
    let mut stored_lines = 0i64;
    let mut stored_samples = 0i64;
    for id in &ids {
        let run = env.get_run(id).run.unwrap();
        env.block_on(async {
            let mut db = open_run_db(std::path::Path::new(&run.run_dir)).await;
            let lines: i64 = sqlx::query_scalar("SELECT count(*) FROM output")
                .fetch_one(&mut db)
                .await
                .unwrap();
            let samples: i64 = sqlx::query_scalar("SELECT count(*) FROM scalar WHERE key = 'x'")
                .fetch_one(&mut db)
                .await
                .unwrap();
            assert_eq!((lines, samples), (scale.lines as i64, scale.lines as i64), "run {id}");
            stored_lines += lines;
            stored_samples += samples;
        });
    }
    let peak = peak_rss.load(Ordering::SeqCst);
    eprintln!(
        "load: {} runs, {} subscribers ({} slow), {} CLI calls, {} failed; lines written {} stored {}; \
         samples written {} stored {}; peak guildd RSS {} MiB; {:.1} s",
        scale.runs,
        scale.subscribers,
        scale.subscribers / 3,
        cli_calls,
        failures.load(Ordering::SeqCst),
        scale.lines * scale.runs as u64,
        stored_lines,
        scale.lines * scale.runs as u64,
        stored_samples,
        peak / 1024,
        started.elapsed().as_secs_f64()
    );
    assert_eq!(failures.load(Ordering::SeqCst), 0, "CLI calls failed under load");
    assert!(peak < 256 * 1024, "guildd grew to {} MiB under load", peak / 1024);
}
