//! Tails every TensorFlow event file under a run's folder: new files and folders are
//! picked up as they appear, each file is read from where the last commit left it, and
//! its scalars become samples keyed `tf/<subdir>/<tag>` (`tf/<tag>` at the root).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::tfevents::{self, Kind, Reader};
use crate::store::rundb::SampleRow;

/// Prefix of event-file offsets in run.db's `tail_offset`.
pub const OFFSET_PREFIX: &str = "tfevents:";
/// How often the run folder is searched for new event files.
const SCAN_INTERVAL: Duration = Duration::from_secs(1);
/// At most this much is read from one file per poll.
const READ_LIMIT: u64 = 16 * 1024 * 1024;
/// Folders deeper than this under the run folder are not searched.
const MAX_DEPTH: usize = 6;
/// At most this many event files are followed per run.
const MAX_FILES: usize = 1000;

struct EventFile {
    file: File,
    reader: Reader,
    /// `tf/` plus the file's folder relative to the run folder, with a trailing `/`.
    prefix: String,
    reported: u64,
}

pub struct EventTail {
    root: PathBuf,
    files: BTreeMap<String, EventFile>,
    saved: HashMap<String, u64>,
    last_scan: Option<Instant>,
}

/// What one poll found.
#[derive(Default)]
pub struct Found {
    pub samples: Vec<SampleRow>,
    pub offsets: Vec<(String, u64)>,
    /// Messages for `guild.d/errors.log`.
    pub issues: Vec<String>,
    /// A file had more than one poll's worth.
    pub more: bool,
}

impl EventTail {
    /// `offsets`: run.db's `tail_offset` (event files' entries start with OFFSET_PREFIX).
    pub fn new(root: &Path, offsets: &HashMap<String, u64>) -> EventTail {
        let saved = offsets
            .iter()
            .filter_map(|(name, offset)| name.strip_prefix(OFFSET_PREFIX).map(|rel| (rel.to_string(), *offset)))
            .collect();
        EventTail {
            root: root.to_path_buf(),
            files: BTreeMap::new(),
            saved,
            last_scan: None,
        }
    }

    /// Reads what the event files gained. `last` forces a search for new files and reads
    /// to the end (the run has ended).
    pub fn poll(&mut self, last: bool) -> Found {
        let now = Instant::now();
        if last || self.last_scan.is_none_or(|t| now.duration_since(t) >= SCAN_INTERVAL) {
            self.scan();
            self.last_scan = Some(now);
        }
        let mut found = Found::default();
        for (rel, event_file) in &mut self.files {
            let prefix = &event_file.prefix;
            let samples = &mut found.samples;
            let mut on_scalar = |event: tfevents::ScalarEvent| {
                samples.push(SampleRow {
                    key: format!("{prefix}{}", event.tag),
                    step: Some(event.step),
                    time: event.wall_time_ms,
                    value: event.value,
                });
            };
            match event_file
                .reader
                .poll(&event_file.file, READ_LIMIT, last, &mut on_scalar)
            {
                Ok(result) => {
                    found.more |= result.more;
                    for issue in result.issues {
                        found.issues.push(format!("event file {rel}: {issue}"));
                    }
                }
                Err(err) => found.issues.push(format!("event file {rel}: cannot read: {err}")),
            }
            let offset = event_file.reader.offset();
            if offset != event_file.reported {
                event_file.reported = offset;
                found.offsets.push((format!("{OFFSET_PREFIX}{rel}"), offset));
            }
        }
        found
    }

    /// Non-scalar summaries seen so far: (key, kind, count).
    pub fn others(&self) -> Vec<(String, String, u64)> {
        let mut out = Vec::new();
        for event_file in self.files.values() {
            for ((tag, kind), count) in event_file.reader.others() {
                out.push((format!("{}{tag}", event_file.prefix), kind_name(kind), *count));
            }
        }
        out
    }

    fn scan(&mut self) {
        let mut stack = vec![(self.root.clone(), 0usize)];
        while let Some((dir, depth)) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                let Ok(kind) = entry.file_type() else { continue };
                let path = entry.path();
                if kind.is_dir() {
                    if depth < MAX_DEPTH && !(depth == 0 && name == "guild.d") {
                        stack.push((path, depth + 1));
                    }
                    continue;
                }
                if !kind.is_file() || !tfevents::is_event_file(&name) || self.files.len() >= MAX_FILES {
                    continue;
                }
                let Ok(rel) = path.strip_prefix(&self.root) else {
                    continue;
                };
                let rel = rel.to_string_lossy().into_owned();
                if self.files.contains_key(&rel) {
                    continue;
                }
                let Ok(file) = File::open(&path) else { continue };
                let start = self.saved.get(&rel).copied().unwrap_or(0);
                let folder = Path::new(&rel)
                    .parent()
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let prefix = if folder.is_empty() {
                    "tf/".to_string()
                } else {
                    format!("tf/{folder}/")
                };
                self.files.insert(
                    rel,
                    EventFile {
                        file,
                        reader: Reader::new(start),
                        prefix,
                        reported: start,
                    },
                );
            }
        }
    }
}

fn kind_name(kind: &Kind) -> String {
    match kind {
        Kind::Scalar => "scalar".into(),
        Kind::Image => "image".into(),
        Kind::Histogram => "histogram".into(),
        Kind::Audio => "audio".into(),
        Kind::Tensor => "tensor".into(),
        Kind::Text => "text".into(),
        Kind::Other(plugin) => plugin.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tfevents/tensorboardx")
    }

    #[test]
    fn keys_carry_the_subfolder_and_offsets_resume() {
        let tmp = std::env::temp_dir().join(format!("guild-events-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(tmp.join("train")).unwrap();
        std::fs::create_dir_all(tmp.join("guild.d")).unwrap();
        let src = std::fs::read_dir(fixture_dir().join("train"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        std::fs::copy(&src, tmp.join("train").join(src.file_name().unwrap())).unwrap();
        // An event file under guild.d is Guild's, never the run's.
        std::fs::copy(&src, tmp.join("guild.d").join(src.file_name().unwrap())).unwrap();

        let mut tail = EventTail::new(&tmp, &HashMap::new());
        let found = tail.poll(false);
        let losses: Vec<&SampleRow> = found.samples.iter().filter(|s| s.key == "tf/train/loss").collect();
        assert_eq!(losses.len(), 10);
        assert_eq!(losses[3].step, Some(3));
        assert!((losses[3].value - 0.25).abs() < 1e-6);
        assert!(found.samples.iter().all(|s| s.key.starts_with("tf/train/")));
        assert_eq!(found.offsets.len(), 1);
        assert!(
            tail.others()
                .iter()
                .any(|(key, kind, _)| key.starts_with("tf/train/") && kind == "histogram")
        );

        // A new tail resuming from the committed offset reads nothing twice.
        let offsets: HashMap<String, u64> = found.offsets.into_iter().collect();
        let mut resumed = EventTail::new(&tmp, &offsets);
        assert!(resumed.poll(true).samples.is_empty());

        // A file that appears later, at the root, is picked up with `tf/<tag>` keys.
        std::fs::copy(&src, tmp.join(src.file_name().unwrap())).unwrap();
        let found = resumed.poll(true);
        assert_eq!(found.samples.iter().filter(|s| s.key == "tf/loss").count(), 10);
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
