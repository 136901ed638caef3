//! The project a command works in: its folder (`-C DIR`, else the current one) and its
//! Guild file as the daemon reads it, with each model's flags as a run gets them.

use std::path::{Path, PathBuf};

use anyhow::Context;
use guild_proto::v1 as pb;

use crate::rpc::{Client, rpc};

/// The project folder, made absolute (the daemon resolves nothing relative to the CLI).
pub fn dir(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let dir = match given {
        Some(dir) => dir,
        None => std::env::current_dir().context("cannot read the current folder")?,
    };
    dir.canonicalize()
        .with_context(|| format!("no such folder: {}", dir.display()))
}

pub fn path_string(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// The project's Guild file: models, resources, flags, profiles.
pub async fn get(client: &Client, dir: &Path) -> anyhow::Result<pb::Project> {
    rpc(client
        .projects()
        .get_project(pb::GetProjectRequest {
            project_dir: path_string(dir),
        })
        .await)
}

/// A model's flags as a run gets them: `[flags]`, then the model's, then the profile's.
pub fn resolved_flags(
    project: &pb::Project,
    model: &pb::Model,
    profile: Option<&pb::Profile>,
) -> Vec<(String, String)> {
    let mut flags: Vec<(String, String)> = Vec::new();
    let layers = [Some(&project.flags), Some(&model.flags), profile.map(|p| &p.flags)];
    for flag in layers.into_iter().flatten().flatten() {
        match flags.iter_mut().find(|(n, _)| *n == flag.name) {
            Some(slot) => slot.1 = flag.value.clone(),
            None => flags.push((flag.name.clone(), flag.value.clone())),
        }
    }
    flags
}
