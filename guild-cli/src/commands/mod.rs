//! One module per command (or family of commands): each builds its requests, calls the
//! daemon and prints the answer. They share only the helpers at the crate's top level
//! (`rpc`, `select`, `table`, `format`, `out`, `follow`, `project`), never each other.

pub mod compare;
pub mod completions;
pub mod daemon;
pub mod diff;
pub mod export;
pub mod init;
pub mod label;
pub mod media;
pub mod models;
pub mod runs;
pub mod series;
pub mod serve;
pub mod status;
pub mod tensorboard;
pub mod train;
pub mod view;
pub mod watch;
