//! ProjectService: a project's Guild file as models, operations, flags and profiles.

use std::path::Path;

use guild_proto::v1::{self as pb, GetProjectRequest, project_service_server::ProjectService};
use tonic::{Request, Response, Status};

use crate::project;

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
            return Err(Status::not_found(format!("no Guild file in {}", crate::error::quote(dir))));
        }
        let parsed = project::load(&guild_file).map_err(|e| Status::invalid_argument(e.to_string()))?;
        Ok(Response::new(pb::Project {
            dir: dir.to_string(),
            name: parsed.name.clone(),
            description: parsed.description.clone(),
            runroot: parsed.runroot.clone(),
            models: parsed
                .models
                .iter()
                .map(|m| pb::Model {
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
                })
                .collect(),
            flags: flags(&parsed.flags),
            profiles: parsed
                .profiles
                .iter()
                .map(|p| pb::Profile {
                    name: p.name.clone(),
                    flags: flags(&p.flags),
                })
                .collect(),
        }))
    }
}
