//! `guild label` and `guild tag`: a run's label and tags, kept in index.db and in the
//! run's own run.db, for the runs one RUNS word and the filters select.

use anyhow::bail;
use guild_proto::v1 as pb;

use crate::out::clean;
use crate::rpc::{Client, rpc};
use crate::select::{self, SelectArgs};

/// `guild label RUN TEXT...` or `guild label RUN --clear`.
pub async fn label(client: &Client, select: &SelectArgs, text: &[String], clear: bool) -> anyhow::Result<u8> {
    let label = text.join(" ");
    if clear && !label.is_empty() {
        bail!("give a label or --clear, not both");
    }
    if !clear && label.trim().is_empty() {
        bail!("give the label (guild label RUN TEXT), or --clear to remove it");
    }
    let runs = select::select_some(client, select, false, "label").await?;
    for run in runs {
        let labelled = rpc(client
            .runs()
            .set_label(pb::SetLabelRequest {
                run: run.id,
                label: label.clone(),
            })
            .await)?;
        if labelled.label.is_empty() {
            outln!("Cleared the label of {}", clean(&labelled.id))?;
        } else {
            outln!("Labelled {}: {}", clean(&labelled.id), clean(&labelled.label))?;
        }
    }
    Ok(0)
}

/// `guild tag RUN +T -T T`: bare or `+` adds, `-` removes; no change prints the tags.
pub async fn tag(client: &Client, select: &SelectArgs, changes: &[String]) -> anyhow::Result<u8> {
    let mut add = Vec::new();
    let mut remove = Vec::new();
    for change in changes {
        if let Some(flag) = change.strip_prefix("--") {
            bail!(
                "{change} after the tags is read as a tag; put --{flag} before them (guild tag RUN --{flag} ... +TAG)"
            );
        }
        match change.strip_prefix('-') {
            Some(tag) => remove.push(tag.to_string()),
            None => add.push(change.strip_prefix('+').unwrap_or(change).to_string()),
        }
    }
    let runs = select::select_some(client, select, false, "tag").await?;
    for run in runs {
        let tagged = if add.is_empty() && remove.is_empty() {
            run
        } else {
            rpc(client
                .runs()
                .tag_run(pb::TagRunRequest {
                    run: run.id,
                    add: add.clone(),
                    remove: remove.clone(),
                })
                .await)?
        };
        outln!("{}: {}", clean(&tagged.id), clean(&tagged.tags.join(" ")))?;
    }
    Ok(0)
}
