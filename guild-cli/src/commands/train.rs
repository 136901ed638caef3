//! `guild prepare`, `train`, `run` and `evaluate`: start a model's op with its flags
//! (or show what a start would do: `--preview`, `--help` with the model's flags), then
//! follow the run to its end.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{anyhow, bail};
use clap::{ArgAction, Args};
use clap_complete::ArgValueCompleter;
use guild_proto::v1::{self as pb, RunStatus};

use crate::candidates;
use crate::follow::{self, sigint};
use crate::out::clean;
use crate::project::{self, path_string, resolved_flags};
use crate::rpc::{self, Client, Target, rpc, run_arg};

#[derive(Args, Clone, Default)]
pub struct OpArgs {
    /// MODEL (default: the project's first model) and NAME=VALUE flags.
    #[arg(value_name = "MODEL|FLAG=VALUE", add = ArgValueCompleter::new(candidates::model_or_flag))]
    pub args: Vec<String>,
    /// Flags profile ([flags "PROFILE"] in the Guild file).
    #[arg(long, short = 'p', add = ArgValueCompleter::new(candidates::profile))]
    pub profile: Option<String>,
    #[command(flatten)]
    pub start: StartArgs,
    #[command(flatten)]
    pub sweep: crate::sweep::SweepArgs,
    /// Print help, with the model's flags and their values.
    #[arg(long, short = 'h', action = ArgAction::SetTrue)]
    pub help: bool,
}

#[derive(Args)]
pub struct EvaluateArgs {
    /// The run to evaluate (id, id prefix, index or run folder).
    #[arg(value_name = "RUN|FLAG=VALUE", add = ArgValueCompleter::new(candidates::run))]
    pub args: Vec<String>,
    /// Evaluate the latest train run of this project.
    #[arg(long, short = 'L')]
    pub latest_run: bool,
    #[command(flatten)]
    pub start: StartArgs,
}

/// How any op starts: its `-F` flags, label, and whether to follow it.
#[derive(Args, Clone, Default)]
pub struct StartArgs {
    /// A flag, NAME=VALUE (NAME alone is NAME=true); repeatable, after the positional ones.
    #[arg(long = "flag", short = 'F', value_name = "NAME=VALUE", add = ArgValueCompleter::new(candidates::flag))]
    pub flag: Vec<String>,
    /// Label for the run.
    #[arg(long, default_value = "")]
    pub label: String,
    /// Start the run and return at once (a run that must wait is queued).
    #[arg(long, short = 'b')]
    pub background: bool,
    /// GPUs the run needs: it waits (queued) until that many are free, then runs with
    /// CUDA_VISIBLE_DEVICES set to them (default: the model's `gpus`, else none asked).
    #[arg(long, value_name = "N")]
    pub gpus: Option<u32>,
    /// Higher starts first among queued runs (default 0).
    #[arg(long, value_name = "N", allow_negative_numbers = true, default_value_t = 0)]
    pub priority: i32,
    /// Print the command, flags and run folder it would use; start nothing.
    #[arg(long)]
    pub preview: bool,
    #[command(flatten)]
    pub slurm: SlurmArgs,
}

/// Running on a Slurm cluster instead of here.
#[derive(Args, Clone, Default)]
pub struct SlurmArgs {
    /// Submit the run to Slurm (sbatch) and follow it live; the run folder must be on a
    /// filesystem the cluster's nodes share.
    #[arg(long)]
    pub slurm: bool,
    /// An argument for sbatch, as --sbatch=--partition=gpu (repeatable; needs --slurm).
    #[arg(long, value_name = "ARG", allow_hyphen_values = true, requires = "slurm")]
    pub sbatch: Vec<String>,
}

/// `guild prepare`, `guild train` and `guild run [MODEL:]OP`.
pub async fn start(
    target: &Target,
    project: &Path,
    model: Option<String>,
    op: &str,
    args: OpArgs,
) -> anyhow::Result<u8> {
    let client = rpc::connect(target).await?;
    start_with(&client, project, model, op, args, None).await
}

/// `guild run [MODEL:]OP`: the model and the op.
pub fn split_spec(spec: String) -> (Option<String>, String) {
    match spec.split_once(':') {
        Some((model, op)) => (Some(model.to_string()), op.to_string()),
        None => (None, spec),
    }
}

/// `guild evaluate RUN | --latest-run`: the model's evaluate op in that run's folder.
pub async fn evaluate(target: &Target, project: &Path, args: EvaluateArgs) -> anyhow::Result<u8> {
    let (runs, flags): (Vec<String>, Vec<String>) = args.args.into_iter().partition(|a| !a.contains('='));
    let client = rpc::connect(target).await?;
    let source = match (runs.as_slice(), args.latest_run) {
        ([run], false) => rpc(client.runs().get_run(pb::GetRunRequest { run: run_arg(run) }).await)?
            .run
            .ok_or_else(|| anyhow!("no such run"))?,
        ([], true) => latest_train_run(&client, project).await?,
        ([], false) => bail!("evaluate which run? Name one (id, prefix or index) or pass --latest-run"),
        _ => bail!("evaluate takes one run, got {}", runs.join(" ")),
    };
    let op = OpArgs {
        args: flags,
        start: args.start,
        ..OpArgs::default()
    };
    start_with(
        &client,
        project,
        Some(source.model.clone()),
        "evaluate",
        op,
        Some(source.id),
    )
    .await
}

async fn latest_train_run(client: &Client, project: &Path) -> anyhow::Result<pb::Run> {
    let list = rpc(client
        .runs()
        .list_runs(pb::ListRunsRequest {
            limit: 0,
            offset: 0,
            project_dir: path_string(project),
        })
        .await)?;
    list.runs
        .into_iter()
        .find(|r| r.op == "train" && r.status() == RunStatus::Completed)
        .ok_or_else(|| {
            anyhow!(
                "no completed train run in {} (run `guild train` first)",
                project.display()
            )
        })
}

/// Splits `MODEL NAME=VALUE ...` into the model and the flags.
pub fn split_op_args(args: &[String]) -> anyhow::Result<(Option<String>, Vec<pb::Flag>)> {
    let mut model = None;
    let mut flags = Vec::new();
    for arg in args {
        match arg.split_once('=') {
            Some((name, value)) => {
                if name.is_empty() {
                    bail!("expected NAME=VALUE, got \"{arg}\"");
                }
                flags.push(pb::Flag {
                    name: name.to_string(),
                    value: value.to_string(),
                })
            }
            None if model.is_none() => model = Some(arg.clone()),
            None => bail!("unexpected argument \"{arg}\": flags are NAME=VALUE, and only one model may be named"),
        }
    }
    Ok((model, flags))
}

/// `-F NAME=VALUE` and `-F NAME` (the original's form: NAME=true).
fn dash_f_flags(given: &[String]) -> anyhow::Result<Vec<pb::Flag>> {
    given
        .iter()
        .map(|arg| {
            let (name, value) = arg.split_once('=').unwrap_or((arg.as_str(), "true"));
            if name.trim().is_empty() {
                bail!("-F/--flag: expected NAME=VALUE, got \"{arg}\"");
            }
            Ok(pb::Flag {
                name: name.to_string(),
                value: value.to_string(),
            })
        })
        .collect()
}

async fn start_with(
    client: &Client,
    project: &Path,
    model: Option<String>,
    op: &str,
    args: OpArgs,
    source_run: Option<String>,
) -> anyhow::Result<u8> {
    let (named, mut flags) = split_op_args(&args.args)?;
    flags.extend(dash_f_flags(&args.start.flag)?);
    if model.is_some() && named.is_some() && source_run.is_none() {
        bail!("the model is given twice");
    }
    let request = pb::StartRunRequest {
        project_dir: path_string(project),
        model: model.or(named).unwrap_or_default(),
        op: op.to_string(),
        profile: args.profile.unwrap_or_default(),
        flags,
        source_run: source_run.unwrap_or_default(),
        label: args.start.label,
        env: std::env::vars().collect::<HashMap<_, _>>(),
        gpus: args.start.gpus,
        priority: args.start.priority,
        sweep: args.sweep.to_proto()?,
        // On Slurm, --gpus is the job's --gres=gpu:N (guildd falls back to the model's).
        slurm: args.start.slurm.slurm.then(|| pb::SlurmOptions {
            sbatch: args.start.slurm.sbatch.clone(),
            gpus: args.start.gpus.unwrap_or(0),
        }),
    };
    if args.start.preview {
        let preview = rpc(client.runs().preview_run(request).await)?;
        out!("{}", preview_text(&preview))?;
        return Ok(0);
    }
    let mut sigint = sigint()?;
    let run = rpc(client.runs().start_run(request).await)?;
    eprintln!(
        "Run {} ({}:{}) in {}",
        clean(&run.id),
        clean(&run.model),
        clean(&run.op),
        clean(&run.run_dir)
    );
    if run.status() == RunStatus::Failed {
        bail!("run {} failed to start: {}", clean(&run.id), clean(&run.reason));
    }
    if run.status() == RunStatus::Queued && run.queue.is_none() && !run.reason.is_empty() {
        // Held by Slurm: its reason says why.
        eprintln!("{}", clean(&run.reason));
    }
    if let Some(queue) = run.queue.as_ref().filter(|q| q.position > 0) {
        eprintln!(
            "Queued at position {}{}: it starts when {}",
            queue.position,
            queue.gpus_requested.map(|n| format!(" (needs {n} GPU{})", if n == 1 { "" } else { "s" })).unwrap_or_default(),
            if queue.gpus_requested.unwrap_or(0) > 0 { "its GPUs are free" } else { "a slot is free" }
        );
    }
    if args.start.background {
        outln!("{}", clean(&run.id))?;
        return Ok(0);
    }
    if run.op == crate::sweep::SWEEP_OP {
        return crate::sweep::follow(client, &run, &mut sigint).await;
    }
    follow::follow(client, &run, &mut sigint).await
}

/// `guild train --help` (and prepare, run): `usage`, the command's own help, then the
/// model's flags with the values a run would get (with `--profile`, that profile's),
/// from the Guild file.
pub async fn help(
    target: &Target,
    project: &Path,
    model: Option<String>,
    op: &str,
    args: &OpArgs,
    usage: String,
) -> anyhow::Result<u8> {
    out!("{usage}")?;
    if !project.join("Guild").is_file() {
        outln!("\nNo Guild file in {}: no model flags to list.", project.display())?;
        return Ok(0);
    }
    let (named, _) = split_op_args(&args.args)?;
    let client = rpc::connect(target).await?;
    let parsed = project::get(&client, project).await?;
    let wanted = model.or(named);
    let chosen = match &wanted {
        None => parsed.models.first(),
        Some(name) => parsed.models.iter().find(|m| &m.name == name).or_else(|| {
            (op == "prepare")
                .then(|| parsed.resources.iter().find(|r| &r.name == name))
                .flatten()
        }),
    };
    let Some(chosen) = chosen else {
        bail!(
            "no model {} in {}",
            wanted.unwrap_or_default(),
            project.join("Guild").display()
        );
    };
    let profile = match &args.profile {
        Some(name) => Some(
            parsed
                .profiles
                .iter()
                .find(|p| &p.name == name)
                .ok_or_else(|| anyhow!("no profile {name} in {}", project.join("Guild").display()))?,
        ),
        None => None,
    };
    out!("{}", model_flags(&parsed, chosen, profile))?;
    Ok(0)
}

/// The flags part of `guild train --help`.
fn model_flags(project: &pb::Project, model: &pb::Model, profile: Option<&pb::Profile>) -> String {
    let flags = resolved_flags(project, model, profile);
    let mut out = format!(
        "\nFlags of {} (from {}/Guild{}):\n",
        model.name,
        project.dir,
        profile.map(|p| format!(", profile {}", p.name)).unwrap_or_default()
    );
    if flags.is_empty() {
        out.push_str("  (none)\n");
    }
    let width = flags.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    for (name, value) in &flags {
        out.push_str(&format!("  {name:<width$}  {value}\n"));
    }
    out.push_str("Set one with NAME=VALUE or -F NAME=VALUE.\n");
    if !project.profiles.is_empty() {
        let names: Vec<&str> = project.profiles.iter().map(|p| p.name.as_str()).collect();
        out.push_str(&format!("Profiles (-p NAME): {}\n", names.join(", ")));
    }
    out
}

/// `--preview`: what a start would do.
fn preview_text(preview: &pb::RunPreview) -> String {
    let mut out = String::from("This command would use the settings below; nothing was started.\n");
    out.push_str(&format!("Model:   {} ({})\n", preview.model, preview.op));
    if !preview.runtime.is_empty() {
        out.push_str(&format!("Runtime: {}\n", preview.runtime));
    }
    out.push_str("Command:\n");
    let mut words = preview.argv.iter().map(|w| shell_word(w));
    let mut line = format!("  {}", words.by_ref().take(3).collect::<Vec<_>>().join(" "));
    let rest: Vec<String> = words.collect();
    let mut i = 0;
    while i < rest.len() {
        out.push_str(&line);
        out.push_str(" \\\n");
        // An option and its value stay on one line.
        line = if rest[i].starts_with("--") && i + 1 < rest.len() && !rest[i + 1].starts_with("--") {
            i += 2;
            format!("    {} {}", rest[i - 2], rest[i - 1])
        } else {
            i += 1;
            format!("    {}", rest[i - 1])
        };
    }
    out.push_str(&line);
    out.push('\n');
    out.push_str("Flags:\n");
    for flag in &preview.flags {
        out.push_str(&format!("  {} = {}\n", flag.name, flag.value));
    }
    out.push_str(&format!(
        "Run folder: {} (made when the run starts; a -2, -3... suffix if that second is taken)\n",
        preview.run_dir
    ));
    out.push_str("Environment (besides yours):\n");
    for var in &preview.env {
        out.push_str(&format!("  {}={}\n", var.name, var.value));
    }
    out
}

/// A word as a shell would need it: quoted when it has spaces or quotes.
fn shell_word(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%$".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}
