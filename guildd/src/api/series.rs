//! SeriesService: a run's series keys with their summaries, their samples (whole or in
//! buckets), and following new samples as they commit.

use std::collections::BTreeMap;
use std::sync::Arc;

use guild_proto::v1::{self as pb, series_service_server::SeriesService};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::{Shared, follow, required};
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
        if req.until_cursor < 0 {
            return Err(Status::invalid_argument(
                "until_cursor must be 0 (every sample) or more",
            ));
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
        // Read on a blocking thread through rusqlite: blocks are decoded straight from the
        // mapped pages, and opening costs no thread of its own (a dashboard zoom sends
        // one request per run at once).
        let out = tokio::task::spawn_blocking(move || get_series_blocking(&path, req, axis))
            .await
            .map_err(|e| Status::internal(format!("GetSeries failed: {e}")))??;
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
        let progress = self.0.manager.progress(&run.id);
        let conn = rundb::open_read(&path).await?;
        let reader = SeriesReader {
            conn,
            path,
            keys: req.keys,
            cursor: req.after_cursor,
        };
        Ok(Response::new(follow::stream(reader, progress, true, 2)))
    }
}

/// Samples of `keys` (every key when empty) after `cursor`, up to WATCH_CHUNK per message.
struct SeriesReader {
    conn: sqlx::SqliteConnection,
    path: std::path::PathBuf,
    keys: Vec<String>,
    cursor: i64,
}

#[tonic::async_trait]
impl follow::CommitReader for SeriesReader {
    type Item = pb::SeriesUpdate;

    async fn next(&mut self) -> Result<Option<pb::SeriesUpdate>, Status> {
        let rows = series::read_after(&mut self.conn, &self.path, self.cursor, &self.keys, WATCH_CHUNK).await?;
        let Some(last) = rows.last() else {
            return Ok(None);
        };
        self.cursor = last.cursor;
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
        Ok(Some(pb::SeriesUpdate {
            series,
            cursor: self.cursor,
        }))
    }
}

/// GetSeries' reading, once its request is checked.
fn get_series_blocking(
    path: &std::path::Path,
    req: pb::GetSeriesRequest,
    axis: Axis,
) -> Result<Vec<pb::Series>, Status> {
    let conn = series::open_blocking(path)?;
    let bounds = series::Bounds {
        min: req.min,
        max: req.max,
        until: (req.until_cursor > 0).then_some(req.until_cursor),
    };
    let mut out = Vec::with_capacity(req.keys.len());
    for key in req.keys {
        let (count, samples, buckets) = if req.buckets == 0 {
            let points = series::read_range(&conn, path, &key, axis, bounds)?;
            (points.len() as u64, points.iter().map(sample).collect(), Vec::new())
        } else {
            // Buckets need no order: the samples as stored, straight into buckets.
            let (count, buckets) = series::read_buckets(&conn, path, &key, axis, bounds, req.buckets)?;
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
    Ok(out)
}
