//! RunService: start, list, inspect, stop, delete and watch runs.

use std::path::Path;
use std::sync::Arc;

use guild_proto::v1::{self as pb, run_service_server::RunService};
use tokio::sync::broadcast::error::RecvError;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::queue::Decor;
use super::{Shared, required};
use crate::runs::{RunChange, StartSpec, SweepOptions};
use crate::store::rundb;

pub struct Runs(pub Arc<Shared>);

/// Most flags one start request may carry.
const MAX_FLAGS: usize = 1000;
const MAX_ENV: usize = 10_000;

/// A start request checked and turned into what the run manager takes.
fn start_spec(req: pb::StartRunRequest) -> Result<StartSpec, Status> {
    let project_dir = required("project_dir", &req.project_dir)?;
    if !Path::new(project_dir).is_absolute() {
        return Err(Status::invalid_argument(format!(
            "project_dir must be an absolute path, got {}",
            crate::error::quote(project_dir)
        )));
    }
    let op = required("op", &req.op)?.to_string();
    if req.flags.len() > MAX_FLAGS {
        return Err(Status::invalid_argument(format!("flags: at most {MAX_FLAGS} flags")));
    }
    crate::runs::trash::check_label(req.label.trim())?;
    if req.env.len() > MAX_ENV {
        return Err(Status::invalid_argument(format!("env: at most {MAX_ENV} variables")));
    }
    if let Some(bad) = req.flags.iter().find(|f| f.name.trim().is_empty()) {
        return Err(Status::invalid_argument(format!(
            "flags: a flag has no name (value {})",
            crate::error::quote(&bad.value)
        )));
    }
    let slurm = match req.slurm {
        Some(options) => Some(slurm_spec(options)?),
        None => None,
    };
    let nonempty = |s: String| (!s.trim().is_empty()).then_some(s);
    let options = req.sweep.unwrap_or_default();
    if !options.minimize.trim().is_empty() && !options.maximize.trim().is_empty() {
        return Err(Status::invalid_argument(format!(
            "sweep: minimize {} or maximize {}, not both",
            crate::error::quote(&options.minimize),
            crate::error::quote(&options.maximize)
        )));
    }
    if let Some(name) = nonempty(options.optimizer.clone()) {
        name.parse::<crate::sweep::OptimizerKind>()
            .map_err(|e| Status::invalid_argument(format!("sweep: {e}")))?;
    }
    let maximize = !options.maximize.trim().is_empty();
    let sweep = SweepOptions {
        max_trials: options.max_trials,
        optimizer: nonempty(options.optimizer),
        objective: if maximize {
            nonempty(options.maximize)
        } else {
            nonempty(options.minimize)
        },
        maximize,
        seed: options.seed,
        parallel: options.parallel,
    };
    Ok(StartSpec {
        gpus: req.gpus,
        priority: req.priority,
        sweep,
        trial: None,
        project_dir: project_dir.into(),
        model: nonempty(req.model),
        op,
        profile: nonempty(req.profile),
        flags: req.flags.into_iter().map(|f| (f.name, f.value)).collect(),
        source_run: nonempty(req.source_run),
        label: req.label,
        env: req.env.into_iter().collect(),
        slurm,
    })
}

/// Most sbatch arguments one start may carry.
const MAX_SBATCH_ARGS: usize = 100;

/// `--slurm`'s options, checked: sbatch arguments are options (`--partition=gpu`), so a
/// stray word cannot become the script sbatch runs.
fn slurm_spec(options: pb::SlurmOptions) -> Result<crate::slurm::SlurmSpec, Status> {
    if options.sbatch.len() > MAX_SBATCH_ARGS {
        return Err(Status::invalid_argument(format!(
            "slurm.sbatch: at most {MAX_SBATCH_ARGS} arguments"
        )));
    }
    if let Some(bad) = options.sbatch.iter().find(|a| !a.starts_with('-') || a.contains('\n')) {
        return Err(Status::invalid_argument(format!(
            "slurm.sbatch: {} is not an sbatch option (write them as --sbatch=--partition=gpu)",
            crate::error::quote(bad)
        )));
    }
    Ok(crate::slurm::SlurmSpec {
        sbatch: options.sbatch,
        gpus: options.gpus,
    })
}

#[tonic::async_trait]
impl RunService for Runs {
    async fn start_run(&self, request: Request<pb::StartRunRequest>) -> Result<Response<pb::Run>, Status> {
        let spec = start_spec(request.into_inner())?;
        let run = self.0.manager.start(spec).await?;
        let mut proto = run.to_proto();
        Decor::one(&self.0, &run.id).await.apply(&mut proto);
        Ok(Response::new(proto))
    }

    async fn list_runs(&self, request: Request<pb::ListRunsRequest>) -> Result<Response<pb::ListRunsResponse>, Status> {
        let req = request.into_inner();
        let project = (!req.project_dir.is_empty()).then_some(req.project_dir.as_str());
        let (page, total) = self.0.manager.index().list_page(project, req.limit, req.offset).await?;
        let mut runs: Vec<pb::Run> = page
            .into_iter()
            .map(|(run, tags)| pb::Run { tags, ..run.to_proto() })
            .collect();
        Decor::read(&self.0).await.apply_all(&mut runs);
        Ok(Response::new(pb::ListRunsResponse { runs, total }))
    }

    async fn get_run(&self, request: Request<pb::GetRunRequest>) -> Result<Response<pb::RunDetail>, Status> {
        let selector = required("run", &request.get_ref().run)?;
        let index = self.0.manager.index();
        let run = index.resolve(selector).await?;
        let flags = index.run_flags(&run.id).await?;
        // A run whose run.db is gone (or unreadable) still has what the index knows.
        let (attrs, cursor) = rundb::read(&rundb::path(&run.run_dir), |r| Ok((r.attrs()?, r.last_cursor()?)))
            .await
            .unwrap_or_default();
        let summaries = index.summaries(&run.id).await?;
        let mut proto = pb::Run {
            tags: index.tags(&run.id).await?,
            ..run.to_proto()
        };
        Decor::one(&self.0, &run.id).await.apply(&mut proto);
        Ok(Response::new(pb::RunDetail {
            run: Some(proto),
            flags: flags
                .into_iter()
                .map(|(name, value)| pb::Flag { name, value })
                .collect(),
            attrs: attrs
                .into_iter()
                .map(|(name, value)| pb::Attr { name, value })
                .collect(),
            series: summaries.iter().map(|s| s.to_proto()).collect(),
            cursor,
        }))
    }

    async fn get_run_view(&self, request: Request<pb::GetRunViewRequest>) -> Result<Response<pb::RunView>, Status> {
        let selector = required("run", &request.get_ref().run)?;
        let index = self.0.manager.index();
        let run = index.resolve(selector).await?;
        let flags = index.run_flags(&run.id).await?;
        let summaries = index.summaries(&run.id).await?;
        let id = run.id.clone();
        let (view, values) = tokio::task::spawn_blocking(move || {
            let Some(view) = crate::runs::view::run_view(&run) else {
                return (None, Vec::new());
            };
            let data = crate::runs::view::RunData {
                run: &run,
                flags: &flags,
                attrs: None,
                summaries: &summaries,
            };
            let values = crate::runs::view::field_values(&data, &view.fields);
            (Some(view), values)
        })
        .await
        .map_err(|_| Status::internal("reading the run's view failed"))?;
        Ok(Response::new(pb::RunView {
            run: id,
            view: view.as_ref().map(super::projects::view_proto),
            fields: values.into_iter().map(super::projects::value_proto).collect(),
        }))
    }

    async fn preview_run(&self, request: Request<pb::StartRunRequest>) -> Result<Response<pb::RunPreview>, Status> {
        let spec = start_spec(request.into_inner())?;
        let preview = self.0.manager.preview(spec).await?;
        let pairs = |items: Vec<(String, String)>| -> Vec<pb::Flag> {
            items
                .into_iter()
                .map(|(name, value)| pb::Flag { name, value })
                .collect()
        };
        Ok(Response::new(pb::RunPreview {
            model: preview.plan.model.clone(),
            op: preview.plan.op.clone(),
            argv: preview.argv,
            flags: pairs(preview.plan.flags.clone()),
            run_dir: preview.run_dir.to_string_lossy().into_owned(),
            env: pairs(preview.env),
            project_dir: preview.plan.project_dir.to_string_lossy().into_owned(),
            runtime: preview.plan.runtime.clone().unwrap_or_default(),
        }))
    }

    async fn stop_run(&self, request: Request<pb::StopRunRequest>) -> Result<Response<pb::Run>, Status> {
        let selector = required("run", &request.get_ref().run)?;
        Ok(Response::new(self.0.manager.stop(selector).await?.to_proto()))
    }

    async fn delete_run(
        &self,
        request: Request<pb::DeleteRunRequest>,
    ) -> Result<Response<pb::DeleteRunResponse>, Status> {
        let selector = required("run", &request.get_ref().run)?;
        let run = self.0.manager.delete(selector).await?;
        Ok(Response::new(pb::DeleteRunResponse { id: run.id }))
    }

    type WatchRunsStream = ReceiverStream<Result<pb::RunEvent, Status>>;

    async fn watch_runs(
        &self,
        request: Request<pb::WatchRunsRequest>,
    ) -> Result<Response<Self::WatchRunsStream>, Status> {
        let selector = request.into_inner().run;
        let manager = self.0.manager.clone();
        // Subscribe before the snapshot so no change falls between the two.
        let mut events = manager.subscribe();
        let only = if selector.trim().is_empty() {
            None
        } else {
            Some(manager.index().resolve(&selector).await?)
        };
        // Tags ride along with each run (TagRun publishes the run as a change).
        let snapshot = match &only {
            Some(run) => vec![(run.clone(), manager.index().tags(&run.id).await?)],
            None => manager.index().list_page(None, 0, 0).await?.0,
        };
        let index = manager.index().clone();
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        let shared = self.0.clone();
        let decor = Decor::read(&shared).await;
        tokio::spawn(async move {
            for (run, tags) in snapshot.into_iter().rev() {
                let mut run = pb::Run { tags, ..run.to_proto() };
                decor.apply(&mut run);
                if tx
                    .send(Ok(pb::RunEvent {
                        run: Some(run),
                        ..Default::default()
                    }))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            let done = pb::RunEvent {
                snapshot_done: true,
                ..Default::default()
            };
            if tx.send(Ok(done)).await.is_err() {
                return;
            }
            loop {
                match events.recv().await {
                    Ok(RunChange { run, removed }) => {
                        if only.as_ref().is_some_and(|o| o.id != run.id) {
                            continue;
                        }
                        let tags = if removed {
                            Vec::new()
                        } else {
                            index.tags(&run.id).await.unwrap_or_default()
                        };
                        let mut run = pb::Run { tags, ..run.to_proto() };
                        if !removed {
                            Decor::one(&shared, &run.id).await.apply(&mut run);
                        }
                        if tx
                            .send(Ok(pb::RunEvent {
                                run: Some(run),
                                removed,
                                snapshot_done: false,
                            }))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    Err(RecvError::Lagged(n)) => {
                        let _ = tx
                            .send(Err(Status::resource_exhausted(format!(
                                "this watcher fell {n} events behind and was dropped; watch again"
                            ))))
                            .await;
                        return;
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn select_runs(
        &self,
        request: Request<pb::SelectRunsRequest>,
    ) -> Result<Response<pb::SelectRunsResponse>, Status> {
        let mut answer = super::manage::select_runs(&self.0, request.into_inner()).await?;
        Decor::read(&self.0).await.apply_all(&mut answer.runs);
        Ok(Response::new(answer))
    }

    async fn set_label(&self, request: Request<pb::SetLabelRequest>) -> Result<Response<pb::Run>, Status> {
        Ok(Response::new(
            super::manage::set_label(&self.0, request.into_inner()).await?,
        ))
    }

    async fn tag_run(&self, request: Request<pb::TagRunRequest>) -> Result<Response<pb::Run>, Status> {
        Ok(Response::new(
            super::manage::tag_run(&self.0, request.into_inner()).await?,
        ))
    }

    async fn restore_run(&self, request: Request<pb::RestoreRunRequest>) -> Result<Response<pb::Run>, Status> {
        Ok(Response::new(
            super::manage::restore_run(&self.0, request.into_inner()).await?,
        ))
    }

    async fn purge_run(&self, request: Request<pb::PurgeRunRequest>) -> Result<Response<pb::PurgeRunResponse>, Status> {
        Ok(Response::new(
            super::manage::purge_run(&self.0, request.into_inner()).await?,
        ))
    }

    async fn export_runs(
        &self,
        request: Request<pb::ExportRunsRequest>,
    ) -> Result<Response<pb::ExportRunsResponse>, Status> {
        Ok(Response::new(
            super::manage::export_runs(&self.0, request.into_inner()).await?,
        ))
    }

    async fn import_runs(
        &self,
        request: Request<pb::ImportRunsRequest>,
    ) -> Result<Response<pb::ImportRunsResponse>, Status> {
        Ok(Response::new(
            super::manage::import_runs(&self.0, request.into_inner()).await?,
        ))
    }
}
