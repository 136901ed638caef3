//! Everything done before a run's process starts: resolving the op against the Guild
//! file, the command line, the run directory, the source snapshot and the environment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::project::{self, OpCommand};

/// Files larger than this are left out of `guild.d/sources`.
pub const SOURCE_FILE_LIMIT: u64 = 1024 * 1024;
/// At most this many files are snapshotted (a project folder full of data is not source).
pub const SOURCE_COUNT_LIMIT: usize = 2000;

/// What a start request asks for, already validated by the API layer.
#[derive(Debug, Clone, Default)]
pub struct StartSpec {
    pub project_dir: PathBuf,
    pub model: Option<String>,
    pub op: String,
    pub profile: Option<String>,
    pub flags: Vec<(String, String)>,
    /// Run id of the run an evaluate-like op works in (its RUNDIR).
    pub source_run: Option<String>,
    pub label: String,
    /// The client's environment; empty means the daemon's own.
    pub env: BTreeMap<String, String>,
    /// GPUs the run needs from the queue (None: the model's `gpus`, else none asked).
    pub gpus: Option<u32>,
    /// Higher starts first among queued runs.
    pub priority: i32,
    /// How to sweep, when a flag value is a sweep.
    pub sweep: SweepOptions,
    /// A sweep's trial: the sweep's run id and the trial's number (its flags are never a
    /// sweep themselves).
    pub trial: Option<(String, u32)>,
    /// Submit the run to Slurm instead of starting it here (`guild train --slurm`).
    pub slurm: Option<crate::slurm::SlurmSpec>,
}

/// `--max-trials`, `--optimizer`, `--minimize`/`--maximize`, `--seed`, `--parallel`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SweepOptions {
    /// 0: the whole grid (grid search), else 20.
    pub max_trials: u32,
    pub optimizer: Option<String>,
    /// The objective's series key (None: `loss`).
    pub objective: Option<String>,
    pub maximize: bool,
    pub seed: Option<u64>,
    /// Trials at once (0: 1).
    pub parallel: u32,
}

/// A run resolved from its Guild file, ready to be created.
pub struct Plan {
    pub project_dir: PathBuf,
    pub project_name: String,
    pub runroot: PathBuf,
    pub model: String,
    pub op: String,
    pub op_command: OpCommand,
    pub flags: Vec<(String, String)>,
    pub guild_file: PathBuf,
    /// Every op's required inputs: left out of the source snapshot.
    pub requires: Vec<String>,
    /// Seconds between stats samples (0: none).
    pub stats_interval: f64,
    /// The model's runtime, recorded as the `runtime` attr.
    pub runtime: Option<String>,
    /// Globs that pick the source files to snapshot (empty: the default rules).
    pub sources: Vec<String>,
    /// The project's tags: the run's first tags.
    pub tags: Vec<String>,
    /// The model's `gpus`: GPUs its runs need from the queue unless the start says.
    pub gpus: Option<u32>,
    /// The model's `sbatch = ...` arguments (runs submitted to Slurm).
    pub sbatch: Vec<String>,
}

pub fn plan(spec: &StartSpec) -> Result<Plan> {
    let guild_file = spec.project_dir.join("Guild");
    if !guild_file.is_file() {
        return Err(Error::Invalid(format!(
            "no Guild file in {} (run guild in a project folder, or pass -C DIR)",
            spec.project_dir.display()
        )));
    }
    let project = project::load(&guild_file).map_err(|e| Error::Invalid(e.to_string()))?;
    // `guild prepare NAME` looks for a model, then a resource, as the original did.
    let model = if spec.op == "prepare" {
        project.target(spec.model.as_deref())
    } else {
        project.model(spec.model.as_deref())
    }
    .map_err(|e| Error::Invalid(e.to_string()))?;
    let op = model.op(&spec.op).map_err(|e| Error::Invalid(e.to_string()))?;
    let flags = project
        .resolve_flags(model, spec.profile.as_deref(), &spec.flags)
        .map_err(|e| Error::Invalid(e.to_string()))?;
    for required in &op.requires {
        if !spec.project_dir.join(required).exists() {
            let hint = if model.op("prepare").is_ok() && op.name != "prepare" {
                format!("; run `guild prepare{}` first", model_arg(&project, &model.name))
            } else {
                String::new()
            };
            return Err(Error::Invalid(format!(
                "{}:{} requires {required}, which does not exist in {}{hint}",
                model.name,
                op.name,
                spec.project_dir.display()
            )));
        }
    }
    // A `stats_interval` flag (the run's own choice) beats the project's setting.
    let stats_interval = match flags.iter().find(|(name, _)| name == "stats_interval") {
        Some((_, value)) => match value.trim().parse::<f64>() {
            Ok(seconds) if seconds >= 0.0 && seconds.is_finite() => seconds,
            _ => {
                return Err(Error::Invalid(format!(
                    "flag stats_interval: expected a number of seconds (0 for no stats), got \"{value}\""
                )));
            }
        },
        None => project
            .stats_interval
            .unwrap_or(crate::collectors::sampler::DEFAULT_INTERVAL.as_secs_f64()),
    };
    let op_command =
        project::parse_op_command(&op.command).map_err(|e| Error::Invalid(format!("Guild:{}: {e}", op.line)))?;
    Ok(Plan {
        project_dir: spec.project_dir.clone(),
        project_name: if project.name.is_empty() {
            dir_name(&spec.project_dir)
        } else {
            project.name.clone()
        },
        runroot: spec.project_dir.join(&project.runroot),
        model: model.name.clone(),
        op: op.name.clone(),
        op_command,
        flags,
        guild_file,
        // Every op's inputs (data sets) stay out of the source snapshot, not only this op's.
        requires: project
            .models
            .iter()
            .chain(&project.resources)
            .flat_map(|m| m.ops.iter().flat_map(|o| o.requires.iter().cloned()))
            .collect(),
        stats_interval,
        runtime: model.runtime.clone(),
        sources: model.sources.clone(),
        tags: project.tags.clone(),
        gpus: model.gpus,
        sbatch: model.sbatch.clone(),
    })
}

fn model_arg(project: &project::Project, model: &str) -> String {
    if project.models.first().is_some_and(|m| m.name == model) {
        String::new()
    } else {
        format!(" {model}")
    }
}

fn dir_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// How many runs of one model may start in one second (ids `-2` ... up to this).
pub const MAX_SAME_SECOND: usize = 10_000;

/// The `n`th id for runs of `model` started at `stamp`: `<stamp>-<model>`, then
/// `<stamp>-<model>-2`, `-3`, ...
pub fn run_id(stamp: &str, model: &str, n: usize) -> String {
    if n == 1 {
        format!("{stamp}-{model}")
    } else {
        format!("{stamp}-{model}-{n}")
    }
}

/// Creates `<runroot>/<id>/guild.d`; None when the folder exists (create_dir fails on an
/// existing folder, so two starts never share one).
pub fn create_run_dir(runroot: &Path, id: &str) -> Result<Option<PathBuf>> {
    std::fs::create_dir_all(runroot).map_err(|e| Error::io("cannot create run folder", runroot, e))?;
    let dir = runroot.join(id);
    match std::fs::create_dir(&dir) {
        Ok(()) => {
            let guild_d = dir.join("guild.d");
            std::fs::create_dir(&guild_d).map_err(|e| Error::io("cannot create", &guild_d, e))?;
            Ok(Some(dir))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(None),
        Err(e) => Err(Error::io("cannot create run folder", dir, e)),
    }
}

/// The argv of the op: `python3 -um MODULE ARGS --flag value ...` or `PROGRAM ARGS --flag value ...`.
pub fn command_line(plan: &Plan, python: &str, run_dir: &Path) -> Vec<String> {
    let rundir = run_dir.to_string_lossy();
    let expand = |s: &str| s.replace("${RUNDIR}", &rundir).replace("$RUNDIR", &rundir);
    let mut argv = match &plan.op_command {
        OpCommand::Python { module, args } => {
            let mut argv = vec![python.to_string(), "-um".to_string(), module.clone()];
            argv.extend(args.iter().map(|a| expand(a)));
            argv
        }
        OpCommand::Exec { program, args } => {
            let program = if program.contains('/') {
                normalize(&plan.project_dir.join(program))
                    .to_string_lossy()
                    .into_owned()
            } else {
                program.clone()
            };
            let mut argv = vec![program];
            argv.extend(args.iter().map(|a| expand(a)));
            argv
        }
    };
    for (name, value) in &plan.flags {
        argv.push(format!("--{name}"));
        argv.push(expand(value));
    }
    argv
}

/// Copies the project's source files into `guild.d/sources`. With `sources` globs (the
/// Guild file's `sources = *.py ...`), the files whose path in the project matches one
/// (`*` stays within a folder: `*.py` is the top level, `**/*.py` every level), and the
/// Guild file; without, everything but what is never source (below). Either way the run
/// root, hidden entries, `__pycache__`, the ops' required inputs and files over the limit
/// stay out. Returns how many files were copied.
pub fn snapshot_sources(
    project_dir: &Path,
    runroot: &Path,
    requires: &[String],
    sources: &[String],
    dest: &Path,
) -> Result<usize> {
    let globs = source_globs(sources)?;
    let skip: Vec<PathBuf> = std::iter::once(runroot.to_path_buf())
        .chain(requires.iter().map(|r| project_dir.join(r)))
        .filter_map(|p| std::path::absolute(&p).ok())
        .map(|p| normalize(&p))
        .collect();
    let mut copied = 0;
    let walk = walkdir::WalkDir::new(project_dir)
        .min_depth(1)
        .into_iter()
        // The filter sees the project folder too: it is taken whatever its name.
        .filter_entry(|entry| {
            let name = entry.file_name().to_string_lossy();
            entry.depth() == 0
                || !(name.starts_with('.') || name == "__pycache__" || skip.contains(&normalize(entry.path())))
        });
    // Folders that cannot be read are left out, as files that cannot be.
    for entry in walk.flatten() {
        if entry.file_type().is_dir() {
            continue;
        }
        let path = entry.path();
        let Ok(meta) = entry.metadata() else { continue };
        let Ok(rel) = path.strip_prefix(project_dir) else {
            continue;
        };
        let wanted = match &globs {
            None => true,
            Some(set) => set.is_match(rel) || rel == Path::new(crate::project::FILE_NAME),
        };
        if !(meta.is_file() && meta.len() <= SOURCE_FILE_LIMIT && wanted) {
            continue;
        }
        if copied >= SOURCE_COUNT_LIMIT {
            return Ok(copied);
        }
        let target = dest.join(rel);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io("cannot create", parent, e))?;
        }
        std::fs::copy(path, &target).map_err(|e| Error::io("cannot copy source", path, e))?;
        copied += 1;
    }
    Ok(copied)
}

/// The `sources` globs as one matcher; None for none.
fn source_globs(sources: &[String]) -> Result<Option<globset::GlobSet>> {
    if sources.is_empty() {
        return Ok(None);
    }
    let mut set = globset::GlobSetBuilder::new();
    for pattern in sources {
        let glob = globset::GlobBuilder::new(pattern)
            .literal_separator(true)
            .build()
            .map_err(|e| Error::Invalid(format!("sources: invalid pattern {pattern:?}: {}", e.kind())))?;
        set.add(glob);
    }
    set.build()
        .map(Some)
        .map_err(|e| Error::Invalid(format!("sources: {e}")))
}

/// `a/./b/../c` -> `a/c`, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Number of GPUs the run may use: `CUDA_VISIBLE_DEVICES` when set, else the NVIDIA
/// driver's count in /proc (0 without one).
pub fn gpu_count(env: &BTreeMap<String, String>) -> usize {
    if let Some(visible) = env.get("CUDA_VISIBLE_DEVICES") {
        let ids: Vec<&str> = visible.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
        // CUDA stops at the first invalid id; "-1" hides every GPU.
        return ids.iter().take_while(|id| !id.starts_with('-')).count();
    }
    std::fs::read_dir("/proc/driver/nvidia/gpus")
        .map(|d| d.count())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hidden_project_folder_still_has_its_sources_snapshotted() {
        let tmp = tempfile::tempdir().unwrap();
        let project = tmp.path().join(".project");
        std::fs::create_dir_all(project.join("pkg")).unwrap();
        std::fs::create_dir_all(project.join(".git")).unwrap();
        std::fs::create_dir_all(project.join("runs/r1")).unwrap();
        for file in ["Guild", "train.py", "pkg/model.py", ".git/HEAD", "runs/r1/out.txt"] {
            std::fs::write(project.join(file), "x").unwrap();
        }
        let dest = tmp.path().join("sources");
        let copied = snapshot_sources(&project, &project.join("runs"), &[], &[], &dest).unwrap();
        assert_eq!(copied, 3);
        for file in ["Guild", "train.py", "pkg/model.py"] {
            assert!(dest.join(file).is_file(), "{file}");
        }
        assert!(!dest.join(".git").exists() && !dest.join("runs").exists());
    }

    #[test]
    fn gpu_count_honours_cuda_visible_devices() {
        let env = |v: &str| BTreeMap::from([("CUDA_VISIBLE_DEVICES".to_string(), v.to_string())]);
        assert_eq!(gpu_count(&env("0,1")), 2);
        assert_eq!(gpu_count(&env("")), 0);
        assert_eq!(gpu_count(&env("-1")), 0);
        assert_eq!(gpu_count(&env("1,-1,2")), 1);
    }

    #[test]
    fn run_dirs_are_claimed_once() {
        let tmp = tempfile::tempdir().unwrap();
        let stamp = "20261126T101503Z";
        assert_eq!(run_id(stamp, "intro", 1), "20261126T101503Z-intro");
        assert_eq!(run_id(stamp, "intro", 2), "20261126T101503Z-intro-2");
        let dir = create_run_dir(tmp.path(), &run_id(stamp, "intro", 1)).unwrap().unwrap();
        assert!(dir.join("guild.d").is_dir());
        // The same folder again: taken.
        assert!(
            create_run_dir(tmp.path(), &run_id(stamp, "intro", 1))
                .unwrap()
                .is_none()
        );
    }
}
