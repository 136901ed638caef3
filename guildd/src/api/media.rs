//! MediaService: a run's media tags (images, audio, histograms, text, PR curves), a tag's
//! items, items whole, and following new items as they commit. Reads run on blocking
//! threads through `store::rundb::media`.

use std::sync::Arc;

use guild_proto::v1::{self as pb, media_service_server::MediaService};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::{Shared, follow, required};
use crate::samples::{MediaData, MediaKind};
use crate::store::rundb::media::{MediaRef, MediaTag, Pick};
use crate::store::rundb::{self, Follower, read};

pub struct Media(pub Arc<Shared>);

/// At most this many bytes of content in one GetMedia answer (the message bound is 64 MiB).
pub const MAX_ANSWER_BYTES: u64 = 48 << 20;
/// Items per WatchMedia message.
const WATCH_CHUNK: i64 = 1_000;

pub fn kind_to_proto(kind: MediaKind) -> pb::MediaKind {
    match kind {
        MediaKind::Image => pb::MediaKind::Image,
        MediaKind::Audio => pb::MediaKind::Audio,
        MediaKind::Histogram => pb::MediaKind::Histogram,
        MediaKind::Text => pb::MediaKind::Text,
        MediaKind::PrCurve => pb::MediaKind::PrCurve,
    }
}

fn kind_of(value: i32) -> Result<MediaKind, Status> {
    match pb::MediaKind::try_from(value) {
        Ok(pb::MediaKind::Image) => Ok(MediaKind::Image),
        Ok(pb::MediaKind::Audio) => Ok(MediaKind::Audio),
        Ok(pb::MediaKind::Histogram) => Ok(MediaKind::Histogram),
        Ok(pb::MediaKind::Text) => Ok(MediaKind::Text),
        Ok(pb::MediaKind::PrCurve) => Ok(MediaKind::PrCurve),
        Ok(pb::MediaKind::Unspecified) => Err(Status::invalid_argument(
            "kind: name one (image, audio, histogram, text or pr_curve)",
        )),
        Err(_) => Err(Status::invalid_argument(format!("kind: unknown value {value}"))),
    }
}

fn tag_to_proto(t: MediaTag) -> pb::MediaTag {
    pb::MediaTag {
        kind: kind_to_proto(t.kind) as i32,
        tag: t.tag,
        count: t.count,
        min_step: t.min_step,
        max_step: t.max_step,
        last_time_ms: t.last_time,
        last: t.last.map(ref_to_proto),
    }
}

fn ref_to_proto(r: MediaRef) -> pb::MediaRef {
    pb::MediaRef {
        seq: r.seq,
        kind: kind_to_proto(r.kind) as i32,
        tag: r.tag,
        step: r.step,
        time_ms: r.time,
        index: r.index,
        width: r.width,
        height: r.height,
        mime: r.mime,
        size: r.size,
    }
}

fn item_to_proto(r: MediaRef, data: MediaData) -> pb::MediaItem {
    let mut item = pb::MediaItem {
        r#ref: Some(ref_to_proto(r)),
        ..Default::default()
    };
    match data {
        MediaData::Image { bytes, .. } => item.data = bytes,
        MediaData::Audio {
            bytes,
            sample_rate,
            channels,
            frames,
            ..
        } => {
            item.data = bytes;
            item.sample_rate = sample_rate;
            item.channels = channels;
            item.frames = frames;
        }
        MediaData::Histogram(h) => {
            item.histogram = Some(pb::HistogramData {
                min: h.min,
                max: h.max,
                count: h.count,
                sum: h.sum,
                left: h.buckets.iter().map(|b| b[0]).collect(),
                right: h.buckets.iter().map(|b| b[1]).collect(),
                counts: h.buckets.iter().map(|b| b[2]).collect(),
            })
        }
        MediaData::Text(text) => item.text = text,
        MediaData::PrCurve(pr) => {
            item.pr_curve = Some(pb::PrCurveData {
                thresholds: pr.thresholds,
                precision: pr.precision,
                recall: pr.recall,
                true_positives: pr.tp,
                false_positives: pr.fp,
                true_negatives: pr.tn,
                false_negatives: pr.fn_,
            })
        }
    }
    item
}

#[tonic::async_trait]
impl MediaService for Media {
    async fn list_media(
        &self,
        request: Request<pb::ListMediaRequest>,
    ) -> Result<Response<pb::ListMediaResponse>, Status> {
        let selector = required("run", &request.get_ref().run)?;
        let run = self.0.manager.index().resolve(selector).await?;
        let (tags, cursor) = read(&rundb::path(&run.run_dir), |r| {
            // The cursor first: tags then hold everything up to it (and maybe more, which
            // a watch from the cursor sends again; the page keeps each item once).
            let cursor = r.last_media_cursor()?;
            Ok((r.media_tags()?, cursor))
        })
        .await?;
        Ok(Response::new(pb::ListMediaResponse {
            tags: tags.into_iter().map(tag_to_proto).collect(),
            cursor,
            run_id: run.id,
        }))
    }

    async fn get_media_steps(
        &self,
        request: Request<pb::GetMediaStepsRequest>,
    ) -> Result<Response<pb::GetMediaStepsResponse>, Status> {
        let req = request.into_inner();
        let selector = required("run", &req.run)?;
        let kind = kind_of(req.kind)?;
        required("tag", &req.tag)?;
        let run = self.0.manager.index().resolve(selector).await?;
        let tag = req.tag;
        let refs = read(&rundb::path(&run.run_dir), move |r| r.media_refs(kind, &tag)).await?;
        Ok(Response::new(pb::GetMediaStepsResponse {
            items: refs.into_iter().map(ref_to_proto).collect(),
        }))
    }

    async fn get_media(&self, request: Request<pb::GetMediaRequest>) -> Result<Response<pb::GetMediaResponse>, Status> {
        let req = request.into_inner();
        let selector = required("run", &req.run)?;
        let kind = kind_of(req.kind)?;
        required("tag", &req.tag)?;
        let pick = if req.seq > 0 {
            Pick::Seq(req.seq)
        } else if let Some(step) = req.step {
            Pick::Step(step)
        } else {
            Pick::All {
                max_items: req.max_items as usize,
            }
        };
        let run = self.0.manager.index().resolve(selector).await?;
        let (tag, bytes) = (req.tag, req.with_bytes);
        let answer = read(&rundb::path(&run.run_dir), move |r| {
            let size = r.media_size(kind, &tag, pick)?;
            if size > MAX_ANSWER_BYTES && (bytes || !matches!(kind, MediaKind::Image | MediaKind::Audio)) {
                return Ok(Err(size));
            }
            Ok(Ok(r.media_items(kind, &tag, pick, bytes)?))
        })
        .await?;
        let items = answer.map_err(|size| {
            Status::resource_exhausted(format!(
                "the items asked for hold {size} bytes, over the limit of {MAX_ANSWER_BYTES} in one answer: \
                 ask for one step or one seq at a time"
            ))
        })?;
        Ok(Response::new(pb::GetMediaResponse {
            items: items.into_iter().map(|(r, d)| item_to_proto(r, d)).collect(),
        }))
    }

    type WatchMediaStream = ReceiverStream<Result<pb::MediaUpdate, Status>>;

    async fn watch_media(
        &self,
        request: Request<pb::WatchMediaRequest>,
    ) -> Result<Response<Self::WatchMediaStream>, Status> {
        let req = request.into_inner();
        let selector = required("run", &req.run)?;
        if req.after_cursor < 0 {
            return Err(Status::invalid_argument("after_cursor must be 0 or more"));
        }
        let run = self.0.manager.index().resolve(selector).await?;
        let progress = self.0.manager.progress(&run.id).await;
        let reader = MediaReader {
            db: Follower::open(&rundb::path(&run.run_dir)).await?,
            cursor: req.after_cursor,
        };
        Ok(Response::new(follow::stream(reader, progress, true, 2)))
    }
}

/// Items after `cursor`, up to WATCH_CHUNK per message.
struct MediaReader {
    db: Follower,
    cursor: i64,
}

#[tonic::async_trait]
impl follow::CommitReader for MediaReader {
    type Item = pb::MediaUpdate;

    async fn next(&mut self) -> Result<Option<pb::MediaUpdate>, Status> {
        let cursor = self.cursor;
        let refs = self.db.read(move |r| r.media_after(cursor, WATCH_CHUNK)).await?;
        let Some(last) = refs.last() else {
            return Ok(None);
        };
        self.cursor = last.seq;
        Ok(Some(pb::MediaUpdate {
            items: refs.into_iter().map(ref_to_proto).collect(),
            cursor: self.cursor,
        }))
    }
}
