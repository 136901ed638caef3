//! Replays every fuzz corpus and regression input (fuzz/corpus/*, fuzz/regressions/*)
//! through the fuzz targets' entry points, so what fuzzing found stays fixed without a
//! fuzzer in the test run.

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut count = 0;
    for folder in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(folder).join(target)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.file_name().is_some_and(|n| n == "README") {
                continue;
            }
            let data = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            run(&data);
            count += 1;
        }
    }
    assert!(count > 0, "no corpus for {target}");
}

#[test]
fn guild_file_corpus() {
    replay("guild_file", guildd::fuzzing::guild_file);
}

#[test]
fn tfevents_corpus() {
    replay("tfevents", guildd::fuzzing::tfevents);
}

#[test]
fn output_corpus() {
    replay("output", guildd::fuzzing::output);
}
