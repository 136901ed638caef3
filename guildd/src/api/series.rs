//! SeriesService: a run's series keys with their summaries, their samples (whole or in
//! buckets), and following new samples as they commit.

use std::collections::BTreeMap;
use std::sync::Arc;

use guild_proto::v1::{self as pb, series_service_server::SeriesService};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::{Shared, follow, required};
use crate::samples::Stored;
use crate::store::rundb::{self, Axis, Bounds, Follower, Reader};

pub struct Series(pub Arc<Shared>);

const MAX_KEYS: usize = 1000;
const MAX_BUCKETS: u32 = 100_000;
/// At most this many buckets in one answer (keys × buckets): about 60 MB on the wire,
/// under the 64 MiB message bound. 1,000 keys × 100,000 buckets peaked at 7 GB.
const MAX_TOTAL_BUCKETS: u64 = 1_000_000;
/// At most this many samples in one answer (`buckets` 0): about 45 MB on the wire.
const MAX_SAMPLES: usize = 2_000_000;
/// Samples per WatchSeries message.
const WATCH_CHUNK: i64 = 10_000;

fn sample(p: &Stored) -> pb::Sample {
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
        let total = req.keys.len() as u64 * u64::from(req.buckets);
        if total > MAX_TOTAL_BUCKETS {
            return Err(Status::invalid_argument(format!(
                "keys × buckets: {} × {} = {total} buckets, over the limit of {MAX_TOTAL_BUCKETS} in one answer; \
                 ask for fewer keys or buckets",
                req.keys.len(),
                req.buckets
            )));
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
        let path = rundb::path(&run.run_dir);
        // Read and bucketed on a blocking thread through rusqlite (never on the async
        // workers): blocks are decoded straight from the mapped pages, and opening costs
        // no thread of its own (a dashboard zoom sends one request per run at once).
        let out = tokio::task::spawn_blocking(move || get_series_blocking(&path, req, axis, MAX_SAMPLES))
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
        let progress = self.0.manager.progress(&run.id).await;
        let reader = SeriesReader {
            db: Follower::open(&rundb::path(&run.run_dir)).await?,
            keys: std::sync::Arc::new(req.keys),
            cursor: req.after_cursor,
        };
        Ok(Response::new(follow::stream(reader, progress, true, 2)))
    }
}

/// Samples of `keys` (every key when empty) after `cursor`, up to WATCH_CHUNK per message.
struct SeriesReader {
    db: Follower,
    keys: std::sync::Arc<Vec<String>>,
    cursor: i64,
}

#[tonic::async_trait]
impl follow::CommitReader for SeriesReader {
    type Item = pb::SeriesUpdate;

    async fn next(&mut self) -> Result<Option<pb::SeriesUpdate>, Status> {
        let (cursor, keys) = (self.cursor, self.keys.clone());
        let rows = self
            .db
            .read(move |r| r.samples_after(cursor, &keys, WATCH_CHUNK))
            .await?;
        let Some(last) = rows.last() else {
            return Ok(None);
        };
        self.cursor = last.sample.seq;
        let mut by_key: BTreeMap<String, Vec<pb::Sample>> = BTreeMap::new();
        for row in rows {
            by_key.entry(row.key).or_default().push(sample(&row.sample));
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

/// GetSeries' reading, once its request is checked: at most `max_samples` samples in all
/// (ResourceExhausted beyond, found without holding more than a block over it).
fn get_series_blocking(
    path: &std::path::Path,
    req: pb::GetSeriesRequest,
    axis: Axis,
    max_samples: usize,
) -> Result<Vec<pb::Series>, Status> {
    let reader = Reader::open(path)?;
    let bounds = Bounds {
        min: req.min,
        max: req.max,
        until: (req.until_cursor > 0).then_some(req.until_cursor),
    };
    let mut out = Vec::with_capacity(req.keys.len());
    let mut samples_left = max_samples;
    for key in req.keys {
        let (count, samples, buckets) = if req.buckets == 0 {
            let Some(points) = reader.read_range(&key, axis, bounds, samples_left)? else {
                return Err(Status::resource_exhausted(format!(
                    "more than {max_samples} samples in the range asked for (the limit of one answer): \
                     ask for buckets (buckets = N), a narrower range or fewer keys"
                )));
            };
            samples_left -= points.len();
            (points.len() as u64, points.iter().map(sample).collect(), Vec::new())
        } else {
            // Buckets need no order: the samples as stored, straight into buckets.
            let (count, buckets) = reader.read_buckets(&key, axis, bounds, req.buckets)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples::{Batch, SampleRow};
    use crate::store::RunDb;

    #[tokio::test(flavor = "multi_thread")]
    async fn an_answer_holds_at_most_its_samples_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.db");
        let mut db = RunDb::open(&path).await.unwrap();
        // Three keys of 3,000 samples: blocks and an unblocked tail each.
        let batch = Batch {
            samples: (0..3000)
                .flat_map(|i| {
                    ["a", "b", "c"].map(|key| SampleRow {
                        key: key.into(),
                        step: Some(i),
                        time: i,
                        value: i as f64,
                    })
                })
                .collect(),
            ..Batch::default()
        };
        db.commit(&batch).await.unwrap();
        db.close().await;
        let request = |keys: &[&str]| pb::GetSeriesRequest {
            run: "r".into(),
            keys: keys.iter().map(|k| k.to_string()).collect(),
            ..Default::default()
        };
        let got = get_series_blocking(&path, request(&["a", "b", "c"]), Axis::Step, 9000).unwrap();
        assert_eq!(got.iter().map(|s| s.samples.len()).sum::<usize>(), 9000);
        for limit in [8999, 2999, 10] {
            let err = get_series_blocking(&path, request(&["a", "b", "c"]), Axis::Step, limit).unwrap_err();
            assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err:?}");
            assert!(err.message().contains(&format!("more than {limit} samples")), "{err:?}");
        }
        // Buckets are bounded by the request's keys × buckets, not by samples.
        let mut bucketed = request(&["a", "b", "c"]);
        bucketed.buckets = 100;
        let got = get_series_blocking(&path, bucketed, Axis::Step, 10).unwrap();
        assert!(got.iter().all(|s| s.buckets.len() == 100 && s.count == 3000));
    }
}
