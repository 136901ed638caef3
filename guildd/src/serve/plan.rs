//! What a serve runs: the model's `serve` op from the project's Guild file (the run's
//! own copy in `guild.d/Guild` when the project's file is gone or lacks the op), with
//! the run's own flags, `RUNDIR` = the served run's folder, in the project folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::project;
use crate::runs::prepare::{self, Plan};
use crate::store::{Index, RunRecord};

/// A worker ready to be started.
#[derive(Clone, Debug)]
pub struct WorkerSpec {
    pub run_id: String,
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub cwd: PathBuf,
    /// The served run's `guild.d`: `serve.log` (the worker's stderr) and `errors.log`.
    pub guild_d: PathBuf,
}

/// Resolves the worker of `run`; Err is why the run has nothing to serve.
pub async fn resolve(
    run: &RunRecord,
    index: &Index,
    python: &str,
    client_env: BTreeMap<String, String>,
) -> Result<WorkerSpec, String> {
    let guild_d = run.run_dir.join("guild.d");
    if !guild_d.is_dir() {
        return Err(format!("the run's folder {} is gone", run.run_dir.display()));
    }
    let project_dir = PathBuf::from(&run.project_dir);
    // Reading and parsing the Guild files is blocking work: not on the async workers.
    let (guild_file, op_value, op_line) = {
        let (project_dir, guild_d, model) = (project_dir.clone(), guild_d.clone(), run.model.clone());
        tokio::task::spawn_blocking(move || serve_op(&project_dir, &guild_d, &model))
            .await
            .map_err(|_| "reading the Guild file failed".to_string())??
    };
    let op_command =
        project::parse_op_command(&op_value).map_err(|e| format!("{}:{op_line}: {e}", guild_file.display()))?;
    let flags = crate::runs::recorded_flags(run, index).await;
    // The project folder is where ops run; when it is gone the run's source snapshot
    // is the closest thing.
    let cwd = [project_dir.clone(), guild_d.join("sources"), run.run_dir.clone()]
        .into_iter()
        .find(|dir| dir.is_dir())
        .unwrap_or_else(|| run.run_dir.clone());
    let plan = Plan {
        project_dir: cwd.clone(),
        project_name: run.project_name.clone(),
        runroot: PathBuf::new(),
        model: run.model.clone(),
        op: "serve".into(),
        op_command,
        flags,
        guild_file,
        requires: Vec::new(),
        stats_interval: 0.0,
        runtime: None,
        sources: Vec::new(),
        tags: Vec::new(),
        gpus: None,
        sbatch: Vec::new(),
    };
    let argv = prepare::command_line(&plan, python, &run.run_dir);
    let mut env = if client_env.is_empty() {
        std::env::vars().collect()
    } else {
        client_env
    };
    env.insert("RUNDIR".into(), run.run_dir.to_string_lossy().into_owned());
    env.insert("GUILD_RUN_ID".into(), run.id.clone());
    env.insert("PYTHONUNBUFFERED".into(), "1".into());
    Ok(WorkerSpec {
        run_id: run.id.clone(),
        argv,
        env,
        cwd,
        guild_d,
    })
}

/// The serve op's value and line, and the file it came from: the project's Guild file
/// first, then the run's copy.
fn serve_op(project_dir: &Path, guild_d: &Path, model: &str) -> Result<(PathBuf, String, usize), String> {
    let mut problems = Vec::new();
    for file in [project_dir.join(project::FILE_NAME), guild_d.join("Guild")] {
        if !file.is_file() {
            continue;
        }
        let parsed = match project::load(&file) {
            Ok(parsed) => parsed,
            Err(err) => {
                problems.push(err.to_string());
                continue;
            }
        };
        match parsed.model(Some(model)).map(|m| m.op("serve")) {
            Ok(Ok(op)) => return Ok((file, op.command.clone(), op.line)),
            Ok(Err(_)) => problems.push(format!(
                "model \"{model}\" has no serve op in {} (add `serve = MODULE ARGS` to [model \"{model}\"])",
                file.display()
            )),
            Err(err) => problems.push(format!("{}: {err}", file.display())),
        }
    }
    if problems.is_empty() {
        problems.push(format!(
            "no Guild file in {} and no copy in {}",
            project_dir.display(),
            guild_d.display()
        ));
    }
    // The project's own file speaks first: it is what the user edits.
    Err(problems.swap_remove(0))
}

/// The worker's command as one line for logs: words with spaces quoted.
pub fn display_argv(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if a.is_empty() || a.contains(char::is_whitespace) {
                format!("{a:?}")
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
