//! `guild`: a thin client of guildd over its Unix socket.

// First: its macros (outln!, out!) serve every module below.
#[macro_use]
mod out;

mod client;
mod commands;
mod compare;
mod diff;
mod filter;
mod follow;
mod init;
mod manage;
mod select;
mod serve;
mod table;

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "guild",
    version,
    about = "Run, record and compare ML training runs",
    propagate_version = true
)]
pub struct Cli {
    /// Project folder (the one holding the Guild file). Default: the current folder.
    #[arg(short = 'C', global = true, value_name = "DIR")]
    pub project: Option<PathBuf>,
    /// The daemon's Unix socket.
    #[arg(long, global = true, env = "GUILD_SOCKET")]
    pub socket: Option<PathBuf>,
    /// The daemon's data folder.
    #[arg(long, global = true, env = "GUILD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Clone, Default)]
pub struct OpArgs {
    /// MODEL (default: the project's first model) and NAME=VALUE flags.
    #[arg(value_name = "MODEL|FLAG=VALUE")]
    pub args: Vec<String>,
    /// Flags profile ([flags "PROFILE"] in the Guild file).
    #[arg(long, short = 'p')]
    pub profile: Option<String>,
    /// A flag, NAME=VALUE (NAME alone is NAME=true); repeatable, after the positional ones.
    #[arg(long = "flag", short = 'F', value_name = "NAME=VALUE")]
    pub flag: Vec<String>,
    /// Label for the run.
    #[arg(long, default_value = "")]
    pub label: String,
    /// Start the run and return at once.
    #[arg(long, short = 'b')]
    pub background: bool,
    /// Print the command, flags and run folder it would use; start nothing.
    #[arg(long)]
    pub preview: bool,
    /// Print help, with the model's flags and their values.
    #[arg(long, short = 'h', action = ArgAction::SetTrue)]
    pub help: bool,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the prepare op of a model or resource (for example, download or generate data).
    #[command(disable_help_flag = true)]
    Prepare(OpArgs),
    /// Train a model.
    #[command(disable_help_flag = true)]
    Train(OpArgs),
    /// Run a model's evaluate op in an existing run (its RUNDIR).
    Evaluate {
        /// The run to evaluate (id, id prefix, index or run folder).
        #[arg(value_name = "RUN|FLAG=VALUE")]
        args: Vec<String>,
        /// Evaluate the latest train run of this project.
        #[arg(long, short = 'L')]
        latest_run: bool,
        /// A flag, NAME=VALUE (NAME alone is NAME=true); repeatable.
        #[arg(long = "flag", short = 'F', value_name = "NAME=VALUE")]
        flag: Vec<String>,
        #[arg(long, default_value = "")]
        label: String,
        #[arg(long, short = 'b')]
        background: bool,
        /// Print the command, flags and run folder it would use; start nothing.
        #[arg(long)]
        preview: bool,
    },
    /// Write a Guild file for a folder of Python scripts: a model for each script that
    /// reads --flags with argparse, with the flags and defaults the script declares.
    Init {
        /// The folder (default: the current one, or -C).
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
        #[arg(value_name = "[MODEL:]OP")]
        spec: String,
        #[command(flatten)]
        op: OpArgs,
    },
    /// List runs, newest first (1 is the latest); RUNS and filters narrow the list.
    Runs {
        #[command(subcommand)]
        command: Option<RunsCommand>,
        /// Runs to list: ids, id prefixes, indexes (1 = latest) or ranges like 1:5.
        #[arg(value_name = "RUNS")]
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
        filter: select::FilterArgs,
    },
    /// Compare runs: one row per run with its attributes, flags and last scalar values.
    Compare(compare::CompareArgs),
    /// What differs between two runs: flags, attributes, scalars and source files.
    Diff {
        run_a: String,
        run_b: String,
        /// Also attributes that always differ (env, pid, times) and system stats.
        #[arg(long)]
        all: bool,
    },
    /// Set the label of the runs RUN selects (an id, prefix, index or range like 1:3 or
    /// `:` for all; --model, --status and --label narrow it), or --clear it.
    Label {
        run: String,
        text: Vec<String>,
        #[arg(long)]
        clear: bool,
        #[command(flatten)]
        filter: select::FilterArgs,
    },
    /// Add (+TAG or TAG) and remove (-TAG) tags of the runs RUN selects (as for label;
    /// filter flags go before the tags); with no tags, print them.
    Tag {
        run: String,
        #[command(flatten)]
        filter: select::FilterArgs,
        #[arg(allow_hyphen_values = true, trailing_var_arg = true, value_name = "+TAG|-TAG")]
        changes: Vec<String>,
    },
    /// Copy runs to a folder (one folder per run) or a .tar.gz file.
    Export {
        /// Runs (ids, prefixes, indexes, ranges like 1:5), then the destination.
        #[arg(value_name = "RUNS... DEST", required = true)]
        args: Vec<String>,
        #[command(flatten)]
        filter: select::FilterArgs,
    },
    /// Add the runs of a folder or .tar.gz (from `guild export`) to the index.
    Import {
        src: PathBuf,
        /// Give runs whose id is taken a new id (ID-2...) instead of refusing.
        #[arg(long)]
        rename: bool,
        /// Most a .tar.gz may unpack to, like 20G or 500M (default: 256M plus 32 times
        /// the archive's size).
        #[arg(long, value_name = "SIZE", value_parser = manage::parse_size)]
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
    /// Stop a running run.
    Stop { run: String },
    /// Follow a run's output until it ends.
    Watch { run: String },
    /// The project's models, ops and flags.
    ListModels,
    /// A run's attributes.
    ListAttrs { run: String },
    /// A run's series keys with their last, min and max values.
    ListSeries { run: String },
    /// Print a series' samples.
    Series {
        run: String,
        key: String,
        /// CSV with a header.
        #[arg(long)]
        csv: bool,
    },
    /// Serve a trained run over HTTP (POST /run, GET /stats), or stop serving it.
    Serve(serve::ServeArgs),
    /// TensorBoard for runs, behind the dashboard's port (under /tb/).
    Tensorboard(serve::TensorBoardArgs),
    /// Start, stop or query the daemon.
    Daemon {
        #[command(subcommand)]
        command: DaemonCommand,
    },
}

#[derive(Subcommand)]
pub enum RunsCommand {
    /// Everything about one run.
    Info { run: String },
    /// Move runs to the trash (restorable). Running runs are refused.
    Delete(select::SelectArgs),
    /// Bring deleted runs back from the trash (`guild runs --deleted` lists them).
    Restore(select::SelectArgs),
    /// Remove deleted runs for good.
    Purge(select::SelectArgs),
}

#[derive(Subcommand)]
pub enum DaemonCommand {
    /// Start guildd in the background (if it is not running).
    Start {
        /// Also serve TCP (token required), e.g. 127.0.0.1:6333.
        #[arg(long, env = "GUILD_LISTEN")]
        listen: Option<String>,
    },
    /// Stop guildd. Runs keep running (a later daemon adopts them) unless --stop-runs.
    Stop {
        /// Stop running runs first.
        #[arg(long, conflicts_with = "leave_runs")]
        stop_runs: bool,
        /// Leave running runs running (the next daemon adopts them). Without either flag
        /// guild asks when runs are running and a terminal is attached, else leaves them.
        #[arg(long)]
        leave_runs: bool,
    },
    /// Whether guildd runs, and where.
    Status,
    /// Write systemd user units (guildd.service, guildd.socket) and say how to enable them.
    Install {
        /// Folder for the units (default: ~/.config/systemd/user).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("guild: cannot start: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime
        .block_on(commands::dispatch(cli))
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
