//! The `Guild` project file: an extended INI file that names the project, defines its
//! models (and the original's resources) and their operations, lists flags and
//! profiles, and may describe the dashboard's view of a run.
//!
//! ```text
//! [project]
//! name = MNIST
//!
//! [model "intro"]
//!   runtime        = tensorflow
//!   train          = intro
//!   train_requires = ./data
//!
//! [flags]
//!   epochs = 10
//!
//! [view]
//!   fields   = validation-accuracy steps time
//!   series-b = loss accuracy op-cpu-percent
//! ```
//!
//! Files of the original Guild (2016–17) read as it read them (`ini`); [`parse`] turns
//! the text into a [`Project`], [`load`] reads a file first. Every error names the file
//! and line (`Guild:7: ...`). Operation values are kept raw; [`parse_op_command`] splits
//! one into what to run. The view is resolved per model by [`Project::view`].

mod command;
mod flags;
mod ini;
mod parse;
pub mod view;

#[cfg(test)]
mod tests;

pub use command::{OpCommand, parse_op_command};
pub use flags::parse_cli_flag;
pub use ini::MAX_FILE_BYTES;
pub use parse::{load, parse};

/// The operations a model may define, in their canonical order.
pub const OPERATIONS: [&str; 4] = ["prepare", "train", "evaluate", "serve"];

/// The folder for runs, relative to the project, when `runroot` is not set.
pub const DEFAULT_RUNROOT: &str = "runs";

/// The usual file name of a project file.
pub const FILE_NAME: &str = "Guild";

/// Runtimes a model may name: the original's two, and `python` for what every op is.
pub const RUNTIMES: [&str; 3] = ["tensorflow", "tflearn", "python"];

/// A parsed `Guild` file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Project {
    pub name: String,
    pub description: String,
    /// Folder for runs, relative to the project folder (default `"runs"`).
    pub runroot: String,
    /// Seconds between stats samples, when set (always positive and finite).
    pub stats_interval: Option<f64>,
    /// Project tags (`tags = a b`): every run of the project carries them.
    pub tags: Vec<String>,
    /// Models in file order; the first is the default model. Never empty in a parsed
    /// project.
    pub models: Vec<Model>,
    /// `[resource "NAME"]` sections: prepare-only targets, in file order.
    pub resources: Vec<Model>,
    /// The `[flags]` section, in file order.
    pub flags: Vec<(String, String)>,
    /// `[flags "NAME"]` sections whose name is not a model or resource, in file order.
    pub profiles: Vec<Profile>,
    /// What the view is made of: `[view]`, fields, series and templates.
    pub view: view::ViewSections,
}

/// What a model or resource section defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Model,
    Resource,
}

/// A `[model "NAME"]` (or `[model]`) or `[resource "NAME"]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// The section's name; for `[model]` without one, the first word of its train op.
    pub name: String,
    pub kind: TargetKind,
    /// Whether the header named it (`[model]` alone does not).
    pub named: bool,
    pub description: String,
    /// Line of the section header.
    pub line: usize,
    /// `runtime`, the section's own or the project's; recorded as the run's attr.
    pub runtime: Option<String>,
    /// Globs of source files to snapshot (`sources`, the section's or the project's);
    /// empty means the default snapshot.
    pub sources: Vec<String>,
    /// `sbatch = ARGS`: sbatch's arguments for the model's runs on Slurm (`--slurm`),
    /// split as a shell would.
    pub sbatch: Vec<String>,
    /// Defined operations, in the order of [`OPERATIONS`].
    pub ops: Vec<Op>,
    /// The `[flags "NAME"]` section for this model, in file order.
    pub flags: Vec<(String, String)>,
    /// `gpus = N`: GPUs each run of the model needs from guildd's queue.
    pub gpus: Option<u32>,
}

/// One operation of a model, such as `train = intro --epochs 3`.
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    pub name: String,
    /// The raw value; see [`parse_op_command`].
    pub command: String,
    /// Paths from `<op>_requires`, trimmed, empties dropped.
    pub requires: Vec<String>,
    /// Line of the operation's key.
    pub line: usize,
}

/// A `[flags "NAME"]` section whose name is not a model.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub name: String,
    pub flags: Vec<(String, String)>,
    /// Line of the section header.
    pub line: usize,
}

/// An error reading or parsing a `Guild` file. Display gives the message
/// for the user, e.g. `Guild:7: unknown operation "trian" in model "intro" (...)`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuildFileError {
    /// A problem on one line of the file.
    #[error("{label}:{line}: {message}")]
    Line {
        label: String,
        line: usize,
        message: String,
    },
    /// A problem with the file as a whole, such as having no model.
    #[error("{label}: {message}")]
    File { label: String, message: String },
    /// The file could not be read, or is not UTF-8.
    #[error("cannot read Guild file at {path}: {reason}")]
    Read { path: String, reason: String },
}

impl GuildFileError {
    /// The file label (for `Read`, the path).
    pub fn label(&self) -> &str {
        match self {
            Self::Line { label, .. } | Self::File { label, .. } => label,
            Self::Read { path, .. } => path,
        }
    }

    /// The 1-based line, where the error belongs to one.
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::Line { line, .. } => Some(*line),
            Self::File { .. } | Self::Read { .. } => None,
        }
    }

    /// The message without the label and line.
    pub fn message(&self) -> String {
        match self {
            Self::Line { message, .. } | Self::File { message, .. } => message.clone(),
            Self::Read { .. } => self.to_string(),
        }
    }
}

/// An error resolving a model, operation, profile, flag or command.
/// Display gives the message for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("unknown model {name:?} ({})", listing("models", .models, "this project defines no models"))]
    UnknownModel { name: String, models: Vec<String> },
    #[error("this project defines no models")]
    NoModels,
    #[error("unknown profile {name:?} ({})", listing("profiles", .profiles, "this project defines no profiles"))]
    UnknownProfile { name: String, profiles: Vec<String> },
    #[error("unknown flag {name:?} for model {model:?} ({})", listing("flags", .flags, "no flags are defined"))]
    UnknownFlag {
        name: String,
        model: String,
        /// Sorted names of the flags that are defined.
        flags: Vec<String>,
    },
    #[error("model {model:?} has no operation {op:?} ({})", listing("it defines", .defined, "it defines no operations"))]
    UnknownOp {
        model: String,
        op: String,
        defined: Vec<String>,
    },
    #[error("expected NAME=VALUE, got {0:?}")]
    BadCliFlag(String),
    #[error("invalid flag name {name:?} in {arg:?} ({})", flags::FLAG_NAME_RULE)]
    InvalidFlagName { name: String, arg: String },
    #[error("invalid command {command:?}: {reason}")]
    BadCommand { command: String, reason: String },
}

/// `"models: a, b"`, or `none` when there are no items.
fn listing(what: &str, items: &[String], none: &str) -> String {
    if items.is_empty() {
        none.to_string()
    } else {
        format!("{what}: {}", items.join(", "))
    }
}

impl Project {
    /// The named model, or the first (default) model for `None`.
    pub fn model(&self, name: Option<&str>) -> Result<&Model, ResolveError> {
        match name {
            None => self.models.first().ok_or(ResolveError::NoModels),
            Some(name) => self
                .models
                .iter()
                .find(|m| m.name == name)
                .ok_or_else(|| ResolveError::UnknownModel {
                    name: name.to_string(),
                    models: self.models.iter().map(|m| m.name.clone()).collect(),
                }),
        }
    }

    /// The named model, else the named resource (as `guild prepare NAME` looks them up),
    /// or the default model for `None`.
    pub fn target(&self, name: Option<&str>) -> Result<&Model, ResolveError> {
        match name {
            Some(name) if !self.models.iter().any(|m| m.name == name) => self
                .resources
                .iter()
                .find(|r| r.name == name)
                .ok_or_else(|| ResolveError::UnknownModel {
                    name: name.to_string(),
                    models: self
                        .models
                        .iter()
                        .chain(&self.resources)
                        .map(|m| m.name.clone())
                        .collect(),
                }),
            _ => self.model(name),
        }
    }

    /// The named profile, if the project defines it.
    pub fn profile(&self, name: &str) -> Option<&Profile> {
        self.profiles.iter().find(|p| p.name == name)
    }
}

impl Model {
    /// The named operation, if this model defines it.
    pub fn op(&self, name: &str) -> Result<&Op, ResolveError> {
        self.ops
            .iter()
            .find(|op| op.name == name)
            .ok_or_else(|| ResolveError::UnknownOp {
                model: self.name.clone(),
                op: name.to_string(),
                defined: self.ops.iter().map(|op| op.name.clone()).collect(),
            })
    }
}
