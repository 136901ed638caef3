//! SQLite storage: the index of all runs (`index.db` in the data dir) and each run's
//! own `guild.d/run.db`. Both use WAL, a busy timeout, and one writer.

pub mod compare;
pub mod index;
pub mod manage;
pub mod rundb;
pub mod select;
pub mod series;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};

pub use index::{Index, RunRecord, SeriesSummary, Status};
pub use rundb::RunDb;

pub(crate) static INDEX_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/index");
pub(crate) static RUN_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/run");

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
