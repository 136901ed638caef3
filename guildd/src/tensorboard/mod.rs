//! TensorBoard beside the dashboard: one TensorBoard process for a selection of runs,
//! started on a free loopback port with `--path_prefix /tb` and proxied under `/tb/` on
//! the dashboard's port (see `proxy`). It is reused while the selection stays the same,
//! replaced when it changes, and stopped when idle (no request through `/tb/` for a
//! while) and at shutdown.
//!
//! The manager holds the current instance; a watcher task per instance owns the
//! process: it notices the process ending on its own, the idle deadline, and stops.

pub mod proxy;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use http_body_util::BodyExt;
use tokio::process::{Child, Command};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::error::Error;
use crate::process::kill_group;
use crate::store::{Index, RunRecord};

/// Where TensorBoard is served on both ports.
pub const PATH_PREFIX: &str = "/tb";
pub const DEFAULT_IDLE: Duration = Duration::from_secs(600);
/// TensorBoard's output, in the data folder.
pub const LOG_FILE: &str = "tensorboard.log";
/// `PID START_TIME` of the running TensorBoard, in the data folder: a daemon that died
/// without stopping it (SIGKILL) leaves it behind, and the next daemon stops it.
pub const PID_FILE: &str = "tensorboard.pid";
/// How long TensorBoard may take to answer after it starts (it imports TensorFlow when
/// that is installed).
const START_TIMEOUT: Duration = Duration::from_secs(120);
const STOP_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum TensorBoardError {
    #[error(
        "TensorBoard is not installed where guild runs: install it with `pip install tensorboard` \
         (looked for `tensorboard` on PATH and for the tensorboard module of {python})"
    )]
    NotInstalled { python: String },
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Guild(#[from] Error),
}

impl From<TensorBoardError> for tonic::Status {
    fn from(err: TensorBoardError) -> Self {
        match err {
            TensorBoardError::NotInstalled { .. } => tonic::Status::failed_precondition(err.to_string()),
            TensorBoardError::Failed(message) => tonic::Status::unavailable(message),
            TensorBoardError::Guild(err) => err.into(),
        }
    }
}

/// A run as TensorBoard shows it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TensorBoardRun {
    pub id: String,
    /// The id, with the label in parentheses when set (`,` and `:` would break
    /// `--logdir_spec`, so they become `_`).
    pub name: String,
    pub run_dir: PathBuf,
}

impl TensorBoardRun {
    fn of(run: &RunRecord) -> TensorBoardRun {
        let label: String = run
            .label
            .trim()
            .chars()
            .map(|c| if c == ',' || c == ':' { '_' } else { c })
            .collect();
        TensorBoardRun {
            id: run.id.clone(),
            name: if label.is_empty() {
                run.id.clone()
            } else {
                format!("{} ({label})", run.id)
            },
            run_dir: run.run_dir.clone(),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct TensorBoardInfo {
    pub running: bool,
    pub pid: u32,
    pub address: Option<SocketAddr>,
    pub runs: Vec<TensorBoardRun>,
    pub started_ms: i64,
    pub last_used_ms: i64,
    pub idle: Duration,
    /// StartTensorBoard reused the running instance.
    pub reused: bool,
}

struct Instance {
    pid: u32,
    address: SocketAddr,
    runs: Vec<TensorBoardRun>,
    started_ms: i64,
    idle: Duration,
    alive: Arc<AtomicBool>,
    stop: Option<oneshot::Sender<()>>,
    watcher: JoinHandle<()>,
}

struct Inner {
    index: Index,
    python: String,
    log_file: PathBuf,
    pid_file: PathBuf,
    current: tokio::sync::Mutex<Option<Instance>>,
    /// The running instance's address, for the proxy (no lock held across requests).
    address: RwLock<Option<SocketAddr>>,
    last_used_ms: AtomicI64,
    shutting_down: AtomicBool,
}

#[derive(Clone)]
pub struct Manager {
    inner: Arc<Inner>,
}

impl Manager {
    /// `python` runs `-m tensorboard.main` when no `tensorboard` is on PATH; TensorBoard's
    /// output goes to `data_dir/tensorboard.log`. Stops a TensorBoard an earlier daemon
    /// left running.
    pub fn new(index: Index, python: String, data_dir: &Path) -> Manager {
        let pid_file = data_dir.join(PID_FILE);
        stop_leftover(&pid_file);
        Manager {
            inner: Arc::new(Inner {
                index,
                python,
                log_file: data_dir.join(LOG_FILE),
                pid_file,
                current: tokio::sync::Mutex::new(None),
                address: RwLock::new(None),
                last_used_ms: AtomicI64::new(0),
                shutting_down: AtomicBool::new(false),
            }),
        }
    }

    /// The running TensorBoard's address, for the proxy.
    pub fn address(&self) -> Option<SocketAddr> {
        self.inner.address.read().ok().and_then(|a| *a)
    }

    /// Marks TensorBoard as in use now (it is stopped after a while without use).
    pub fn touch(&self) {
        self.inner
            .last_used_ms
            .store(guild_proto::time::now_ms(), Ordering::Relaxed);
    }

    /// Starts TensorBoard for the runs (selectors; none: every run of `project_dir`, or
    /// every run), or reuses the running one when it shows the same runs. Returns once
    /// it answers.
    pub async fn start(
        &self,
        selectors: &[String],
        project_dir: Option<&str>,
        env: BTreeMap<String, String>,
        idle: Option<Duration>,
    ) -> Result<TensorBoardInfo, TensorBoardError> {
        let mut current = self.inner.current.lock().await;
        if self.inner.shutting_down.load(Ordering::SeqCst) {
            return Err(Error::ShuttingDown.into());
        }
        let runs = self.selection(selectors, project_dir).await?;
        let idle = idle.unwrap_or(DEFAULT_IDLE);
        if let Some(instance) = current.as_mut()
            && instance.alive.load(Ordering::SeqCst)
            && instance.runs == runs
        {
            instance.idle = idle;
            self.touch();
            let mut info = self.info_of(instance);
            info.reused = true;
            return Ok(info);
        }
        if let Some(old) = current.take() {
            self.stop_instance(old).await;
        }
        let instance = self.launch(runs, env, idle).await?;
        let info = self.info_of(&instance);
        *current = Some(instance);
        Ok(info)
    }

    pub async fn stop(&self) -> TensorBoardInfo {
        let mut current = self.inner.current.lock().await;
        match current.take() {
            Some(instance) => {
                let mut info = self.info_of(&instance);
                self.stop_instance(instance).await;
                info.running = false;
                info
            }
            None => TensorBoardInfo::default(),
        }
    }

    pub async fn get(&self) -> TensorBoardInfo {
        let current = self.inner.current.lock().await;
        match current.as_ref() {
            Some(instance) if instance.alive.load(Ordering::SeqCst) => self.info_of(instance),
            _ => TensorBoardInfo::default(),
        }
    }

    /// Stops TensorBoard and refuses to start it again.
    pub async fn shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
        self.stop().await;
    }

    fn info_of(&self, instance: &Instance) -> TensorBoardInfo {
        TensorBoardInfo {
            running: instance.alive.load(Ordering::SeqCst),
            pid: instance.pid,
            address: Some(instance.address),
            runs: instance.runs.clone(),
            started_ms: instance.started_ms,
            last_used_ms: self.inner.last_used_ms.load(Ordering::Relaxed),
            idle: instance.idle,
            reused: false,
        }
    }

    async fn selection(&self, selectors: &[String], project_dir: Option<&str>) -> Result<Vec<TensorBoardRun>, Error> {
        let index = &self.inner.index;
        let records = if selectors.is_empty() {
            index.list_runs(project_dir, 0, 0).await?.0
        } else {
            let mut records = Vec::new();
            for selector in selectors {
                records.push(index.resolve(selector).await?);
            }
            records
        };
        let mut runs: Vec<TensorBoardRun> = records.iter().map(TensorBoardRun::of).collect();
        runs.sort();
        runs.dedup_by(|a, b| a.id == b.id);
        if runs.is_empty() {
            return Err(Error::Invalid(match project_dir {
                Some(dir) => format!("no runs in {dir} to show in TensorBoard (train one first)"),
                None => "no runs to show in TensorBoard (train one first)".into(),
            }));
        }
        if let Some(run) = runs.iter().find(|r| r.run_dir.to_string_lossy().contains(',')) {
            return Err(Error::Invalid(format!(
                "run {}: TensorBoard cannot read a folder whose path holds a comma ({})",
                run.id,
                run.run_dir.display()
            )));
        }
        Ok(runs)
    }

    /// Starts a TensorBoard process for the runs and waits until it answers.
    async fn launch(
        &self,
        runs: Vec<TensorBoardRun>,
        env: BTreeMap<String, String>,
        idle: Duration,
    ) -> Result<Instance, TensorBoardError> {
        let env: BTreeMap<String, String> = if env.is_empty() {
            std::env::vars().collect()
        } else {
            env
        };
        let mut argv = self.command(&env).await?;
        let port = free_port().map_err(|e| TensorBoardError::Failed(format!("cannot find a free port: {e}")))?;
        let spec: Vec<String> = runs
            .iter()
            .map(|r| format!("{}:{}", r.name, r.run_dir.display()))
            .collect();
        argv.extend([
            "--logdir_spec".to_string(),
            spec.join(","),
            "--path_prefix".to_string(),
            PATH_PREFIX.to_string(),
            "--host".to_string(),
            "127.0.0.1".to_string(),
            "--port".to_string(),
            port.to_string(),
        ]);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.inner.log_file)
            .map_err(|e| Error::io("cannot open", &self.inner.log_file, e))?;
        let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
        let mut command = Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .env_clear()
            .envs(&env)
            .stdin(Stdio::null())
            .stdout(
                log.try_clone()
                    .map_err(|e| Error::io("cannot open", &self.inner.log_file, e))?,
            )
            .stderr(log)
            .kill_on_drop(true);
        crate::process::in_own_group(&mut command);
        let mut child = command
            .spawn()
            .map_err(|e| TensorBoardError::Failed(format!("cannot start {}: {e}", argv[0])))?;
        let pid = child.id().unwrap_or(0);
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        tracing::info!(pid, %address, runs = runs.len(), "starting TensorBoard");
        let ready = tokio::select! {
            ready = wait_ready(address) => ready,
            status = child.wait() => Err(format!(
                "TensorBoard exited ({}) before it answered{}",
                status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()),
                log_tail(&self.inner.log_file, log_start)
            )),
        };
        if let Err(reason) = ready {
            kill_group(pid);
            let _ = child.wait().await;
            return Err(TensorBoardError::Failed(reason));
        }
        let start_time = crate::process::start_time(pid).unwrap_or(0);
        if let Err(err) = std::fs::write(&self.inner.pid_file, format!("{pid} {start_time}\n")) {
            tracing::warn!("cannot write {}: {err}", self.inner.pid_file.display());
        }
        let alive = Arc::new(AtomicBool::new(true));
        let (stop_tx, stop_rx) = oneshot::channel();
        if let Ok(mut current) = self.inner.address.write() {
            *current = Some(address);
        }
        self.touch();
        let watcher = tokio::spawn(watch(self.clone(), child, pid, address, idle, alive.clone(), stop_rx));
        Ok(Instance {
            pid,
            address,
            runs,
            started_ms: guild_proto::time::now_ms(),
            idle,
            alive,
            stop: Some(stop_tx),
            watcher,
        })
    }

    /// `tensorboard` from PATH, else `python -m tensorboard.main` when Python has it.
    async fn command(&self, env: &BTreeMap<String, String>) -> Result<Vec<String>, TensorBoardError> {
        if let Some(exe) = which("tensorboard", env.get("PATH").map(String::as_str)) {
            return Ok(vec![exe.to_string_lossy().into_owned()]);
        }
        let python = &self.inner.python;
        let importable = Command::new(python)
            .args(["-c", "import tensorboard.main"])
            .env_clear()
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .is_ok_and(|s| s.success());
        if importable {
            Ok(vec![python.clone(), "-m".into(), "tensorboard.main".into()])
        } else {
            Err(TensorBoardError::NotInstalled { python: python.clone() })
        }
    }

    async fn stop_instance(&self, mut instance: Instance) {
        self.forget(instance.address);
        if let Some(stop) = instance.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut instance.watcher).await;
    }

    fn forget(&self, address: SocketAddr) {
        if let Ok(mut current) = self.inner.address.write()
            && *current == Some(address)
        {
            *current = None;
        }
    }
}

/// Owns a TensorBoard process until it ends, is stopped, or sits idle too long.
async fn watch(
    manager: Manager,
    mut child: Child,
    pid: u32,
    address: SocketAddr,
    idle: Duration,
    alive: Arc<AtomicBool>,
    mut stop: oneshot::Receiver<()>,
) {
    loop {
        let last_used = manager.inner.last_used_ms.load(Ordering::Relaxed);
        let idle_ms = idle.as_millis() as i64;
        let left = (last_used + idle_ms - guild_proto::time::now_ms()).max(0) as u64;
        tokio::select! {
            status = child.wait() => {
                tracing::warn!(pid, "TensorBoard exited on its own ({})",
                    status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()));
                break;
            }
            _ = &mut stop => {
                stop_child(&mut child, pid).await;
                break;
            }
            _ = tokio::time::sleep(Duration::from_millis(left)) => {
                let last_used = manager.inner.last_used_ms.load(Ordering::Relaxed);
                if guild_proto::time::now_ms() - last_used >= idle_ms {
                    tracing::info!(pid, "stopping TensorBoard: idle for {} s", idle.as_secs());
                    stop_child(&mut child, pid).await;
                    break;
                }
            }
        }
    }
    alive.store(false, Ordering::SeqCst);
    manager.forget(address);
    let _ = std::fs::remove_file(&manager.inner.pid_file);
}

/// Asks TensorBoard until it answers (bounded backoff), or fails after [`START_TIMEOUT`].
async fn wait_ready(address: SocketAddr) -> Result<(), String> {
    let client = proxy::client();
    let uri: hyper::Uri = format!("http://{address}{PATH_PREFIX}/data/environment")
        .parse()
        .map_err(|e| format!("bad probe address: {e}"))?;
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    let mut pause = Duration::from_millis(20);
    loop {
        let request = hyper::Request::get(uri.clone())
            .body(tonic::service::AxumBody::empty())
            .map_err(|e| e.to_string())?;
        if let Ok(response) = client.request(request).await {
            let ok = response.status().is_success();
            let _ = response.into_body().collect().await;
            if ok {
                return Ok(());
            }
        }
        if tokio::time::Instant::now() + pause > deadline {
            return Err(format!(
                "TensorBoard did not answer on {address} within {} s",
                START_TIMEOUT.as_secs()
            ));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

async fn stop_child(child: &mut Child, pid: u32) {
    crate::process::terminate(child, pid, STOP_GRACE).await;
}

/// Stops the TensorBoard named in the pid file when it is still that process.
fn stop_leftover(pid_file: &Path) {
    let Ok(text) = std::fs::read_to_string(pid_file) else {
        return;
    };
    let mut words = text.split_whitespace().map(|w| w.parse::<u64>().ok());
    if let (Some(Some(pid)), Some(Some(start))) = (words.next(), words.next())
        && let Ok(pid) = u32::try_from(pid)
        && crate::process::same_process(pid, Some(start))
    {
        tracing::info!(pid, "stopping the TensorBoard an earlier guildd left running");
        kill_group(pid);
    }
    let _ = std::fs::remove_file(pid_file);
}

/// A port free on loopback right now (TensorBoard binds it a moment later).
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// An executable named `name` on `path` (a PATH value).
fn which(name: &str, path: Option<&str>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(path?)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            std::fs::metadata(candidate).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// `: <the last lines TensorBoard wrote since it started>`, or nothing.
fn log_tail(path: &Path, from: u64) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(text.get(from as usize..).unwrap_or_default());
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    if lines.is_empty() {
        return String::new();
    }
    let tail = lines[lines.len().saturating_sub(3)..].join(" / ");
    format!(": {}", tail.chars().take(1000).collect::<String>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, label: &str) -> RunRecord {
        RunRecord {
            id: id.into(),
            project_dir: "/p".into(),
            project_name: "p".into(),
            model: "m".into(),
            op: "train".into(),
            status: crate::store::Status::Completed,
            created_ms: 0,
            started_ms: None,
            stopped_ms: None,
            exit_status: None,
            run_dir: PathBuf::from(format!("/p/runs/{id}")),
            label: label.into(),
            pid: None,
            pid_start: None,
            reason: String::new(),
            source_run: String::new(),
        }
    }

    #[test]
    fn names_carry_the_label_without_spec_separators() {
        assert_eq!(TensorBoardRun::of(&record("r1", "")).name, "r1");
        assert_eq!(
            TensorBoardRun::of(&record("r1", "lr=0.1, fast: yes")).name,
            "r1 (lr=0.1_ fast_ yes)"
        );
    }

    #[test]
    fn which_finds_executables_only() {
        let path = std::env::var("PATH").unwrap_or_default();
        assert!(which("sh", Some(&path)).is_some());
        assert!(which("no-such-program-here", Some(&path)).is_none());
        assert!(which("sh", None).is_none());
    }
}
