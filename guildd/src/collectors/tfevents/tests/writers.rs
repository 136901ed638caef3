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
