//! Intent records for management operations that change folders and index rows in
//! several steps (export, import, delete, restore, purge). Each operation writes what it
//! is about to do (synced) before its first change, and removes the record when done; a
//! daemon killed in between leaves the record, and the next daemon finishes the operation
//! or undoes it at start-up (`Manager::recover`), so each ends done or not started:
//!
//! - export: every `.partial` file or folder it may have left is removed (not started);
//! - import: runs it had fully indexed stay; the others lose their folder and any index
//!   rows, and the staging folder goes (not started for those runs);
//! - delete, restore, purge: finished (the folder was moved first; the index follows).
//!
//! Records live in `<data dir>/journal/`, one JSON file each.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

use crate::error::{Error, Result};

const DIR: &str = "journal";

/// What an unfinished operation was doing.
#[derive(Clone, Debug, PartialEq)]
pub enum Intent {
    Export {
        partials: Vec<PathBuf>,
    },
    Import {
        staging: Option<PathBuf>,
        /// (id, target folder) of each run to import.
        runs: Vec<(String, PathBuf)>,
        /// Ids of the runs fully imported.
        done: Vec<String>,
    },
    Delete {
        id: String,
        from: PathBuf,
        to: PathBuf,
        /// An older trashed folder under `to` moved aside, to be removed.
        doomed: Option<PathBuf>,
    },
    Restore {
        id: String,
        from: PathBuf,
        to: PathBuf,
    },
    Purge {
        id: String,
        trash_dir: PathBuf,
        doomed: PathBuf,
    },
}

fn paths(value: &Value) -> Vec<PathBuf> {
    value
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(PathBuf::from)).collect())
        .unwrap_or_default()
}

fn path(value: &Value, key: &str) -> Option<PathBuf> {
    value.get(key).and_then(Value::as_str).map(PathBuf::from)
}

fn text(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_string)
}

impl Intent {
    fn to_json(&self) -> Value {
        let s = |p: &Path| p.to_string_lossy().into_owned();
        match self {
            Intent::Export { partials } => json!({
                "op": "export",
                "partials": partials.iter().map(|p| s(p)).collect::<Vec<_>>(),
            }),
            Intent::Import { staging, runs, done } => json!({
                "op": "import",
                "staging": staging.as_deref().map(s),
                "runs": runs.iter().map(|(id, t)| json!({"id": id, "target": s(t)})).collect::<Vec<_>>(),
                "done": done,
            }),
            Intent::Delete { id, from, to, doomed } => json!({
                "op": "delete", "id": id, "from": s(from), "to": s(to), "doomed": doomed.as_deref().map(s),
            }),
            Intent::Restore { id, from, to } => json!({
                "op": "restore", "id": id, "from": s(from), "to": s(to),
            }),
            Intent::Purge { id, trash_dir, doomed } => json!({
                "op": "purge", "id": id, "trash_dir": s(trash_dir), "doomed": s(doomed),
            }),
        }
    }

    fn from_json(value: &Value) -> Option<Intent> {
        Some(match value.get("op")?.as_str()? {
            "export" => Intent::Export {
                partials: paths(value.get("partials")?),
            },
            "import" => Intent::Import {
                staging: path(value, "staging"),
                runs: value
                    .get("runs")?
                    .as_array()?
                    .iter()
                    .filter_map(|r| Some((text(r, "id")?, path(r, "target")?)))
                    .collect(),
                done: value
                    .get("done")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                    .unwrap_or_default(),
            },
            "delete" => Intent::Delete {
                id: text(value, "id")?,
                from: path(value, "from")?,
                to: path(value, "to")?,
                doomed: path(value, "doomed"),
            },
            "restore" => Intent::Restore {
                id: text(value, "id")?,
                from: path(value, "from")?,
                to: path(value, "to")?,
            },
            "purge" => Intent::Purge {
                id: text(value, "id")?,
                trash_dir: path(value, "trash_dir")?,
                doomed: path(value, "doomed")?,
            },
            _ => return None,
        })
    }
}

/// One operation's record on disk; dropping it leaves the file (the operation did not
/// finish): call [`Record::done`] when it did.
pub struct Record {
    path: PathBuf,
    pub intent: Intent,
}

static NEXT: AtomicU64 = AtomicU64::new(0);

fn sync_dir(dir: &Path) {
    if let Ok(dir) = std::fs::File::open(dir) {
        let _ = dir.sync_all();
    }
}

impl Record {
    /// Writes the intent (synced) before the operation changes anything.
    pub fn begin(data_dir: &Path, intent: Intent) -> Result<Record> {
        let dir = data_dir.join(DIR);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("cannot create", &dir, e))?;
        let name = format!(
            "{}-{}-{}.json",
            guild_proto::time::now_ms(),
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let record = Record {
            path: dir.join(name),
            intent,
        };
        record.write()?;
        sync_dir(&dir);
        Ok(record)
    }

    /// Rewrites the record (an import marking a run done).
    pub fn update(&mut self, intent: Intent) -> Result<()> {
        self.intent = intent;
        self.write()
    }

    fn write(&self) -> Result<()> {
        use std::io::Write;
        let tmp = self.path.with_extension("tmp");
        let written = (|| -> std::io::Result<()> {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(self.intent.to_json().to_string().as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        })();
        written.map_err(|e| Error::io("cannot write", &self.path, e))
    }

    /// The operation finished (or was undone): forget it.
    pub fn done(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Every record an earlier daemon left, oldest first, with their files; half-written
/// records (`.tmp`) and unreadable ones are removed (nothing had changed yet when a
/// record was being written).
pub fn left_over(data_dir: &Path) -> Vec<Record> {
    let dir = data_dir.join(DIR);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    files.sort();
    let mut records = Vec::new();
    for path in files {
        let intent = (path.extension().is_some_and(|e| e == "json"))
            .then(|| std::fs::read(&path).ok())
            .flatten()
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
            .and_then(|value| Intent::from_json(&value));
        match intent {
            Some(intent) => records.push(Record { path, intent }),
            None => {
                tracing::warn!("removing an unreadable management record {}", path.display());
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    records
}

/// Removes a file or a folder, whichever it is; missing is fine.
pub fn remove_any(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intents_survive_a_round_trip() {
        let intents = [
            Intent::Export {
                partials: vec!["/x/a.tar.gz.partial".into()],
            },
            Intent::Import {
                staging: Some("/r/.import-1".into()),
                runs: vec![("id1".into(), "/r/id1".into())],
                done: vec!["id1".into()],
            },
            Intent::Delete {
                id: "a".into(),
                from: "/r/a".into(),
                to: "/r/.trash/a".into(),
                doomed: None,
            },
            Intent::Restore {
                id: "a".into(),
                from: "/r/.trash/a".into(),
                to: "/r/a".into(),
            },
            Intent::Purge {
                id: "a".into(),
                trash_dir: "/r/.trash/a".into(),
                doomed: "/r/.trash/.purge-a".into(),
            },
        ];
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        for intent in &intents {
            Record::begin(&dir, intent.clone()).unwrap();
        }
        std::fs::write(dir.join(DIR).join("x.tmp"), "{").unwrap();
        let found: Vec<Intent> = left_over(&dir).into_iter().map(|r| r.intent).collect();
        assert_eq!(found, intents);
        assert!(!dir.join(DIR).join("x.tmp").exists());
        for record in left_over(&dir) {
            record.done();
        }
        assert!(left_over(dir).is_empty());
    }
}
