//! `guild diff RUN_A RUN_B`: what differs between two runs — flags, attributes (less
//! the ones that always differ, like env and pid, unless --all), the last value of
//! each series, and their source snapshots (`guild.d/sources/`) as a unified diff.
//! The snapshots are read straight from the run folders: the CLI and the daemon share
//! a machine (the CLI only speaks over the Unix socket).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use guild_proto::v1 as pb;

use crate::format::format_exact;
use crate::out::clean;
use crate::rpc::{Client, rpc, run_arg};

/// Attributes that differ between any two runs and say nothing about the difference.
const NOISY_ATTRS: [&str; 10] = [
    "id",
    "env",
    "pid",
    "cmd",
    "created",
    "started",
    "stopped",
    "source_run_dir",
    "stop_requested",
    "stats_interval",
];

/// Files larger than this are compared by content but not diffed line by line.
const MAX_DIFF_BYTES: usize = 4 * 1024 * 1024;

/// One section's differences: (name, value in A, value in B).
type Changes = Vec<(String, Option<String>, Option<String>)>;

fn changes(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Changes {
    let names: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    names
        .into_iter()
        .filter(|n| a.get(*n) != b.get(*n))
        .map(|n| (n.clone(), a.get(n).cloned(), b.get(n).cloned()))
        .collect()
}

fn section(out: &mut String, title: &str, changes: &Changes) {
    if changes.is_empty() {
        return;
    }
    out.push_str(title);
    out.push_str(":\n");
    for (name, a, b) in changes {
        let (a, b) = (a.as_deref().unwrap_or("(none)"), b.as_deref().unwrap_or("(none)"));
        out.push_str(&format!("  {}: {} -> {}\n", clean(name), clean(a), clean(b)));
    }
}

pub async fn run(client: &Client, run_a: &str, run_b: &str, all: bool) -> anyhow::Result<u8> {
    let get = |run: &str| {
        let mut runs = client.runs();
        let run = run_arg(run);
        async move { rpc(runs.get_run(pb::GetRunRequest { run }).await) }
    };
    let a = get(run_a).await?;
    let b = get(run_b).await?;
    let (ra, rb) = (
        a.run.as_ref().ok_or_else(|| anyhow!("no such run: {run_a}"))?,
        b.run.as_ref().ok_or_else(|| anyhow!("no such run: {run_b}"))?,
    );
    let mut out = format!("diff {} {}\n", clean(&ra.id), clean(&rb.id));

    let flags = |d: &pb::RunDetail| d.flags.iter().map(|f| (f.name.clone(), f.value.clone())).collect();
    section(&mut out, "flags", &changes(&flags(&a), &flags(&b)));

    let attrs = |d: &pb::RunDetail| {
        d.attrs
            .iter()
            .filter(|x| all || !NOISY_ATTRS.contains(&x.name.as_str()))
            .map(|x| (x.name.clone(), x.value.clone()))
            .collect()
    };
    section(&mut out, "attrs", &changes(&attrs(&a), &attrs(&b)));

    let scalars = |d: &pb::RunDetail| {
        d.series
            .iter()
            .filter(|s| all || !(s.key.starts_with("sys/") || s.key.starts_with("op/")))
            .map(|s| (s.key.clone(), format_exact(s.last)))
            .collect()
    };
    section(&mut out, "scalars", &changes(&scalars(&a), &scalars(&b)));

    let sources = source_diff(
        &Path::new(&ra.run_dir).join("guild.d").join("sources"),
        &Path::new(&rb.run_dir).join("guild.d").join("sources"),
    )?;
    if !sources.is_empty() {
        out.push_str("sources:\n");
        out.push_str(&sources);
    }
    if out.lines().count() == 1 {
        out.push_str("no differences\n");
    }
    out!("{out}")?;
    Ok(0)
}

/// Relative paths of the files under `dir` (empty when it does not exist).
fn files(dir: &Path) -> anyhow::Result<BTreeSet<PathBuf>> {
    let mut out = BTreeSet::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    for entry in walkdir::WalkDir::new(dir).min_depth(1) {
        let entry = entry.map_err(|e| anyhow!("cannot read {}: {e}", dir.display()))?;
        if !entry.file_type().is_dir() {
            out.insert(entry.path().strip_prefix(dir).unwrap_or(entry.path()).to_path_buf());
        }
    }
    Ok(out)
}

/// A unified diff of two source snapshots (files only in one side are named).
pub fn source_diff(a: &Path, b: &Path) -> anyhow::Result<String> {
    let (fa, fb) = (files(a)?, files(b)?);
    let mut out = String::new();
    for rel in fa.union(&fb) {
        let name = rel.to_string_lossy();
        let name = clean(&name);
        let read = |dir: &Path| {
            std::fs::read(dir.join(rel)).map_err(|e| anyhow!("cannot read {}: {e}", dir.join(rel).display()))
        };
        match (fa.contains(rel), fb.contains(rel)) {
            (true, false) => out.push_str(&format!("Only in A: {name}\n")),
            (false, true) => out.push_str(&format!("Only in B: {name}\n")),
            _ => {
                let (ta, tb) = (read(a)?, read(b)?);
                if ta == tb {
                    continue;
                }
                let text = |bytes: &[u8]| -> Option<String> {
                    (bytes.len() <= MAX_DIFF_BYTES && !bytes.contains(&0))
                        .then(|| String::from_utf8(bytes.to_vec()).ok())
                        .flatten()
                };
                match (text(&ta), text(&tb)) {
                    (Some(ta), Some(tb)) => {
                        let diff = similar::TextDiff::from_lines(&ta, &tb);
                        out.push_str(
                            &diff
                                .unified_diff()
                                .context_radius(3)
                                .header(&format!("a/{name}"), &format!("b/{name}"))
                                .to_string(),
                        );
                    }
                    _ => out.push_str(&format!("Binary files a/{name} and b/{name} differ\n")),
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diffs_snapshots() {
        let tmp = std::env::temp_dir().join(format!("guild-diff-test-{}", std::process::id()));
        let (a, b) = (tmp.join("a"), tmp.join("b"));
        for dir in [&a, &b] {
            std::fs::create_dir_all(dir.join("pkg")).unwrap();
        }
        std::fs::write(a.join("train.py"), "lr = 0.1\nepochs = 2\nprint(lr)\n").unwrap();
        std::fs::write(b.join("train.py"), "lr = 0.01\nepochs = 2\nprint(lr)\n").unwrap();
        std::fs::write(a.join("pkg/same.py"), "x = 1\n").unwrap();
        std::fs::write(b.join("pkg/same.py"), "x = 1\n").unwrap();
        std::fs::write(a.join("old.txt"), "gone\n").unwrap();
        std::fs::write(b.join("new.bin"), [0u8, 1, 2]).unwrap();
        std::fs::write(a.join("blob"), [0u8, 1]).unwrap();
        std::fs::write(b.join("blob"), [0u8, 2]).unwrap();
        let diff = source_diff(&a, &b).unwrap();
        std::fs::remove_dir_all(&tmp).unwrap();
        assert_eq!(
            diff,
            "Binary files a/blob and b/blob differ\n\
             Only in B: new.bin\n\
             Only in A: old.txt\n\
             --- a/train.py\n\
             +++ b/train.py\n\
             @@ -1,3 +1,3 @@\n\
             -lr = 0.1\n\
             +lr = 0.01\n\
             \x20epochs = 2\n\
             \x20print(lr)\n"
        );
    }

    #[test]
    fn changes_list_only_differences() {
        let a: BTreeMap<String, String> = [("lr", "0.1"), ("batch", "32"), ("only_a", "1")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let b: BTreeMap<String, String> = [("lr", "0.01"), ("batch", "32"), ("only_b", "2")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut out = String::new();
        section(&mut out, "flags", &changes(&a, &b));
        assert_eq!(
            out,
            "flags:\n  lr: 0.1 -> 0.01\n  only_a: 1 -> (none)\n  only_b: (none) -> 2\n"
        );
    }
}
