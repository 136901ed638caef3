//! Reading a run's `guild.d/run.db` straight from SQLite, as a user's `sqlite3` would.

use std::path::Path;

use super::env::Env;

/// Opens a run's `guild.d/run.db` with sqlx.
pub async fn open_run_db(run_dir: &Path) -> sqlx::sqlite::SqliteConnection {
    use sqlx::Connection;
    let path = run_dir.join("guild.d").join("run.db");
    assert!(path.is_file(), "{} does not exist", path.display());
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&path);
    sqlx::sqlite::SqliteConnection::connect_with(&options)
        .await
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()))
}

/// `SELECT name, value FROM <table> ORDER BY rowid` for `attr` and `flag`.
pub async fn pairs(conn: &mut sqlx::sqlite::SqliteConnection, table: &str) -> Vec<(String, String)> {
    sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(format!(
        "SELECT name, value FROM {table} ORDER BY rowid"
    )))
    .fetch_all(conn)
    .await
    .unwrap_or_else(|e| panic!("SELECT from {table}: {e}"))
}

/// `(stream, line)` of every output row, in seq order.
pub async fn output_rows(conn: &mut sqlx::sqlite::SqliteConnection) -> Vec<(String, String)> {
    sqlx::query_as::<_, (String, String)>("SELECT stream, line FROM output ORDER BY seq")
        .fetch_all(conn)
        .await
        .expect("SELECT from output")
}

/// Reads the output rows of a finished run straight from its run.db.
pub fn run_db_output(env: &Env, run_dir: &Path) -> Vec<(String, String)> {
    env.block_on(async {
        let mut conn = open_run_db(run_dir).await;
        output_rows(&mut conn).await
    })
}
