//! SQLite storage: the index of all runs (`index.db` in the data dir: `index`, `manage`,
//! `select`, `compare`) and each run's own `guild.d/run.db` (`rundb`). Both use WAL, a
//! busy timeout, and one writer. index.db is written and read through sqlx, with
//! rusqlite for bulk reads (listing, selections, compare); run.db only through rusqlite.
//! Both crates link the one bundled SQLite (libsqlite3-sys).

pub mod compare;
pub mod index;
pub mod manage;
pub mod queue;
pub mod rundb;
pub mod select;
pub mod summary;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};

use crate::error::{Error, Result};

pub use index::{Index, RunRecord, SeriesSummary, Status};
pub use rundb::RunDb;

pub(crate) static INDEX_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/index");

/// A read-only rusqlite connection for bulk reads on a blocking thread (the listing,
/// selections, compare, GetSeries, field values): pages are read through a mapping rather than copied
/// one by one, and a writer's lock is waited for up to 10 s.
pub(crate) fn open_mapped(path: &Path) -> Result<rusqlite::Connection> {
    use rusqlite::OpenFlags;
    let conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
    )
    .map_err(sqlite(path))?;
    conn.busy_timeout(Duration::from_secs(10)).map_err(sqlite(path))?;
    conn.pragma_update(None, "mmap_size", 256 * 1024 * 1024_i64)
        .map_err(sqlite(path))?;
    Ok(conn)
}

/// Maps a rusqlite error to ours; the path is copied only when there is an error (these
/// run once per row).
pub(crate) fn sqlite(path: &Path) -> impl FnOnce(rusqlite::Error) -> Error + '_ {
    move |source| Error::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::from_str("sqlite:")
        .expect("static sqlite url")
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(false)
        .pragma("temp_store", "memory")
}

/// f64 -> SQLite: NaN has no SQLite form and is stored as NULL.
pub(crate) fn sql_value(v: f64) -> Option<f64> {
    if v.is_nan() { None } else { Some(v) }
}

/// SQLite -> f64: NULL reads back as NaN.
pub fn from_sql_value(v: Option<f64>) -> f64 {
    v.unwrap_or(f64::NAN)
}
