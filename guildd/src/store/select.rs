//! Which runs a request means, read from index.db in bulk: the listing (a page, or every
//! run) and selections (ids, prefixes, indexes, ranges, filters), each run with its tags.
//! These can read every run, so they go through rusqlite on a blocking thread: sqlx
//! spends about 2.5 µs on each row. Writes stay with sqlx (`index`).

use rusqlite::Connection;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::index::{RUN_COLUMNS, RunRecord, Status};
use super::{open_mapped, sqlite};
use crate::error::{Error, Result};

/// Above this many selected runs, flags and summaries are read by scanning their whole
/// tables (one pass, in key order) rather than one indexed lookup per run.
pub(super) const SCAN_ABOVE: usize = 200;

/// Which runs a request means: the runs named (every run when none is), narrowed by
/// each filter that is set.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    pub runs: Vec<Selector>,
    pub model: Option<String>,
    pub status: Vec<Status>,
    /// Lowercase text that the label or a tag must contain.
    pub label: Option<String>,
    /// Select among deleted runs (the trash) instead.
    pub deleted: bool,
    pub project_dir: Option<String>,
}

/// One way of naming runs.
#[derive(Clone, Debug, PartialEq)]
pub enum Selector {
    /// Id or unique id prefix.
    Id(String),
    /// 1 = latest.
    Index(usize),
    /// Inclusive; open ends are None.
    Range(Option<usize>, Option<usize>),
    /// A run folder, by its absolute path: only a known run's folder selects it.
    Path(PathBuf),
}

impl Selector {
    /// `ID`, `PREFIX`, `N` (an index: digits, under 8 of them), `A:B`, `:B`, `A:`, or
    /// `/ABS/PATH` of a run folder.
    pub fn parse(text: &str) -> Result<Selector> {
        let text = text.trim();
        if text.is_empty() {
            return Err(Error::Invalid(
                "run: expected a run id, id prefix, index or range (1:5)".into(),
            ));
        }
        if text.starts_with('/') {
            return Ok(Selector::Path(PathBuf::from(text)));
        }
        if text.contains('/') {
            return Err(Error::Invalid(format!(
                "run \"{text}\": a run folder must be given as an absolute path (guild makes relative ones absolute)"
            )));
        }
        let index = |part: &str| -> Result<Option<usize>> {
            if part.is_empty() {
                return Ok(None);
            }
            match part.parse::<usize>() {
                Ok(0) => Err(Error::Invalid(format!(
                    "run range {}: indexes start at 1 (the latest run)",
                    crate::error::quote(text)
                ))),
                Ok(n) if part.bytes().all(|b| b.is_ascii_digit()) => Ok(Some(n)),
                _ => Err(Error::Invalid(format!(
                    "run range {}: expected FIRST:LAST indexes, like 1:5, :3 or 10:",
                    crate::error::quote(text)
                ))),
            }
        };
        if let Some((first, last)) = text.split_once(':') {
            let (first, last) = (index(first)?, index(last)?);
            if let (Some(a), Some(b)) = (first, last)
                && a > b
            {
                return Err(Error::Invalid(format!(
                    "run range {}: {a} is after {b} (1 is the latest run)",
                    crate::error::quote(text)
                )));
            }
            return Ok(Selector::Range(first, last));
        }
        if text.len() < 8 && text.bytes().all(|b| b.is_ascii_digit()) {
            return match text.parse::<usize>() {
                Ok(n) if n >= 1 => Ok(Selector::Index(n)),
                _ => Err(Error::Invalid(format!(
                    "run index {text}: indexes start at 1 (the latest run)"
                ))),
            };
        }
        Ok(Selector::Id(text.to_string()))
    }
}

/// A selected run: its index (1 = latest) in its listing, its record and its tags.
#[derive(Clone, Debug)]
pub struct Selected {
    pub index: u32,
    pub run: RunRecord,
    pub tags: Vec<String>,
}

/// A row of `SELECT {RUN_COLUMNS}` as a record.
fn run_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RunRecord> {
    let status: String = row.get(5)?;
    Ok(RunRecord {
        id: row.get(0)?,
        project_dir: row.get(1)?,
        project_name: row.get(2)?,
        model: row.get(3)?,
        op: row.get(4)?,
        status: Status::parse(&status).unwrap_or(Status::Failed),
        created_ms: row.get(6)?,
        started_ms: row.get(7)?,
        stopped_ms: row.get(8)?,
        exit_status: row.get(9)?,
        run_dir: PathBuf::from(row.get::<_, String>(10)?),
        label: row.get(11)?,
        pid: row.get::<_, Option<i64>>(12)?.map(|p| p as u32),
        pid_start: row.get::<_, Option<i64>>(13)?.map(|p| p as u64),
        reason: row.get(14)?,
        source_run: row.get(15)?,
    })
}

/// Every run of the listing (`run`, or `run_trash` for deleted runs), newest first.
fn load_runs(conn: &Connection, path: &Path, deleted: bool) -> Result<Vec<RunRecord>> {
    let table = if deleted { "run_trash" } else { "run" };
    let mut stmt = conn
        .prepare(&format!("SELECT {RUN_COLUMNS} FROM {table} ORDER BY seq DESC"))
        .map_err(sqlite(path))?;
    let runs = stmt
        .query_map([], run_from_row)
        .map_err(sqlite(path))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(sqlite(path))?;
    Ok(runs)
}

/// A page of runs, each with its tags, and the listing's total.
pub type RunPage = (Vec<(RunRecord, Vec<String>)>, u32);

/// One page of the listing, newest first (`limit` 0: to the end), of every run or one
/// project's, each run with its tags; and how many runs the listing has in all.
pub fn list_page(index_db: &Path, project_dir: Option<&str>, limit: u32, offset: u32) -> Result<RunPage> {
    let path = index_db;
    let conn = open_mapped(path)?;
    let filter = if project_dir.is_some() {
        "WHERE project_dir = ?1"
    } else {
        "WHERE ?1 IS NULL"
    };
    let limit = if limit == 0 { -1 } else { i64::from(limit) };
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {RUN_COLUMNS} FROM run {filter} ORDER BY seq DESC LIMIT ?2 OFFSET ?3"
        ))
        .map_err(sqlite(path))?;
    let runs = stmt
        .query_map((project_dir, limit, i64::from(offset)), run_from_row)
        .map_err(sqlite(path))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(sqlite(path))?;
    let total: i64 = conn
        .query_row(&format!("SELECT count(*) FROM run {filter}"), [project_dir], |r| {
            r.get(0)
        })
        .map_err(sqlite(path))?;
    let mut tags = if runs.len() > SCAN_ABOVE {
        load_tags(&conn, path)?
    } else {
        let mut stmt = conn
            .prepare("SELECT tag FROM run_tag WHERE run_id = ?1 ORDER BY tag")
            .map_err(sqlite(path))?;
        let mut tags = HashMap::new();
        for run in &runs {
            let these = stmt
                .query_map([&run.id], |r| r.get::<_, String>(0))
                .map_err(sqlite(path))?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(sqlite(path))?;
            if !these.is_empty() {
                tags.insert(run.id.clone(), these);
            }
        }
        tags
    };
    let page = runs
        .into_iter()
        .map(|run| {
            let t = tags.remove(&run.id).unwrap_or_default();
            (run, t)
        })
        .collect();
    Ok((page, total as u32))
}

fn load_tags(conn: &Connection, path: &Path) -> Result<HashMap<String, Vec<String>>> {
    let mut stmt = conn
        .prepare("SELECT run_id, tag FROM run_tag ORDER BY run_id, tag")
        .map_err(sqlite(path))?;
    let mut rows = stmt.query([]).map_err(sqlite(path))?;
    let mut tags: HashMap<String, Vec<String>> = HashMap::new();
    while let Some(row) = rows.next().map_err(sqlite(path))? {
        let id: String = row.get(0).map_err(sqlite(path))?;
        tags.entry(id).or_default().push(row.get(1).map_err(sqlite(path))?);
    }
    Ok(tags)
}

/// The runs a selection picks, newest first, each with its index and tags.
pub fn select(index_db: &Path, selection: &Selection) -> Result<Vec<Selected>> {
    let conn = open_mapped(index_db)?;
    select_with(&conn, index_db, selection)
}

pub(super) fn select_with(conn: &Connection, path: &Path, selection: &Selection) -> Result<Vec<Selected>> {
    let runs = load_runs(conn, path, selection.deleted)?;
    let mut tags = load_tags(conn, path)?;
    let records: Vec<&RunRecord> = runs.iter().collect();
    let picked = pick(&records, selection)?;
    drop(records);
    let mut runs: Vec<Option<RunRecord>> = runs.into_iter().map(Some).collect();
    Ok(picked
        .into_iter()
        .filter_map(|i| {
            let run = runs[i].take()?;
            Some(Selected {
                index: i as u32 + 1,
                tags: tags.remove(&run.id).unwrap_or_default(),
                run,
            })
        })
        .filter(|s| matches(s, selection))
        .collect())
}

/// Positions (0 = latest) of the runs the selectors name, newest first, each once; every
/// run when none is named.
pub(super) fn pick(runs: &[&RunRecord], selection: &Selection) -> Result<Vec<usize>> {
    if selection.runs.is_empty() {
        return Ok((0..runs.len()).collect());
    }
    let listing = if selection.deleted {
        "guild runs --deleted"
    } else {
        "guild runs"
    };
    let mut chosen = vec![false; runs.len()];
    for selector in &selection.runs {
        match selector {
            Selector::Index(n) => {
                if *n > runs.len() {
                    return Err(Error::NotFound(format!(
                        "no run at index {n}: there are {} (see `{listing}`)",
                        runs.len()
                    )));
                }
                chosen[n - 1] = true;
            }
            Selector::Range(first, last) => {
                let first = first.unwrap_or(1);
                let last = last.unwrap_or(runs.len()).min(runs.len());
                if first > last {
                    return Err(Error::NotFound(format!(
                        "no run in range {first}:{last}: there are {} (see `{listing}`)",
                        runs.len()
                    )));
                }
                for c in &mut chosen[first - 1..last] {
                    *c = true;
                }
            }
            Selector::Path(dir) => match position_of_folder(runs, dir) {
                Some(i) => chosen[i] = true,
                None => {
                    return Err(Error::NotFound(format!(
                        "no {}run has the folder {} (see `{listing}`)",
                        if selection.deleted { "deleted " } else { "" },
                        dir.display()
                    )));
                }
            },
            Selector::Id(id) => {
                if let Some(i) = runs.iter().position(|r| r.id == id.as_str()) {
                    chosen[i] = true;
                    continue;
                }
                let matching: Vec<usize> = (0..runs.len())
                    .filter(|&i| runs[i].id.starts_with(id.as_str()))
                    .collect();
                match matching.as_slice() {
                    [] => {
                        return Err(Error::NotFound(format!(
                            "no {}run matches {} (see `{listing}`)",
                            if selection.deleted { "deleted " } else { "" },
                            crate::error::quote(id)
                        )));
                    }
                    [i] => chosen[*i] = true,
                    _ => {
                        let ids: Vec<&str> = matching.iter().take(5).map(|&i| runs[i].id.as_str()).collect();
                        return Err(Error::Invalid(format!(
                            "{} matches several runs ({}{}); give more of the id",
                            crate::error::quote(id),
                            ids.join(", "),
                            if matching.len() > 5 { ", ..." } else { "" }
                        )));
                    }
                }
            }
        }
    }
    Ok((0..runs.len()).filter(|&i| chosen[i]).collect())
}

/// The run whose folder `dir` is: as recorded, else as the file system resolves it (a
/// project reached through a symbolic link). Only known runs' folders count.
pub(crate) fn position_of_folder(runs: &[&RunRecord], dir: &Path) -> Option<usize> {
    let wanted = normalize(dir);
    if let Some(i) = runs.iter().position(|r| normalize(&r.run_dir) == wanted) {
        return Some(i);
    }
    let real = std::fs::canonicalize(dir).ok()?;
    // Only runs whose folder has that name can be it: no need to resolve every folder.
    let name = real.file_name()?;
    runs.iter().position(|r| {
        r.run_dir.file_name() == Some(name) && std::fs::canonicalize(&r.run_dir).ok().as_ref() == Some(&real)
    })
}

/// `a/./b/` -> `a/b`, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
}

pub(super) fn matches(selected: &Selected, selection: &Selection) -> bool {
    let run = &selected.run;
    if selection.model.as_ref().is_some_and(|m| *m != run.model) {
        return false;
    }
    if !selection.status.is_empty() && !selection.status.contains(&run.status) {
        return false;
    }
    if selection.project_dir.as_ref().is_some_and(|p| *p != run.project_dir) {
        return false;
    }
    if let Some(text) = &selection.label {
        let hit = run.label.to_lowercase().contains(text.as_str())
            || selected.tags.iter().any(|t| t.to_lowercase().contains(text.as_str()));
        if !hit {
            return false;
        }
    }
    true
}

/// Ids in `wanted` that are not indexed (neither live nor deleted).
pub fn unknown_ids(index_db: &Path, wanted: &[String]) -> Result<HashSet<String>> {
    ids_not_in(index_db, wanted, &["run", "run_trash"])
}

/// The ids of `wanted` that no run has ever had: not listed, deleted or purged (what a
/// run may be renamed to).
pub fn never_used_ids(index_db: &Path, wanted: &[String]) -> Result<HashSet<String>> {
    ids_not_in(index_db, wanted, &["run", "run_trash", "purged_run"])
}

fn ids_not_in(index_db: &Path, wanted: &[String], tables: &[&str]) -> Result<HashSet<String>> {
    let conn = open_mapped(index_db)?;
    let counts: Vec<String> = tables
        .iter()
        .map(|table| format!("(SELECT count(*) FROM {table} WHERE id = ?1)"))
        .collect();
    let mut stmt = conn
        .prepare(&format!("SELECT {}", counts.join(" + ")))
        .map_err(sqlite(index_db))?;
    let mut unknown = HashSet::new();
    for id in wanted {
        let n: i64 = stmt.query_row([id], |r| r.get(0)).map_err(sqlite(index_db))?;
        if n == 0 {
            unknown.insert(id.clone());
        }
    }
    Ok(unknown)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn run(id: &str, model: &str, status: Status, label: &str) -> RunRecord {
        RunRecord {
            id: id.into(),
            project_dir: "/p".into(),
            project_name: "p".into(),
            model: model.into(),
            op: "train".into(),
            status,
            created_ms: 0,
            started_ms: None,
            stopped_ms: None,
            exit_status: None,
            run_dir: PathBuf::from("/p/runs").join(id),
            label: label.into(),
            pid: None,
            pid_start: None,
            reason: String::new(),
            source_run: String::new(),
        }
    }

    fn runs() -> Vec<RunRecord> {
        vec![
            run("20261126T100500Z-b", "b", Status::Completed, "best"),
            run("20261126T100400Z-a", "a", Status::Error, ""),
            run("20261126T100300Z-a", "a", Status::Completed, "Baseline"),
            run("20261126T100200Z-b", "b", Status::Completed, ""),
            run("20261126T100100Z-a", "a", Status::Failed, ""),
        ]
    }

    fn ids(runs: &[RunRecord]) -> Vec<&RunRecord> {
        runs.iter().collect()
    }

    pub(crate) fn sel(items: &[&str]) -> Selection {
        Selection {
            runs: items.iter().map(|s| Selector::parse(s).unwrap()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn selectors_parse() {
        assert_eq!(Selector::parse("3").unwrap(), Selector::Index(3));
        assert_eq!(Selector::parse("1:5").unwrap(), Selector::Range(Some(1), Some(5)));
        assert_eq!(Selector::parse(":2").unwrap(), Selector::Range(None, Some(2)));
        assert_eq!(Selector::parse("4:").unwrap(), Selector::Range(Some(4), None));
        assert_eq!(Selector::parse("2026").unwrap(), Selector::Index(2026));
        assert_eq!(Selector::parse("20261126").unwrap(), Selector::Id("20261126".into()));
        for bad in ["0", "5:2", "0:3", "a:b", "1:x", ""] {
            assert!(Selector::parse(bad).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn picks_indexes_ranges_and_prefixes_newest_first_once() {
        let runs = runs();
        assert_eq!(pick(&ids(&runs), &sel(&["4", "1:2", "2"])).unwrap(), vec![0, 1, 3]);
        assert_eq!(pick(&ids(&runs), &sel(&["4:"])).unwrap(), vec![3, 4]);
        assert_eq!(pick(&ids(&runs), &sel(&[":9"])).unwrap(), vec![0, 1, 2, 3, 4]);
        assert_eq!(pick(&ids(&runs), &sel(&["20261126T1003"])).unwrap(), vec![2]);
        assert_eq!(pick(&ids(&runs), &sel(&[])).unwrap().len(), 5);
        assert!(matches!(pick(&ids(&runs), &sel(&["6"])), Err(Error::NotFound(_))));
        assert!(matches!(pick(&ids(&runs), &sel(&["7:9"])), Err(Error::NotFound(_))));
        assert!(matches!(pick(&ids(&runs), &sel(&["20261126T10"])), Err(Error::Invalid(m)) if m.contains("several")));
        assert!(matches!(pick(&ids(&runs), &sel(&["nope"])), Err(Error::NotFound(_))));
    }

    #[test]
    fn filters_narrow() {
        let runs = runs();
        let selection = Selection {
            model: Some("a".into()),
            status: vec![Status::Completed, Status::Failed],
            ..Default::default()
        };
        let picked: Vec<&str> = pick(&ids(&runs), &selection)
            .unwrap()
            .into_iter()
            .map(|i| Selected {
                index: i as u32 + 1,
                run: runs[i].clone(),
                tags: if i == 4 { vec!["Keep".into()] } else { vec![] },
            })
            .filter(|s| matches(s, &selection))
            .map(|s| runs[s.index as usize - 1].id.as_str())
            .collect();
        assert_eq!(picked, vec!["20261126T100300Z-a", "20261126T100100Z-a"]);
        let label = Selection {
            label: Some("kee".into()),
            ..Default::default()
        };
        let by_tag = Selected {
            index: 5,
            run: runs[4].clone(),
            tags: vec!["Keep".into()],
        };
        assert!(matches(&by_tag, &label));
        let by_label = Selection {
            label: Some("basel".into()),
            ..Default::default()
        };
        assert!(matches(
            &Selected {
                index: 3,
                run: runs[2].clone(),
                tags: vec![]
            },
            &by_label
        ));
    }
}
