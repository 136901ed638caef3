//! Entry points for the fuzz targets in `fuzz/` and for replaying their corpora as
//! ordinary tests (`guildd/tests/fuzz_corpus.rs`): each takes arbitrary bytes and must
//! never panic, whatever they hold.

use std::io::Write;

use crate::collectors::tfevents::Reader;
use crate::project;
use crate::runs::output::{LineSplitter, ScalarParser};

/// The Guild-file parser, then everything a start would resolve from what it parsed.
pub fn guild_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(parsed) = project::parse(text, "Guild") else {
        return;
    };
    for model in &parsed.models {
        for op in &model.ops {
            let _ = project::parse_op_command(&op.command);
        }
        let profile = parsed.profiles.first().map(|p| p.name.as_str());
        let cli: Vec<(String, String)> = model.flags.iter().map(|(k, v)| (k.clone(), format!("{v}x"))).collect();
        let _ = parsed.resolve_flags(model, profile, &cli);
        let _ = parsed.resolve_flags(model, Some("no-such-profile"), &[]);
    }
    let _ = parsed.model(Some("no-such-model"));
}

/// The event-file reader over a file holding `data`, read in pieces and then to the end.
pub fn tfevents(data: &[u8]) {
    let Ok(mut file) = tempfile_in_shm() else { return };
    let half = data.len() / 2;
    let mut reader = Reader::new(0);
    let mut scalars = 0usize;
    let mut count = |_: crate::collectors::tfevents::ScalarEvent| scalars += 1;
    if file.write_all(&data[..half]).is_err() {
        return;
    }
    let _ = reader.poll(&file, 1 << 20, false, &mut count);
    if file.write_all(&data[half..]).is_err() {
        return;
    }
    let _ = reader.poll(&file, 1 << 20, false, &mut count);
    let _ = reader.poll(&file, u64::MAX, true, &mut count);
    assert!(
        reader.offset() <= data.len() as u64,
        "the reader ran past the end of the file"
    );
}

/// Output capture: the line splitter fed in chunks (sized by the first byte), and the
/// output-scalar parser on every line.
pub fn output(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(first % 17) + 1;
    let mut splitter = LineSplitter::new();
    let mut scalars = ScalarParser::new();
    let mut lines = Vec::new();
    for piece in rest.chunks(chunk) {
        splitter.feed(piece, &mut |line| lines.push(line));
    }
    splitter.finish(&mut |line| lines.push(line));
    for line in &lines {
        assert!(
            line.len() <= crate::runs::output::MAX_LINE_BYTES + 64,
            "a line outgrew the limit"
        );
        let _ = scalars.parse(line);
    }
}

fn tempfile_in_shm() -> std::io::Result<std::fs::File> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = if std::path::Path::new("/dev/shm").is_dir() {
        "/dev/shm".into()
    } else {
        std::env::temp_dir()
    };
    let path = dir.join(format!(
        "guild-fuzz-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    // Unlinked at once: the open handle is all the reader needs.
    let _ = std::fs::remove_file(&path);
    Ok(file)
}
