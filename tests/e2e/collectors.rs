//! Collectors under a real daemon: event files written by tensorboardX while the run
//! trains, stats series, WatchSeries and GetSeries over the socket, corrupt event files.

use std::collections::BTreeMap;
use std::path::Path;

use guild_proto::v1::{self as pb, RunStatus, series_service_client::SeriesServiceClient};

use crate::helpers::*;

const TBX_GUILD: &str = "[project]\nname = tbx\nstats_interval = 0.3\n\n[model \"m\"]\ntrain = writer\n";

/// Writes scalars, a histogram and an image with tensorboardX: 5 steps, then waits for
/// `go` in the project folder (the test creates it once it has seen those samples
/// through WatchSeries), then 5 more steps and a new file in a new folder.
const TBX_WRITER: &str = r#"
import os, time
from tensorboardX import SummaryWriter
import numpy as np
rundir = os.environ["RUNDIR"]
train = SummaryWriter(os.path.join(rundir, "train"))
val = SummaryWriter(os.path.join(rundir, "validation"))
for step in range(5):
    train.add_scalar("loss", 1.0 / (step + 1), step)
    val.add_scalar("loss", 2.0 / (step + 1), step)
train.add_histogram("weights", np.arange(10.0), 0)
train.add_image("digit", np.zeros((3, 4, 4)), 0)
train.flush(); val.flush()
print("waiting for go", flush=True)
deadline = time.time() + 60
while not os.path.exists("go") and time.time() < deadline:
    time.sleep(0.02)
for step in range(5, 10):
    train.add_scalar("loss", 1.0 / (step + 1), step)
    val.add_scalar("loss", 2.0 / (step + 1), step)
late = SummaryWriter(os.path.join(rundir, "eval", "late"))
late.add_scalar("acc", 0.5, 7)
for w in (train, val, late):
    w.close()
print("acc: 0.25", flush=True)
"#;

fn series_client(env: &Env) -> SeriesServiceClient<tonic::transport::Channel> {
    env.block_on(async { SeriesServiceClient::new(env.channel().await).max_decoding_message_size(64 << 20) })
}

#[test]
fn event_files_written_while_training_land_in_run_db() {
    if !tensorboardx_available() {
        return;
    }
    let env = Env::new();
    env.write("Guild", TBX_GUILD);
    env.write("writer.py", TBX_WRITER);
    let (id, run_dir) = env.guild(&["train", "--background"]).ok().started_run();

    // The first five steps arrive while the writer is still running.
    let mut client = series_client(&env);
    env.block_on(async {
        let mut stream = client
            .watch_series(pb::WatchSeriesRequest {
                run: id.clone(),
                keys: vec!["tf/train/loss".into()],
                after_cursor: 0,
            })
            .await
            .expect("WatchSeries")
            .into_inner();
        let mut steps = Vec::new();
        while steps.len() < 5 {
            let update = stream
                .message()
                .await
                .expect("stream")
                .expect("the stream ended before 5 samples");
            for series in update.series {
                assert_eq!(series.key, "tf/train/loss");
                steps.extend(series.samples.iter().map(|s| s.step));
            }
        }
        assert_eq!(steps, vec![0, 1, 2, 3, 4]);
    });
    assert_eq!(env.get_run(&id).run.unwrap().status(), RunStatus::Running);
    std::fs::write(env.project.join("go"), "").unwrap();
    let run = env.wait_run(&id, &[RunStatus::Completed, RunStatus::Error, RunStatus::Failed]);
    assert_eq!(run.status(), RunStatus::Completed, "{}", env.daemon_log());

    env.block_on(async {
        let mut db = open_run_db(&run_dir).await;
        let loss: Vec<(i64, f64)> =
            sqlx::query_as("SELECT step, value FROM scalar WHERE key = 'tf/train/loss' ORDER BY step")
                .fetch_all(&mut db)
                .await
                .unwrap();
        assert_eq!(loss.len(), 10, "{loss:?}");
        for (i, (step, value)) in loss.iter().enumerate() {
            assert_eq!(*step, i as i64);
            assert!((value - 1.0 / (i as f64 + 1.0)).abs() < 1e-6, "step {step}: {value}");
        }
        let val: (i64, f64) =
            sqlx::query_as("SELECT count(*), max(value) FROM scalar WHERE key = 'tf/validation/loss'")
                .fetch_one(&mut db)
                .await
                .unwrap();
        assert_eq!(val.0, 10);
        assert!((val.1 - 2.0).abs() < 1e-6);
        // A file that appeared mid-run, in a folder that did not exist at the start.
        let late: (i64, f64) = sqlx::query_as("SELECT step, value FROM scalar WHERE key = 'tf/eval/late/acc'")
            .fetch_one(&mut db)
            .await
            .unwrap();
        assert_eq!(late, (7, 0.5));
        // Event-file wall times are kept: within the run's lifetime.
        let (min_time, max_time): (i64, i64) =
            sqlx::query_as("SELECT min(time), max(time) FROM scalar WHERE key LIKE 'tf/%'")
                .fetch_one(&mut db)
                .await
                .unwrap();
        assert!(min_time >= run.started_ms - 1000 && max_time <= run.stopped_ms + 1000);
        let others: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT key, kind, count FROM event_summary ORDER BY key")
                .fetch_all(&mut db)
                .await
                .unwrap();
        assert!(
            others.contains(&("tf/train/digit".into(), "image".into(), 1)),
            "{others:?}"
        );
        assert!(
            others.contains(&("tf/train/weights".into(), "histogram".into(), 1)),
            "{others:?}"
        );
        // Output scalars still work beside them.
        let acc: f64 = sqlx::query_scalar("SELECT value FROM scalar WHERE key = 'acc'")
            .fetch_one(&mut db)
            .await
            .unwrap();
        assert_eq!(acc, 0.25);
    });
    // The index's summary agrees, and the CLI shows it.
    let detail = env.get_run(&id);
    let loss = detail
        .series
        .iter()
        .find(|k| k.key == "tf/train/loss")
        .expect("summary of tf/train/loss");
    assert_eq!((loss.count, loss.last_step), (10, 9));
    assert!((loss.min - 0.1).abs() < 1e-6 && (loss.max - 1.0).abs() < 1e-6);
    let listed = env.guild(&["list-series", &id]).ok();
    assert!(listed.stdout.contains("tf/validation/loss"), "{listed:?}");
}

#[test]
fn stats_series_have_sane_ranges() {
    let env = Env::new();
    env.write(
        "Guild",
        "[project]\nstats_interval = 0.25\n\n[model \"m\"]\ntrain = burn\n",
    );
    // Burns CPU until the test has seen three process samples, then stops.
    env.write(
        "burn.py",
        "import os, time\nblob = bytearray(32 << 20)\nend = time.time() + 60\n\
         while not os.path.exists('stop') and time.time() < end:\n    sum(range(10000))\nprint('done')\n",
    );
    let (id, _) = env.guild(&["train", "--background"]).ok().started_run();
    let mut client = series_client(&env);
    env.block_on(async {
        let mut stream = client
            .watch_series(pb::WatchSeriesRequest {
                run: id.clone(),
                keys: vec!["op/mem/rss".into()],
                after_cursor: 0,
            })
            .await
            .expect("WatchSeries")
            .into_inner();
        let mut seen = 0;
        while seen < 3 {
            let update = stream.message().await.expect("stream").expect("ended before 3 samples");
            seen += update.series.iter().map(|s| s.samples.len()).sum::<usize>();
        }
    });
    std::fs::write(env.project.join("stop"), "").unwrap();
    env.wait_run(&id, &[RunStatus::Completed]);

    let keys: BTreeMap<String, pb::SeriesKey> = env
        .get_run(&id)
        .series
        .into_iter()
        .map(|k| (k.key.clone(), k))
        .collect();
    let get = |key: &str| {
        keys.get(key)
            .unwrap_or_else(|| panic!("no {key} in {:?}", keys.keys().collect::<Vec<_>>()))
    };
    for fraction in ["sys/cpu/util", "sys/mem/util", "sys/cpu0/util"] {
        let k = get(fraction);
        assert!(k.min >= 0.0 && k.max <= 1.0, "{fraction}: {k:?}");
        assert!(k.count >= 3, "{fraction}: {k:?}");
    }
    let total = get("sys/mem/total");
    let used = get("sys/mem/used");
    assert!(total.last > 0.0 && used.last > 0.0 && used.last <= total.last);
    // The op holds a 32 MiB buffer: its tree's RSS says so.
    assert!(
        get("op/mem/rss").max > 32.0 * 1024.0 * 1024.0,
        "{:?}",
        get("op/mem/rss")
    );
    assert!(get("op/mem/vms").max >= get("op/mem/rss").max);
    let cpu = get("op/cpu/util");
    assert!(cpu.max > 0.05 && cpu.max <= 2.5, "op/cpu/util: {cpu:?}");
    let attrs: BTreeMap<String, String> = env.get_run(&id).attrs.into_iter().map(|a| (a.name, a.value)).collect();
    assert!(
        attrs
            .get("cpu_cores")
            .is_some_and(|c| c.parse::<u32>().is_ok_and(|n| n >= 1)),
        "{attrs:?}"
    );
    assert!(
        attrs.contains_key("gpu_count") && attrs.contains_key("mem_total"),
        "{attrs:?}"
    );
}

/// Prints 3,000 samples in bursts: `step: i` then `x: i`.
const BURSTS: &str = "import sys\nfor i in range(3000):\n    print(f'step: {i}')\n    print(f'x: {i * 0.5}')\n    \
                      if i % 500 == 0: sys.stdout.flush()\n";

#[test]
fn watch_series_delivers_every_committed_sample_once_and_resumes() {
    let env = Env::new();
    env.write(
        "Guild",
        "[project]\nstats_interval = 0\n\n[model \"m\"]\ntrain = bursts\n",
    );
    env.write("bursts.py", BURSTS);
    let (id, _) = env.guild(&["train", "--background"]).ok().started_run();
    let mut client = series_client(&env);
    // Follow from the start while the run writes, stopping after the first update.
    let (first, cursor) = env.block_on(async {
        let mut stream = client
            .watch_series(pb::WatchSeriesRequest {
                run: id.clone(),
                keys: vec!["x".into()],
                after_cursor: 0,
            })
            .await
            .unwrap()
            .into_inner();
        let update = stream.message().await.unwrap().expect("one update");
        let steps: Vec<i64> = update
            .series
            .iter()
            .flat_map(|s| s.samples.iter().map(|p| p.step))
            .collect();
        (steps, update.cursor)
    });
    assert!(!first.is_empty());
    // Resume from the cursor until the run ends: together, every sample exactly once.
    let rest = env.block_on(async {
        let mut stream = client
            .watch_series(pb::WatchSeriesRequest {
                run: id.clone(),
                keys: vec!["x".into()],
                after_cursor: cursor,
            })
            .await
            .unwrap()
            .into_inner();
        let mut steps = Vec::new();
        while let Some(update) = stream.message().await.unwrap() {
            for series in update.series {
                assert_eq!(series.key, "x");
                for sample in series.samples {
                    assert_eq!(sample.value, sample.step as f64 * 0.5);
                    steps.push(sample.step);
                }
            }
        }
        steps
    });
    assert_eq!(env.get_run(&id).run.unwrap().status(), RunStatus::Completed);
    let all: Vec<i64> = first.into_iter().chain(rest).collect();
    assert_eq!(all, (0..3000).collect::<Vec<i64>>());
}

#[test]
fn get_series_buckets_match_the_samples() {
    let env = Env::new();
    env.write(
        "Guild",
        "[project]\nstats_interval = 0\n\n[model \"m\"]\ntrain = bursts\n",
    );
    env.write("bursts.py", BURSTS);
    env.guild(&["train"]).ok();
    let mut client = series_client(&env);
    let (all, buckets) = env.block_on(async {
        let all = client
            .get_series(pb::GetSeriesRequest {
                run: "1".into(),
                keys: vec!["x".into()],
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let buckets = client
            .get_series(pb::GetSeriesRequest {
                run: "1".into(),
                keys: vec!["x".into()],
                min: Some(100.0),
                max: Some(1099.0),
                buckets: 7,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        (all, buckets)
    });
    let samples = &all.series[0].samples;
    assert_eq!(samples.len(), 3000);
    let series = &buckets.series[0];
    assert_eq!(series.count, 1000);
    assert_eq!(series.buckets.len(), 7);
    // Brute force: the samples whose step falls in each bucket's span.
    let width = (1099.0 - 100.0) / 7.0;
    for (i, bucket) in series.buckets.iter().enumerate() {
        let members: Vec<&pb::Sample> = samples
            .iter()
            .filter(|s| (100..=1099).contains(&s.step))
            .filter(|s| ((((s.step as f64 - 100.0) / width).floor() as usize).min(6)) == i)
            .collect();
        assert_eq!(bucket.count, members.len() as u64, "bucket {i}");
        assert_eq!(
            bucket.min,
            members.iter().map(|s| s.value).fold(f64::INFINITY, f64::min)
        );
        assert_eq!(
            bucket.max,
            members.iter().map(|s| s.value).fold(f64::NEG_INFINITY, f64::max)
        );
        assert_eq!(bucket.last, members.last().unwrap().value);
    }
    // Bad arguments name the field.
    let err = env.block_on(async {
        client
            .get_series(pb::GetSeriesRequest {
                run: "1".into(),
                keys: vec![],
                ..Default::default()
            })
            .await
            .unwrap_err()
    });
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("keys"), "{}", err.message());
}

#[test]
fn a_corrupt_event_file_is_reported_once_and_the_rest_is_read() {
    let env = Env::new();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guildd/tests/fixtures/tfevents/corrupt");
    std::fs::copy(
        fixtures.join("flipped/events.out.tfevents.flipped"),
        env.project.join("flipped.bin"),
    )
    .unwrap();
    env.write(
        "Guild",
        "[project]\nstats_interval = 0\n\n[model \"m\"]\ntrain = place\n",
    );
    env.write(
        "place.py",
        "import os, shutil\nos.makedirs(os.path.join(os.environ['RUNDIR'], 'train'))\n\
         shutil.copy('flipped.bin', os.path.join(os.environ['RUNDIR'], 'train', 'events.out.tfevents.1.x'))\n",
    );
    let (_, run_dir) = env.guild(&["train"]).ok().started_run();
    let errors = std::fs::read_to_string(run_dir.join("guild.d/errors.log")).unwrap();
    let reports: Vec<&str> = errors
        .lines()
        .filter(|l| l.contains("events.out.tfevents.1.x"))
        .collect();
    assert_eq!(reports.len(), 1, "{errors}");
    assert!(reports[0].contains("corrupt"), "{errors}");
    let detail = env.get_run("1");
    let total: i64 = detail
        .series
        .iter()
        .filter(|k| k.key.starts_with("tf/train/"))
        .map(|k| k.count)
        .sum();
    // The fixture holds 20 scalars (loss and acc at 10 steps); the flipped record held one.
    assert_eq!(total, 19, "{:?}", detail.series);
}

/// A run's detail carries its series cursor: GetSeries up to a cursor and WatchSeries
/// after it split the samples exactly (none lost, none twice), through the stored blocks
/// as well as the rows after them; the dashboard loads a live run's history that way.
#[test]
fn get_series_up_to_a_cursor_and_watch_series_after_it_split_every_sample() {
    let env = Env::new();
    env.write(
        "Guild",
        "[project]\nstats_interval = 0\n\n[model \"m\"]\ntrain = bursts\n",
    );
    env.write("bursts.py", BURSTS);
    let (id, run_dir) = env.guild(&["train"]).ok().started_run();
    let detail = env.get_run(&id);
    // The detail's cursor is run.db's last sample; a cut well inside the blocks (1,024
    // samples of a key each) and one among the rows after them.
    let (last, cuts) = env.block_on(async {
        let mut db = open_run_db(&run_dir).await;
        let last: i64 = sqlx::query_scalar("SELECT max(rowid) FROM series")
            .fetch_one(&mut db)
            .await
            .unwrap();
        let mut cuts = Vec::new();
        for step in [700, 2990] {
            let cut: i64 = sqlx::query_scalar(
                "SELECT s.rowid FROM series s JOIN series_key k ON k.id = s.key_id WHERE k.key = 'x' AND s.step = ?1",
            )
            .bind(step)
            .fetch_one(&mut db)
            .await
            .unwrap();
            cuts.push(cut);
        }
        (last, cuts)
    });
    assert_eq!(detail.cursor, last);
    let mut client = series_client(&env);
    for cut in cuts.into_iter().chain([last]) {
        let (history, buckets, after) = env.block_on(async {
            let read = |buckets: u32| pb::GetSeriesRequest {
                run: id.clone(),
                keys: vec!["x".into()],
                buckets,
                until_cursor: cut,
                ..Default::default()
            };
            let history = client.get_series(read(0)).await.unwrap().into_inner();
            let buckets = client.get_series(read(10)).await.unwrap().into_inner();
            let mut stream = client
                .watch_series(pb::WatchSeriesRequest {
                    run: id.clone(),
                    keys: vec!["x".into()],
                    after_cursor: cut,
                })
                .await
                .unwrap()
                .into_inner();
            let mut after = Vec::new();
            while let Some(update) = stream.message().await.unwrap() {
                after.extend(update.series.iter().flat_map(|s| s.samples.iter().map(|p| p.step)));
            }
            (history, buckets, after)
        });
        let before: Vec<i64> = history.series[0].samples.iter().map(|s| s.step).collect();
        let both: Vec<i64> = before.iter().copied().chain(after.iter().copied()).collect();
        assert_eq!(both, (0..3000).collect::<Vec<i64>>(), "cut at {cut}");
        // Buckets up to the cursor count the same samples and end at the last of them.
        let b = &buckets.series[0];
        assert_eq!(b.count, before.len() as u64, "cut at {cut}");
        assert_eq!(b.buckets.iter().map(|b| b.count).sum::<u64>(), before.len() as u64);
        assert_eq!(b.buckets.last().map(|b| b.last_step), before.last().copied());
    }
    // A cursor below 0 is refused, by name.
    let err = env.block_on(async {
        client
            .get_series(pb::GetSeriesRequest {
                run: id.clone(),
                keys: vec!["x".into()],
                until_cursor: -1,
                ..Default::default()
            })
            .await
            .unwrap_err()
    });
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("until_cursor"), "{}", err.message());
}
