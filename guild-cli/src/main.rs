//! `guild`: a thin client of guildd over its Unix socket. This file holds the command
//! line (what clap parses) and sends each command to its module in `commands/`; those
//! use the shared helpers below them and never this file.

// First: its macros (outln!, out!) serve every module below.
#[macro_use]
mod out;

mod candidates;
mod commands;
mod follow;
mod format;
mod project;
mod rpc;
mod select;
mod sweep;
mod table;

use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand, ValueHint};
use clap_complete::{ArgValueCompleter, CompleteEnv};

use commands::compare::CompareArgs;
use commands::completions::CompletionsArgs;
use commands::daemon::DaemonCommand;
use commands::serve::ServeArgs;
use commands::tensorboard::TensorBoardArgs;
use commands::train::{EvaluateArgs, OpArgs};
use commands::*;
use select::{FilterArgs, SelectArgs};

#[derive(Parser)]
#[command(
    name = "guild",
    version,
    about = "Run, record and compare ML training runs",
    propagate_version = true
)]
struct Cli {
    /// Project folder (the one holding the Guild file). Default: the current folder.
    #[arg(short = 'C', global = true, value_name = "DIR", value_hint = ValueHint::DirPath)]
    project: Option<PathBuf>,
    /// The daemon's Unix socket (default: $GUILD_SOCKET, else under $XDG_RUNTIME_DIR).
    #[arg(long, global = true, value_hint = ValueHint::FilePath)]
    socket: Option<PathBuf>,
    /// The daemon's data folder (default: $GUILD_DATA_DIR, else ~/.local/share/guild).
    #[arg(long, global = true, value_hint = ValueHint::DirPath)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// A run, as every command that takes one completes it.
fn any_run() -> ArgValueCompleter {
    ArgValueCompleter::new(candidates::run)
}

#[derive(Subcommand)]
enum Command {
    /// Run the prepare op of a model or resource (for example, download or generate data).
    #[command(disable_help_flag = true)]
    Prepare(OpArgs),
    /// Train a model.
    #[command(disable_help_flag = true)]
    Train(OpArgs),
    /// Run a model's evaluate op in an existing run (its RUNDIR).
    Evaluate(EvaluateArgs),
    /// Write a Guild file for a folder of Python scripts: a model for each script that
    /// reads --flags with argparse, with the flags and defaults the script declares.
    Init {
        /// The folder (default: the current one, or -C).
        #[arg(value_hint = ValueHint::DirPath)]
        dir: Option<PathBuf>,
        /// The project's name (default: the folder's name).
        #[arg(long)]
        name: Option<String>,
        /// Replace a Guild file that is already there.
        #[arg(long)]
        force: bool,
    },
    /// Run any op: MODEL:OP, or OP of the default model.
    #[command(disable_help_flag = true)]
    Run {
        #[arg(value_name = "[MODEL:]OP", add = ArgValueCompleter::new(candidates::op_spec))]
        spec: String,
        #[command(flatten)]
        op: OpArgs,
    },
    /// List runs, newest first (1 is the latest); RUNS and filters narrow the list.
    Runs {
        #[command(subcommand)]
        command: Option<RunsCommand>,
        /// Runs to list: ids, id prefixes, indexes (1 = latest) or ranges like 1:5.
        #[arg(value_name = "RUNS", add = any_run())]
        runs: Vec<String>,
        /// Show every run (default: the latest 20).
        #[arg(long, short = 'a')]
        all: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// List deleted runs (the trash) instead.
        #[arg(long)]
        deleted: bool,
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// Compare runs: one row per run with its attributes, flags and last scalar values.
    Compare(CompareArgs),
    /// What differs between two runs: flags, attributes, scalars and source files.
    Diff {
        #[arg(add = any_run())]
        run_a: String,
        #[arg(add = any_run())]
        run_b: String,
        /// Also attributes that always differ (env, pid, times) and system stats.
        #[arg(long)]
        all: bool,
    },
    /// Set the label of the runs RUN selects (an id, prefix, index or range like 1:3 or
    /// `:` for all; --model, --status and --label narrow it), or --clear it.
    Label {
        #[arg(add = any_run())]
        run: String,
        text: Vec<String>,
        #[arg(long)]
        clear: bool,
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// Add (+TAG or TAG) and remove (-TAG) tags of the runs RUN selects (as for label;
    /// filter flags go before the tags); with no tags, print them.
    Tag {
        #[arg(add = any_run())]
        run: String,
        #[command(flatten)]
        filter: FilterArgs,
        #[arg(allow_hyphen_values = true, trailing_var_arg = true, value_name = "+TAG|-TAG")]
        changes: Vec<String>,
    },
    /// Copy runs to a folder (one folder per run) or a .tar.gz file.
    Export {
        /// Runs (ids, prefixes, indexes, ranges like 1:5), then the destination.
        #[arg(value_name = "RUNS... DEST", required = true, add = any_run())]
        args: Vec<String>,
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// Add the runs of a folder or .tar.gz (from `guild export`) to the index.
    Import {
        #[arg(value_hint = ValueHint::AnyPath)]
        src: PathBuf,
        /// Give runs whose id is taken a new id (ID-2...) instead of refusing.
        #[arg(long)]
        rename: bool,
        /// Most a .tar.gz may unpack to, like 20G or 500M (default: 256M plus 32 times
        /// the archive's size).
        #[arg(long, value_name = "SIZE", value_parser = export::parse_size)]
        max_size: Option<u64>,
    },
    /// The daemon and its running runs.
    Status,
    /// Print (and open) the dashboard's URL.
    View {
        /// Print the URL without opening a browser.
        #[arg(long)]
        no_open: bool,
    },
    /// Stop a running run, cancel a queued one, or stop a sweep (no new trials; its
    /// queued trials are cancelled and running ones stopped).
    Stop {
        #[arg(add = any_run())]
        run: String,
    },
    /// Follow a run's output until it ends.
    Watch {
        #[arg(add = any_run())]
        run: String,
    },
    /// The project's models, ops and flags.
    ListModels,
    /// A run's attributes.
    ListAttrs {
        #[arg(add = any_run())]
        run: String,
    },
    /// A run's series keys with their last, min and max values.
    ListSeries {
        #[arg(add = any_run())]
        run: String,
    },
    /// Print a series' samples.
    Series {
        #[arg(add = any_run())]
        run: String,
        #[arg(add = ArgValueCompleter::new(candidates::series_key))]
        key: String,
        /// CSV with a header.
        #[arg(long)]
        csv: bool,
    },
    /// A run's media from its event files (images, audio, histograms, text, PR curves);
    /// with --out DIR, its images and audio as files (DIR/<tag>/<step>.png).
    Media {
        #[arg(add = any_run())]
        run: String,
        /// Only this tag (as `guild media RUN` lists them: tf/train/sample).
        #[arg(add = ArgValueCompleter::new(candidates::media_tag))]
        tag: Option<String>,
        /// Only the items at this step.
        #[arg(long, allow_negative_numbers = true)]
        step: Option<i64>,
        /// Write the images and audio clips under this folder.
        #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath)]
        out: Option<PathBuf>,
    },
    /// Serve a trained run over HTTP (POST /run, GET /stats), or stop serving it.
    Serve(ServeArgs),
    /// TensorBoard for runs, behind the dashboard's port (under /tb/).
    Tensorboard(TensorBoardArgs),
    /// Start, stop or query the daemon.
    Daemon {
        #[command(subcommand)]
        command: DaemonCommand,
    },
    /// Print the shell code that completes guild's commands, options, models, flags and
    /// runs: `source <(guild completions bash)` (see the README for zsh and fish).
    Completions(CompletionsArgs),
}

#[derive(Subcommand)]
enum RunsCommand {
    /// Everything about one run.
    Info {
        #[arg(add = any_run())]
        run: String,
    },
    /// Move runs to the trash (restorable). Running runs are refused.
    Delete(SelectArgs),
    /// Bring deleted runs back from the trash (`guild runs --deleted` lists them).
    Restore(SelectArgs),
    /// Remove deleted runs for good.
    Purge(SelectArgs),
    /// Set a queued run's priority: higher starts first (it moves to its place in the
    /// queue).
    Priority {
        #[arg(add = any_run())]
        run: String,
        #[arg(allow_negative_numbers = true)]
        priority: i32,
    },
}

/// Runs the command; its exit code.
async fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    let target = rpc::Target::resolve(cli.data_dir, cli.socket)?;
    let project = project::dir(cli.project)?;
    // A daemon, started when none runs (commands that must not start one connect
    // themselves).
    let connect = || rpc::connect(&target);
    match cli.command {
        Command::Prepare(args) if args.help => {
            train::help(&target, &project, None, "prepare", &args, usage("prepare")).await
        }
        Command::Train(args) if args.help => train::help(&target, &project, None, "train", &args, usage("train")).await,
        Command::Run { spec, op: args } if args.help => {
            let (model, op) = train::split_spec(spec);
            train::help(&target, &project, model, &op, &args, usage("run")).await
        }
        Command::Prepare(args) => train::start(&target, &project, None, "prepare", args).await,
        Command::Train(args) => train::start(&target, &project, None, "train", args).await,
        Command::Run { spec, op: args } => {
            let (model, op) = train::split_spec(spec);
            train::start(&target, &project, model, &op, args).await
        }
        Command::Evaluate(args) => train::evaluate(&target, &project, args).await,
        Command::Init { dir, name, force } => {
            let dir = match dir {
                Some(dir) => project::dir(Some(dir))?,
                None => project,
            };
            init::run(&dir, name, force)
        }
        Command::Runs {
            command: None,
            runs,
            all,
            json,
            deleted,
            filter,
        } => runs::list(&connect().await?, all, json, deleted, &SelectArgs { runs, filter }).await,
        Command::Runs {
            command: Some(command), ..
        } => match command {
            RunsCommand::Info { run } => runs::info(&connect().await?, &run).await,
            RunsCommand::Delete(args) => runs::delete(&connect().await?, &args).await,
            RunsCommand::Restore(args) => runs::restore(&connect().await?, &args).await,
            RunsCommand::Purge(args) => runs::purge(&connect().await?, &args).await,
            RunsCommand::Priority { run, priority } => runs::priority(&connect().await?, &run, priority).await,
        },
        Command::Compare(args) => compare::run(&target, args).await,
        Command::Diff { run_a, run_b, all } => diff::run(&connect().await?, &run_a, &run_b, all).await,
        Command::Label {
            run,
            text,
            clear,
            filter,
        } => {
            label::label(
                &connect().await?,
                &SelectArgs {
                    runs: vec![run],
                    filter,
                },
                &text,
                clear,
            )
            .await
        }
        Command::Tag { run, filter, changes } => {
            label::tag(
                &connect().await?,
                &SelectArgs {
                    runs: vec![run],
                    filter,
                },
                &changes,
            )
            .await
        }
        Command::Export { args, filter } => export::export(&connect().await?, SelectArgs { runs: args, filter }).await,
        Command::Import { src, rename, max_size } => {
            export::import(&connect().await?, &project, &src, rename, max_size).await
        }
        Command::Status => status::run(&target).await,
        Command::View { no_open } => view::run(&target, no_open).await,
        Command::Stop { run } => watch::stop(&connect().await?, &run).await,
        Command::Watch { run } => watch::watch(&connect().await?, &run).await,
        Command::ListModels => models::run(&connect().await?, &project).await,
        Command::ListAttrs { run } => runs::attrs(&connect().await?, &run).await,
        Command::ListSeries { run } => series::list(&connect().await?, &run).await,
        Command::Series { run, key, csv } => series::samples(&connect().await?, &run, &key, csv).await,
        Command::Media { run, tag, step, out } => {
            media::run(&connect().await?, &run, tag.as_deref(), step, out.as_deref()).await
        }
        Command::Serve(args) => serve::run(&target, args).await,
        Command::Tensorboard(args) => tensorboard::run(&target, &project, args).await,
        Command::Daemon { command } => daemon::run(&target, command).await,
        Command::Completions(args) => completions::run(args),
    }
}

/// A subcommand's own help, for `guild train --help` to print before the model's flags.
fn usage(subcommand: &str) -> String {
    let mut command = Cli::command();
    command.build();
    command
        .find_subcommand_mut(subcommand)
        .map(|sub| sub.render_help().to_string())
        .unwrap_or_default()
}

fn main() -> std::process::ExitCode {
    // `COMPLETE=bash guild -- guild tr`: answer the shell and exit.
    CompleteEnv::with_factory(Cli::command).var(completions::VAR).complete();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("guild: cannot start: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime
        .block_on(dispatch(cli))
        .and_then(|code| out::finish().map(|_| code).map_err(anyhow::Error::from));
    match result {
        Ok(code) => std::process::ExitCode::from(code),
        // The reader of a pipe went away (`guild runs | head -1`): nothing to report.
        Err(err) if out::is_closed_pipe(&err) => std::process::ExitCode::from(141),
        Err(err) => {
            eprintln!("guild: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
