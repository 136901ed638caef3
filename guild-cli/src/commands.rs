//! What each `guild` command does: build a request, call the daemon, print the answer.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, anyhow, bail};
use guild_proto::locations::Locations;
use guild_proto::time;
use guild_proto::v1::{self as pb, RunStatus};

use crate::client::{self, Client, Target};
use crate::out::clean;
use crate::select::run_arg;
use crate::{Cli, Command, DaemonCommand, OpArgs, RunsCommand, follow, table};

/// A gRPC status as a user reads it: its message, without the transport's debris.
pub fn rpc<T>(result: Result<tonic::Response<T>, tonic::Status>) -> anyhow::Result<T> {
    result
        .map(|r| r.into_inner())
        .map_err(|status| anyhow!("{}", crate::out::clean_message(status.message())))
}

pub async fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    let target = Target {
        locations: Locations::resolve(cli.data_dir.clone(), cli.socket.clone())?,
    };
    let project = project_dir(cli.project.clone())?;
    match cli.command {
        Command::Prepare(args) => start_op(&target, &project, None, "prepare", args).await,
        Command::Train(args) => start_op(&target, &project, None, "train", args).await,
        Command::Run { spec, op } => {
            let (model, op_name) = match spec.split_once(':') {
                Some((model, op_name)) => (Some(model.to_string()), op_name.to_string()),
                None => (None, spec),
            };
            start_op(&target, &project, model, &op_name, op).await
        }
        Command::Evaluate {
            args,
            latest_run,
            flag,
            label,
            background,
            preview,
        } => {
            let (runs, flags): (Vec<String>, Vec<String>) = args.into_iter().partition(|a| !a.contains('='));
            let client = client::connect(&target).await?;
            let source = match (runs.as_slice(), latest_run) {
                ([run], false) => rpc(client.runs().get_run(pb::GetRunRequest { run: run_arg(run) }).await)?
                    .run
                    .ok_or_else(|| anyhow!("no such run"))?,
                ([], true) => latest_train_run(&client, &project).await?,
                ([], false) => {
                    bail!("evaluate which run? Name one (id, prefix or index) or pass --latest-run")
                }
                _ => bail!("evaluate takes one run, got {}", runs.join(" ")),
            };
            let args = OpArgs {
                args: flags,
                flag,
                label,
                background,
                preview,
                ..OpArgs::default()
            };
            start_with(
                &client,
                &project,
                Some(source.model.clone()),
                "evaluate",
                args,
                Some(source.id),
            )
            .await
        }
        Command::Runs {
            command: None,
            runs,
            all,
            json,
            deleted,
            filter,
        } => {
            let client = client::connect(&target).await?;
            let select = crate::select::SelectArgs { runs, filter };
            crate::manage::list(&client, all, json, deleted, &select).await
        }
        Command::Runs {
            command: Some(RunsCommand::Info { run }),
            ..
        } => {
            let client = client::connect(&target).await?;
            let detail = rpc(client.runs().get_run(pb::GetRunRequest { run: run_arg(&run) }).await)?;
            out!("{}", table::run_info(&detail))?;
            Ok(0)
        }
        Command::Runs {
            command: Some(RunsCommand::Delete(args)),
            ..
        } => crate::manage::delete(&client::connect(&target).await?, &args).await,
        Command::Runs {
            command: Some(RunsCommand::Restore(args)),
            ..
        } => crate::manage::restore(&client::connect(&target).await?, &args).await,
        Command::Runs {
            command: Some(RunsCommand::Purge(args)),
            ..
        } => crate::manage::purge(&client::connect(&target).await?, &args).await,
        Command::Compare(args) => crate::compare::run(&client::connect(&target).await?, args).await,
        Command::Diff { run_a, run_b, all } => {
            crate::diff::run(&client::connect(&target).await?, &run_arg(&run_a), &run_arg(&run_b), all).await
        }
        Command::Init { dir, name, force } => {
            let dir = match dir {
                Some(dir) => project_dir(Some(dir))?,
                None => project.clone(),
            };
            crate::init::run(&dir, name, force)
        }
        Command::Label {
            run,
            text,
            clear,
            filter,
        } => {
            let select = crate::select::SelectArgs {
                runs: vec![run],
                filter,
            };
            crate::manage::label(&client::connect(&target).await?, &select, &text, clear).await
        }
        Command::Tag { run, filter, changes } => {
            let select = crate::select::SelectArgs {
                runs: vec![run],
                filter,
            };
            crate::manage::tag(&client::connect(&target).await?, &select, &changes).await
        }
        Command::Export { args, filter } => {
            let select = crate::select::SelectArgs { runs: args, filter };
            crate::manage::export(&client::connect(&target).await?, select).await
        }
        Command::Import { src, rename, max_size } => {
            crate::manage::import(&client::connect(&target).await?, &project, &src, rename, max_size).await
        }
        Command::Status => {
            let Some(client) = client::try_connect(&target).await? else {
                outln!("guildd is not running (socket {})", target.locations.socket.display())?;
                return Ok(1);
            };
            print_daemon_status(&client.status)?;
            let list = rpc(client.runs().list_runs(pb::ListRunsRequest::default()).await)?;
            let running: Vec<pb::Run> = list
                .runs
                .into_iter()
                .filter(|r| matches!(r.status(), RunStatus::Running | RunStatus::Pending))
                .collect();
            if running.is_empty() {
                outln!("No runs are running.")?;
            } else {
                out!("{}", table::runs(&running, 0))?;
            }
            crate::serve::print_status(&client).await?;
            Ok(0)
        }
        Command::Stop { run } => {
            let client = client::connect(&target).await?;
            let stopped = rpc(client.runs().stop_run(pb::StopRunRequest { run: run_arg(&run) }).await)?;
            eprintln!("Stopping {}", clean(&stopped.id));
            Ok(0)
        }
        Command::Watch { run } => {
            let client = client::connect(&target).await?;
            let run = rpc(client.runs().get_run(pb::GetRunRequest { run: run_arg(&run) }).await)?
                .run
                .ok_or_else(|| anyhow!("no such run"))?;
            follow::follow(&client, &run, &mut sigint()?).await
        }
        Command::ListModels => {
            let client = client::connect(&target).await?;
            let project = rpc(client
                .projects()
                .get_project(pb::GetProjectRequest {
                    project_dir: path_string(&project),
                })
                .await)?;
            out!("{}", table::models(&project))?;
            Ok(0)
        }
        Command::ListAttrs { run } => {
            let client = client::connect(&target).await?;
            let detail = rpc(client.runs().get_run(pb::GetRunRequest { run: run_arg(&run) }).await)?;
            for attr in detail.attrs {
                outln!("{}: {}", clean(&attr.name), clean(&attr.value))?;
            }
            Ok(0)
        }
        Command::ListSeries { run } => {
            let client = client::connect(&target).await?;
            let list = rpc(client
                .series()
                .list_series(pb::ListSeriesRequest { run: run_arg(&run) })
                .await)?;
            out!("{}", table::series_keys(&list.keys))?;
            Ok(0)
        }
        Command::Series { run, key, csv } => {
            let client = client::connect(&target).await?;
            let reply = rpc(client
                .series()
                .get_series(pb::GetSeriesRequest {
                    run: run_arg(&run),
                    keys: vec![key.clone()],
                    ..Default::default()
                })
                .await)?;
            let samples = reply.series.into_iter().next().map(|s| s.samples).unwrap_or_default();
            if csv {
                outln!("step,time_ms,value")?;
            }
            for s in samples {
                if csv {
                    outln!("{},{},{}", s.step, s.time_ms, s.value)?;
                } else {
                    outln!("{:>8}  {}  {}", s.step, time::display(s.time_ms), s.value)?;
                }
            }
            Ok(0)
        }
        Command::Serve(args) => crate::serve::serve(&target, args).await,
        Command::Tensorboard(args) => crate::serve::tensorboard(&target, &project, args).await,
        Command::Daemon { command } => daemon(&target, command).await,
        Command::View { no_open } => view(&target, no_open).await,
    }
}

/// `guild view`: the dashboard's URL with a one-time code (never the token: a browser's
/// command line is visible to every user in `ps`). The page trades the code for the token
/// once; the browser gets a code of its own, so the printed URL still works once.
async fn view(target: &Target, no_open: bool) -> anyhow::Result<u8> {
    let client = client::connect(target).await?;
    let code = || async {
        match client.daemon().create_view_code(pb::CreateViewCodeRequest {}).await {
            Ok(reply) => Ok(reply.into_inner().url),
            Err(status) if status.code() == tonic::Code::Unimplemented => Err(anyhow!(
                "guildd (pid {}) is older than this guild and cannot make a one-time code: \
                 `guild daemon stop`, then `guild view` again",
                client.status.pid
            )),
            Err(status) => Err(anyhow!("{}", crate::out::clean_message(status.message()))),
        }
    };
    outln!("{}", clean(&code().await?))?;
    if !no_open {
        let url = code().await?;
        let opened = std::process::Command::new("xdg-open")
            .arg(&url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        if opened.is_err() {
            eprintln!("(no browser could be opened here: open the URL above)");
        }
    }
    eprintln!("(the URL opens the dashboard once, within 5 minutes; `guild view` makes another)");
    Ok(0)
}

fn print_daemon_status(status: &pb::DaemonStatus) -> anyhow::Result<()> {
    outln!(
        "guildd {} (protocol {}) pid {}",
        status.version, status.protocol, status.pid
    )?;
    outln!("  socket:   {}", status.socket)?;
    outln!("  data dir: {}", status.data_dir)?;
    if !status.tcp_address.is_empty() {
        outln!("  tcp:      {}", status.tcp_address)?;
    }
    outln!("  running:  {}", status.running_runs)?;
    for problem in &status.problems {
        outln!("  problem:  {problem}")?;
    }
    Ok(())
}

async fn daemon(target: &Target, command: DaemonCommand) -> anyhow::Result<u8> {
    match command {
        DaemonCommand::Start { listen } => {
            if let Some(client) = client::try_connect(target).await? {
                outln!("guildd is already running (pid {})", client.status.pid)?;
                return Ok(0);
            }
            let client = client::start_daemon(target, listen.as_deref()).await?;
            print_daemon_status(&client.status)?;
            Ok(0)
        }
        DaemonCommand::Stop {
            mut stop_runs,
            leave_runs,
        } => {
            let Some(client) = client::try_connect(target).await? else {
                outln!("guildd is not running")?;
                return Ok(0);
            };
            let pid = client.status.pid;
            let running = client.status.running_runs;
            if running > 0 && !stop_runs && !leave_runs && std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                eprint!("{running} run(s) are running. Stop them too? [y/N] ");
                let mut answer = String::new();
                std::io::stdin().read_line(&mut answer)?;
                stop_runs = matches!(answer.trim(), "y" | "Y" | "yes");
            }
            let reply = rpc(client.daemon().shutdown(pb::ShutdownRequest { stop_runs }).await)?;
            drop(client);
            // Done when the process is gone: then its socket and its lock are released.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while process_exists(pid) {
                if std::time::Instant::now() > deadline {
                    bail!("guildd (pid {pid}) did not stop within 30 s");
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            match (stop_runs, reply.running_runs) {
                (_, 0) => outln!("Stopped guildd (pid {pid})")?,
                (true, n) => outln!("Stopped guildd (pid {pid}) and {n} running run(s)")?,
                (false, n) => outln!(
                    "Stopped guildd (pid {pid}); {n} run(s) keep running and are adopted by the next daemon \
                     (use --stop-runs to stop them)"
                )?,
            }
            Ok(0)
        }
        DaemonCommand::Install { dir } => {
            install_units(dir)?;
            Ok(0)
        }
        DaemonCommand::Status => match client::try_connect(target).await? {
            Some(client) => {
                print_daemon_status(&client.status)?;
                Ok(0)
            }
            None => {
                outln!("guildd is not running (socket {})", target.locations.socket.display())?;
                Ok(1)
            }
        },
    }
}

/// The units in systemd/, embedded at build time; ExecStart names the guildd beside this guild.
const SERVICE_UNIT: &str = include_str!("../../systemd/guildd.service");
const SOCKET_UNIT: &str = include_str!("../../systemd/guildd.socket");

fn install_units(dir: Option<PathBuf>) -> anyhow::Result<()> {
    let dir = match dir {
        Some(dir) => dir,
        None => std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
            .ok_or_else(|| anyhow!("cannot find your config folder: pass --dir"))?
            .join("systemd/user"),
    };
    let guildd = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("guildd")))
        .filter(|p| p.is_file())
        .ok_or_else(|| anyhow!("no guildd beside this guild binary to install"))?;
    let guildd = guildd.canonicalize().unwrap_or(guildd);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let service = SERVICE_UNIT.replace(
        "ExecStart=/usr/local/bin/guildd",
        &format!("ExecStart={}", guildd.display()),
    );
    for (name, text) in [("guildd.service", service.as_str()), ("guildd.socket", SOCKET_UNIT)] {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        outln!("Wrote {}", path.display())?;
    }
    outln!("Enable them with:\n  systemctl --user daemon-reload && systemctl --user enable --now guildd.socket")?;
    outln!("(guildd then starts on the first guild command; `systemctl --user start guildd` starts it now)")?;
    Ok(())
}

/// Ctrl-C, caught from now on (a run being followed is stopped rather than orphaned).
fn sigint() -> anyhow::Result<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).context("cannot catch Ctrl-C")
}

/// Whether a process with this pid exists (a zombie counts as gone).
fn process_exists(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rfind(')').map(|i| stat[i + 1..].trim_start().starts_with('Z')))
        .is_some_and(|zombie| !zombie)
}

fn project_dir(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let dir = match given {
        Some(dir) => dir,
        None => std::env::current_dir().context("cannot read the current folder")?,
    };
    dir.canonicalize()
        .with_context(|| format!("no such folder: {}", dir.display()))
}

fn path_string(path: &std::path::Path) -> String {
    path.to_string_lossy().into_owned()
}

async fn latest_train_run(client: &Client, project: &std::path::Path) -> anyhow::Result<pb::Run> {
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
fn split_op_args(args: &[String]) -> anyhow::Result<(Option<String>, Vec<pb::Flag>)> {
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

async fn start_op(
    target: &Target,
    project: &std::path::Path,
    model: Option<String>,
    op: &str,
    args: OpArgs,
) -> anyhow::Result<u8> {
    if args.help {
        return op_help(target, project, model, op, &args).await;
    }
    let client = client::connect(target).await?;
    start_with(&client, project, model, op, args, None).await
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
    project: &std::path::Path,
    model: Option<String>,
    op: &str,
    args: OpArgs,
    source_run: Option<String>,
) -> anyhow::Result<u8> {
    let (named, mut flags) = split_op_args(&args.args)?;
    flags.extend(dash_f_flags(&args.flag)?);
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
        label: args.label,
        env: std::env::vars().collect::<HashMap<_, _>>(),
    };
    if args.preview {
        let preview = rpc(client.runs().preview_run(request).await)?;
        out!("{}", table::preview(&preview))?;
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
        bail!("run {} failed to start: {}", run.id, run.reason);
    }
    if args.background {
        outln!("{}", clean(&run.id))?;
        return Ok(0);
    }
    follow::follow(client, &run, &mut sigint).await
}

/// `guild train --help` (and prepare, run): the usual help, then the model's flags with
/// the values a run would get (with `--profile`, that profile's), from the Guild file.
async fn op_help(
    target: &Target,
    project: &std::path::Path,
    model: Option<String>,
    op: &str,
    args: &OpArgs,
) -> anyhow::Result<u8> {
    use clap::CommandFactory;
    let mut command = crate::Cli::command();
    command.build();
    let sub = if model.is_some() { "run" } else { op };
    if let Some(sub) = command.find_subcommand_mut(sub) {
        out!("{}", sub.render_help())?;
    }
    if !project.join("Guild").is_file() {
        outln!("\nNo Guild file in {}: no model flags to list.", project.display())?;
        return Ok(0);
    }
    let (named, _) = split_op_args(&args.args)?;
    let client = client::connect(target).await?;
    let parsed = rpc(client
        .projects()
        .get_project(pb::GetProjectRequest {
            project_dir: path_string(project),
        })
        .await)?;
    let wanted = model.or(named);
    let chosen = match &wanted {
        None => parsed.models.first(),
        Some(name) => parsed
            .models
            .iter()
            .find(|m| &m.name == name)
            .or_else(|| (op == "prepare").then(|| parsed.resources.iter().find(|r| &r.name == name)).flatten()),
    };
    let Some(chosen) = chosen else {
        bail!("no model {} in {}", wanted.unwrap_or_default(), project.join("Guild").display());
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
    out!("{}", table::model_flags(&parsed, chosen, profile))?;
    Ok(0)
}
