//! `guild.d/run.db`: one run's attrs, flags, output lines, series samples and media. Every SQL
//! statement on a run.db is in this folder, on one driver (rusqlite, which shares the
//! bundled SQLite with sqlx):
//!
//! - `writer`: the run's one writing connection (`RunDb`), held by the run's task (or
//!   opened for a finished run), its schema (`migrate`) and checkpoints;
//! - `commit`: one batch of lines, samples and read offsets in one transaction, with
//!   each key's samples packed into blocks (`block`, the codec);
//! - `reads`: read-only connections for requests (ReadOutput, WatchSeries, GetSeries,
//!   GetRun, views, summaries, export), and `buckets`, the query-time downsampling;
//! - `media`: the media tables (images, audio, histograms, text, PR curves), written
//!   with each batch and read by MediaService and the dashboard's `/media/` files.

pub mod block;
pub mod buckets;
pub mod commit;
pub mod media;
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
