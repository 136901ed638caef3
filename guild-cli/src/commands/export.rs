//! `guild export` (runs to a folder or a .tar.gz) and `guild import` (runs from one),
//! both done by the daemon.

use std::path::Path;

use anyhow::{Context, bail};
use guild_proto::v1 as pb;

use crate::out::clean;
use crate::rpc::{Client, rpc};
use crate::select::{self, SelectArgs};

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
    let digits = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("expected a size like 20G or 500M, got \"{text}\""))?;
    let scale: u64 = match unit
        .trim()
        .to_ascii_lowercase()
        .trim_end_matches("ib")
        .trim_end_matches('b')
    {
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
