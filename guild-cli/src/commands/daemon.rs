//! `guild daemon start|stop|status|install`: guildd's life — started in its own session,
//! stopped with or without its running runs, or installed as systemd user units.

use std::path::PathBuf;

use anyhow::{Context, anyhow, bail};
use clap::Subcommand;
use guild_proto::v1 as pb;

use crate::format::daemon_status;
use crate::rpc::{self, Target, rpc};

#[derive(Subcommand)]
pub enum DaemonCommand {
    /// Start guildd in the background (if it is not running).
    Start {
        /// Also serve TCP (token required), e.g. 127.0.0.1:6333 (default: $GUILD_LISTEN).
        #[arg(long)]
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

pub async fn run(target: &Target, command: DaemonCommand) -> anyhow::Result<u8> {
    match command {
        DaemonCommand::Start { listen } => {
            // Read here rather than by clap's `env`, which would show it in usage lines.
            let listen = listen.or_else(|| std::env::var("GUILD_LISTEN").ok().filter(|l| !l.is_empty()));
            if let Some(client) = rpc::try_connect(target).await? {
                outln!("guildd is already running (pid {})", client.status.pid)?;
                return Ok(0);
            }
            let client = rpc::start_daemon(target, listen.as_deref()).await?;
            out!("{}", daemon_status(&client.status))?;
            Ok(0)
        }
        DaemonCommand::Stop {
            mut stop_runs,
            leave_runs,
        } => {
            let Some(client) = rpc::try_connect(target).await? else {
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
        DaemonCommand::Status => match rpc::try_connect(target).await? {
            Some(client) => {
                out!("{}", daemon_status(&client.status))?;
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
const SERVICE_UNIT: &str = include_str!("../../../systemd/guildd.service");
const SOCKET_UNIT: &str = include_str!("../../../systemd/guildd.socket");

fn install_units(dir: Option<PathBuf>) -> anyhow::Result<()> {
    let dir = match dir {
        Some(dir) => dir,
        None => std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
            .ok_or_else(|| anyhow!("cannot find your config folder: pass --dir"))?
            .join("systemd/user"),
    };
    let guildd = rpc::guildd_beside().ok_or_else(|| anyhow!("no guildd beside this guild binary to install"))?;
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

/// Whether a process with this pid exists (a zombie counts as gone).
fn process_exists(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rfind(')').map(|i| stat[i + 1..].trim_start().starts_with('Z')))
        .is_some_and(|zombie| !zombie)
}
