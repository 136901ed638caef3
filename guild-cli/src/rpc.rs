//! Finding, starting and talking to the daemon: where it listens, a connection with a
//! client for each service, and [`rpc`], which turns a gRPC status into the message a
//! user reads. Every command reaches guildd through here.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use guild_proto::locations::Locations;
use guild_proto::v1::{
    DaemonStatus, GetStatusRequest, compare_service_client::CompareServiceClient,
    daemon_service_client::DaemonServiceClient, media_service_client::MediaServiceClient,
    output_service_client::OutputServiceClient, project_service_client::ProjectServiceClient,
    run_service_client::RunServiceClient, series_service_client::SeriesServiceClient,
    serve_service_client::ServeServiceClient, tensor_board_service_client::TensorBoardServiceClient,
};
use tonic::transport::Channel;

use crate::out::clean_message;

/// Largest response the CLI accepts (a list of every run, a large Guild file's project),
/// on every service: tonic's default of 4 MiB is far below what a daemon may answer.
const MAX_MESSAGE: usize = 256 * 1024 * 1024;

/// Where the daemon is: its data folder and socket.
#[derive(Clone, Debug)]
pub struct Target {
    pub locations: Locations,
}

impl Target {
    /// From `--data-dir` and `--socket`, else `GUILD_DATA_DIR` and `GUILD_SOCKET`, else
    /// the defaults. The variables are read here rather than by clap's `env`: an argument
    /// clap fills from the environment shows in every usage line it prints.
    pub fn resolve(data_dir: Option<PathBuf>, socket: Option<PathBuf>) -> anyhow::Result<Target> {
        let from_env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        Ok(Target {
            locations: Locations::resolve(
                data_dir.or_else(|| from_env("GUILD_DATA_DIR")),
                socket.or_else(|| from_env("GUILD_SOCKET")),
            )?,
        })
    }
}

/// A run as the daemon takes it: a run folder (any argument with a `/`: `./runs/ID`,
/// `runs/ID/`, an absolute path) as its absolute path, anything else as it is.
pub fn run_arg(arg: &str) -> String {
    if !arg.contains('/') {
        return arg.to_string();
    }
    let path = std::path::Path::new(arg);
    let absolute = std::fs::canonicalize(path)
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_path_buf());
    absolute.to_string_lossy().into_owned()
}

/// A gRPC answer as a user reads it: its message, without the transport's debris, and
/// with control characters from the daemon escaped.
pub fn rpc<T>(result: Result<tonic::Response<T>, tonic::Status>) -> anyhow::Result<T> {
    result.map(|r| r.into_inner()).map_err(status_error)
}

/// A gRPC status (from a call or a stream) as an error a user reads.
pub fn status_error(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{}", clean_message(status.message()))
}

#[derive(Clone)]
pub struct Client {
    pub channel: Channel,
    pub status: DaemonStatus,
}

impl Client {
    pub fn daemon(&self) -> DaemonServiceClient<Channel> {
        DaemonServiceClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE)
    }
    pub fn runs(&self) -> RunServiceClient<Channel> {
        RunServiceClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE)
    }
    pub fn output(&self) -> OutputServiceClient<Channel> {
        OutputServiceClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE)
    }
    pub fn projects(&self) -> ProjectServiceClient<Channel> {
        ProjectServiceClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE)
    }
    pub fn series(&self) -> SeriesServiceClient<Channel> {
        SeriesServiceClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE)
    }
    pub fn compare(&self) -> CompareServiceClient<Channel> {
        CompareServiceClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE)
    }
    pub fn serves(&self) -> ServeServiceClient<Channel> {
        ServeServiceClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE)
    }
    pub fn media(&self) -> MediaServiceClient<Channel> {
        MediaServiceClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE)
    }
    pub fn tensorboards(&self) -> TensorBoardServiceClient<Channel> {
        TensorBoardServiceClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE)
    }
    pub fn queue(&self) -> guild_proto::v1::queue_service_client::QueueServiceClient<Channel> {
        guild_proto::v1::queue_service_client::QueueServiceClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE)
    }
    pub fn sweeps(&self) -> guild_proto::v1::sweep_service_client::SweepServiceClient<Channel> {
        guild_proto::v1::sweep_service_client::SweepServiceClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE)
    }
}

/// Connects to a running daemon; None when nothing answers on the socket.
pub async fn try_connect(target: &Target) -> anyhow::Result<Option<Client>> {
    let socket = &target.locations.socket;
    let Ok(channel) = guild_proto::connect::connect_unix(socket).await else {
        return Ok(None);
    };
    let status = match DaemonServiceClient::new(channel.clone())
        .get_status(GetStatusRequest {})
        .await
    {
        Ok(status) => status,
        // The connection is made on first use: a stale socket that nobody serves (a
        // daemon killed with -9) only shows here, and means no daemon runs.
        // So does a daemon that is still coming up while the CLI waits for it.
        Err(status) if matches!(status.code(), tonic::Code::Unavailable | tonic::Code::Unknown) => return Ok(None),
        Err(status) => bail!(
            "guildd at {} did not answer: {}",
            socket.display(),
            clean_message(status.message())
        ),
    }
    .into_inner();
    if status.protocol != guild_proto::PROTOCOL {
        bail!(
            "guildd {} at {} speaks protocol {}, this guild {} speaks {}: stop it with `guild daemon stop` \
             (runs keep running) and try again",
            status.version,
            socket.display(),
            status.protocol,
            guild_proto::VERSION,
            guild_proto::PROTOCOL
        );
    }
    Ok(Some(Client { channel, status }))
}

/// Connects, starting a daemon first when none is running.
pub async fn connect(target: &Target) -> anyhow::Result<Client> {
    if let Some(client) = try_connect(target).await? {
        return Ok(client);
    }
    start_daemon(target, None).await
}

/// The guildd binary beside this one, if there is one.
pub fn guildd_beside() -> Option<PathBuf> {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("guildd")))
        .filter(|p| p.is_file())
}

/// The guildd binary: beside this one, else on PATH.
fn guildd_exe() -> PathBuf {
    guildd_beside().unwrap_or_else(|| PathBuf::from("guildd"))
}

/// Starts guildd in its own session with its log in the data dir, then waits until it
/// answers on the socket (asking, not sleeping blindly), or fails with its log.
pub async fn start_daemon(target: &Target, listen: Option<&str>) -> anyhow::Result<Client> {
    let data_dir = &target.locations.data_dir;
    // The data dir holds the token and the socket: private from the start.
    std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
        .create(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let log_path = target.locations.log_file();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    let exe = guildd_exe();
    let mut cmd = std::process::Command::new(&exe);
    cmd.arg("--data-dir")
        .arg(data_dir)
        .arg("--socket")
        .arg(&target.locations.socket);
    if let Some(listen) = listen {
        cmd.arg("--listen").arg(listen);
    }
    cmd.stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: setsid is async-signal-safe; the daemon gets its own session so a Ctrl-C
    // in this terminal never reaches it.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let log_start = std::fs::metadata(&log_path).map(|m| m.len()).unwrap_or(0);
    let mut child = cmd.spawn().with_context(|| format!("cannot start {}", exe.display()))?;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut pause = Duration::from_millis(2);
    loop {
        if let Some(client) = try_connect(target).await? {
            return Ok(client);
        }
        if let Some(status) = child.try_wait()? {
            bail!(
                "guildd exited ({status}) before it answered:\n{}",
                log_since(&log_path, log_start)
            );
        }
        if Instant::now() > deadline {
            bail!(
                "guildd did not answer on {} within 20 s; see {}",
                target.locations.socket.display(),
                log_path.display()
            );
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

fn log_since(path: &Path, offset: u64) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    String::from_utf8_lossy(text.get(offset as usize..).unwrap_or_default())
        .trim_end()
        .to_string()
}
