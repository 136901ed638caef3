//! Bulk reads of index.db: which runs a selection picks (ids, prefixes, indexes, ranges,
//! filters) and the compare table (every selected run with its tags, flags and series
//! summaries). These read up to hundreds of thousands of rows per request, so they go
//! through rusqlite on a blocking thread: sqlx spends about 2.5 µs on each row, which
//! would put 10,000 runs × 20 values at half a second. Writes stay with sqlx (`index`).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::index::{RUN_COLUMNS, RunRecord, Status};
use crate::error::{Error, Result};

/// Above this many selected runs, flags and summaries are read by scanning their whole
/// tables (one pass, in key order) rather than one indexed lookup per run.
const SCAN_ABOVE: usize = 200;

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
}

impl Selector {
    /// `ID`, `PREFIX`, `N` (an index: digits, under 8 of them), `A:B`, `:B`, `A:`.
    pub fn parse(text: &str) -> Result<Selector> {
        let text = text.trim();
        if text.is_empty() {
            return Err(Error::Invalid(
                "run: expected a run id, id prefix, index or range (1:5)".into(),
            ));
        }
        let index = |part: &str| -> Result<Option<usize>> {
            if part.is_empty() {
                return Ok(None);
            }
            match part.parse::<usize>() {
                Ok(0) => Err(Error::Invalid(format!(
                    "run range \"{text}\": indexes start at 1 (the latest run)"
                ))),
                Ok(n) if part.bytes().all(|b| b.is_ascii_digit()) => Ok(Some(n)),
                _ => Err(Error::Invalid(format!(
                    "run range \"{text}\": expected FIRST:LAST indexes, like 1:5, :3 or 10:"
                ))),
            }
        };
        if let Some((first, last)) = text.split_once(':') {
            let (first, last) = (index(first)?, index(last)?);
            if let (Some(a), Some(b)) = (first, last)
                && a > b
            {
                return Err(Error::Invalid(format!(
                    "run range \"{text}\": {a} is after {b} (1 is the latest run)"
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

/// The compare table: names are interned, rows refer to them by position.
#[derive(Debug, Default)]
pub struct CompareTable {
    pub flag_names: Vec<String>,
    pub flag_values: Vec<String>,
    pub scalar_keys: Vec<String>,
    pub rows: Vec<CompareRow>,
}

#[derive(Debug)]
pub struct CompareRow {
    pub selected: Selected,
    /// (name position, value position).
    pub flags: Vec<(u32, u32)>,
    /// (key position, last, min, max).
    pub scalars: Vec<(u32, f64, f64, f64)>,
}

/// Whether a series key is a system or process stat (left out of compare unless asked).
pub fn is_stat_key(key: &str) -> bool {
    key.starts_with("sys/") || key.starts_with("op/")
}

fn open(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
    )
    .map_err(sqlite(path))?;
    conn.busy_timeout(Duration::from_secs(10)).map_err(sqlite(path))?;
    // Read pages through a mapping rather than copying each one (a compare reads them all).
    conn.pragma_update(None, "mmap_size", 256 * 1024 * 1024_i64)
        .map_err(sqlite(path))?;
    Ok(conn)
}

/// Maps a rusqlite error to ours; the path is copied only when there is an error (these
/// run once per row).
fn sqlite(path: &Path) -> impl FnOnce(rusqlite::Error) -> Error + '_ {
    move |source| Error::Sqlite {
        path: path.to_path_buf(),
        source,
    }
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
    let conn = open(path)?;
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
    let conn = open(index_db)?;
    select_with(&conn, index_db, selection)
}

fn select_with(conn: &Connection, path: &Path, selection: &Selection) -> Result<Vec<Selected>> {
    let runs = load_runs(conn, path, selection.deleted)?;
    let mut tags = load_tags(conn, path)?;
    let ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
    let picked = pick(&ids, selection)?;
    drop(ids);
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
fn pick(runs: &[&str], selection: &Selection) -> Result<Vec<usize>> {
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
            Selector::Id(id) => {
                if let Some(i) = runs.iter().position(|r| *r == id.as_str()) {
                    chosen[i] = true;
                    continue;
                }
                let matching: Vec<usize> = (0..runs.len()).filter(|&i| runs[i].starts_with(id.as_str())).collect();
                match matching.as_slice() {
                    [] => {
                        return Err(Error::NotFound(format!(
                            "no {}run matches \"{id}\" (see `{listing}`)",
                            if selection.deleted { "deleted " } else { "" }
                        )));
                    }
                    [i] => chosen[*i] = true,
                    _ => {
                        let ids: Vec<&str> = matching.iter().take(5).map(|&i| runs[i]).collect();
                        return Err(Error::Invalid(format!(
                            "\"{id}\" matches several runs ({}{}); give more of the id",
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

fn matches(selected: &Selected, selection: &Selection) -> bool {
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

/// The compare table of these runs, in this order. Series keys of system and process
/// stats (`sys/*`, `op/*`) are left out unless `stats`.
fn load_table(conn: &Connection, path: &Path, selected: Vec<Selected>, stats: bool) -> Result<CompareTable> {
    let position: HashMap<&str, usize> = selected
        .iter()
        .enumerate()
        .map(|(i, s)| (s.run.id.as_str(), i))
        .collect();
    let mut flags: Vec<Vec<(u32, u32)>> = vec![Vec::new(); selected.len()];
    let mut scalars: Vec<Vec<(u32, f64, f64, f64)>> = vec![Vec::new(); selected.len()];
    let mut flag_names = Interner::default();
    let mut flag_values = Interner::default();
    let mut scalar_keys = Interner::default();
    // Few runs: one indexed lookup per run. Many: one pass over each table, whose rows
    // come grouped by run (the primary key starts with run_id).
    let per_run = selected.len() <= SCAN_ABOVE;
    let ids: Vec<&str> = if per_run {
        selected.iter().map(|s| s.run.id.as_str()).collect()
    } else {
        vec![""]
    };
    let filter = if per_run { " WHERE run_id = ?1" } else { "" };

    let mut stmt = conn
        .prepare(&format!("SELECT run_id, name, value FROM run_flag{filter}"))
        .map_err(sqlite(path))?;
    for id in &ids {
        let mut rows = if per_run { stmt.query([id]) } else { stmt.query([]) }.map_err(sqlite(path))?;
        let mut current = RunCursor::default();
        while let Some(row) = rows.next().map_err(sqlite(path))? {
            let id = row.get_ref(0).and_then(|v| Ok(v.as_str()?)).map_err(sqlite(path))?;
            if current.next(id, &position) {
                flag_names.next_run();
                flag_values.next_run();
            }
            let Some(i) = current.position else {
                continue;
            };
            let name = row.get_ref(1).and_then(|v| Ok(v.as_str()?)).map_err(sqlite(path))?;
            let value = row.get_ref(2).and_then(|v| Ok(v.as_str()?)).map_err(sqlite(path))?;
            flags[i].push((flag_names.intern(name), flag_values.intern(value)));
        }
    }
    drop(stmt);
    let mut stmt = conn
        .prepare(&format!("SELECT run_id, key, last, min, max FROM run_series{filter}"))
        .map_err(sqlite(path))?;
    for id in &ids {
        let mut rows = if per_run { stmt.query([id]) } else { stmt.query([]) }.map_err(sqlite(path))?;
        let mut current = RunCursor::default();
        while let Some(row) = rows.next().map_err(sqlite(path))? {
            let id = row.get_ref(0).and_then(|v| Ok(v.as_str()?)).map_err(sqlite(path))?;
            if current.next(id, &position) {
                scalar_keys.next_run();
            }
            let Some(i) = current.position else {
                continue;
            };
            let key = row.get_ref(1).and_then(|v| Ok(v.as_str()?)).map_err(sqlite(path))?;
            if !stats && is_stat_key(key) {
                continue;
            }
            let value = |c: usize| -> Result<f64> {
                let v: Option<f64> = row.get(c).map_err(sqlite(path))?;
                Ok(super::from_sql_value(v))
            };
            let entry = (scalar_keys.intern(key), value(2)?, value(3)?, value(4)?);
            scalars[i].push(entry);
        }
    }
    drop(stmt);
    let rows = selected
        .into_iter()
        .zip(flags.into_iter().zip(scalars))
        .map(|(selected, (flags, scalars))| CompareRow {
            selected,
            flags,
            scalars,
        })
        .collect();
    Ok(CompareTable {
        flag_names: flag_names.names,
        flag_values: flag_values.names,
        scalar_keys: scalar_keys.names,
        rows,
    })
}

/// A compare answer: rows of a table (maybe shared with the cache), in order.
pub struct Compared {
    pub table: Arc<CompareTable>,
    pub rows: Vec<usize>,
}

/// The last compare table of every live run, kept while index.db is unchanged (SQLite's
/// `data_version` on a connection of its own says so), so comparing again costs no
/// reading. Small selections are read on their own when the table is stale.
pub struct CompareCache {
    path: PathBuf,
    state: Mutex<CacheState>,
}

#[derive(Default)]
struct CacheState {
    conn: Option<Connection>,
    version: i64,
    table: Option<Arc<CompareTable>>,
}

impl CompareCache {
    pub fn new(index_db: &Path) -> CompareCache {
        CompareCache {
            path: index_db.to_path_buf(),
            state: Mutex::new(CacheState::default()),
        }
    }

    /// The selected runs' rows, newest first. Their series include stats keys when the
    /// table is shared: leave those out unless asked (`is_stat_key`).
    pub fn compare(&self, selection: &Selection, stats: bool) -> Result<Compared> {
        let path = self.path.as_path();
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if state.conn.is_none() {
            state.conn = Some(open(path)?);
        }
        let CacheState { conn, version, table } = &mut *state;
        let Some(conn) = conn.as_ref() else {
            unreachable!("opened above")
        };
        if selection.deleted {
            let selected = select_with(conn, path, selection)?;
            let n = selected.len();
            let table = load_table(conn, path, selected, stats)?;
            return Ok(Compared {
                table: Arc::new(table),
                rows: (0..n).collect(),
            });
        }
        let current: i64 = conn
            .pragma_query_value(None, "data_version", |row| row.get(0))
            .map_err(sqlite(path))?;
        if let Some(cached) = table.as_ref().filter(|_| *version == current) {
            let rows = pick_rows(cached, selection)?;
            return Ok(Compared {
                table: cached.clone(),
                rows,
            });
        }
        *table = None;
        let all = select_with(conn, path, &Selection::default())?;
        let ids: Vec<&str> = all.iter().map(|s| s.run.id.as_str()).collect();
        let picked: Vec<usize> = pick(&ids, selection)?
            .into_iter()
            .filter(|&i| matches(&all[i], selection))
            .collect();
        drop(ids);
        if picked.len() <= SCAN_ABOVE {
            let mut all: Vec<Option<Selected>> = all.into_iter().map(Some).collect();
            let selected: Vec<Selected> = picked.iter().filter_map(|&i| all[i].take()).collect();
            let n = selected.len();
            let table = load_table(conn, path, selected, stats)?;
            return Ok(Compared {
                table: Arc::new(table),
                rows: (0..n).collect(),
            });
        }
        let loaded = Arc::new(load_table(conn, path, all, true)?);
        *table = Some(loaded.clone());
        *version = current;
        Ok(Compared {
            table: loaded,
            rows: picked,
        })
    }
}

/// Positions in a table of every run (newest first) that a selection picks.
fn pick_rows(table: &CompareTable, selection: &Selection) -> Result<Vec<usize>> {
    let ids: Vec<&str> = table.rows.iter().map(|r| r.selected.run.id.as_str()).collect();
    Ok(pick(&ids, selection)?
        .into_iter()
        .filter(|&i| matches(&table.rows[i].selected, selection))
        .collect())
}

/// Which selected run the current rows belong to: rows come grouped by run, so the id
/// is looked up once per run, not once per row.
#[derive(Default)]
struct RunCursor {
    id: String,
    position: Option<usize>,
}

impl RunCursor {
    /// Moves to the run of this row; true when it is another run than the last row's.
    fn next(&mut self, id: &str, positions: &HashMap<&str, usize>) -> bool {
        if self.id == id && !self.id.is_empty() {
            return false;
        }
        self.id.clear();
        self.id.push_str(id);
        self.position = positions.get(id).copied();
        true
    }
}

/// Interned names. Consecutive runs usually have the same names in the same order, so
/// the n-th name of a run is first checked against the n-th name of the run before.
#[derive(Default)]
struct Interner {
    names: Vec<String>,
    positions: HashMap<String, u32>,
    previous: Vec<u32>,
    nth: usize,
}

impl Interner {
    fn next_run(&mut self) {
        self.nth = 0;
    }

    fn intern(&mut self, name: &str) -> u32 {
        let nth = self.nth;
        self.nth += 1;
        if let Some(&p) = self.previous.get(nth)
            && self.names[p as usize] == name
        {
            return p;
        }
        let p = match self.positions.get(name) {
            Some(&p) => p,
            None => {
                let p = self.names.len() as u32;
                self.names.push(name.to_string());
                self.positions.insert(name.to_string(), p);
                p
            }
        };
        if nth < self.previous.len() {
            self.previous[nth] = p;
        } else {
            self.previous.push(p);
        }
        p
    }
}

/// Ids in `wanted` that are not indexed (neither live nor deleted).
pub fn unknown_ids(index_db: &Path, wanted: &[String]) -> Result<HashSet<String>> {
    let conn = open(index_db)?;
    let mut stmt = conn
        .prepare("SELECT (SELECT count(*) FROM run WHERE id = ?1) + (SELECT count(*) FROM run_trash WHERE id = ?1)")
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
mod tests {
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

    fn ids(runs: &[RunRecord]) -> Vec<&str> {
        runs.iter().map(|r| r.id.as_str()).collect()
    }

    fn sel(items: &[&str]) -> Selection {
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

    /// An index.db with `n` runs (run-000 oldest), each with two flags and two series
    /// (one a system stat), made with the real migrations.
    fn index_with_runs(n: usize) -> (PathBuf, Connection) {
        let dir = std::env::temp_dir().join(format!(
            "guild-compare-test-{}-{}",
            std::process::id(),
            guild_proto::time::now_ms()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("index.db");
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "wal").unwrap();
        conn.execute_batch(include_str!("../../../migrations/index/0001_index.sql"))
            .unwrap();
        conn.execute_batch(include_str!("../../../migrations/index/0002_manage.sql"))
            .unwrap();
        for i in 0..n {
            let id = format!("run-{i:03}");
            conn.execute(
                "INSERT INTO run (id, project_dir, project_name, model, op, status, created_ms, run_dir) \
                 VALUES (?1, '/p', 'p', 'm', 'train', 'completed', ?2, '/p/runs/' || ?1)",
                rusqlite::params![id, i as i64],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO run_flag (run_id, name, value) VALUES (?1, 'lr', ?2), (?1, 'batch', '32')",
                rusqlite::params![id, format!("0.{i}")],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO run_series (run_id, key, last, min, max, count) \
                 VALUES (?1, 'loss', ?2, 0, 9, 3), (?1, 'sys/cpu/util', 0.5, 0.1, 0.9, 3)",
                rusqlite::params![id, i as f64],
            )
            .unwrap();
        }
        (path, conn)
    }

    fn loss(compared: &Compared, row: usize) -> f64 {
        let table = &compared.table;
        let r = &table.rows[compared.rows[row]];
        r.scalars
            .iter()
            .find(|s| table.scalar_keys[s.0 as usize] == "loss")
            .map(|s| s.1)
            .unwrap()
    }

    #[test]
    fn compare_reads_every_run_once_and_again_after_a_change() {
        let (path, writer) = index_with_runs(250);
        let cache = CompareCache::new(&path);
        let all = cache.compare(&Selection::default(), false).unwrap();
        assert_eq!(all.rows.len(), 250);
        let newest = &all.table.rows[all.rows[0]];
        assert_eq!((newest.selected.run.id.as_str(), newest.selected.index), ("run-249", 1));
        assert_eq!(loss(&all, 0), 249.0);
        let flags: Vec<(&str, &str)> = newest
            .flags
            .iter()
            .map(|(n, v)| {
                (
                    all.table.flag_names[*n as usize].as_str(),
                    all.table.flag_values[*v as usize].as_str(),
                )
            })
            .collect();
        assert_eq!(flags, [("batch", "32"), ("lr", "0.249")]);

        // Unchanged: the same table, selections picked from it.
        let again = cache.compare(&sel(&["2:3"]), false).unwrap();
        assert!(Arc::ptr_eq(&again.table, &all.table), "the cached table is reused");
        assert_eq!(again.rows, [1, 2]);
        assert_eq!(loss(&again, 0), 248.0);

        // A write by another connection: the next compare reads again.
        writer
            .execute(
                "UPDATE run_series SET last = -1 WHERE run_id = 'run-249' AND key = 'loss'",
                [],
            )
            .unwrap();
        let fresh = cache.compare(&Selection::default(), false).unwrap();
        assert!(!Arc::ptr_eq(&fresh.table, &all.table), "a stale table is read again");
        assert_eq!(loss(&fresh, 0), -1.0);

        // A small selection on a stale cache reads just its runs (stats left out).
        writer
            .execute("UPDATE run SET label = 'x' WHERE id = 'run-000'", [])
            .unwrap();
        let one = cache.compare(&sel(&["run-000"]), false).unwrap();
        assert_eq!(one.table.rows.len(), 1);
        assert_eq!(one.table.rows[0].selected.run.label, "x");
        assert_eq!(one.table.scalar_keys, ["loss"]);
        assert_eq!(one.table.rows[0].selected.index, 250);
        drop(writer);
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }
}
