//! DaemonService: version, protocol and shutdown.

use std::sync::Arc;

use guild_proto::v1::{
    DaemonStatus, GetStatusRequest, ShutdownRequest, ShutdownResponse, daemon_service_server::DaemonService,
};
use tonic::{Request, Response, Status};

use super::Shared;

pub struct Daemon(pub Arc<Shared>);

#[tonic::async_trait]
impl DaemonService for Daemon {
    async fn get_status(&self, _: Request<GetStatusRequest>) -> Result<Response<DaemonStatus>, Status> {
        let shared = &self.0;
        Ok(Response::new(DaemonStatus {
            version: guild_proto::VERSION.to_string(),
            protocol: guild_proto::PROTOCOL,
            pid: std::process::id(),
            data_dir: shared.data_dir.clone(),
            socket: shared.socket.clone(),
            tcp_address: shared.tcp_address.clone(),
            running_runs: shared.manager.running_count() as u32,
            started_ms: shared.started_ms,
            problems: shared.manager.problems(),
        }))
    }

    async fn shutdown(&self, request: Request<ShutdownRequest>) -> Result<Response<ShutdownResponse>, Status> {
        let running = self.0.manager.running_count() as u32;
        let _ = self.0.shutdown.send(request.into_inner().stop_runs).await;
        Ok(Response::new(ShutdownResponse { running_runs: running }))
    }
}
