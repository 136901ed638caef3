//! ProjectService: a project's Guild file as models, resources, operations, flags,
//! profiles and each model's view; and the view messages other services share.

use std::path::Path;

use guild_proto::v1::{self as pb, GetProjectRequest, project_service_server::ProjectService};
use tonic::{Request, Response, Status};

use crate::project::view::{Field, View};
use crate::project::{self, Model, Project};
use crate::runs::view::FieldValue;

pub struct Projects;

fn flags(pairs: &[(String, String)]) -> Vec<pb::Flag> {
    pairs
        .iter()
        .map(|(name, value)| pb::Flag {
            name: name.clone(),
            value: value.clone(),
        })
        .collect()
}

/// Parses a project's Guild file on a blocking thread: a large file must not hold up
/// the async workers (it is bounded too: `project::MAX_FILE_BYTES`).
pub(super) async fn load_project(guild_file: &Path) -> Result<Project, Status> {
    let path = guild_file.to_path_buf();
    tokio::task::spawn_blocking(move || project::load(&path))
        .await
        .map_err(|_| Status::internal("reading the Guild file failed"))?
        .map_err(|e| Status::invalid_argument(e.to_string()))
}

#[tonic::async_trait]
impl ProjectService for Projects {
    async fn get_project(&self, request: Request<GetProjectRequest>) -> Result<Response<pb::Project>, Status> {
        let dir = super::required("project_dir", &request.get_ref().project_dir)?;
        if !Path::new(dir).is_absolute() {
            return Err(Status::invalid_argument(format!(
                "project_dir must be an absolute path, got {}",
                crate::error::quote(dir)
            )));
        }
        let guild_file = Path::new(dir).join("Guild");
        if !guild_file.is_file() {
            return Err(Status::not_found(format!(
                "no Guild file in {}",
                crate::error::quote(dir)
            )));
        }
        let parsed = load_project(&guild_file).await?;
        // Each model's view may repeat a large [view]: the answer is built off the async
        // workers, as the file was read.
        let dir = dir.to_string();
        let answer = tokio::task::spawn_blocking(move || project_proto(dir, &parsed))
            .await
            .map_err(|_| Status::internal("building the project's answer failed"))?;
        Ok(Response::new(answer))
    }
}

/// A parsed Guild file as the API answers it.
fn project_proto(dir: String, parsed: &Project) -> pb::Project {
    let model = |m: &Model| pb::Model {
        name: m.name.clone(),
        description: m.description.clone(),
        operations: m
            .ops
            .iter()
            .map(|op| pb::Operation {
                name: op.name.clone(),
                command: op.command.clone(),
                requires: op.requires.clone(),
            })
            .collect(),
        flags: flags(&m.flags),
        runtime: m.runtime.clone().unwrap_or_default(),
        sources: m.sources.clone(),
        view: parsed.view(m).as_ref().map(view_proto),
    };
    pb::Project {
        dir,
        name: parsed.name.clone(),
        description: parsed.description.clone(),
        runroot: parsed.runroot.clone(),
        models: parsed.models.iter().map(model).collect(),
        resources: parsed.resources.iter().map(model).collect(),
        flags: flags(&parsed.flags),
        profiles: parsed
            .profiles
            .iter()
            .map(|p| pb::Profile {
                name: p.name.clone(),
                flags: flags(&p.flags),
            })
            .collect(),
        tags: parsed.tags.clone(),
    }
}

pub(super) fn view_proto(view: &View) -> pb::View {
    pb::View {
        origin: view.origin.clone(),
        fields: view.fields.iter().map(field_proto).collect(),
        rows: view
            .rows
            .iter()
            .map(|row| pb::ViewRow {
                name: row.name.clone(),
                series: row
                    .series
                    .iter()
                    .map(|s| pb::ViewSeries {
                        name: s.name.clone(),
                        title: s.title.clone(),
                        label: s.label.clone(),
                        format: s.format.clone(),
                        pattern: s.source.clone(),
                    })
                    .collect(),
            })
            .collect(),
        compare: view.compare.iter().map(field_proto).collect(),
    }
}

pub(super) fn field_proto(field: &Field) -> pb::ViewField {
    pb::ViewField {
        name: field.name.clone(),
        label: field.label.clone(),
        source: field.source.clone(),
        attribute: field.attribute.clone(),
        reduce: field.reduce.clone(),
        format: field.format.clone(),
        color: field.color.clone(),
        icon: field.icon.clone(),
    }
}

pub(super) fn value_proto(value: FieldValue) -> pb::FieldValue {
    pb::FieldValue {
        name: value.name,
        present: value.present,
        value: value.value,
        text: value.text,
        key: value.key,
    }
}
