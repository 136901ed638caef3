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
