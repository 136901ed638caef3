//! run.db's schema: `migrations/run/`, embedded by `sqlx::migrate!` and applied here on
//! run.db's own (rusqlite) connection, with sqlx's bookkeeping (`_sqlx_migrations`: the
//! same columns, checksums and checks), so run.db files of every version read alike.

use std::path::Path;
use std::time::Instant;

use rusqlite::Connection;
use sqlx::migrate::MigrateError;

use crate::error::{Error, Result};
use crate::store::sqlite;

pub(crate) static RUN_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/run");

/// The last migration's version: names the template run.db (`writer::RunDb::create`).
pub fn last_version() -> i64 {
    RUN_MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}

/// Brings run.db's schema up to date: each migration not yet applied runs in a
/// transaction with its bookkeeping row. Refuses a file that a failed migration left
/// dirty, one whose applied migration differs from ours, and one from a newer Guild.
pub fn run(conn: &mut Connection, path: &Path) -> Result<()> {
    let refused = |source| Error::Migrate {
        path: path.to_path_buf(),
        source,
    };
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
            version BIGINT PRIMARY KEY,
            description TEXT NOT NULL,
            installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
            success BOOLEAN NOT NULL,
            checksum BLOB NOT NULL,
            execution_time BIGINT NOT NULL
        );",
    )
    .map_err(sqlite(path))?;
    let applied: Vec<(i64, bool, Vec<u8>)> = {
        let mut stmt = conn
            .prepare("SELECT version, success, checksum FROM _sqlx_migrations ORDER BY version")
            .map_err(sqlite(path))?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(sqlite(path))?
            .collect::<rusqlite::Result<_>>()
            .map_err(sqlite(path))?
    };
    if let Some((version, ..)) = applied.iter().find(|(_, success, _)| !success) {
        return Err(refused(MigrateError::Dirty(*version)));
    }
    for (version, ..) in &applied {
        if !RUN_MIGRATOR.iter().any(|m| m.version == *version) {
            return Err(refused(MigrateError::VersionMissing(*version)));
        }
    }
    for migration in RUN_MIGRATOR.iter().filter(|m| !m.migration_type.is_down_migration()) {
        if let Some((_, _, checksum)) = applied.iter().find(|(v, ..)| *v == migration.version) {
            if **checksum != *migration.checksum {
                return Err(refused(MigrateError::VersionMismatch(migration.version)));
            }
            continue;
        }
        let started = Instant::now();
        let tx = conn.transaction().map_err(sqlite(path))?;
        tx.execute_batch(migration.sql.as_str()).map_err(sqlite(path))?;
        tx.execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (?1, ?2, TRUE, ?3, ?4)",
            (
                migration.version,
                &*migration.description,
                &*migration.checksum,
                started.elapsed().as_nanos() as i64,
            ),
        )
        .map_err(sqlite(path))?;
        tx.commit().map_err(sqlite(path))?;
    }
    Ok(())
}
