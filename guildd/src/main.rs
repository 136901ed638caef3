//! `guildd`: parse arguments, set up logging, bind, serve.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use guild_proto::locations::Locations;

#[derive(Parser)]
#[command(
    name = "guildd",
    version,
    about = "The Guild daemon: owns runs, records them, serves the API"
)]
struct Args {
    /// Data folder (index database, token, lock). Default: $XDG_DATA_HOME/guild.
    #[arg(long, env = "GUILD_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Unix socket. Default: $XDG_RUNTIME_DIR/guild/guildd.sock (or DATA_DIR/guildd.sock
    /// when --data-dir is given).
    #[arg(long, env = "GUILD_SOCKET")]
    socket: Option<PathBuf>,
    /// TCP address for the dashboard, grpc-web and gRPC (token required); port 0 picks
    /// one; `none` serves only the Unix socket. Default 127.0.0.1:6333, or a free port
    /// when that one is taken.
    #[arg(long, env = "GUILD_LISTEN", value_parser = parse_listen)]
    listen: Option<Listen>,
    /// Allow --listen on an address other than loopback.
    #[arg(long)]
    allow_remote: bool,
    /// Python interpreter for module ops.
    #[arg(long, env = "GUILD_PYTHON", default_value = "python3")]
    python: String,
    /// The GPUs runs are given (`0,1,2,3`: CUDA_VISIBLE_DEVICES names); default: those
    /// NVML finds. Restricts guildd to these GPUs, or names them where NVML is absent.
    #[arg(long, env = "GUILD_GPUS", value_name = "LIST", value_parser = parse_gpus)]
    gpus: Option<GpuList>,
    /// The most runs at once (others wait, queued); default: no limit for runs that
    /// need no GPU.
    #[arg(long, env = "GUILD_MAX_RUNS", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_runs: Option<u32>,
    /// More logging (-v info, -vv debug); GUILD_LOG overrides.
    #[arg(short, action = clap::ArgAction::Count)]
    verbose: u8,
}

#[derive(Clone)]
struct GpuList(Vec<String>);

fn parse_gpus(value: &str) -> Result<GpuList, String> {
    guildd::queue::Resources::parse_gpus(value).map(GpuList)
}

#[derive(Clone, Copy)]
enum Listen {
    None,
    Addr(SocketAddr),
}

fn parse_listen(value: &str) -> Result<Listen, String> {
    match value {
        "none" | "off" => Ok(Listen::None),
        _ => value
            .parse()
            .map(Listen::Addr)
            .map_err(|_| format!("expected ADDRESS:PORT (like 127.0.0.1:6333) or none, got \"{value}\"")),
    }
}

fn init_tracing(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("GUILD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("guildd={level}")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> std::process::ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("supervise") {
        guildd::runs::supervisor::main(&argv[2..]);
    }
    let args = Args::parse();
    // glibc raises its mmap threshold each time a large block is freed, after which large
    // buffers (a burst's lines, a follower's message) come from the heaps and stay there:
    // with a thread per SQLite connection, many heaps each keep their high-water mark.
    // A fixed threshold keeps such buffers mapped, and each goes back to the system when
    // freed (tests/e2e/load.rs at full scale: peak RSS 273-290 -> 245-253 MiB).
    // SAFETY: mallopt only sets an allocator parameter, before other threads start.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
    init_tracing(args.verbose);
    match serve(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("guildd: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn serve(args: Args) -> anyhow::Result<()> {
    let listen = match args.listen {
        None => guildd::Listen::Default,
        Some(Listen::None) => guildd::Listen::None,
        Some(Listen::Addr(addr)) => guildd::Listen::Addr(addr),
    };
    if let guildd::Listen::Addr(addr) = listen
        && !addr.ip().is_loopback()
    {
        if !args.allow_remote {
            anyhow::bail!("--listen {addr} is not a loopback address; add --allow-remote to serve other hosts");
        }
        eprintln!("guildd: warning: serving on {addr}: anyone who can reach it and has the token can run code");
    }
    let locations = Locations::resolve(args.data_dir, args.socket)?;
    let config = guildd::Config {
        locations: locations.clone(),
        python: args.python,
        supervisor_exe: std::env::current_exe()?,
        gpus: args.gpus.map(|g| g.0),
        max_runs: args.max_runs.map(|n| n as usize),
    };
    let activated = guildd::daemon::take_activated_sockets().context("cannot take the sockets systemd passed")?;
    let file_limit = guildd::daemon::raise_file_limit();
    tracing::info!(file_limit, "open-file limit");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listeners = guildd::Listeners::bind(&locations, listen, activated).await?;
        guildd::run(config, listeners, shutdown_signal()).await
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
}
