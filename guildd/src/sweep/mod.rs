//! Sweeps over flags (issue 16): the search space a sweep's flag values describe, and the
//! optimizers that choose each trial's flags from it — grid, random and TPE. A library with
//! no tie to the rest of the daemon: the queue and runs drive it through
//! [`Optimizer::propose`] and turn its points into flags with [`Space::flags`].
//!
//! ```
//! use guildd::sweep::{Optimizer, OptimizerKind, Space};
//! let flags = [("lr".to_string(), "loguniform[1e-4:1e-1]".to_string()),
//!              ("epochs".to_string(), "10".to_string())];
//! let space = Space::parse(&flags).unwrap();
//! let optimizer = Optimizer::new(OptimizerKind::default_for(&space), space, 1).unwrap();
//! let first = optimizer.propose(&[], &[]).unwrap();
//! let trial_flags = optimizer.space().flags(&first); // [("lr", "0.0123..."), ("epochs", "10")]
//! let loss = 0.5; // the trial's objective, lower is better
//! let second = optimizer.propose(&[(first, Some(loss))], &[]);
//! # assert_eq!(trial_flags[1].1, "10"); assert!(second.is_some());
//! ```

mod optimizer;
mod rng;
mod space;
mod tpe;

pub use optimizer::{Optimizer, OptimizerError, OptimizerKind};
pub use space::{Bound, Dimension, Flag, Params, Problem, Space, SpaceError, Value, format_float, parse_value};

#[cfg(test)]
mod tests;
