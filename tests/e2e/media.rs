//! Media from event files under a real daemon: images, histograms, text, audio and PR
//! curves written by tensorboardX during a run (and TF 2's own writer, from the committed
//! fixture), checked item by item against TensorBoard's EventAccumulator on the same
//! files; MediaService, the `/media/` files with the token and caching headers, WatchMedia
//! while the run writes, `guild media`, and a malformed image skipped with its reason.

use std::collections::BTreeSet;
use std::path::Path;

use guild_proto::v1::{self as pb, RunStatus, media_service_client::MediaServiceClient};

use crate::helpers::*;

const GUILD: &str = "[project]\nname = media\nstats_interval = 0\n\n[model \"m\"]\ntrain = tbx_media\n\n[flags]\ncopy_tf2 = none\nwait = none\n";
const TBX_MEDIA: &str = include_str!("media/tbx_media.py");
const COMPARE: &str = include_str!("media/compare_with_tensorboard.py");

fn tf2_fixture() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../guildd/tests/fixtures/tfevents/media/tf2")
}

fn media_client(env: &Env) -> MediaServiceClient<tonic::transport::Channel> {
    env.block_on(async { MediaServiceClient::new(env.channel().await).max_decoding_message_size(64 << 20) })
}

fn available() -> bool {
    tensorboardx_available()
        && python_imports(
            "tensorboard, numpy",
            "GUILD_REQUIRE_TENSORBOARD",
            "pip install tensorboard numpy",
        )
}

/// Runs the comparison with EventAccumulator; its JSON counts per kind.
#[track_caller]
fn compare_with_tensorboard(
    env: &Env,
    events: &Path,
    run_dir: &Path,
    prefix: &str,
    not_stored: &[&str],
) -> serde_json::Value {
    let script = env.root.join("compare_with_tensorboard.py");
    std::fs::write(&script, COMPARE).unwrap();
    let mut cmd = std::process::Command::new("python3");
    cmd.arg(&script)
        .arg(events)
        .arg(run_dir.join("guild.d/run.db"))
        .arg(prefix);
    for tag in not_stored {
        cmd.args(["--not-stored", tag]);
    }
    let out = cmd.output().expect("python3");
    assert!(
        out.status.success(),
        "run.db differs from TensorBoard's reading of {}:\n{}{}",
        events.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON counts")
}

#[test]
fn media_match_tensorboard_and_are_served_to_the_api_the_page_and_the_cli() {
    if !available() {
        return;
    }
    let env = Env::new();
    let (_, status) = env.start_guildd(&["--listen", "127.0.0.1:0"]);
    env.write("Guild", GUILD);
    env.write("tbx_media.py", TBX_MEDIA);
    // TF 2's own writer's files (tensor histograms, text, images, audio, bool/uint8
    // scalars) are copied in by the op as it runs, beside tensorboardX's.
    let tf2 = tf2_fixture();
    let out = env.guild(&["train", &format!("copy_tf2={}", tf2.display())]).ok();
    let (id, run_dir) = out.started_run();
    let run = env.wait_run(&id, &[RunStatus::Completed, RunStatus::Error, RunStatus::Failed]);
    assert_eq!(run.status(), RunStatus::Completed, "{}", env.daemon_log());

    // Item for item what TensorBoard reads, but the malformed image.
    let tbx = compare_with_tensorboard(&env, &run_dir.join("train"), &run_dir, "tf/train/", &["bad"]);
    assert_eq!(
        tbx,
        serde_json::json!({"audio": 2, "histogram": 5, "image": 5, "pr_curve": 3, "scalar": 0, "text": 2})
    );
    let tf2_counts = compare_with_tensorboard(&env, &run_dir.join("tf2"), &run_dir, "tf/tf2/", &[]);
    assert_eq!(
        tf2_counts,
        serde_json::json!({"audio": 2, "histogram": 5, "image": 6, "pr_curve": 0, "scalar": 10, "text": 2})
    );
    // The malformed image is counted, not stored, and errors.log says why.
    let errors = std::fs::read_to_string(run_dir.join("guild.d/errors.log")).unwrap_or_default();
    let reason = errors
        .lines()
        .find(|l| l.contains("value \"bad\""))
        .unwrap_or_else(|| panic!("no line about the malformed image in errors.log:\n{errors}"));
    assert!(
        reason.contains("at step 3")
            && reason.contains("not stored: not a PNG, JPEG, GIF, WebP or BMP image (it starts 3c 73 76 67"),
        "{reason}"
    );
    let (bad_count, sample_bytes): (i64, Vec<u8>) = env.block_on(async {
        let mut db = open_run_db(&run_dir).await;
        let bad = sqlx::query_scalar("SELECT count FROM event_summary WHERE key = 'tf/train/bad' AND kind = 'image'")
            .fetch_one(&mut db)
            .await
            .unwrap();
        let bytes = sqlx::query_scalar("SELECT data FROM image WHERE tag = 'tf/train/sample' AND step = 3")
            .fetch_one(&mut db)
            .await
            .unwrap();
        (bad, bytes)
    });
    assert_eq!(bad_count, 1);

    // MediaService.
    let mut client = media_client(&env);
    let (tags, steps, one, spread) = env.block_on(async {
        let tags = client
            .list_media(pb::ListMediaRequest { run: id.clone() })
            .await
            .unwrap()
            .into_inner();
        let steps = client
            .get_media_steps(pb::GetMediaStepsRequest {
                run: id.clone(),
                kind: pb::MediaKind::Image as i32,
                tag: "tf/train/sample".into(),
            })
            .await
            .unwrap()
            .into_inner();
        let at3 = steps.items.iter().find(|i| i.step == 3).unwrap().seq;
        let one = client
            .get_media(pb::GetMediaRequest {
                run: id.clone(),
                kind: pb::MediaKind::Image as i32,
                tag: "tf/train/sample".into(),
                seq: at3,
                with_bytes: true,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let spread = client
            .get_media(pb::GetMediaRequest {
                run: id.clone(),
                kind: pb::MediaKind::Histogram as i32,
                tag: "tf/train/weights".into(),
                max_items: 2,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        (tags, steps, one, spread)
    });
    assert_eq!(tags.run_id, id);
    let listed: BTreeSet<(i32, String, u64)> = tags.tags.iter().map(|t| (t.kind, t.tag.clone(), t.count)).collect();
    for want in [
        (pb::MediaKind::Image, "tf/train/sample", 5),
        (pb::MediaKind::Histogram, "tf/train/weights", 5),
        (pb::MediaKind::Text, "tf/train/note/text_summary", 2),
        (pb::MediaKind::Audio, "tf/train/tone", 2),
        (pb::MediaKind::PrCurve, "tf/train/pr", 3),
    ] {
        assert!(
            listed.contains(&(want.0 as i32, want.1.to_string(), want.2)),
            "{want:?} not in {listed:?}"
        );
    }
    assert!(!listed.iter().any(|(_, tag, _)| tag == "tf/train/bad"));
    let sizes: Vec<(i64, u32, u32, &str)> = steps
        .items
        .iter()
        .map(|i| (i.step, i.width, i.height, i.mime.as_str()))
        .collect();
    assert_eq!(
        sizes,
        (0..5).map(|s| (s, 8, 8 + s as u32, "image/png")).collect::<Vec<_>>()
    );
    assert_eq!(one.items.len(), 1);
    assert_eq!(one.items[0].data, sample_bytes);
    let spread_steps: Vec<i64> = spread.items.iter().map(|i| i.r#ref.as_ref().unwrap().step).collect();
    assert_eq!(spread_steps, vec![0, 4]);
    let h = spread.items[1].histogram.as_ref().unwrap();
    // tensorboardX's 30 bins after an empty one at the minimum.
    assert_eq!((h.left.len(), h.counts.iter().sum::<f64>()), (31, 1000.0));

    // The page's files: the token, the bytes, caching for good, and 304 on revalidation.
    let addr = status.tcp_address.clone();
    let token = env.token();
    let seq = steps.items[3].seq;
    let path = format!("/media/{id}/image/{seq}");
    assert_eq!(http(&addr, "GET", &path, &[], b"").status, 401);
    assert_eq!(
        http(&addr, "GET", &path, &[("x-guild-token", "wrong")], b"").status,
        401
    );
    let got = http(&addr, "GET", &path, &[("x-guild-token", &token)], b"");
    assert_eq!(got.status, 200, "{got:?}");
    assert_eq!(got.bytes, sample_bytes);
    assert_eq!(got.header("content-type"), Some("image/png"));
    assert_eq!(
        got.header("cache-control"),
        Some("private, max-age=31536000, immutable")
    );
    assert_eq!(got.header("x-content-type-options"), Some("nosniff"));
    let etag = got.header("etag").expect("an ETag").to_string();
    let again = http(
        &addr,
        "GET",
        &path,
        &[("authorization", &format!("Bearer {token}")), ("if-none-match", &etag)],
        b"",
    );
    assert_eq!(again.status, 304, "{again:?}");
    for missing in [
        format!("/media/{id}/image/999999"),
        format!("/media/{id}/histogram/{seq}"),
        format!("/media/nosuchrun/image/{seq}"),
        format!("/media/{id}/image/x"),
    ] {
        let reply = http(&addr, "GET", &missing, &[("x-guild-token", &token)], b"");
        assert_eq!(reply.status, 404, "{missing}: {reply:?}");
    }

    // guild media: the tags, then the files.
    let listing = env.guild(&["media", &id]).ok();
    assert!(
        listing
            .stdout
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["image", "tf/train/sample", "5", "0..4"]),
        "{}",
        listing.stdout
    );
    let dir = env.root.join("media-out");
    let wrote = env.guild(&["media", &id, "--out", dir.to_str().unwrap()]).ok();
    assert_eq!(wrote.stdout_lines().len(), 5 + 2 + 6 + 2, "{}", wrote.stdout);
    assert_eq!(std::fs::read(dir.join("tf/train/sample/3.png")).unwrap(), sample_bytes);
    assert!(dir.join("tf/train/tone/1.wav").is_file());
    assert!(dir.join("tf/tf2/sample/2-1.png").is_file(), "{}", wrote.stdout);
    assert!(
        wrote.stderr.contains("wrote 11 images and 4 audio clips"),
        "{}",
        wrote.stderr
    );
    let one_dir = env.root.join("one");
    let one = env
        .guild(&[
            "media",
            &id,
            "tf/train/sample",
            "--step",
            "2",
            "--out",
            one_dir.to_str().unwrap(),
        ])
        .ok();
    assert_eq!(
        one.stdout_lines(),
        vec![one_dir.join("tf/train/sample/2.png").to_str().unwrap()]
    );
    let refused = env
        .guild(&["media", &id, "tf/train/weights", "--out", one_dir.to_str().unwrap()])
        .exits(1);
    assert!(
        refused
            .stderr
            .contains("\"tf/train/weights\" is a histogram tag: only images and audio are written as files"),
        "{}",
        refused.stderr
    );
    // Shell completion offers the run's media tags, each with its kind and steps.
    let tags = fish(&env, &["media", &id, ""]);
    for tag in ["tf/train/sample", "tf/train/weights", "tf/train/tone", "tf/train/pr", "tf/tf2/sample"] {
        assert!(tags.iter().any(|t| t == tag), "{tag} not offered: {tags:?}");
    }
    assert_eq!(
        fish_lines(&env, &["media", &id, "tf/train/sa"]),
        ["tf/train/sample\t5 image, steps 0..4"]
    );
    let unknown = env.guild(&["media", &id, "tf/nope", "--out", "x"]).exits(1);
    assert!(
        unknown.stderr.contains(&format!(
            "run {id} has no media tag \"tf/nope\" (`guild media {id}` lists its tags)"
        )),
        "{}",
        unknown.stderr
    );
}

#[test]
fn watch_media_follows_a_run_as_it_writes() {
    if !available() {
        return;
    }
    let env = Env::new();
    env.write("Guild", GUILD);
    env.write("tbx_media.py", TBX_MEDIA);
    let (id, _) = env.guild(&["train", "--background", "wait=go"]).ok().started_run();
    let mut client = media_client(&env);
    env.block_on(async {
        let mut stream = client
            .watch_media(pb::WatchMediaRequest {
                run: id.clone(),
                after_cursor: 0,
            })
            .await
            .expect("WatchMedia")
            .into_inner();
        let mut seen: Vec<pb::MediaRef> = Vec::new();
        // Steps 0 and 1 arrive while the op waits for `go`.
        while !seen.iter().any(|r| r.step == 1 && r.tag == "tf/train/sample") {
            let update = stream.message().await.expect("stream").expect("ended before step 1");
            seen.extend(update.items);
        }
        assert!(seen.iter().all(|r| r.step <= 1), "{seen:?}");
        std::fs::write(env.project.join("go"), "").unwrap();
        // Then the rest, and the stream ends with the run.
        while let Some(update) = stream.message().await.expect("stream") {
            assert_eq!(update.cursor, update.items.last().unwrap().seq);
            seen.extend(update.items);
        }
        let seqs: Vec<i64> = seen.iter().map(|r| r.seq).collect();
        assert_eq!(
            seqs,
            (1..=seqs.len() as i64).collect::<Vec<_>>(),
            "each item once, in order"
        );
        // 5 images, 5 histograms, 2 texts, 2 clips, 3 PR curves; the bad image is not stored.
        assert_eq!(seen.len(), 17, "{seen:?}");
    });
    let run = env.wait_run(&id, &[RunStatus::Completed, RunStatus::Error, RunStatus::Failed]);
    assert_eq!(run.status(), RunStatus::Completed, "{}", env.daemon_log());
}
