//! OutputService: a run's output lines from run.db, and following them as they commit.

use std::sync::Arc;

use guild_proto::v1::{self as pb, output_service_server::OutputService};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::{Shared, follow, required};
use crate::store::rundb::{self, Follower};

pub struct Output(pub Arc<Shared>);

/// Lines per message.
const CHUNK: i64 = 2000;

#[tonic::async_trait]
impl OutputService for Output {
    type ReadOutputStream = ReceiverStream<Result<pb::OutputChunk, Status>>;

    async fn read_output(
        &self,
        request: Request<pb::ReadOutputRequest>,
    ) -> Result<Response<Self::ReadOutputStream>, Status> {
        let req = request.into_inner();
        let selector = required("run", &req.run)?;
        if req.from_seq < 0 {
            return Err(Status::invalid_argument("from_seq must be 0 or more"));
        }
        let run = self.0.manager.index().resolve(selector).await?;
        let progress = self.0.manager.progress(&run.id).await;
        let reader = OutputReader {
            db: Follower::open(&rundb::path(&run.run_dir)).await?,
            after: req.from_seq,
        };
        Ok(Response::new(follow::stream(reader, progress, req.follow, 2)))
    }
}

/// Output lines after `after`, up to CHUNK per message.
struct OutputReader {
    db: Follower,
    after: i64,
}

#[tonic::async_trait]
impl follow::CommitReader for OutputReader {
    type Item = pb::OutputChunk;

    async fn next(&mut self) -> Result<Option<pb::OutputChunk>, Status> {
        let after = self.after;
        let rows = self.db.read(move |r| r.output_after(after, CHUNK)).await?;
        let Some(last) = rows.last() else {
            return Ok(None);
        };
        self.after = last.seq;
        let lines = rows
            .into_iter()
            .map(|r| pb::OutputLine {
                seq: r.seq,
                time_ms: r.time,
                stream: if r.stream == "stderr" {
                    pb::Stream::Stderr
                } else {
                    pb::Stream::Stdout
                } as i32,
                text: r.line,
            })
            .collect();
        Ok(Some(pb::OutputChunk { lines }))
    }
}
