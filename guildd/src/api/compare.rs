//! CompareService: every selected run's attributes, tags, flags and series summaries
//! in one streamed answer, read from the index in one pass (`store::compare`).

use std::sync::Arc;

use guild_proto::v1::{self as pb, compare_service_server::CompareService};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::Shared;

pub struct Compare(pub Arc<Shared>);

/// Rows per streamed message: keeps each message well under a megabyte.
const CHUNK_ROWS: usize = 1000;

#[tonic::async_trait]
impl CompareService for Compare {
    type CompareRunsStream = ReceiverStream<Result<pb::CompareChunk, Status>>;

    async fn compare_runs(
        &self,
        request: Request<pb::CompareRunsRequest>,
    ) -> Result<Response<Self::CompareRunsStream>, Status> {
        let req = request.into_inner();
        let selection = super::manage::selection(req.selection)?;
        let table = self.0.manager.compare(selection, req.sys).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            let mut flag_names = Some(table.flag_names);
            let mut scalar_keys = Some(table.scalar_keys);
            let mut rows = table.rows.into_iter().peekable();
            // Always one message, even for no rows: it carries the (empty) name lists.
            loop {
                let chunk: Vec<pb::CompareRow> = rows.by_ref().take(CHUNK_ROWS).map(row_proto).collect();
                let message = pb::CompareChunk {
                    new_flag_names: flag_names.take().unwrap_or_default(),
                    new_scalar_keys: scalar_keys.take().unwrap_or_default(),
                    rows: chunk,
                };
                if tx.send(Ok(message)).await.is_err() || rows.peek().is_none() {
                    return;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

fn row_proto(row: crate::store::compare::CompareRow) -> pb::CompareRow {
    let mut out = pb::CompareRow {
        run: Some(super::manage::run_proto(&row.selected)),
        index: row.selected.index,
        flag_names: Vec::with_capacity(row.flags.len()),
        flag_values: Vec::with_capacity(row.flags.len()),
        scalar_keys: Vec::with_capacity(row.scalars.len()),
        scalar_last: Vec::with_capacity(row.scalars.len()),
        scalar_min: Vec::with_capacity(row.scalars.len()),
        scalar_max: Vec::with_capacity(row.scalars.len()),
    };
    for (name, value) in row.flags {
        out.flag_names.push(name);
        out.flag_values.push(value);
    }
    for (key, last, min, max) in row.scalars {
        out.scalar_keys.push(key);
        out.scalar_last.push(last);
        out.scalar_min.push(min);
        out.scalar_max.push(max);
    }
    out
}
