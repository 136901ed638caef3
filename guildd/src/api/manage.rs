//! RunService's run-management calls (select, label, tag, restore, purge, export,
//! import): validation and conversion here, the work in `runs::archive`. `runs.rs`
//! delegates to these so that file stays about starting and following runs.

use std::path::Path;

use guild_proto::v1 as pb;
use tonic::Status;

use super::{Shared, required};
use crate::store::Status as RunStatus;
use crate::store::select::{Selected, Selection, Selector};

/// Most selectors, tags or runs one request may name.
const MAX_ITEMS: usize = 10_000;

/// A RunSelection as the store takes it; names the bad field when one is wrong.
pub(crate) fn selection(selection: Option<pb::RunSelection>) -> Result<Selection, Status> {
    let selection = selection.unwrap_or_default();
    if selection.runs.len() > MAX_ITEMS {
        return Err(Status::invalid_argument(format!("selection.runs: at most {MAX_ITEMS}")));
    }
    let runs = selection
        .runs
        .iter()
        .map(|r| Selector::parse(r))
        .collect::<Result<Vec<_>, _>>()?;
    let mut status = Vec::new();
    for name in selection.status.iter().flat_map(|s| s.split(',')) {
        let name = name.trim().to_lowercase();
        if name.is_empty() {
            continue;
        }
        match RunStatus::parse(&name) {
            Some(s) => status.push(s),
            None => {
                return Err(Status::invalid_argument(format!(
                    "selection.status: unknown status {} (expected pending, queued, running, completed, error, terminated or failed)",
                    crate::error::quote(&name)
                )));
            }
        }
    }
    let nonempty = |s: String| (!s.trim().is_empty()).then(|| s.trim().to_string());
    Ok(Selection {
        runs,
        model: nonempty(selection.model),
        status,
        label: nonempty(selection.label).map(|l| l.to_lowercase()),
        deleted: selection.deleted,
        project_dir: nonempty(selection.project_dir),
    })
}

/// A selected run as the API shows it (with its tags).
pub(crate) fn run_proto(selected: &Selected) -> pb::Run {
    let mut run = selected.run.to_proto();
    run.tags = selected.tags.clone();
    run
}

/// Fills in the tags of runs listed from the index.
pub(crate) async fn select_runs(shared: &Shared, req: pb::SelectRunsRequest) -> Result<pb::SelectRunsResponse, Status> {
    let picked = shared.manager.select(selection(req.selection)?).await?;
    Ok(pb::SelectRunsResponse {
        runs: picked.iter().map(run_proto).collect(),
        indexes: picked.iter().map(|s| s.index).collect(),
    })
}

pub(crate) async fn set_label(shared: &Shared, req: pb::SetLabelRequest) -> Result<pb::Run, Status> {
    let selector = required("run", &req.run)?;
    let run = shared.manager.set_label(selector, &req.label).await?;
    let mut proto = run.to_proto();
    proto.tags = shared.manager.index().tags(&run.id).await?;
    Ok(proto)
}

pub(crate) async fn tag_run(shared: &Shared, req: pb::TagRunRequest) -> Result<pb::Run, Status> {
    let selector = required("run", &req.run)?;
    if req.add.len() + req.remove.len() > MAX_ITEMS {
        return Err(Status::invalid_argument(format!(
            "add/remove: at most {MAX_ITEMS} tags"
        )));
    }
    if req.add.is_empty() && req.remove.is_empty() {
        return Err(Status::invalid_argument("add/remove: name a tag to add or remove"));
    }
    let (run, tags) = shared.manager.tag(selector, &req.add, &req.remove).await?;
    let mut proto = run.to_proto();
    proto.tags = tags;
    Ok(proto)
}

pub(crate) async fn restore_run(shared: &Shared, req: pb::RestoreRunRequest) -> Result<pb::Run, Status> {
    let selector = required("run", &req.run)?;
    let run = shared.manager.restore(selector).await?;
    let mut proto = run.to_proto();
    proto.tags = shared.manager.index().tags(&run.id).await?;
    Ok(proto)
}

pub(crate) async fn purge_run(shared: &Shared, req: pb::PurgeRunRequest) -> Result<pb::PurgeRunResponse, Status> {
    let selector = required("run", &req.run)?;
    let run = shared.manager.purge(selector).await?;
    Ok(pb::PurgeRunResponse { id: run.id })
}

fn absolute<'a>(field: &str, path: &'a str) -> Result<&'a Path, Status> {
    let path = required(field, path)?;
    if !Path::new(path).is_absolute() {
        return Err(Status::invalid_argument(format!(
            "{field} must be an absolute path, got {}",
            crate::error::quote(path)
        )));
    }
    Ok(Path::new(path))
}

pub(crate) async fn export_runs(shared: &Shared, req: pb::ExportRunsRequest) -> Result<pb::ExportRunsResponse, Status> {
    let dest = absolute("dest", &req.dest)?;
    if req.runs.is_empty() {
        return Err(Status::invalid_argument("runs: name at least one run to export"));
    }
    if req.runs.len() > MAX_ITEMS {
        return Err(Status::invalid_argument(format!("runs: at most {MAX_ITEMS}")));
    }
    let ids = shared.manager.export(&req.runs, dest).await?;
    Ok(pb::ExportRunsResponse {
        ids,
        dest: dest.to_string_lossy().into_owned(),
    })
}

pub(crate) async fn import_runs(shared: &Shared, req: pb::ImportRunsRequest) -> Result<pb::ImportRunsResponse, Status> {
    let src = absolute("src", &req.src)?;
    let project = if req.project_dir.trim().is_empty() {
        None
    } else {
        Some(absolute("project_dir", &req.project_dir)?)
    };
    let max_unpacked = (req.max_unpacked_bytes > 0).then_some(req.max_unpacked_bytes);
    let imported = shared.manager.import(src, req.rename, project, max_unpacked).await?;
    Ok(pb::ImportRunsResponse {
        runs: imported
            .into_iter()
            .map(|i| pb::ImportedRun {
                id: i.id,
                original_id: i.original_id.unwrap_or_default(),
                run_dir: i.run_dir.to_string_lossy().into_owned(),
            })
            .collect(),
    })
}
