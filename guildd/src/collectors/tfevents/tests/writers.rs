//! Event files written by real writers (tensorboardX, torch.utils.tensorboard, TF 2;
//! made by bench/make_tfevents_fixtures.py): every scalar of every tag at every step,
//! with its wall time, and every other value counted by kind.

use super::*;

const JAN_2017_MS: i64 = 1_483_228_800_000;
const JAN_2100_MS: i64 = 4_102_444_800_000;

fn check_writer(writer: &str, others: &[(&str, Kind)], int_metric: bool) {
    for (split, k) in [("train", 1.0), ("validation", 2.0)] {
        let path = event_file(&fixtures().join(writer).join(split));
        let (reader, c) = read_path(&path);
        let ctx = format!("{writer}/{split}");
        assert!(c.issues.is_empty(), "{ctx}: {:?}", c.issues);
        assert_eq!(reader.offset(), std::fs::metadata(&path).unwrap().len(), "{ctx}");

        let mut by_tag: BTreeMap<&str, Vec<&ScalarEvent>> = BTreeMap::new();
        for s in &c.scalars {
            by_tag.entry(s.tag.as_str()).or_default().push(s);
        }
        let mut want_tags = vec!["acc", "loss"];
        if int_metric {
            want_tags.insert(1, "int_metric");
        }
        assert_eq!(by_tag.keys().copied().collect::<Vec<_>>(), want_tags, "{ctx}");
        for (tag, events) in &by_tag {
            assert_eq!(
                events.iter().map(|s| s.step).collect::<Vec<_>>(),
                (0..10).collect::<Vec<_>>(),
                "{ctx} {tag}"
            );
            for s in events {
                let step = s.step as f64;
                let want = match *tag {
                    "loss" => k / (step + 1.0),
                    "acc" => step / 10.0,
                    _ => step,
                };
                assert!(
                    close(s.value, want),
                    "{ctx} {tag} step {}: {} != {want}",
                    s.step,
                    s.value
                );
            }
        }
        let times: Vec<i64> = c.scalars.iter().map(|s| s.wall_time_ms).collect();
        assert!(
            times.iter().all(|t| (JAN_2017_MS..JAN_2100_MS).contains(t)),
            "{ctx}: {times:?}"
        );
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{ctx}: {times:?}");

        let want_others: BTreeMap<(String, Kind), u64> =
            others.iter().map(|(t, k)| ((t.to_string(), k.clone()), 1)).collect();
        assert_eq!(reader.others(), &want_others, "{ctx}");
        assert_eq!(reader.scalars(), c.scalars.len() as u64, "{ctx}");
        // file_version + one record per value
        assert_eq!(c.records, 1 + c.scalars.len() as u64 + others.len() as u64, "{ctx}");
    }
}

#[test]
fn reads_tensorboardx_fixture() {
    check_writer(
        "tensorboardx",
        &[
            ("note/text_summary", Kind::Text),
            ("sample", Kind::Image),
            ("weights", Kind::Histogram),
        ],
        false,
    );
}

#[test]
fn reads_torch_fixture() {
    check_writer("torch", &[("sample", Kind::Image), ("weights", Kind::Histogram)], false);
}

#[test]
fn reads_tf2_fixture() {
    check_writer("tf2", &[("sample", Kind::Image), ("weights", Kind::Histogram)], true);
}

/// Every media item of a fixture file, as (tag, step, index, item), and the issues.
fn media_of(dir: &str) -> (Vec<(String, i64, u32, crate::samples::MediaData)>, Vec<Issue>) {
    let path = event_file(&fixtures().join("media").join(dir));
    let (mut reader, c) = read_path(&path);
    let media = reader
        .take_media()
        .into_iter()
        .map(|m| (m.tag, m.step, m.index, m.data))
        .collect();
    (media, c.issues)
}

fn steps_of<'a>(
    media: &'a [(String, i64, u32, crate::samples::MediaData)],
    tag: &str,
) -> Vec<&'a (String, i64, u32, crate::samples::MediaData)> {
    media.iter().filter(|m| m.0 == tag).collect()
}

#[test]
fn reads_media_written_by_tensorboardx() {
    use crate::samples::MediaData;
    let (media, issues) = media_of("tensorboardx");
    // The malformed image is reported, with where and why.
    assert_eq!(issues.len(), 1, "{issues:?}");
    let Issue::SkippedValue { tag, step, reason, .. } = &issues[0] else {
        panic!("{issues:?}")
    };
    assert_eq!((tag.as_str(), *step), ("bad", 3));
    assert!(
        reason.starts_with("not a PNG, JPEG, GIF, WebP or BMP image"),
        "{reason}"
    );

    let images = steps_of(&media, "sample");
    assert_eq!(images.len(), 5);
    for (i, (_, step, index, data)) in images.iter().enumerate() {
        assert_eq!((*step, *index), (i as i64, 0));
        let MediaData::Image {
            width,
            height,
            mime,
            bytes,
        } = data
        else {
            panic!("{data:?}")
        };
        assert_eq!((*width, *height, *mime), (8, 8 + i as u32, "image/png"));
        assert!(bytes.starts_with(b"\x89PNG"));
    }
    let hists = steps_of(&media, "weights");
    assert_eq!(hists.iter().map(|m| m.1).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4]);
    for (_, _, _, data) in &hists {
        let MediaData::Histogram(h) = data else {
            panic!("{data:?}")
        };
        // tensorboardX writes 30 bins after an empty one at the minimum.
        assert_eq!(h.buckets.len(), 31);
        assert_eq!((h.buckets[0][0], h.buckets[0][1], h.buckets[0][2]), (h.min, h.min, 0.0));
        assert_eq!(h.buckets.iter().map(|b| b[2]).sum::<f64>(), 1000.0);
        assert_eq!(h.count, 1000.0);
        // Edges run from min to max without a gap.
        assert_eq!((h.buckets[0][0], h.buckets[30][1]), (h.min, h.max));
        assert!(h.buckets.windows(2).all(|w| w[0][1] == w[1][0]));
    }
    let texts = steps_of(&media, "note/text_summary");
    assert_eq!(texts.len(), 2);
    let MediaData::Text(text) = &texts[1].3 else { panic!() };
    assert!(
        text.starts_with("# Step 1\n\n| a | b |") && text.contains("<script>"),
        "{text}"
    );
    let clips = steps_of(&media, "tone");
    assert_eq!(clips.len(), 2);
    let MediaData::Audio {
        sample_rate,
        channels,
        frames,
        mime,
        bytes,
    } = &clips[0].3
    else {
        panic!()
    };
    assert_eq!(
        (*sample_rate, *channels, *frames, mime.as_str()),
        (8000.0, 1, 800, "audio/wav")
    );
    assert_eq!(bytes.len(), 44 + 1600);
    let prs = steps_of(&media, "pr");
    assert_eq!(prs.len(), 3);
    let MediaData::PrCurve(pr) = &prs[2].3 else { panic!() };
    assert_eq!(pr.thresholds.len(), 11);
    assert_eq!((pr.thresholds[0], pr.thresholds[10]), (0.0, 1.0));
    assert!(pr.precision.iter().chain(&pr.recall).all(|v| (0.0..=1.0).contains(v)));
    assert_eq!(pr.tp[0] + pr.fn_[0], 6.0, "6 positives");
    assert_eq!(media.len(), 5 + 5 + 2 + 2 + 3);
}

#[test]
fn reads_media_written_by_tf2() {
    use crate::samples::MediaData;
    let (media, issues) = media_of("tf2");
    assert!(issues.is_empty(), "{issues:?}");
    let hists = steps_of(&media, "weights");
    assert_eq!(hists.iter().map(|m| m.1).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4]);
    for (_, _, _, data) in &hists {
        let MediaData::Histogram(h) = data else {
            panic!("{data:?}")
        };
        assert_eq!(h.buckets.len(), 30);
        assert_eq!((h.count, h.buckets.iter().map(|b| b[2]).sum::<f64>()), (500.0, 500.0));
        assert!(h.sum.is_nan(), "TF2 histograms carry no sum");
    }
    let images = steps_of(&media, "sample");
    let got: Vec<(i64, u32, u32, u32)> = images
        .iter()
        .map(|(_, step, index, data)| match data {
            MediaData::Image { width, height, .. } => (*step, *index, *width, *height),
            other => panic!("{other:?}"),
        })
        .collect();
    let want: Vec<(i64, u32, u32, u32)> = (0..3)
        .flat_map(|s| [(s, 0, 6, 4 + s as u32), (s, 1, 6, 4 + s as u32)])
        .collect();
    assert_eq!(got, want);
    let texts = steps_of(&media, "note");
    assert_eq!(texts.len(), 2);
    assert_eq!(texts[1].3, MediaData::Text("*tf2* step 1".into()));
    let clips = steps_of(&media, "tone");
    assert_eq!(clips.len(), 2);
    let MediaData::Audio {
        sample_rate,
        channels,
        frames,
        mime,
        ..
    } = &clips[0].3
    else {
        panic!()
    };
    // tf.summary.audio says none of these but the WAV header does.
    assert_eq!(
        (*sample_rate, *channels, *frames, mime.as_str()),
        (8000.0, 1, 400, "audio/wav")
    );
    // Bool and uint8 scalar tensors are series.
    let (_, c) = read_path(&event_file(&fixtures().join("media/tf2")));
    let series = |tag: &str| -> Vec<(i64, f64)> {
        c.scalars
            .iter()
            .filter(|s| s.tag == tag)
            .map(|s| (s.step, s.value))
            .collect()
    };
    assert_eq!(series("done"), vec![(0, 1.0), (1, 0.0), (2, 1.0), (3, 0.0), (4, 1.0)]);
    assert_eq!(
        series("u8"),
        vec![(0, 0.0), (1, 50.0), (2, 100.0), (3, 150.0), (4, 200.0)]
    );
}
