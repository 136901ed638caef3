//! The one interface a sweep is driven through: given the trials so far, what to run next.
//! Grid search and random search live here (a few lines each); TPE has its own file.
//!
//! A proposal is a function of the seed and the trials alone (no hidden state), so a daemon
//! that restarts mid-sweep and asks again continues exactly where it was, and the same
//! seed with the same results gives the same sweep.

use std::fmt;
use std::str::FromStr;

use super::rng::Rng;
use super::space::{Dimension, Params, Sample, Space};
use super::tpe;

/// `--optimizer grid|random|tpe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptimizerKind {
    /// Every combination of the lists, in order; ends when all have been proposed.
    Grid,
    /// Independent uniform draws (log-uniform in the logarithm), seeded.
    Random,
    /// Tree-structured Parzen Estimator: random for the first trials, then model-based.
    Tpe,
}

impl OptimizerKind {
    /// The optimizer when the user names none: random search when some flag is a range,
    /// else the grid.
    pub fn default_for(space: &Space) -> OptimizerKind {
        match space.first_range() {
            Some(_) => OptimizerKind::Random,
            None => OptimizerKind::Grid,
        }
    }
}

impl fmt::Display for OptimizerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OptimizerKind::Grid => "grid",
            OptimizerKind::Random => "random",
            OptimizerKind::Tpe => "tpe",
        })
    }
}

impl FromStr for OptimizerKind {
    type Err = OptimizerError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "grid" => Ok(OptimizerKind::Grid),
            "random" => Ok(OptimizerKind::Random),
            "tpe" => Ok(OptimizerKind::Tpe),
            other => Err(OptimizerError::Unknown(other.to_string())),
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OptimizerError {
    #[error("unknown optimizer \"{0}\" (expected grid, random or tpe)")]
    Unknown(String),
    #[error("grid search cannot enumerate {flag}={value}, a range: give a list, or use --optimizer random or tpe")]
    GridRange { flag: String, value: String },
}

/// A sweep's optimizer over its space.
#[derive(Debug, Clone)]
pub struct Optimizer {
    kind: OptimizerKind,
    space: Space,
    seed: u64,
}

impl Optimizer {
    /// Grid search needs every swept flag to be a list. The seed matters to random search
    /// and TPE only.
    pub fn new(kind: OptimizerKind, space: Space, seed: u64) -> Result<Optimizer, OptimizerError> {
        if kind == OptimizerKind::Grid
            && let Some(flag) = space.first_range()
        {
            return Err(OptimizerError::GridRange {
                flag: flag.name.clone(),
                value: flag.dimension.to_string(),
            });
        }
        Ok(Optimizer { kind, space, seed })
    }

    pub fn kind(&self) -> OptimizerKind {
        self.kind
    }

    pub fn space(&self) -> &Space {
        &self.space
    }

    /// The next trial's point, or `None` when the grid is exhausted (random search and TPE
    /// always have one; `--max-trials` ends them).
    ///
    /// `finished` holds every finished trial in the order they were proposed, each with its
    /// objective oriented so that lower is better, `None` for a trial that failed or gave no
    /// objective; `pending` the trials proposed and not finished (queued or running). A
    /// trial whose point is not in this space is left out, never a failure.
    pub fn propose(&self, finished: &[(Params, Option<f64>)], pending: &[Params]) -> Option<Params> {
        let proposal = (finished.len() + pending.len()) as u64;
        match self.kind {
            OptimizerKind::Grid => self.space.grid_point(proposal),
            OptimizerKind::Random => Some(random_point(&self.space, &mut Rng::for_proposal(self.seed, proposal))),
            OptimizerKind::Tpe => Some(tpe::propose(&self.space, self.seed, finished, pending)),
        }
    }
}

/// A uniform draw from the space: list items with equal chance, ranges uniform (log-uniform
/// ones uniform in the logarithm, so each decade gets its share).
pub(super) fn random_point(space: &Space, rng: &mut Rng) -> Params {
    let samples = space
        .dimensions()
        .iter()
        .map(|flag| match &flag.dimension {
            Dimension::Fixed(_) => Sample::Fixed,
            Dimension::Choice(values) => Sample::Choice(rng.below(values.len())),
            &Dimension::Uniform { low, high } => Sample::Real((low + rng.unit() * (high - low)).clamp(low, high)),
            &Dimension::LogUniform { low, high } => {
                let (log_low, log_high) = (low.ln(), high.ln());
                Sample::Real((log_low + rng.unit() * (log_high - log_low)).exp().clamp(low, high))
            }
        })
        .collect();
    Params(samples)
}
