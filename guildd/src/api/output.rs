//! OutputService: a run's output lines from run.db, and following them as they commit.

use std::sync::Arc;

use guild_proto::v1::{self as pb, output_service_server::OutputService};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::{Shared, required};
use crate::store::rundb;

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
        let path = run.run_dir.join("guild.d").join("run.db");
        let mut progress = self.0.manager.progress(&run.id);
        let mut conn = rundb::open_read(&path).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let follow = req.follow;
        let mut after = req.from_seq;
        tokio::spawn(async move {
            loop {
                // Read the finished flag before reading rows: rows committed before the
                // run finished are then always read once more before the stream ends.
                let finished = progress.as_mut().is_none_or(|p| p.borrow_and_update().finished);
                let rows = match rundb::read_output(&mut conn, &path, after, CHUNK).await {
                    Ok(rows) => rows,
                    Err(err) => {
                        let _ = tx.send(Err(Status::from(err))).await;
                        return;
                    }
                };
                if let Some(last) = rows.last() {
                    after = last.seq;
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
                    if tx.send(Ok(pb::OutputChunk { lines })).await.is_err() {
                        return;
                    }
                    continue;
                }
                if !follow || finished {
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
