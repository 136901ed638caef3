//! SeriesService: a run's series keys with their summaries, their samples (whole or in
//! buckets), and following new samples as they commit.

use std::collections::BTreeMap;
use std::sync::Arc;

use guild_proto::v1::{self as pb, series_service_server::SeriesService};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::{Shared, required};
use crate::store::rundb;
use crate::store::series::{self, Axis};

pub struct Series(pub Arc<Shared>);

const MAX_KEYS: usize = 1000;
const MAX_BUCKETS: u32 = 100_000;
/// Samples per WatchSeries message.
const WATCH_CHUNK: i64 = 10_000;

fn sample(p: &series::Point) -> pb::Sample {
    pb::Sample {
        time_ms: p.time,
        step: p.step,
        value: p.value,
    }
}

#[tonic::async_trait]
impl SeriesService for Series {
    async fn list_series(
        &self,
        request: Request<pb::ListSeriesRequest>,
    ) -> Result<Response<pb::ListSeriesResponse>, Status> {
        let selector = required("run", &request.get_ref().run)?;
        let index = self.0.manager.index();
        let run = index.resolve(selector).await?;
        let keys = index.summaries(&run.id).await?.iter().map(|s| s.to_proto()).collect();
        Ok(Response::new(pb::ListSeriesResponse { keys }))
    }

    async fn get_series(
        &self,
        request: Request<pb::GetSeriesRequest>,
    ) -> Result<Response<pb::GetSeriesResponse>, Status> {
        let req = request.into_inner();
        let selector = required("run", &req.run)?;
        if req.keys.is_empty() {
            return Err(Status::invalid_argument("keys: name at least one series key"));
        }
        if req.keys.len() > MAX_KEYS {
            return Err(Status::invalid_argument(format!("keys: at most {MAX_KEYS} keys")));
        }
        if req.buckets > MAX_BUCKETS {
            return Err(Status::invalid_argument(format!("buckets: at most {MAX_BUCKETS}")));
        }
        if [req.min, req.max].iter().flatten().any(|v| v.is_nan()) {
            return Err(Status::invalid_argument("min/max: NaN is not a bound"));
        }
        if let (Some(min), Some(max)) = (req.min, req.max)
            && min > max
        {
            return Err(Status::invalid_argument(format!("min ({min}) is above max ({max})")));
        }
        let axis = match pb::Axis::try_from(req.axis) {
            Ok(pb::Axis::Step) => Axis::Step,
            Ok(pb::Axis::Time) => Axis::Time,
            Err(_) => return Err(Status::invalid_argument(format!("axis: unknown value {}", req.axis))),
        };
        let run = self.0.manager.index().resolve(selector).await?;
        let path = run.run_dir.join("guild.d").join("run.db");
        let mut conn = rundb::open_read(&path).await?;
        let mut out = Vec::with_capacity(req.keys.len());
        for key in req.keys {
            let (count, samples, buckets) = if req.buckets == 0 {
                let points = series::read_range(&mut conn, &path, &key, axis, req.min, req.max).await?;
                (points.len() as u64, points.iter().map(sample).collect(), Vec::new())
            } else {
                // Buckets need no order: the samples as stored, straight into buckets.
                let (count, buckets) =
                    series::read_buckets(&mut conn, &path, &key, axis, req.min, req.max, req.buckets).await?;
                let buckets = buckets
                    .into_iter()
                    .map(|b| pb::Bucket {
                        x_start: b.x_start,
                        x_end: b.x_end,
                        min: b.min,
                        max: b.max,
                        last: b.last,
                        last_step: b.last_step,
                        last_time_ms: b.last_time,
                        count: b.count,
                    })
                    .collect();
                (count, Vec::new(), buckets)
            };
            out.push(pb::Series {
                key,
                samples,
                buckets,
                count,
            });
        }
        Ok(Response::new(pb::GetSeriesResponse { series: out }))
    }

    type WatchSeriesStream = ReceiverStream<Result<pb::SeriesUpdate, Status>>;

    async fn watch_series(
        &self,
        request: Request<pb::WatchSeriesRequest>,
    ) -> Result<Response<Self::WatchSeriesStream>, Status> {
        let req = request.into_inner();
        let selector = required("run", &req.run)?;
        if req.keys.len() > MAX_KEYS {
            return Err(Status::invalid_argument(format!("keys: at most {MAX_KEYS} keys")));
        }
        if req.after_cursor < 0 {
            return Err(Status::invalid_argument("after_cursor must be 0 or more"));
        }
        let run = self.0.manager.index().resolve(selector).await?;
        let path = run.run_dir.join("guild.d").join("run.db");
        let mut progress = self.0.manager.progress(&run.id);
        let mut conn = rundb::open_read(&path).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        let (keys, mut cursor) = (req.keys, req.after_cursor);
        tokio::spawn(async move {
            loop {
                // As in ReadOutput: read `finished` first so the last commit is always read.
                let finished = progress.as_mut().is_none_or(|p| p.borrow_and_update().finished);
                let rows = match series::read_after(&mut conn, &path, cursor, &keys, WATCH_CHUNK).await {
                    Ok(rows) => rows,
                    Err(err) => {
                        let _ = tx.send(Err(Status::from(err))).await;
                        return;
                    }
                };
                if let Some(last) = rows.last() {
                    cursor = last.cursor;
                    let mut by_key: BTreeMap<String, Vec<pb::Sample>> = BTreeMap::new();
                    for row in &rows {
                        by_key.entry(row.key.clone()).or_default().push(sample(&row.point));
                    }
                    let series = by_key
                        .into_iter()
                        .map(|(key, samples)| pb::Series {
                            key,
                            count: samples.len() as u64,
                            samples,
                            buckets: Vec::new(),
                        })
                        .collect();
                    // A subscriber that does not keep up holds no memory here: the next
                    // read simply starts from its cursor when it has room again.
                    if tx.send(Ok(pb::SeriesUpdate { series, cursor })).await.is_err() {
                        return;
                    }
                    continue;
                }
                if finished {
                    return;
                }
                if let Some(p) = progress.as_mut() {
                    tokio::select! {
                        changed = p.changed() => if changed.is_err() { progress = None },
                        _ = tx.closed() => return,
                    }
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}
