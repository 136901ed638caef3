//! `guild media RUN` (a run's media tags: images, audio, histograms, text, PR curves) and
//! `guild media RUN [TAG] [--step N] --out DIR` (its images and audio clips as files:
//! `DIR/<tag>/<step>.png`, `-<index>` added for the second item of a step and after).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use guild_proto::v1 as pb;

use crate::out::clean;
use crate::rpc::{Client, rpc, run_arg};
use crate::table;

pub async fn run(
    client: &Client,
    run: &str,
    tag: Option<&str>,
    step: Option<i64>,
    out: Option<&Path>,
) -> anyhow::Result<u8> {
    let selector = run_arg(run);
    let list = rpc(client
        .media()
        .list_media(pb::ListMediaRequest { run: selector.clone() })
        .await)?;
    let id = list.run_id.clone();
    if let Some(tag) = tag
        && !list.tags.iter().any(|t| t.tag == tag)
    {
        bail!(
            "run {} has no media tag \"{}\" (`guild media {}` lists its tags)",
            clean(&id),
            clean(tag),
            clean(&id)
        );
    }
    let Some(out) = out else {
        if step.is_some() {
            bail!("--step chooses which items --out DIR writes: give --out DIR too");
        }
        let mut rows = vec![["KIND", "TAG", "COUNT", "STEPS"].map(String::from).to_vec()];
        rows.extend(list.tags.iter().filter(|t| tag.is_none_or(|w| t.tag == w)).map(|t| {
            vec![
                kind_name(t.kind()).to_string(),
                t.tag.clone(),
                t.count.to_string(),
                if t.min_step == t.max_step {
                    t.min_step.to_string()
                } else {
                    format!("{}..{}", t.min_step, t.max_step)
                },
            ]
        }));
        out!("{}", table::render(rows, &[]))?;
        return Ok(0);
    };
    let files: Vec<&pb::MediaTag> = list
        .tags
        .iter()
        .filter(|t| tag.is_none_or(|w| t.tag == w))
        .filter(|t| matches!(t.kind(), pb::MediaKind::Image | pb::MediaKind::Audio))
        .collect();
    if let Some(tag) = tag
        && files.is_empty()
    {
        let kind = list
            .tags
            .iter()
            .find(|t| t.tag == tag)
            .map_or("", |t| kind_name(t.kind()));
        bail!(
            "\"{}\" is a {kind} tag: only images and audio are written as files",
            clean(tag)
        );
    }
    let (mut images, mut clips) = (0u64, 0u64);
    for t in files {
        let steps = rpc(client
            .media()
            .get_media_steps(pb::GetMediaStepsRequest {
                run: id.clone(),
                kind: t.kind,
                tag: t.tag.clone(),
            })
            .await)?;
        let folder = out.join(tag_path(&t.tag));
        for item in steps.items.iter().filter(|i| step.is_none_or(|s| i.step == s)) {
            let got = rpc(client
                .media()
                .get_media(pb::GetMediaRequest {
                    run: id.clone(),
                    kind: t.kind,
                    tag: t.tag.clone(),
                    seq: item.seq,
                    with_bytes: true,
                    ..Default::default()
                })
                .await)?;
            let Some(data) = got.items.into_iter().next().map(|i| i.data) else {
                continue;
            };
            std::fs::create_dir_all(&folder).with_context(|| format!("cannot create {}", folder.display()))?;
            let name = if item.index == 0 {
                format!("{}.{}", item.step, extension(&item.mime))
            } else {
                format!("{}-{}.{}", item.step, item.index, extension(&item.mime))
            };
            let path = folder.join(name);
            std::fs::write(&path, &data).with_context(|| format!("cannot write {}", path.display()))?;
            outln!("{}", clean(&path.to_string_lossy()))?;
            if t.kind() == pb::MediaKind::Image {
                images += 1;
            } else {
                clips += 1;
            }
        }
    }
    if images + clips == 0 {
        let what = match step {
            Some(s) => format!(" at step {s}"),
            None => String::new(),
        };
        bail!("run {} has no images or audio{what} to write", clean(&id));
    }
    eprintln!(
        "wrote {images} image{} and {clips} audio clip{} under {}",
        if images == 1 { "" } else { "s" },
        if clips == 1 { "" } else { "s" },
        out.display()
    );
    Ok(0)
}

pub fn kind_name(kind: pb::MediaKind) -> &'static str {
    match kind {
        pb::MediaKind::Image => "image",
        pb::MediaKind::Audio => "audio",
        pb::MediaKind::Histogram => "histogram",
        pb::MediaKind::Text => "text",
        pb::MediaKind::PrCurve => "pr_curve",
        pb::MediaKind::Unspecified => "?",
    }
}

fn extension(mime: &str) -> &'static str {
    match mime {
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "image/bmp" => "bmp",
        "audio/wav" | "audio/x-wav" | "audio/wave" => "wav",
        "audio/mpeg" => "mp3",
        "audio/ogg" => "ogg",
        _ => "bin",
    }
}

/// A tag as a relative folder path: its `/`-separated parts, each made a plain name (no
/// `.`, `..`, empty or hidden part, no character outside `A-Za-z0-9._-`), so a tag from
/// an event file never writes outside DIR.
fn tag_path(tag: &str) -> PathBuf {
    tag.split('/')
        .map(|part| {
            let clean: String = part
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "._-".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            if clean.is_empty() || clean.starts_with('.') {
                format!("_{clean}")
            } else {
                clean
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_stay_inside_the_folder() {
        assert_eq!(tag_path("tf/train/sample"), PathBuf::from("tf/train/sample"));
        assert_eq!(tag_path("tf/../../etc"), PathBuf::from("tf/_../_../etc"));
        assert_eq!(tag_path("/abs//x"), PathBuf::from("_/abs/_/x"));
        assert_eq!(tag_path("tf/a b\u{1b}[2J"), PathBuf::from("tf/a_b__2J"));
        assert_eq!(tag_path("tf/.hidden"), PathBuf::from("tf/_.hidden"));
    }
}
