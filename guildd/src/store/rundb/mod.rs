//! `guild.d/run.db`: one run's attrs, flags, output lines and series samples. Every SQL
//! statement on a run.db is in this folder, on one driver (rusqlite, which shares the
//! bundled SQLite with sqlx):
//!
//! - `writer`: the run's one writing connection (`RunDb`), held by the run's task (or
//!   opened for a finished run), its schema (`migrate`) and checkpoints;
//! - `commit`: one batch of lines, samples and read offsets in one transaction, with
//!   each key's samples packed into blocks (`block`, the codec);
//! - `reads`: read-only connections for requests (ReadOutput, WatchSeries, GetSeries,
//!   GetRun, views, summaries, export), and `buckets`, the query-time downsampling.

pub mod block;
pub mod buckets;
pub mod commit;
mod migrate;
pub mod reads;
pub mod writer;

use std::path::{Path, PathBuf};

pub use buckets::{Axis, Bucket};
pub use reads::{Bounds, Follower, Reader, read};
pub use writer::RunDb;

/// A run folder's run.db.
pub fn path(run_dir: &Path) -> PathBuf {
    run_dir.join("guild.d").join("run.db")
}
