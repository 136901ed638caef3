//! An ignored timing run of a million scalars through `Reader::poll` (the ingest
//! benchmark, bench/ingest.sh, measures the whole path into run.db).

use super::*;

/// cargo test --release -- --ignored --nocapture bench_million_scalars
#[test]
#[ignore]
fn bench_million_scalars() {
    const N: i64 = 1_000_000;
    let tmp = Temp::new("bench");
    {
        let mut w = std::io::BufWriter::new(File::create(&tmp.0).unwrap());
        w.write_all(&frame(
            &proto::Event {
                wall_time: 1.0,
                step: 0,
                summary: None,
            }
            .encode_to_vec(),
        ))
        .unwrap();
        for i in 0..N {
            let tag = if i % 2 == 0 { "train/loss" } else { "train/acc" };
            w.write_all(&scalar_record(tag, i / 2, 1.0 / (i + 1) as f32)).unwrap();
        }
        w.flush().unwrap();
    }
    let size = std::fs::metadata(&tmp.0).unwrap().len();
    let file = tmp.open();
    for run in 0..3 {
        let mut reader = Reader::new(0);
        let mut count = 0u64;
        let mut sum = 0.0;
        let started = std::time::Instant::now();
        let r = reader
            .poll(&file, u64::MAX, true, &mut |s| {
                count += 1;
                sum += s.value;
            })
            .unwrap();
        let took = started.elapsed();
        assert_eq!(count, N as u64);
        assert!(r.issues.is_empty() && !r.more);
        println!(
            "run {run}: {N} scalars, {:.1} MB in {:.1} ms ({:.0} ns/record, {:.0} MB/s), sum {sum:.3}",
            size as f64 / 1e6,
            took.as_secs_f64() * 1e3,
            took.as_secs_f64() * 1e9 / N as f64,
            size as f64 / 1e6 / took.as_secs_f64(),
        );
    }
}

/// The media ingest benchmark's file (bench/media_ingest.sh caches it) read, then
/// committed to a run.db, each timed: where `bench/media_ingest.sh`'s time goes.
/// GUILD_BENCH_MEDIA=/tmp/guild-bench-cache/media-2000img-10000hist/events.out.tfevents...
/// cargo test --release -p guildd --lib -- --ignored --nocapture bench_media_file
#[test]
#[ignore]
fn bench_media_file() {
    let Some(path) = std::env::var_os("GUILD_BENCH_MEDIA") else {
        eprintln!("set GUILD_BENCH_MEDIA to an event file");
        return;
    };
    let file = File::open(&path).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    for run in 0..3 {
        let started = std::time::Instant::now();
        let mut reader = Reader::new(0);
        let mut polls = Vec::new();
        loop {
            let r = reader.poll(&file, 2 << 20, true, &mut |_| {}).unwrap();
            polls.push(reader.take_media());
            if !r.more {
                break;
            }
        }
        let read = started.elapsed();
        let dir = tempfile::tempdir().unwrap();
        let items: usize = polls.iter().map(Vec::len).sum();
        let committed = rt.block_on(async {
            let mut db = crate::store::RunDb::open(&dir.path().join("run.db")).await.unwrap();
            let started = std::time::Instant::now();
            for media in polls {
                let batch = crate::samples::Batch {
                    media: media
                        .into_iter()
                        .map(|m| crate::samples::MediaRow {
                            key: m.tag.into(),
                            step: m.step,
                            time: m.wall_time_ms,
                            index: m.index,
                            data: m.data,
                        })
                        .collect(),
                    ..Default::default()
                };
                db.commit(&batch).await.unwrap();
            }
            let t = started.elapsed();
            db.close().await;
            t
        });
        eprintln!("run {run}: {items} items read in {read:?} (2 MiB polls), committed in {committed:?}");
    }
}
