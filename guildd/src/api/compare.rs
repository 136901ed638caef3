//! CompareService: every selected run's attributes, tags, flags and series summaries
//! in one streamed answer, read from the index in one pass or from the last such read
//! while the index is unchanged (`store::compare::CompareCache`); with `view`, also the
//! compare columns of the runs' views (each project's Guild file) and their values.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use guild_proto::v1::{self as pb, compare_service_server::CompareService};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::Shared;
use crate::project::view::{Field, View};
use crate::runs::view::{FieldValue, RunData, field_values, view_of};
use crate::store::SeriesSummary;
use crate::store::compare::{CompareCache, CompareRow, CompareTable, Compared, is_stat_key};

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
        let with_view = req.view;
        let (compared, views) = tokio::task::spawn_blocking(move || {
            let compared = cache.compare(&selection, sys)?;
            let views = if with_view {
                view_columns(&compared)
            } else {
                ViewColumns::default()
            };
            Ok::<_, crate::error::Error>((compared, views))
        })
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
            let mut columns = Some(views.columns.iter().map(super::projects::field_proto).collect());
            let mut values = views.values;
            let mut rows = compared.rows.chunks(CHUNK_ROWS).peekable();
            // Always one message, even for no rows: it carries the (empty) name lists.
            loop {
                let chunk = rows.next().unwrap_or_default();
                let (new_flag_names, new_scalar_keys, new_flag_values) = names.take().unwrap_or_default();
                let message = pb::CompareChunk {
                    new_flag_names,
                    new_scalar_keys,
                    new_flag_values,
                    new_view_columns: columns.take().unwrap_or_default(),
                    rows: chunk
                        .iter()
                        .map(|&i| {
                            let mut row = row_proto(&table.rows[i], &wanted);
                            for (column, value) in values.remove(&i).unwrap_or_default() {
                                row.view_columns.push(column);
                                row.view_values.push(super::projects::value_proto(value));
                            }
                            row
                        })
                        .collect(),
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
        view_columns: Vec::new(),
        view_values: Vec::new(),
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

/// The view compare columns of compared runs and each run's values.
#[derive(Default)]
struct ViewColumns {
    /// In order of first use; a name used by several views is one column.
    columns: Vec<Field>,
    /// Per table row: (column position, value).
    values: HashMap<usize, Vec<(u32, FieldValue)>>,
}

/// Each run's view comes from its project's Guild file (one read per project, not one
/// per run); a run whose model has no view there has no view values.
fn view_columns(compared: &Compared) -> ViewColumns {
    let table = &compared.table;
    let mut out = ViewColumns::default();
    let mut positions: HashMap<String, u32> = HashMap::new();
    let mut views: HashMap<(String, String), Option<View>> = HashMap::new();
    let mut projects: HashMap<String, Option<crate::project::Project>> = HashMap::new();
    for &i in &compared.rows {
        let Some(row) = table.rows.get(i) else { continue };
        let run = &row.selected.run;
        let view = views
            .entry((run.project_dir.clone(), run.model.clone()))
            .or_insert_with(|| {
                let project = projects.entry(run.project_dir.clone()).or_insert_with(|| {
                    crate::project::load(&Path::new(&run.project_dir).join(crate::project::FILE_NAME)).ok()
                });
                project.as_ref().and_then(|p| view_of(p, &run.model))
            });
        let Some(view) = view.as_ref().filter(|v| !v.compare.is_empty()) else {
            continue;
        };
        let mut cells = Vec::with_capacity(view.compare.len());
        let values = row_values(table, row, &view.compare);
        for (field, value) in view.compare.iter().zip(values) {
            let position = *positions.entry(field.name.clone()).or_insert_with(|| {
                out.columns.push(field.clone());
                (out.columns.len() - 1) as u32
            });
            cells.push((position, value));
        }
        out.values.insert(i, cells);
    }
    out
}

/// A compared run's values for fields: its flags and series summaries from the table,
/// run.db for what they lack.
fn row_values(table: &CompareTable, row: &CompareRow, fields: &[Field]) -> Vec<FieldValue> {
    let name = |list: &[String], at: u32| list.get(at as usize).cloned().unwrap_or_default();
    let flags: Vec<(String, String)> = row
        .flags
        .iter()
        .map(|&(n, v)| (name(&table.flag_names, n), name(&table.flag_values, v)))
        .collect();
    let summaries: Vec<SeriesSummary> = row
        .scalars
        .iter()
        .map(|&(key, last, min, max)| SeriesSummary {
            key: name(&table.scalar_keys, key),
            last,
            min,
            max,
            count: 0,
            last_step: None,
            last_time: 0,
        })
        .collect();
    let data = RunData {
        run: &row.selected.run,
        flags: &flags,
        attrs: None,
        summaries: &summaries,
    };
    field_values(&data, fields)
}
