//! `guild list-models`: each model and resource of the project with its runtime, ops
//! and flags (as a run gets them), then the project's tags and profiles.

use std::path::Path;

use guild_proto::v1 as pb;

use crate::out::clean;
use crate::project::{self, resolved_flags};
use crate::rpc::Client;

pub async fn run(client: &Client, project: &Path) -> anyhow::Result<u8> {
    let project = project::get(client, project).await?;
    out!("{}", text(&project))?;
    Ok(0)
}

fn text(project: &pb::Project) -> String {
    let mut out = String::new();
    if !project.tags.is_empty() {
        out.push_str(&format!("tags: {}\n", clean(&project.tags.join(" "))));
    }
    let targets = project
        .models
        .iter()
        .enumerate()
        .map(|(i, m)| (m, if i == 0 { " (default)" } else { "" }, "model"))
        .chain(project.resources.iter().map(|r| (r, "", "resource")));
    for (target, default, kind) in targets {
        let runtime = if target.runtime.is_empty() {
            String::new()
        } else {
            format!(" [{}]", target.runtime)
        };
        out.push_str(&format!(
            "{} {}{default}{}  {}\n",
            kind,
            clean(&target.name),
            clean(&runtime),
            clean(&target.description)
        ));
        for op in &target.operations {
            out.push_str(&format!("  {:<9} {}\n", clean(&op.name), clean(&op.command)));
        }
        let flags = resolved_flags(project, target, None);
        if !flags.is_empty() {
            let shown: Vec<String> = flags
                .iter()
                .map(|(n, v)| format!("{}={}", clean(n), clean(v)))
                .collect();
            out.push_str(&format!("  flags     {}\n", shown.join(" ")));
        }
    }
    if !project.profiles.is_empty() {
        let names: Vec<String> = project.profiles.iter().map(|p| clean(&p.name).into_owned()).collect();
        out.push_str(&format!("profiles: {}\n", names.join(", ")));
    }
    out
}
