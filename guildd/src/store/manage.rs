//! index.db writes for run management: labels, tags, and the trash. A deleted run's
//! `run` row moves to `run_trash` (so every query on `run` sees only live runs); its
//! flags, summaries and tags stay keyed by id until it is purged.

use sqlx::QueryBuilder;

use super::Index;
use super::index::{RUN_COLUMNS, RunRecord};
use crate::error::Result;

impl Index {
    /// The index.db file (for bulk reads on their own connection: `compare`).
    pub fn db_path(&self) -> &std::path::Path {
        &self.path
    }

    pub async fn set_label(&self, id: &str, label: &str) -> Result<()> {
        sqlx::query("UPDATE run SET label = ? WHERE id = ?")
            .bind(label)
            .bind(id)
            .execute(&self.write)
            .await
            .map_err(self.err())?;
        Ok(())
    }

    /// Replaces a run's tags.
    pub async fn set_tags(&self, id: &str, tags: &[String]) -> Result<()> {
        let mut tx = self.write.begin().await.map_err(self.err())?;
        sqlx::query("DELETE FROM run_tag WHERE run_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(self.err())?;
        if !tags.is_empty() {
            let mut insert = QueryBuilder::new("INSERT OR IGNORE INTO run_tag (run_id, tag) ");
            insert.push_values(tags, |mut row, tag| {
                row.push_bind(id).push_bind(tag);
            });
            insert.build().execute(&mut *tx).await.map_err(self.err())?;
        }
        tx.commit().await.map_err(self.err())
    }

    /// A run's tags, sorted.
    pub async fn tags(&self, id: &str) -> Result<Vec<String>> {
        sqlx::query_scalar("SELECT tag FROM run_tag WHERE run_id = ? ORDER BY tag")
            .bind(id)
            .fetch_all(&self.read)
            .await
            .map_err(self.err())
    }

    /// Moves a run's row to the trash. `trash_dir` is where its folder now is.
    pub async fn trash_run(&self, id: &str, trash_dir: &str, deleted_ms: i64) -> Result<()> {
        let mut tx = self.write.begin().await.map_err(self.err())?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT OR REPLACE INTO run_trash (seq, {RUN_COLUMNS}, deleted_ms, trash_dir) \
             SELECT seq, {RUN_COLUMNS}, ?, ? FROM run WHERE id = ?"
        )))
        .bind(deleted_ms)
        .bind(trash_dir)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(self.err())?;
        sqlx::query("DELETE FROM run WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(self.err())?;
        tx.commit().await.map_err(self.err())
    }

    /// Where a deleted run's folder is ('' when it was already gone at deletion).
    pub async fn trash_dir(&self, id: &str) -> Result<Option<String>> {
        sqlx::query_scalar("SELECT trash_dir FROM run_trash WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.read)
            .await
            .map_err(self.err())
    }

    /// Moves a deleted run's row back, at its old place in the listing when that is free.
    pub async fn untrash_run(&self, id: &str) -> Result<Option<RunRecord>> {
        let mut tx = self.write.begin().await.map_err(self.err())?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO run (seq, {RUN_COLUMNS}) \
             SELECT CASE WHEN EXISTS (SELECT 1 FROM run r WHERE r.seq = t.seq) THEN NULL ELSE t.seq END, \
             {RUN_COLUMNS} FROM run_trash t WHERE t.id = ?"
        )))
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(self.err())?;
        sqlx::query("DELETE FROM run_trash WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(self.err())?;
        tx.commit().await.map_err(self.err())?;
        self.get_run(id).await
    }

    /// Forgets a listed run whose import did not finish: its row, flags, summaries and tags.
    pub async fn forget_run(&self, id: &str) -> Result<()> {
        let mut tx = self.write.begin().await.map_err(self.err())?;
        self.delete_rows(&mut tx, "run", id).await?;
        tx.commit().await.map_err(self.err())
    }

    /// Forgets a deleted run: its trash row, flags, summaries and tags. Its id is kept
    /// (`purged_run`), so no other run is ever given it.
    pub async fn purge_run(&self, id: &str) -> Result<()> {
        let mut tx = self.write.begin().await.map_err(self.err())?;
        sqlx::query("INSERT OR REPLACE INTO purged_run (id, purged_ms) VALUES (?, ?)")
            .bind(id)
            .bind(guild_proto::time::now_ms())
            .execute(&mut *tx)
            .await
            .map_err(self.err())?;
        self.delete_rows(&mut tx, "run_trash", id).await?;
        tx.commit().await.map_err(self.err())
    }

    /// Deletes a run's row from `runs` (`run` or `run_trash`) and its flags, summaries
    /// and tags, in the caller's transaction.
    async fn delete_rows(&self, tx: &mut sqlx::SqliteConnection, runs: &str, id: &str) -> Result<()> {
        let run = format!("{runs} WHERE id");
        for table in [
            run.as_str(),
            "run_flag WHERE run_id",
            "run_series WHERE run_id",
            "run_tag WHERE run_id",
        ] {
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table} = ?")))
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(self.err())?;
        }
        Ok(())
    }
}
