//! Tails every TensorFlow event file under a run's folder: new files and folders are
//! picked up as they appear, each file is read from where the last commit left it, and
//! its scalars become samples keyed `tf/<subdir>/<tag>` (`tf/<tag>` at the root), and its
//! images, audio, histograms, text and PR curves media rows keyed the same way.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use super::tfevents::{self, Kind, Reader};
use crate::samples::{KeySamples, MediaRow, Point};

/// Prefix of event-file offsets in run.db's `tail_offset`.
pub const OFFSET_PREFIX: &str = "tfevents:";
/// How often the run folder is searched for new event files: every 500 ms, or less
/// often for a folder whose search takes long (1,000 times the last search's duration, at
/// most every 5 s), so that searching costs at most about 0.1% of a core per run.
const SCAN_MIN_INTERVAL: Duration = Duration::from_millis(500);
const SCAN_MAX_INTERVAL: Duration = Duration::from_secs(5);
const SCAN_COST_FACTOR: u32 = 1000;
/// At most this much is read from one file per poll. A backlog is read ahead on another
/// thread while the previous poll's samples commit; small polls keep both busy from the
/// start (16 MiB: the first third of a 47 MB file was read before anything committed).
const READ_LIMIT: u64 = 2 * 1024 * 1024;
/// Folders deeper than this under the run folder are not searched.
const MAX_DEPTH: usize = 6;
/// At most this many event files are followed per run.
const MAX_FILES: usize = 1000;

struct EventFile {
    file: File,
    reader: Reader,
    /// `tf/` plus the file's folder relative to the run folder, with a trailing `/`.
    prefix: String,
    /// Each tag seen: its number in `keys`.
    tags: FxHashMap<String, usize>,
    /// Series key of each tag seen, built once.
    keys: Vec<Arc<str>>,
    reported: u64,
}

type Files = BTreeMap<String, EventFile>;

pub struct EventTail {
    root: PathBuf,
    files: Files,
    saved: HashMap<String, u64>,
    last_scan: Option<Instant>,
    scan_interval: Duration,
    /// While a backlog is being read: the next poll's reading, started on its own thread
    /// as soon as the previous poll returned, so that it overlaps the caller's commit of
    /// what that poll found. It has `files` meanwhile.
    ahead: Option<std::thread::JoinHandle<(Files, Found)>>,
    /// `others()` as of the last poll (the files may be on the read-ahead thread).
    others: Vec<(String, String, u64)>,
    /// The folders the last search went through (where new event files may appear).
    folders: Vec<PathBuf>,
    /// Open the files afresh at each read (see `reopen_each_read`).
    reopen: bool,
}

/// What one poll found.
#[derive(Default)]
pub struct Found {
    /// Scalars by key, each key's in file order.
    pub samples: Vec<KeySamples>,
    /// Media items, each file's in file order.
    pub media: Vec<MediaRow>,
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
            scan_interval: SCAN_MIN_INTERVAL,
            ahead: None,
            others: Vec::new(),
            folders: Vec::new(),
            reopen: false,
        }
    }

    /// Opens the files afresh at each read: on a network filesystem (a Slurm run's
    /// folder), an open is what makes another node's writes visible.
    pub fn reopen_each_read(&mut self) {
        self.reopen = true;
    }

    /// Reads what the event files gained. `last` forces a search for new files and reads
    /// to the end (the run has ended).
    ///
    /// When a poll stops at its byte bound (`more`), the next poll's reading starts at
    /// once on another thread; the next call takes its result. Offsets in each result are
    /// those of the samples in it, so committing results in order stays exact.
    pub fn poll(&mut self, last: bool) -> Found {
        let from_ahead = self.ahead.is_some();
        let mut found = match self.ahead.take().map(|handle| handle.join()) {
            Some(Ok((files, found))) => {
                self.files = files;
                found
            }
            Some(Err(_)) => {
                // The files went down with the thread: find them again, from the offsets
                // handed out so far.
                self.last_scan = None;
                self.read_now(last)
            }
            None => self.read_now(last),
        };
        for (name, offset) in &found.offsets {
            if let Some(rel) = name.strip_prefix(OFFSET_PREFIX) {
                self.saved.insert(rel.to_string(), *offset);
            }
        }
        self.others = others_of(&self.files);
        if found.more {
            let mut files = std::mem::take(&mut self.files);
            let spawned = std::thread::Builder::new().name("guild-events".into()).spawn(move || {
                let found = poll_files(&mut files, false);
                (files, found)
            });
            match spawned {
                Ok(handle) => self.ahead = Some(handle),
                // No thread (the files went with the closure): find them again next time.
                Err(_) => self.last_scan = None,
            }
        } else if last && from_ahead {
            // That was read ahead without `last`: one more pass reads to the end the way
            // `last` does (and searches for new files).
            found.more = true;
        }
        found
    }

    /// One poll of every file, in place; searches for new files when due.
    fn read_now(&mut self, last: bool) -> Found {
        let now = Instant::now();
        if last
            || self
                .last_scan
                .is_none_or(|t| now.duration_since(t) >= self.scan_interval)
        {
            self.scan();
            self.last_scan = Some(now);
            self.scan_interval = (now.elapsed() * SCAN_COST_FACTOR).clamp(SCAN_MIN_INTERVAL, SCAN_MAX_INTERVAL);
        }
        if self.reopen {
            for (rel, event_file) in self.files.iter_mut() {
                if let Ok(file) = File::open(self.root.join(rel)) {
                    event_file.file = file;
                }
            }
        }
        poll_files(&mut self.files, last)
    }

    /// Searches for new files at the next poll (a folder under the run gained an entry).
    pub fn rescan(&mut self) {
        self.last_scan = None;
    }

    /// The folders the last search went through, run folder first.
    pub fn folders(&self) -> &[PathBuf] {
        &self.folders
    }

    /// The event files followed (none while a backlog is read ahead: it is being read).
    pub fn paths(&self) -> impl Iterator<Item = PathBuf> + '_ {
        self.files.keys().map(|rel| self.root.join(rel))
    }

    /// Non-scalar summaries seen so far: (key, kind, count).
    pub fn others(&self) -> Vec<(String, String, u64)> {
        self.others.clone()
    }

    fn scan(&mut self) {
        self.folders.clear();
        // Folders down to MAX_DEPTH under the run folder are read (their files are one
        // level deeper); Guild's own `guild.d` is not.
        let walk = walkdir::WalkDir::new(&self.root)
            .max_depth(MAX_DEPTH + 1)
            .into_iter()
            .filter_entry(|e| !(e.depth() == 1 && e.file_type().is_dir() && e.file_name() == "guild.d"));
        for entry in walk.flatten() {
            let kind = entry.file_type();
            if kind.is_dir() {
                if entry.depth() <= MAX_DEPTH {
                    self.folders.push(entry.path().to_path_buf());
                }
                continue;
            }
            let name = entry.file_name().to_string_lossy();
            if !kind.is_file() || !tfevents::is_event_file(&name) || self.files.len() >= MAX_FILES {
                continue;
            }
            let path = entry.path();
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
                    tags: FxHashMap::default(),
                    keys: Vec::new(),
                    reported: start,
                },
            );
        }
    }
}

/// Reads what each file gained, up to READ_LIMIT bytes per file.
fn poll_files(files: &mut Files, last: bool) -> Found {
    let mut found = Found::default();
    for (rel, event_file) in files.iter_mut() {
        let prefix = &event_file.prefix;
        let (tags, keys) = (&mut event_file.tags, &mut event_file.keys);
        let samples = &mut found.samples;
        // Where each of this file's keys is in `samples`, once it has a sample this poll.
        let mut slots: Vec<Option<usize>> = vec![None; keys.len()];
        let mut on_scalar = |event: tfevents::ScalarRef<'_>| {
            let number = match tags.get(event.tag) {
                Some(number) => *number,
                None => {
                    keys.push(format!("{prefix}{}", event.tag).into());
                    tags.insert(event.tag.to_string(), keys.len() - 1);
                    slots.push(None);
                    keys.len() - 1
                }
            };
            let slot = *slots[number].get_or_insert_with(|| {
                samples.push(KeySamples {
                    key: Arc::clone(&keys[number]),
                    points: Vec::new(),
                });
                samples.len() - 1
            });
            samples[slot].points.push(Point {
                step: Some(event.step),
                time: event.wall_time_ms,
                value: event.value,
            });
        };
        match event_file
            .reader
            .poll_ref(&event_file.file, READ_LIMIT, last, &mut on_scalar)
        {
            Ok(result) => {
                found.more |= result.more;
                for issue in result.issues {
                    found.issues.push(format!("event file {rel}: {issue}"));
                }
            }
            Err(err) => found.issues.push(format!("event file {rel}: cannot read: {err}")),
        }
        for item in event_file.reader.take_media() {
            let key = match event_file.tags.get(&item.tag) {
                Some(&number) => Arc::clone(&event_file.keys[number]),
                None => {
                    let key: Arc<str> = format!("{}{}", event_file.prefix, item.tag).into();
                    event_file.keys.push(Arc::clone(&key));
                    event_file.tags.insert(item.tag, event_file.keys.len() - 1);
                    key
                }
            };
            found.media.push(MediaRow {
                key,
                step: item.step,
                time: item.wall_time_ms,
                index: item.index,
                data: item.data,
            });
        }
        let offset = event_file.reader.offset();
        if offset != event_file.reported {
            event_file.reported = offset;
            found.offsets.push((format!("{OFFSET_PREFIX}{rel}"), offset));
        }
    }
    found
}

fn others_of(files: &Files) -> Vec<(String, String, u64)> {
    let mut out = Vec::new();
    for event_file in files.values() {
        for ((tag, kind), count) in event_file.reader.others() {
            out.push((format!("{}{tag}", event_file.prefix), kind_name(kind), *count));
        }
    }
    out
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
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path();
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

        let mut tail = EventTail::new(tmp, &HashMap::new());
        let found = tail.poll(false);
        let losses: Vec<&Point> = found
            .samples
            .iter()
            .filter(|s| &*s.key == "tf/train/loss")
            .flat_map(|s| &s.points)
            .collect();
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
        let mut resumed = EventTail::new(tmp, &offsets);
        assert!(resumed.poll(true).samples.is_empty());

        // A file that appears later, at the root, is picked up with `tf/<tag>` keys.
        std::fs::copy(&src, tmp.join(src.file_name().unwrap())).unwrap();
        let found = resumed.poll(true);
        let at_root: usize = found
            .samples
            .iter()
            .filter(|s| &*s.key == "tf/loss")
            .map(|s| s.points.len())
            .sum();
        assert_eq!(at_root, 10);
    }
}
