//! Run management from the CLI: listing with filters and the trash, delete (to the
//! trash), restore, purge, label, tag, export and import.

use std::path::Path;

use anyhow::{Context, bail};
use guild_proto::v1 as pb;

use crate::client::Client;
use crate::commands::rpc;
use crate::out::clean;
use crate::select::{self, SelectArgs};
use crate::table;

/// `guild runs [--all] [--json] [--deleted] [filters]`.
pub async fn list(client: &Client, all: bool, json: bool, deleted: bool, args: &SelectArgs) -> anyhow::Result<u8> {
    let (runs, total): (Vec<(u32, pb::Run)>, usize) = if deleted || !args.is_empty() {
        let picked = select::select(client, args.to_proto(deleted)).await?;
        let total = picked.len();
        (picked, total)
    } else {
        let limit = if all || json { 0 } else { 20 };
        let list = rpc(client
            .runs()
            .list_runs(pb::ListRunsRequest {
                limit,
                offset: 0,
                project_dir: String::new(),
            })
            .await)?;
        let runs = list
            .runs
            .into_iter()
            .enumerate()
            .map(|(i, r)| (i as u32 + 1, r))
            .collect();
        (runs, list.total as usize)
    };
    let shown: Vec<(u32, pb::Run)> = if all || json {
        runs
    } else {
        runs.into_iter().take(20).collect()
    };
    if json {
        outln!(
            "{}",
            serde_json::Value::Array(shown.iter().map(|(_, r)| table::run_json(r)).collect())
        )?;
        return Ok(0);
    }
    let indexes: Vec<u32> = shown.iter().map(|(i, _)| *i).collect();
    let runs: Vec<pb::Run> = shown.into_iter().map(|(_, r)| r).collect();
    out!("{}", table::runs_indexed(&runs, &indexes))?;
    if runs.len() < total {
        eprintln!("Showing {} of {} runs (use --all to show all)", runs.len(), total);
    }
    if deleted && runs.is_empty() {
        eprintln!("The trash is empty.");
    }
    Ok(0)
}

pub async fn delete(client: &Client, args: &SelectArgs) -> anyhow::Result<u8> {
    let runs = select::select_some(client, args, false, "delete").await?;
    // Refuse before anything moves: a half-done delete surprises more than none.
    let active: Vec<&pb::Run> = runs.iter().filter(|r| select::is_active(r)).collect();
    if let Some(first) = active.first() {
        let ids: Vec<&str> = active.iter().map(|r| r.id.as_str()).collect();
        bail!(
            "{} {} {} running: stop it first (guild stop {}); nothing was deleted",
            if ids.len() == 1 { "run" } else { "runs" },
            ids.join(", "),
            if ids.len() == 1 { "is" } else { "are" },
            first.id
        );
    }
    for run in &runs {
        let deleted = rpc(client
            .runs()
            .delete_run(pb::DeleteRunRequest { run: run.id.clone() })
            .await)?;
        outln!("Deleted {}", clean(&deleted.id))?;
    }
    eprintln!(
        "Moved {} run{} to the trash: `guild runs restore` brings {} back, `guild runs purge` removes {} for good",
        runs.len(),
        if runs.len() == 1 { "" } else { "s" },
        if runs.len() == 1 { "it" } else { "them" },
        if runs.len() == 1 { "it" } else { "them" },
    );
    Ok(0)
}

pub async fn restore(client: &Client, args: &SelectArgs) -> anyhow::Result<u8> {
    let runs = select::select_some(client, args, true, "restore").await?;
    for run in runs {
        let restored = rpc(client.runs().restore_run(pb::RestoreRunRequest { run: run.id }).await)?;
        outln!("Restored {}", clean(&restored.id))?;
    }
    Ok(0)
}

pub async fn purge(client: &Client, args: &SelectArgs) -> anyhow::Result<u8> {
    let runs = select::select_some(client, args, true, "purge").await?;
    for run in runs {
        let purged = rpc(client.runs().purge_run(pb::PurgeRunRequest { run: run.id }).await)?;
        outln!("Purged {}", clean(&purged.id))?;
    }
    Ok(0)
}

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

/// `guild export [RUNS...] DEST`: the last argument is the destination.
pub async fn export(client: &Client, mut args: SelectArgs) -> anyhow::Result<u8> {
    let Some(dest) = args.runs.pop() else {
        bail!("guild export [RUNS...] DEST: name the destination (a folder, or a file ending in .tar.gz)");
    };
    let dest = std::path::absolute(&dest).with_context(|| format!("bad destination {dest}"))?;
    let runs = select::select_some(client, &args, false, "export").await?;
    let active: Vec<&str> = runs
        .iter()
        .filter(|r| select::is_active(r))
        .map(|r| r.id.as_str())
        .collect();
    if !active.is_empty() {
        bail!(
            "{} still running: export it when it has ended (or stop it first)",
            active.join(", ")
        );
    }
    let reply = rpc(client
        .runs()
        .export_runs(pb::ExportRunsRequest {
            runs: runs.iter().map(|r| r.id.clone()).collect(),
            dest: dest.to_string_lossy().into_owned(),
        })
        .await)?;
    for id in &reply.ids {
        outln!("Exported {}", clean(id))?;
    }
    eprintln!(
        "{} run{} in {}",
        reply.ids.len(),
        if reply.ids.len() == 1 { "" } else { "s" },
        reply.dest
    );
    Ok(0)
}

/// `guild import SRC [--rename]`: into the current project when it has a Guild file.
pub async fn import(
    client: &Client,
    project: &Path,
    src: &Path,
    rename: bool,
    max_size: Option<u64>,
) -> anyhow::Result<u8> {
    let src = std::path::absolute(src).with_context(|| format!("bad source {}", src.display()))?;
    let reply = rpc(client
        .runs()
        .import_runs(pb::ImportRunsRequest {
            src: src.to_string_lossy().into_owned(),
            rename,
            project_dir: project.to_string_lossy().into_owned(),
            max_unpacked_bytes: max_size.unwrap_or(0),
        })
        .await)?;
    for run in &reply.runs {
        if run.original_id.is_empty() {
            outln!("Imported {} into {}", clean(&run.id), clean(&run.run_dir))?;
        } else {
            outln!(
                "Imported {} as {} into {}",
                clean(&run.original_id),
                clean(&run.id),
                clean(&run.run_dir)
            )?;
        }
    }
    Ok(0)
}

/// `20G`, `500M`, `64k`, `1GiB` or a number of bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("expected a size like 20G or 500M, got \"{text}\""))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().trim_end_matches("ib").trim_end_matches('b') {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => return Err(format!("unknown size unit in \"{text}\" (use K, M, G or T)")),
    };
    let bytes = number * scale as f64;
    if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 {
        return Err(format!("size \"{text}\" is out of range"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("20G"), Ok(20 << 30));
        assert_eq!(parse_size("500M"), Ok(500 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("1.5k"), Ok(1536));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5X").is_err());
    }
}
