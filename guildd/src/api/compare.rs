//! CompareService: every selected run's attributes, tags, flags and series summaries
//! in one streamed answer, read from the index in one pass or from the last such read
//! while the index is unchanged (`store::compare::CompareCache`).

use std::sync::Arc;

use guild_proto::v1::{self as pb, compare_service_server::CompareService};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::Shared;
use crate::store::compare::{CompareCache, CompareRow, is_stat_key};

pub struct Compare {
    cache: Arc<CompareCache>,
}

impl Compare {
    pub fn new(shared: &Shared) -> Compare {
        Compare {
            cache: Arc::new(CompareCache::new(shared.manager.index().db_path())),
        }
    }
}

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
        let cache = self.cache.clone();
        let sys = req.sys;
        let compared = tokio::task::spawn_blocking(move || cache.compare(&selection, sys))
            .await
            .map_err(|e| Status::internal(format!("compare failed: {e}")))??;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            let table = compared.table;
            let wanted: Vec<bool> = table.scalar_keys.iter().map(|k| sys || !is_stat_key(k)).collect();
            let mut names = Some((
                table.flag_names.clone(),
                table.scalar_keys.clone(),
                table.flag_values.clone(),
            ));
            let mut rows = compared.rows.chunks(CHUNK_ROWS).peekable();
            // Always one message, even for no rows: it carries the (empty) name lists.
            loop {
                let chunk = rows.next().unwrap_or_default();
                let (new_flag_names, new_scalar_keys, new_flag_values) = names.take().unwrap_or_default();
                let message = pb::CompareChunk {
                    new_flag_names,
                    new_scalar_keys,
                    new_flag_values,
                    rows: chunk.iter().map(|&i| row_proto(&table.rows[i], &wanted)).collect(),
                };
                if tx.send(Ok(message)).await.is_err() || rows.peek().is_none() {
                    return;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

fn row_proto(row: &CompareRow, wanted: &[bool]) -> pb::CompareRow {
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
    for &(name, value) in &row.flags {
        out.flag_names.push(name);
        out.flag_values.push(value);
    }
    for &(key, last, min, max) in row.scalars.iter().filter(|s| wanted[s.0 as usize]) {
        out.scalar_keys.push(key);
        out.scalar_last.push(last);
        out.scalar_min.push(min);
        out.scalar_max.push(max);
    }
    out
}
