//! Serving trained runs over HTTP: for each served run, a worker process started from
//! the model's `serve` op (see `worker` for the protocol) and an HTTP port that answers
//! `POST /run` and `GET /stats` (see `http`). Serves belong to the daemon: they are
//! listed, stopped one by one, and all stopped at shutdown.
//!
//! The manager keeps one handle per serve; each serve's worker task owns its process,
//! and its HTTP task owns its listener.

pub mod http;
pub mod plan;
pub mod stats;
pub mod worker;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::error::{Error, Result};
use crate::store::Index;
pub use worker::State;

/// The port `guild serve` listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 6444;
pub const DEFAULT_HOST: &str = "127.0.0.1";
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_MAX_QUEUE: usize = 256;
/// How long a start waits for the worker to answer its readiness probe, or to show it
/// has nothing to serve, before it answers that the worker is still starting.
pub const READY_WAIT: Duration = Duration::from_secs(30);

/// What a start request asks for, already validated by the API layer.
#[derive(Clone, Debug, Default)]
pub struct ServeOptions {
    pub host: String,
    /// None: [`DEFAULT_PORT`], or a free port when it is taken. Some(0): a free port.
    pub port: Option<u16>,
    /// The client's environment; empty means the daemon's own.
    pub env: BTreeMap<String, String>,
    pub timeout: Option<Duration>,
    pub max_queue: Option<usize>,
}

/// One serve as the API reports it.
#[derive(Clone, Debug)]
pub struct ServeInfo {
    pub run_id: String,
    pub model: String,
    pub run_dir: PathBuf,
    pub address: SocketAddr,
    pub state: State,
    pub argv: Vec<String>,
    pub started_ms: i64,
    pub requests: u64,
    pub errors: u64,
    pub restarts: u32,
    pub timeout: Duration,
    pub max_queue: usize,
    /// The run was already served; nothing new was started.
    pub existing: bool,
}

impl ServeInfo {
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }
}

struct Handle {
    run_id: String,
    model: String,
    run_dir: PathBuf,
    address: SocketAddr,
    argv: Vec<String>,
    started_ms: i64,
    timeout: Duration,
    max_queue: usize,
    state: watch::Receiver<State>,
    stats: Arc<stats::Stats>,
    restarts: Arc<AtomicU32>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Handle {
    fn info(&self) -> ServeInfo {
        ServeInfo {
            run_id: self.run_id.clone(),
            model: self.model.clone(),
            run_dir: self.run_dir.clone(),
            address: self.address,
            state: self.state.borrow().clone(),
            argv: self.argv.clone(),
            started_ms: self.started_ms,
            requests: self.stats.requests(),
            errors: self.stats.errors(),
            restarts: self.restarts.load(Ordering::Relaxed),
            timeout: self.timeout,
            max_queue: self.max_queue,
            existing: false,
        }
    }

    /// Stops the worker and the port, and waits for both.
    async fn stop(mut self) -> ServeInfo {
        let _ = self.stop.send(true);
        for task in self.tasks.iter_mut() {
            let _ = task.await;
        }
        let mut info = self.info();
        info.state = State::Stopped;
        info
    }
}

struct Inner {
    index: Index,
    python: String,
    /// Serves in start order.
    serves: Mutex<Vec<Handle>>,
    /// Starts and stops one at a time, so two starts of one run never race.
    changes: tokio::sync::Mutex<()>,
    shutting_down: AtomicBool,
}

#[derive(Clone)]
pub struct Manager {
    inner: Arc<Inner>,
}

impl Manager {
    /// `python` is the interpreter for module serve ops.
    pub fn new(index: Index, python: String) -> Manager {
        Manager {
            inner: Arc::new(Inner {
                index,
                python,
                serves: Mutex::new(Vec::new()),
                changes: tokio::sync::Mutex::new(()),
                shutting_down: AtomicBool::new(false),
            }),
        }
    }

    /// Serves a run: starts its worker and its HTTP port, and answers once the worker is
    /// ready (the next request gets an answer) or known to have nothing to serve, or,
    /// after [`READY_WAIT`], while it is still starting. A run already served is returned
    /// as it is (once it is past starting too), unless its start failed (no model), which
    /// is tried again.
    pub async fn start(&self, selector: &str, options: ServeOptions) -> Result<ServeInfo> {
        let (info, mut state) = self.start_or_find(selector, options).await?;
        // Waited for outside `changes`: a slow worker holds up no other start or stop.
        let _ = tokio::time::timeout(READY_WAIT, state.wait_for(|s| !matches!(s, State::Starting { .. }))).await;
        Ok(match self.find(&info.run_id) {
            Some(fresh) => ServeInfo {
                existing: info.existing,
                ..fresh
            },
            // Stopped meanwhile (`--stop`, or the daemon is stopping).
            None => ServeInfo {
                state: state.borrow().clone(),
                ..info
            },
        })
    }

    /// The run's serve, started if it has none, and its state to wait on.
    async fn start_or_find(
        &self,
        selector: &str,
        options: ServeOptions,
    ) -> Result<(ServeInfo, watch::Receiver<State>)> {
        let _change = self.inner.changes.lock().await;
        if self.inner.shutting_down.load(Ordering::SeqCst) {
            return Err(Error::ShuttingDown);
        }
        let run = self.inner.index.resolve(selector).await?;
        let host = if options.host.trim().is_empty() {
            DEFAULT_HOST.to_string()
        } else {
            options.host.trim().to_string()
        };
        if let Some(existing) = self.take_if(&run.id, |h| matches!(*h.state.borrow(), State::NoModel { .. })) {
            // A failed start is worth another try (the model may have been trained since).
            existing.stop().await;
        }
        if let Some((mut info, state)) = self.find_with_state(&run.id) {
            let wanted_port = options.port.filter(|p| *p != 0);
            if wanted_port.is_some_and(|p| p != info.address.port()) {
                return Err(Error::Conflict(format!(
                    "run {} is already served at {}; stop it first (guild serve --stop {})",
                    run.id,
                    info.url(),
                    run.id
                )));
            }
            info.existing = true;
            return Ok((info, state));
        }

        let listener = bind(&host, options.port).await?;
        let address = listener
            .local_addr()
            .map_err(|e| Error::io("cannot read the address of", PathBuf::from(&host), e))?;
        let spec = plan::resolve(&run, &self.inner.index, &self.inner.python, options.env).await;
        let argv = spec.as_ref().map(|s| s.argv.clone()).unwrap_or_default();
        let timeout = options.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let max_queue = options.max_queue.unwrap_or(DEFAULT_MAX_QUEUE).max(1);
        let initial = match &spec {
            Ok(_) => State::Starting { pid: 0 },
            Err(reason) => State::NoModel { reason: reason.clone() },
        };
        let (state_tx, state_rx) = watch::channel(initial);
        let (stop_tx, stop_rx) = watch::channel(false);
        let (jobs_tx, jobs_rx) = mpsc::channel(max_queue);
        let restarts = Arc::new(AtomicU32::new(0));
        let stats = Arc::new(stats::Stats::default());
        let endpoint = Arc::new(http::Endpoint {
            run_id: run.id.clone(),
            model: run.model.clone(),
            state: state_rx.clone(),
            jobs: jobs_tx,
            permits: Arc::new(Semaphore::new(max_queue)),
            max_queue,
            timeout,
            stats: stats.clone(),
        });
        // Every line the serve's tasks log names its run.
        let span = tracing::info_span!("serve", run = %run.id);
        let worker = tokio::spawn(
            worker::supervise(spec, timeout, jobs_rx, state_tx, restarts.clone(), stop_rx.clone())
                .instrument(span.clone()),
        );
        let port = tokio::spawn(http::serve(listener, endpoint, stop_rx).instrument(span.clone()));
        let handle = Handle {
            run_id: run.id.clone(),
            model: run.model.clone(),
            run_dir: run.run_dir.clone(),
            address,
            argv,
            started_ms: guild_proto::time::now_ms(),
            timeout,
            max_queue,
            state: state_rx,
            stats,
            restarts,
            stop: stop_tx,
            tasks: vec![port, worker],
        };
        let info = handle.info();
        let state = handle.state.clone();
        span.in_scope(|| tracing::info!(%address, "serving"));
        if let Ok(mut serves) = self.inner.serves.lock() {
            serves.push(handle);
        }
        Ok((info, state))
    }

    /// Stops serving a run (a run id, prefix or index; or the id of a served run that is
    /// no longer in the index).
    pub async fn stop(&self, selector: &str) -> Result<ServeInfo> {
        let _change = self.inner.changes.lock().await;
        let id = match self.inner.index.resolve(selector).await {
            Ok(run) => run.id,
            Err(err) => match self.list().into_iter().find(|s| s.run_id.starts_with(selector.trim())) {
                Some(served) => served.run_id,
                None => return Err(err),
            },
        };
        match self.take_if(&id, |_| true) {
            Some(handle) => Ok(handle.stop().await),
            None => Err(Error::NotFound(format!(
                "run {id} is not being served (see `guild status`)"
            ))),
        }
    }

    /// Every serve, oldest first.
    pub fn list(&self) -> Vec<ServeInfo> {
        self.inner
            .serves
            .lock()
            .map(|serves| serves.iter().map(Handle::info).collect())
            .unwrap_or_default()
    }

    /// Stops every serve and refuses new ones.
    pub async fn shutdown(&self) {
        let _change = self.inner.changes.lock().await;
        self.inner.shutting_down.store(true, Ordering::SeqCst);
        let handles = self
            .inner
            .serves
            .lock()
            .map(|mut serves| std::mem::take(&mut *serves))
            .unwrap_or_default();
        let mut stopping = tokio::task::JoinSet::new();
        for handle in handles {
            stopping.spawn(handle.stop());
        }
        while stopping.join_next().await.is_some() {}
    }

    fn find(&self, run_id: &str) -> Option<ServeInfo> {
        self.find_with_state(run_id).map(|(info, _)| info)
    }

    fn find_with_state(&self, run_id: &str) -> Option<(ServeInfo, watch::Receiver<State>)> {
        let serves = self.inner.serves.lock().ok()?;
        serves
            .iter()
            .find(|h| h.run_id == run_id)
            .map(|h| (h.info(), h.state.clone()))
    }

    /// Removes and returns the run's serve when `pred` holds for it.
    fn take_if(&self, run_id: &str, pred: impl Fn(&Handle) -> bool) -> Option<Handle> {
        let mut serves = self.inner.serves.lock().ok()?;
        let at = serves.iter().position(|h| h.run_id == run_id && pred(h))?;
        Some(serves.remove(at))
    }
}

/// Resolves once `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Binds the serve's port: the default port, or a free one when it is taken; a port the
/// user named, or an error saying what to do.
async fn bind(host: &str, port: Option<u16>) -> Result<tokio::net::TcpListener> {
    let attempt = |port: u16| async move { tokio::net::TcpListener::bind((host, port)).await };
    match port {
        None => match attempt(DEFAULT_PORT).await {
            Ok(listener) => Ok(listener),
            Err(err) if err.kind() == std::io::ErrorKind::AddrInUse => attempt(0)
                .await
                .map_err(|e| Error::Invalid(format!("cannot listen on {host}: {e}"))),
            Err(err) => Err(Error::Invalid(format!("cannot listen on {host}:{DEFAULT_PORT}: {err}"))),
        },
        Some(port) => attempt(port).await.map_err(|err| {
            if err.kind() == std::io::ErrorKind::AddrInUse {
                Error::Conflict(format!(
                    "cannot listen on {host}:{port}: the port is in use (pass another --port, or --port 0 for a free one)"
                ))
            } else {
                Error::Invalid(format!("cannot listen on {host}:{port}: {err}"))
            }
        }),
    }
}
