//! The gRPC API: one file per service, thin handlers over the run manager and stores.
//! Served on the Unix socket (no token: its 0600 mode is the guard) and, when asked,
//! on loopback TCP (every request needs the data dir's token).

mod compare;
mod daemon;
mod follow;
mod manage;
pub mod media;
mod output;
mod projects;
mod queue;
mod runs;
mod series;
mod serve;
mod tensorboard;

use std::sync::Arc;

use guild_proto::v1::{
    daemon_service_server::DaemonServiceServer, output_service_server::OutputServiceServer,
    project_service_server::ProjectServiceServer, run_service_server::RunServiceServer,
    series_service_server::SeriesServiceServer,
};
use guild_proto::v1::{
    serve_service_server::ServeServiceServer, tensor_board_service_server::TensorBoardServiceServer,
};
use tonic::service::Routes;

use crate::runs::Manager;

/// What every handler can reach.
pub struct Shared {
    pub manager: Manager,
    pub data_dir: String,
    pub socket: String,
    pub tcp_address: String,
    pub started_ms: i64,
    /// Asks the daemon to shut down (`true`: stop running runs first).
    pub shutdown: tokio::sync::mpsc::Sender<bool>,
    /// Serves of trained runs (`guild serve`).
    pub serves: crate::serve::Manager,
    /// The TensorBoard behind `/tb/`.
    pub tensorboard: crate::tensorboard::Manager,
    /// One-time codes that open the dashboard (`guild view`).
    pub view_codes: Arc<crate::web::ViewCodes>,
}

/// Largest response message (a whole run list, a large project, a GetSeries answer); a
/// larger one fails with an error that names the size.
pub const MAX_MESSAGE: usize = 64 * 1024 * 1024;

pub fn routes(shared: Arc<Shared>) -> Routes {
    let mut routes = Routes::builder();
    let shared_for_compare = shared.clone();
    routes
        .add_service(DaemonServiceServer::new(daemon::Daemon(shared.clone())))
        .add_service(ProjectServiceServer::new(projects::Projects).max_encoding_message_size(MAX_MESSAGE))
        .add_service(RunServiceServer::new(runs::Runs(shared.clone())).max_encoding_message_size(MAX_MESSAGE))
        .add_service(OutputServiceServer::new(output::Output(shared.clone())).max_encoding_message_size(MAX_MESSAGE))
        .add_service(SeriesServiceServer::new(series::Series(shared.clone())).max_encoding_message_size(MAX_MESSAGE))
        .add_service(ServeServiceServer::new(serve::Serves(shared.clone())))
        .add_service(TensorBoardServiceServer::new(tensorboard::TensorBoards(shared)));
    routes.add_service(
        guild_proto::v1::media_service_server::MediaServiceServer::new(media::Media(shared_for_compare.clone()))
            .max_encoding_message_size(MAX_MESSAGE),
    );
    add_scripting_services(&mut routes, shared_for_compare);
    routes.routes()
}

/// QueueService and SweepService (issue 16).
fn add_queue_services(routes: &mut tonic::service::RoutesBuilder, shared: Arc<Shared>) {
    use guild_proto::v1::{queue_service_server::QueueServiceServer, sweep_service_server::SweepServiceServer};
    routes
        .add_service(QueueServiceServer::new(queue::Queues(shared.clone())).max_encoding_message_size(MAX_MESSAGE))
        .add_service(SweepServiceServer::new(queue::Sweeps(shared)).max_encoding_message_size(MAX_MESSAGE));
}

/// CompareService, and what generic gRPC tools need: server reflection (v1 and v1alpha,
/// so grpcurl, evans and grpcio-reflection all find the services) and the standard
/// health service (the overall status "" and each guild.v1 service are SERVING).
fn add_scripting_services(routes: &mut tonic::service::RoutesBuilder, shared: Arc<Shared>) {
    use guild_proto::v1::compare_service_server::CompareServiceServer;
    routes
        .add_service(CompareServiceServer::new(compare::Compare::new(&shared)).max_encoding_message_size(MAX_MESSAGE));
    add_queue_services(routes, shared.clone());
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(guild_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    match (reflection().build_v1(), reflection().build_v1alpha()) {
        (Ok(v1), Ok(v1alpha)) => {
            routes.add_service(v1).add_service(v1alpha);
        }
        (Err(err), _) | (_, Err(err)) => tracing::error!("gRPC reflection is off: {err}"),
    }
    let (reporter, health) = tonic_health::server::health_reporter();
    routes.add_service(health);
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            for name in [
                "guild.v1.DaemonService",
                "guild.v1.ProjectService",
                "guild.v1.RunService",
                "guild.v1.OutputService",
                "guild.v1.SeriesService",
                "guild.v1.CompareService",
                "guild.v1.QueueService",
                "guild.v1.SweepService",
                "guild.v1.MediaService",
            ] {
                reporter
                    .set_service_status(name, tonic_health::ServingStatus::Serving)
                    .await;
            }
        });
    }
}

/// Rejects TCP requests that lack the token (`x-guild-token` or `authorization: Bearer`).
#[derive(Clone)]
pub struct TokenCheck {
    pub token: Arc<str>,
}

impl tonic::service::Interceptor for TokenCheck {
    fn call(&mut self, request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let meta = request.metadata();
        let given = meta
            .get(guild_proto::TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
            .or_else(|| {
                meta.get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
            });
        match given {
            Some(token) if crate::secret::same(token.as_bytes(), self.token.as_bytes()) => Ok(request),
            _ => Err(tonic::Status::unauthenticated(
                "a token is required on TCP: use the URL `guild view` prints",
            )),
        }
    }
}

/// Refuses Unix-socket clients of another user (SO_PEERCRED). The socket's 0600 mode
/// already keeps them out; this holds even if the mode is loosened.
#[derive(Clone)]
pub struct PeerCheck {
    pub uid: u32,
}

impl tonic::service::Interceptor for PeerCheck {
    fn call(&mut self, request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let peer = request
            .extensions()
            .get::<tonic::transport::server::UdsConnectInfo>()
            .and_then(|info| info.peer_cred)
            .map(|cred| cred.uid());
        match peer {
            Some(uid) if uid == self.uid => Ok(request),
            Some(uid) => Err(tonic::Status::permission_denied(format!(
                "this guildd belongs to uid {}; uid {uid} may not use it",
                self.uid
            ))),
            None => Err(tonic::Status::permission_denied("cannot tell who is connecting")),
        }
    }
}

/// Fails with InvalidArgument naming the field when a required string is empty.
pub(crate) fn required<'a>(field: &str, value: &'a str) -> Result<&'a str, tonic::Status> {
    if value.trim().is_empty() {
        Err(tonic::Status::invalid_argument(format!("{field} is required")))
    } else {
        Ok(value)
    }
}
