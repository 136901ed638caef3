//! TensorBoardService: start, stop and inspect the TensorBoard behind `/tb/`.

use std::sync::Arc;
use std::time::Duration;

use guild_proto::v1::{self as pb, tensor_board_service_server::TensorBoardService};
use tonic::{Request, Response, Status};

use super::Shared;
use crate::tensorboard::TensorBoardInfo;

pub struct TensorBoards(pub Arc<Shared>);

/// Most runs one TensorBoard may show.
const MAX_RUNS: usize = 10_000;

#[tonic::async_trait]
impl TensorBoardService for TensorBoards {
    async fn start_tensor_board(
        &self,
        request: Request<pb::StartTensorBoardRequest>,
    ) -> Result<Response<pb::TensorBoard>, Status> {
        let req = request.into_inner();
        if req.runs.len() > MAX_RUNS {
            return Err(Status::invalid_argument(format!("runs: at most {MAX_RUNS}")));
        }
        if let Some(empty) = req.runs.iter().position(|r| r.trim().is_empty()) {
            return Err(Status::invalid_argument(format!("runs: entry {} is empty", empty + 1)));
        }
        let project = (!req.project_dir.trim().is_empty()).then_some(req.project_dir.as_str());
        let idle = (req.idle_seconds > 0).then(|| Duration::from_secs(u64::from(req.idle_seconds)));
        let info = self
            .0
            .tensorboard
            .start(&req.runs, project, req.env.into_iter().collect(), idle)
            .await?;
        Ok(Response::new(self.to_proto(&info)))
    }

    async fn stop_tensor_board(
        &self,
        _: Request<pb::StopTensorBoardRequest>,
    ) -> Result<Response<pb::TensorBoard>, Status> {
        let info = self.0.tensorboard.stop().await;
        Ok(Response::new(self.to_proto(&info)))
    }

    async fn get_tensor_board(
        &self,
        _: Request<pb::GetTensorBoardRequest>,
    ) -> Result<Response<pb::TensorBoard>, Status> {
        let info = self.0.tensorboard.get().await;
        Ok(Response::new(self.to_proto(&info)))
    }
}

impl TensorBoards {
    fn to_proto(&self, info: &TensorBoardInfo) -> pb::TensorBoard {
        pb::TensorBoard {
            running: info.running,
            pid: info.pid,
            address: info.address.map(|a| a.to_string()).unwrap_or_default(),
            path: format!("{}/", crate::tensorboard::PATH_PREFIX),
            runs: info
                .runs
                .iter()
                .map(|r| pb::TensorBoardRun {
                    id: r.id.clone(),
                    name: r.name.clone(),
                    run_dir: r.run_dir.to_string_lossy().into_owned(),
                })
                .collect(),
            started_ms: info.started_ms,
            last_used_ms: info.last_used_ms,
            idle_seconds: info.idle.as_secs().min(u64::from(u32::MAX)) as u32,
            reused: info.reused,
            proxy_address: self.0.tcp_address.clone(),
        }
    }
}
