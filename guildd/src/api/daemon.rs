//! DaemonService: version, protocol and shutdown.

use std::sync::Arc;

use guild_proto::v1::{
    CreateViewCodeRequest, DaemonStatus, GetStatusRequest, ShutdownRequest, ShutdownResponse, ViewCode,
    daemon_service_server::DaemonService,
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
            running_runs: shared.manager.running_count().await as u32,
            started_ms: shared.started_ms,
            problems: shared.manager.problems().await,
            slurm: Some({
                let report = shared.manager.slurm().report().await;
                guild_proto::v1::SlurmStatus {
                    found: report.found,
                    reachable: report.reachable,
                    detail: report.detail,
                    runs: report.runs,
                }
            }),
        }))
    }

    async fn create_view_code(&self, _: Request<CreateViewCodeRequest>) -> Result<Response<ViewCode>, Status> {
        let shared = &self.0;
        if shared.tcp_address.is_empty() {
            return Err(Status::failed_precondition(
                "this guildd serves no TCP port (it was started with --listen none): \
                 `guild daemon stop`, then `guild view` starts one that does",
            ));
        }
        let code = shared
            .view_codes
            .issue()
            .map_err(|e| Status::internal(format!("cannot make a code: {e}")))?;
        Ok(Response::new(ViewCode {
            url: format!("http://{}/?code={code}", shared.tcp_address),
            code,
            expires_ms: guild_proto::time::now_ms() + crate::web::codes::CODE_LIFETIME.as_millis() as i64,
        }))
    }

    async fn shutdown(&self, request: Request<ShutdownRequest>) -> Result<Response<ShutdownResponse>, Status> {
        let running = self.0.manager.running_count().await as u32;
        let _ = self.0.shutdown.send(request.into_inner().stop_runs).await;
        Ok(Response::new(ShutdownResponse { running_runs: running }))
    }
}
