//! Data collectors: TensorFlow event files, and system, process and GPU statistics.
//! Output scalars are parsed where output is captured (`runs::output`).

pub mod events;
pub mod gpu;
pub mod sampler;
pub mod stats;
pub mod tfevents;
