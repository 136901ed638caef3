//! SeriesService: a run's series keys with their summaries, and their samples.

use std::sync::Arc;

use guild_proto::v1::{self as pb, series_service_server::SeriesService};
use tonic::{Request, Response, Status};

use super::{Shared, required};
use crate::store::rundb;

pub struct Series(pub Arc<Shared>);

const MAX_KEYS: usize = 1000;

#[tonic::async_trait]
impl SeriesService for Series {
    async fn list_series(
        &self,
        request: Request<pb::ListSeriesRequest>,
    ) -> Result<Response<pb::ListSeriesResponse>, Status> {
        let selector = required("run", &request.get_ref().run)?;
        let index = self.0.manager.index();
        let run = index.resolve(selector).await?;
        let keys = index
            .summaries(&run.id)
            .await?
            .iter()
            .map(|s| s.to_proto())
            .collect();
        Ok(Response::new(pb::ListSeriesResponse { keys }))
    }

    async fn get_series(
        &self,
        request: Request<pb::GetSeriesRequest>,
    ) -> Result<Response<pb::GetSeriesResponse>, Status> {
        let req = request.into_inner();
        let selector = required("run", &req.run)?;
        if req.keys.is_empty() {
            return Err(Status::invalid_argument(
                "keys: name at least one series key",
            ));
        }
        if req.keys.len() > MAX_KEYS {
            return Err(Status::invalid_argument(format!(
                "keys: at most {MAX_KEYS} keys"
            )));
        }
        let run = self.0.manager.index().resolve(selector).await?;
        let path = run.run_dir.join("guild.d").join("run.db");
        let mut conn = rundb::open_read(&path).await?;
        let mut series = Vec::with_capacity(req.keys.len());
        for key in req.keys {
            let samples = rundb::read_series(&mut conn, &path, &key)
                .await?
                .into_iter()
                .map(|(time_ms, step, value)| pb::Sample {
                    time_ms,
                    step: step.unwrap_or(0),
                    value,
                })
                .collect();
            series.push(pb::Series { key, samples });
        }
        Ok(Response::new(pb::GetSeriesResponse { series }))
    }
}
