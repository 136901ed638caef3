//! ServeService: start, stop and list the serves of trained runs.

use std::sync::Arc;
use std::time::Duration;

use guild_proto::v1::{self as pb, serve_service_server::ServeService};
use tonic::{Request, Response, Status};

use super::{Shared, required};
use crate::serve::{ServeInfo, ServeOptions, State};

pub struct Serves(pub Arc<Shared>);

/// The longest per-request timeout a client may ask for (one hour).
const MAX_TIMEOUT_MS: u32 = 3_600_000;
/// The largest queue a client may ask for.
const MAX_QUEUE: u32 = 65_536;

#[tonic::async_trait]
impl ServeService for Serves {
    async fn start_serve(&self, request: Request<pb::StartServeRequest>) -> Result<Response<pb::Serve>, Status> {
        let req = request.into_inner();
        let run = required("run", &req.run)?;
        let port = match req.port {
            Some(port) => Some(
                u16::try_from(port)
                    .map_err(|_| Status::invalid_argument(format!("port: expected 0 to 65535, got {port}")))?,
            ),
            None => None,
        };
        if req.timeout_ms > MAX_TIMEOUT_MS {
            return Err(Status::invalid_argument(format!(
                "timeout_ms: at most {MAX_TIMEOUT_MS} (one hour), got {}",
                req.timeout_ms
            )));
        }
        if req.max_queue > MAX_QUEUE {
            return Err(Status::invalid_argument(format!(
                "max_queue: at most {MAX_QUEUE}, got {}",
                req.max_queue
            )));
        }
        let options = ServeOptions {
            host: req.host,
            port,
            env: req.env.into_iter().collect(),
            timeout: (req.timeout_ms > 0).then(|| Duration::from_millis(u64::from(req.timeout_ms))),
            max_queue: (req.max_queue > 0).then_some(req.max_queue as usize),
        };
        let info = self.0.serves.start(run, options).await?;
        Ok(Response::new(to_proto(&info)))
    }

    async fn stop_serve(&self, request: Request<pb::StopServeRequest>) -> Result<Response<pb::Serve>, Status> {
        let run = required("run", &request.get_ref().run)?;
        let info = self.0.serves.stop(run).await?;
        Ok(Response::new(to_proto(&info)))
    }

    async fn list_serves(
        &self,
        request: Request<pb::ListServesRequest>,
    ) -> Result<Response<pb::ListServesResponse>, Status> {
        let selector = request.into_inner().run;
        let mut serves = self.0.serves.list();
        if !selector.trim().is_empty() {
            let id = self.0.manager.index().resolve(&selector).await?.id;
            serves.retain(|s| s.run_id == id);
        }
        Ok(Response::new(pb::ListServesResponse {
            serves: serves.iter().map(to_proto).collect(),
        }))
    }
}

fn to_proto(info: &ServeInfo) -> pb::Serve {
    let state = match info.state {
        State::Starting { .. } => pb::ServeState::Starting,
        State::Ready { .. } => pb::ServeState::Ready,
        State::Restarting { .. } => pb::ServeState::Restarting,
        State::NoModel { .. } => pb::ServeState::NoModel,
        State::Stopped => pb::ServeState::Stopped,
    };
    pb::Serve {
        run: info.run_id.clone(),
        model: info.model.clone(),
        run_dir: info.run_dir.to_string_lossy().into_owned(),
        address: info.address.to_string(),
        url: info.url(),
        state: state as i32,
        reason: info.state.reason().to_string(),
        pid: info.state.pid(),
        argv: info.argv.clone(),
        started_ms: info.started_ms,
        requests: info.requests,
        errors: info.errors,
        restarts: info.restarts,
        existing: info.existing,
        timeout_ms: info.timeout.as_millis().min(u128::from(u32::MAX)) as u32,
        max_queue: info.max_queue.min(u32::MAX as usize) as u32,
    }
}
