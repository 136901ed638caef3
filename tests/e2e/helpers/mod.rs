//! What every end-to-end test needs, by theme: the real binaries and their output
//! (`binaries`), a private data dir, socket and project per test (`env`), gRPC to its
//! daemon (`grpc`), waits that ask the daemon or the system instead of sleeping
//! (`waits`), processes read from /proc (`processes`), tmpfs mounts and file modes
//! (`files`), an HTTP client for guildd's ports (`http`), run.db read with SQL
//! (`rundb`), optional Python packages (`python`), scripts test projects run
//! (`scripts`) and shell completion as the shells ask for it (`completion`). All of it
//! is re-exported: `use crate::helpers::*;`.

mod binaries;
mod completion;
mod env;
mod files;
mod grpc;
mod http;
mod processes;
mod python;
mod rundb;
mod scripts;
mod waits;

pub use binaries::*;
pub use completion::*;
pub use env::*;
pub use files::*;
pub use grpc::*;
pub use http::*;
pub use processes::*;
pub use python::*;
pub use rundb::*;
pub use scripts::*;
pub use waits::*;
