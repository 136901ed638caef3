//! index.db's queue and sweep tables (`migrations/index/0004_queue.sql`): what a queued
//! run needs to start after a restart, the GPUs a started run holds, sweeps' specs and
//! their trials.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use sqlx::Row;

use super::index::Index;
use crate::error::Result;

/// How a queued run is started: what `Manager::start` had made ready when it queued it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Launch {
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub cwd: PathBuf,
    pub stats_interval: f64,
}

impl Launch {
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "argv": self.argv,
            "env": self.env,
            "cwd": self.cwd.to_string_lossy(),
            "stats_interval": self.stats_interval,
        })
        .to_string()
    }

    pub fn from_json(text: &str) -> Option<Launch> {
        let value: serde_json::Value = serde_json::from_str(text).ok()?;
        let argv = value["argv"]
            .as_array()?
            .iter()
            .map(|a| a.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()?;
        let env = value["env"]
            .as_object()?
            .iter()
            .map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
            .collect::<Option<BTreeMap<_, _>>>()?;
        Some(Launch {
            argv,
            env,
            cwd: PathBuf::from(value["cwd"].as_str()?),
            stats_interval: value["stats_interval"].as_f64().unwrap_or(0.0),
        })
    }
}

/// A run's row in `run_queue`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueueRow {
    pub run_id: String,
    pub gpus: Option<u32>,
    pub priority: i32,
    /// The GPUs given; None while queued (or when it asked for none).
    pub assigned: Option<Vec<String>>,
    /// Set while queued.
    pub launch: Option<Launch>,
}

/// A trial's place in its sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct TrialOf {
    pub sweep_id: String,
    pub trial: u32,
}

fn join(gpus: &[String]) -> String {
    gpus.join(",")
}

fn split(text: &str) -> Vec<String> {
    text.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect()
}

impl Index {
    pub async fn put_queue(&self, row: &QueueRow) -> Result<()> {
        sqlx::query(
            "INSERT OR REPLACE INTO run_queue (run_id, gpus, priority, assigned, launch) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&row.run_id)
        .bind(row.gpus.map(i64::from))
        .bind(row.priority)
        .bind(row.assigned.as_deref().map(join))
        .bind(row.launch.as_ref().map(Launch::to_json))
        .execute(&self.write)
        .await
        .map_err(self.err())?;
        Ok(())
    }

    /// A queued run started with these GPUs: its launch (with the client's environment)
    /// is no longer kept.
    pub async fn queue_started(&self, run_id: &str, assigned: Option<&[String]>) -> Result<()> {
        sqlx::query("UPDATE run_queue SET assigned = ?, launch = NULL WHERE run_id = ?")
            .bind(assigned.map(join))
            .bind(run_id)
            .execute(&self.write)
            .await
            .map_err(self.err())?;
        Ok(())
    }

    pub async fn set_queue_priority(&self, run_id: &str, priority: i32) -> Result<()> {
        sqlx::query("UPDATE run_queue SET priority = ? WHERE run_id = ?")
            .bind(priority)
            .bind(run_id)
            .execute(&self.write)
            .await
            .map_err(self.err())?;
        Ok(())
    }

    pub async fn delete_queue(&self, run_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM run_queue WHERE run_id = ?")
            .bind(run_id)
            .execute(&self.write)
            .await
            .map_err(self.err())?;
        Ok(())
    }

    pub async fn queue_row(&self, run_id: &str) -> Result<Option<QueueRow>> {
        let row = sqlx::query("SELECT run_id, gpus, priority, assigned, launch FROM run_queue WHERE run_id = ?")
            .bind(run_id)
            .fetch_optional(&self.read)
            .await
            .map_err(self.err())?;
        row.as_ref().map(queue_row).transpose().map_err(self.err())
    }

    pub async fn queue_rows(&self) -> Result<HashMap<String, QueueRow>> {
        let rows = sqlx::query("SELECT run_id, gpus, priority, assigned, launch FROM run_queue")
            .fetch_all(&self.read)
            .await
            .map_err(self.err())?;
        rows.iter()
            .map(|r| queue_row(r).map(|q| (q.run_id.clone(), q)))
            .collect::<Result<HashMap<_, _>, _>>()
            .map_err(self.err())
    }

    pub async fn put_sweep(&self, id: &str, spec: &str) -> Result<()> {
        sqlx::query("INSERT OR REPLACE INTO sweep (id, spec) VALUES (?, ?)")
            .bind(id)
            .bind(spec)
            .execute(&self.write)
            .await
            .map_err(self.err())?;
        Ok(())
    }

    pub async fn sweep_spec(&self, id: &str) -> Result<Option<String>> {
        sqlx::query_scalar("SELECT spec FROM sweep WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.read)
            .await
            .map_err(self.err())
    }

    pub async fn add_trial(&self, run_id: &str, sweep_id: &str, trial: u32) -> Result<()> {
        sqlx::query("INSERT OR REPLACE INTO sweep_trial (run_id, sweep_id, trial) VALUES (?, ?, ?)")
            .bind(run_id)
            .bind(sweep_id)
            .bind(i64::from(trial))
            .execute(&self.write)
            .await
            .map_err(self.err())?;
        Ok(())
    }

    /// A sweep's trials (run ids) in trial order.
    pub async fn trials(&self, sweep_id: &str) -> Result<Vec<(String, u32)>> {
        let rows = sqlx::query("SELECT run_id, trial FROM sweep_trial WHERE sweep_id = ? ORDER BY trial")
            .bind(sweep_id)
            .fetch_all(&self.read)
            .await
            .map_err(self.err())?;
        rows.iter()
            .map(|r| Ok((r.try_get("run_id")?, r.try_get::<i64, _>("trial")? as u32)))
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(self.err())
    }

    /// A run's sweep, when it is a trial.
    pub async fn trial_of(&self, run_id: &str) -> Result<Option<TrialOf>> {
        let row = sqlx::query("SELECT sweep_id, trial FROM sweep_trial WHERE run_id = ?")
            .bind(run_id)
            .fetch_optional(&self.read)
            .await
            .map_err(self.err())?;
        row.map(|r| {
            Ok(TrialOf {
                sweep_id: r.try_get("sweep_id")?,
                trial: r.try_get::<i64, _>("trial")? as u32,
            })
        })
        .transpose()
        .map_err(self.err())
    }

    /// Every trial's sweep (for the listing, which shows trials under their sweep).
    pub async fn trial_sweeps(&self) -> Result<HashMap<String, TrialOf>> {
        let rows = sqlx::query("SELECT run_id, sweep_id, trial FROM sweep_trial")
            .fetch_all(&self.read)
            .await
            .map_err(self.err())?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("run_id")?,
                    TrialOf {
                        sweep_id: r.try_get("sweep_id")?,
                        trial: r.try_get::<i64, _>("trial")? as u32,
                    },
                ))
            })
            .collect::<Result<HashMap<_, _>, sqlx::Error>>()
            .map_err(self.err())
    }
}

fn queue_row(row: &sqlx::sqlite::SqliteRow) -> Result<QueueRow, sqlx::Error> {
    Ok(QueueRow {
        run_id: row.try_get("run_id")?,
        gpus: row
            .try_get::<Option<i64>, _>("gpus")?
            .map(|g| g.clamp(0, u32::MAX as i64) as u32),
        priority: row.try_get("priority")?,
        assigned: row.try_get::<Option<String>, _>("assigned")?.map(|a| split(&a)),
        launch: row
            .try_get::<Option<String>, _>("launch")?
            .and_then(|l| Launch::from_json(&l)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_launch_reads_back_as_written() {
        let launch = Launch {
            argv: vec!["python3".into(), "-um".into(), "train".into()],
            env: BTreeMap::from([("PATH".to_string(), "/bin".to_string())]),
            cwd: "/p".into(),
            stats_interval: 2.0,
        };
        assert_eq!(Launch::from_json(&launch.to_json()), Some(launch));
        assert_eq!(Launch::from_json("{\"argv\": 3}"), None);
    }
}
