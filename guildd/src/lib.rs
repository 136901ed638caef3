//! guildd: the daemon that owns every run. `main` parses arguments and calls [`run`];
//! tests start the real binary the same way a user does.

pub mod api;
pub mod collectors;
pub mod daemon;
pub mod error;
pub mod fuzzing;
pub mod net;
pub mod process;
pub mod queue;
pub mod project;
pub mod runs;
pub mod samples;
pub mod secret;
pub mod serve;
pub mod slurm;
pub mod store;
pub mod sweep;
pub mod tensorboard;
#[cfg(test)]
mod testing;
pub mod web;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use guild_proto::locations::Locations;
use tokio_stream::wrappers::UnixListenerStream;

pub use daemon::{Listen, Listeners};

pub struct Config {
    pub locations: Locations,
    /// The Python interpreter for module ops.
    pub python: String,
    /// This binary, started as `guildd supervise` for each run.
    pub supervisor_exe: PathBuf,
    /// The GPUs the queue gives out (`--gpus`, `GUILD_GPUS`); None: NVML's.
    pub gpus: Option<Vec<String>>,
    /// The most runs at once (`--max-runs`); None: no limit.
    pub max_runs: Option<usize>,
}

/// Serves until `shutdown` resolves or a client asks for shutdown. Runs keep running
/// after the daemon exits unless the shutdown request asked to stop them.
pub async fn run(config: Config, listeners: Listeners, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let locations = &config.locations;
    let index = store::Index::open(&locations.index_db()).await?;
    let stats = collectors::sampler::StatsService::start();
    let gpus = match &config.gpus {
        Some(gpus) => gpus.clone(),
        None => stats.gpus().await.iter().map(u32::to_string).collect(),
    };
    tracing::info!(gpus = %gpus.join(","), max_runs = ?config.max_runs, "the queue's resources");
    let manager = runs::Manager::new(
        index,
        stats,
        runs::Settings {
            python: config.python.clone(),
            supervisor_exe: config.supervisor_exe.clone(),
            resources: queue::Resources {
                gpus,
                max_runs: config.max_runs,
            },
        },
    );
    manager.recover().await;
    manager
        .reconcile()
        .await
        .context("cannot reconcile runs left by an earlier daemon")?;

    let (shutdown_tx, mut shutdown_rx) = tokio::sync::mpsc::channel::<bool>(1);
    let tcp_address = match &listeners.tcp {
        Some(tcp) => tcp.local_addr()?.to_string(),
        None => String::new(),
    };
    let serves = serve::Manager::new(manager.index().clone(), config.python.clone());
    let tensorboard = tensorboard::Manager::new(manager.index().clone(), config.python.clone(), &locations.data_dir);
    let view_codes = Arc::new(web::ViewCodes::default());
    let shared = Arc::new(api::Shared {
        view_codes: view_codes.clone(),
        serves: serves.clone(),
        tensorboard: tensorboard.clone(),
        manager: manager.clone(),
        data_dir: locations.data_dir.to_string_lossy().into_owned(),
        socket: listeners.socket.to_string_lossy().into_owned(),
        tcp_address: tcp_address.clone(),
        started_ms: guild_proto::time::now_ms(),
        shutdown: shutdown_tx,
    });
    let routes = api::routes(shared);
    // The token exists before anything answers, so a client that sees tcp_address finds it.
    let token = match &listeners.tcp {
        Some(_) => Some(daemon::load_or_create_token(&locations.token_file())?),
        None => None,
    };
    let (stop_serving, _) = tokio::sync::watch::channel(false);

    let mut servers = tokio::task::JoinSet::new();
    {
        let mut stopped = stop_serving.subscribe();
        let incoming = UnixListenerStream::new(listeners.unix);
        // SAFETY: geteuid cannot fail.
        let uid = unsafe { libc::geteuid() };
        let router = tonic::transport::Server::builder()
            .layer(tonic::service::InterceptorLayer::new(api::PeerCheck { uid }))
            .add_routes(routes.clone());
        servers.spawn(async move {
            router
                .serve_with_incoming_shutdown(incoming, async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await
        });
    }
    if let (Some(tcp), Some(token)) = (listeners.tcp, token) {
        let host_check = net::HostCheck {
            bound: tcp.local_addr()?.ip(),
        };
        let router = web::tcp_router(
            routes,
            token.into(),
            tensorboard.clone(),
            view_codes,
            manager.index().clone(),
        );
        let service = tower::ServiceBuilder::new()
            .layer(tower_http::trace::TraceLayer::new_for_http())
            .layer(host_check.layer())
            .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(net::BODY_TIMEOUT))
            .service(router);
        let limits = net::Limits::standard();
        let mut http = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
        http.http1()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(limits.header_read);
        http.http2()
            .timer(hyper_util::rt::TokioTimer::new())
            .max_concurrent_streams(net::MAX_STREAMS)
            .keep_alive_interval(Some(std::time::Duration::from_secs(20)))
            .keep_alive_timeout(std::time::Duration::from_secs(20));
        let stopped = stop_serving.subscribe();
        servers.spawn(async move {
            net::serve(tcp, limits, stopped, move |io, connection| {
                let service = hyper_util::service::TowerToHyperService::new(connection.clone().track(service.clone()));
                http.serve_connection_with_upgrades(io, service).into_owned()
            })
            .await;
            Ok(())
        });
    }
    eprintln!(
        "guildd {} listening on {}{}",
        guild_proto::VERSION,
        listeners.socket.display(),
        if tcp_address.is_empty() {
            String::new()
        } else {
            format!(" and tcp {tcp_address}")
        }
    );

    let stop_runs = tokio::select! {
        _ = shutdown => false,
        requested = shutdown_rx.recv() => requested.unwrap_or(false),
        Some(result) = servers.join_next() => {
            result.context("server task")?.context("server")?;
            false
        }
    };
    tracing::info!(stop_runs, "shutting down");
    // Serves and TensorBoard are the daemon's own processes: they end with it.
    tokio::join!(serves.shutdown(), tensorboard.shutdown());
    manager.shutdown(stop_runs).await;
    let _ = stop_serving.send(true);
    // Graceful shutdown waits for open connections; a dashboard's streams (WatchRuns,
    // WatchSeries, ReadOutput) never end by themselves, so they get a short grace.
    let drained = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        while servers.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::info!("closing connections still open after 2 s");
        servers.abort_all();
        while servers.join_next().await.is_some() {}
    }
    if !listeners.activated {
        let _ = std::fs::remove_file(&listeners.socket);
    }
    Ok(())
}
