//! The compare table of index.db: every selected run with its tags, flags and series
//! summaries, kept while the index is unchanged. It reads up to hundreds of thousands of
//! rows per request, so it goes through rusqlite (see `select`): sqlx would put 10,000
//! runs × 20 values at half a second.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

use super::index::RunRecord;
use super::select::{SCAN_ABOVE, Selected, Selection, matches, pick, select_with};
use super::{open_mapped, sqlite};
use crate::error::Result;

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
            state.conn = Some(open_mapped(path)?);
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
        let ids: Vec<&RunRecord> = all.iter().map(|s| &s.run).collect();
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
    let ids: Vec<&RunRecord> = table.rows.iter().map(|r| &r.selected.run).collect();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::select::Selection;
    use crate::store::select::tests::sel;

    /// An index.db with `n` runs (run-000 oldest), each with two flags and two series
    /// (one a system stat), made with the real migrations.
    fn index_with_runs(n: usize) -> (tempfile::TempDir, PathBuf, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.db");
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
        (dir, path, conn)
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
        let (_dir, path, writer) = index_with_runs(250);
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
    }
}
