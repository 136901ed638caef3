//! Summary values: tensors of every numeric dtype read as scalars (by plugin, by rank,
//! from typed fields or raw content), the kinds other values are counted as, half
//! precision, wall-time rounding and event-file names.

use super::*;
use crate::collectors::tfevents::proto::{
    DT_BFLOAT16, DT_BOOL, DT_DOUBLE, DT_FLOAT, DT_HALF, DT_INT32, DT_INT64, DT_UINT8,
};
use crate::collectors::tfevents::wall_ms;
use crate::samples::{Histogram, MediaData};

fn t(dtype: i32) -> proto::TensorProto {
    proto::TensorProto {
        dtype,
        ..Default::default()
    }
}

#[test]
fn tensor_scalars_and_kinds() {
    let shape1 = Some(proto::TensorShapeProto {
        dim: vec![proto::Dim { size: 1 }],
        unknown_rank: false,
    });
    let values = vec![
        tensor(
            "f_content",
            Some("scalars"),
            proto::TensorProto {
                tensor_content: 0.25f32.to_le_bytes().to_vec(),
                ..t(DT_FLOAT)
            },
        ),
        tensor(
            "f_val",
            None,
            proto::TensorProto {
                float_val: vec![0.5],
                ..t(DT_FLOAT)
            },
        ),
        tensor(
            "d_val",
            Some("scalars"),
            proto::TensorProto {
                double_val: vec![0.1],
                ..t(DT_DOUBLE)
            },
        ),
        tensor(
            "d_content",
            None,
            proto::TensorProto {
                tensor_content: 0.2f64.to_le_bytes().to_vec(),
                ..t(DT_DOUBLE)
            },
        ),
        tensor(
            "i32",
            None,
            proto::TensorProto {
                int_val: vec![-7],
                ..t(DT_INT32)
            },
        ),
        tensor(
            "i64",
            Some("scalars"),
            proto::TensorProto {
                int64_val: vec![1 << 40],
                ..t(DT_INT64)
            },
        ),
        tensor(
            "i64_content",
            None,
            proto::TensorProto {
                tensor_content: (-3i64).to_le_bytes().to_vec(),
                ..t(DT_INT64)
            },
        ),
        tensor(
            "half",
            None,
            proto::TensorProto {
                half_val: vec![0x3e00],
                ..t(DT_HALF)
            },
        ),
        tensor(
            "half_content",
            None,
            proto::TensorProto {
                tensor_content: vec![0x00, 0xc0],
                ..t(DT_HALF)
            },
        ),
        tensor(
            "bf16",
            None,
            proto::TensorProto {
                half_val: vec![0x3fc0],
                ..t(DT_BFLOAT16)
            },
        ),
        tensor(
            "flag",
            None,
            proto::TensorProto {
                bool_val: vec![true],
                ..t(DT_BOOL)
            },
        ),
        tensor(
            "flag_content",
            Some("scalars"),
            proto::TensorProto {
                tensor_content: vec![0],
                ..t(DT_BOOL)
            },
        ),
        tensor(
            "u8",
            None,
            proto::TensorProto {
                int_val: vec![200],
                ..t(DT_UINT8)
            },
        ),
        tensor(
            "u8_content",
            None,
            proto::TensorProto {
                tensor_content: vec![7],
                ..t(DT_UINT8)
            },
        ),
        tensor("zero", None, t(DT_FLOAT)),
        tensor(
            "rank1_scalars",
            Some("scalars"),
            proto::TensorProto {
                float_val: vec![3.0],
                tensor_shape: shape1.clone(),
                ..t(DT_FLOAT)
            },
        ),
        // not scalars
        tensor(
            "rank1",
            None,
            proto::TensorProto {
                float_val: vec![3.0],
                tensor_shape: shape1,
                ..t(DT_FLOAT)
            },
        ),
        tensor("str_scalar", Some("scalars"), t(7)),
        tensor(
            "short",
            None,
            proto::TensorProto {
                tensor_content: vec![1, 2],
                ..t(DT_FLOAT)
            },
        ),
        tensor("img", Some("images"), t(7)),
        tensor("hist", Some("histograms"), t(DT_DOUBLE)),
        tensor("snd", Some("audio"), t(7)),
        tensor("txt", Some("text"), t(7)),
        tensor("pr", Some("pr_curves"), t(DT_FLOAT)),
        proto::Value {
            tag: b"hp".to_vec(),
            metadata: Some(proto::SummaryMetadata {
                plugin_data: Some(proto::PluginData {
                    plugin_name: b"hparams".to_vec(),
                }),
            }),
            value: None,
        },
        proto::Value {
            tag: b"bare".to_vec(),
            metadata: None,
            value: None,
        },
        proto::Value {
            tag: b"old".to_vec(),
            metadata: None,
            value: Some(proto::value::Payload::ObsoleteOldStyleHistogram(vec![1])),
        },
        proto::Value {
            tag: b"i".to_vec(),
            metadata: None,
            value: Some(proto::value::Payload::Image(proto::Image::default())),
        },
        proto::Value {
            tag: b"h".to_vec(),
            metadata: None,
            value: Some(proto::value::Payload::Histo(proto::HistogramProto::default())),
        },
        proto::Value {
            tag: b"a".to_vec(),
            metadata: None,
            value: Some(proto::value::Payload::Audio(proto::Audio::default())),
        },
        simple("bad\u{fffd}utf8", 1.0),
    ];
    let mut first = event(5, values);
    // make the last tag invalid UTF-8: replace the encoded U+FFFD (ef bf bd) with 0xff 0xff 0xff
    let at = first.windows(3).position(|w| w == [0xef, 0xbf, 0xbd]).unwrap();
    first[at..at + 3].copy_from_slice(&[0xff, 0xff, 0xff]);
    // Later values of "img" and "f_content" without metadata keep their tag's plugin.
    let second = event(
        6,
        vec![
            tensor("img", None, t(7)),
            tensor(
                "f_content",
                None,
                proto::TensorProto {
                    float_val: vec![9.0],
                    ..t(DT_FLOAT)
                },
            ),
        ],
    );
    let version = proto::Event {
        wall_time: 1.0,
        step: 0,
        summary: None,
    }
    .encode_to_vec();
    let tmp = Temp::new("tensors");
    tmp.write(&[frame(&version), frame(&first), frame(&second)].concat());
    let (mut reader, c) = read_path(&tmp.0);
    // Media values that hold nothing readable are counted, and reported once each.
    let skipped: Vec<(&str, i64, &str)> = c
        .issues
        .iter()
        .map(|i| match i {
            Issue::SkippedValue { tag, step, reason, .. } => (tag.as_str(), *step, reason.as_str()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        skipped,
        vec![
            (
                "img",
                5,
                "image tensor has 0 elements; expected width, height and the images"
            ),
            (
                "pr",
                5,
                "PR curve tensor has shape [] and 0 values; expected [6, thresholds]"
            ),
            ("i", 5, "image is empty"),
            ("a", 5, "audio clip is empty"),
            (
                "img",
                6,
                "image tensor has 0 elements; expected width, height and the images"
            ),
        ]
    );
    assert_eq!(
        c.issues[0].to_string(),
        format!(
            "value \"img\" at step 5 (offset {}) not stored: image tensor has 0 elements; expected width, \
             height and the images",
            frame(&version).len()
        )
    );
    // Empty histograms and text are items all the same.
    let media: Vec<(String, MediaData)> = reader.take_media().into_iter().map(|m| (m.tag, m.data)).collect();
    let empty = MediaData::Histogram(Histogram {
        sum: 0.0,
        ..Histogram::default()
    });
    assert_eq!(media.len(), 3, "{media:?}");
    assert_eq!(media[0].0, "hist");
    assert!(matches!(&media[0].1, MediaData::Histogram(h) if h.buckets.is_empty() && h.sum.is_nan()));
    assert_eq!(media[1], ("txt".to_string(), MediaData::Text(String::new())));
    assert_eq!(media[2], ("h".to_string(), empty));
    assert!(reader.take_media().is_empty());
    assert_eq!(c.records, 3);

    let got: Vec<(&str, f64)> = c.scalars.iter().map(|s| (s.tag.as_str(), s.value)).collect();
    let want: Vec<(&str, f64)> = vec![
        ("f_content", 0.25),
        ("f_val", 0.5),
        ("d_val", 0.1),
        ("d_content", 0.2),
        ("i32", -7.0),
        ("i64", (1u64 << 40) as f64),
        ("i64_content", -3.0),
        ("half", 1.5),
        ("half_content", -2.0),
        ("bf16", 1.5),
        ("flag", 1.0),
        ("flag_content", 0.0),
        ("u8", 200.0),
        ("u8_content", 7.0),
        ("zero", 0.0),
        ("rank1_scalars", 3.0),
        ("bad\u{fffd}\u{fffd}\u{fffd}utf8", 1.0),
        ("f_content", 9.0),
    ];
    assert_eq!(got, want);
    assert!(
        c.scalars
            .iter()
            .all(|s| s.wall_time_ms == 1_700_000_000_250 + s.step * 1000)
    );

    let o = |tag: &str, kind: Kind| ((tag.to_string(), kind), 1u64);
    let want_others: BTreeMap<(String, Kind), u64> = [
        o("rank1", Kind::Tensor),
        o("str_scalar", Kind::Scalar),
        o("short", Kind::Tensor),
        ((String::from("img"), Kind::Image), 2),
        o("hist", Kind::Histogram),
        o("snd", Kind::Audio),
        o("txt", Kind::Text),
        o("pr", Kind::Other("pr_curves".into())),
        o("hp", Kind::Other("hparams".into())),
        o("old", Kind::Histogram),
        o("i", Kind::Image),
        o("h", Kind::Histogram),
        o("a", Kind::Audio),
    ]
    .into_iter()
    .collect();
    assert_eq!(reader.others(), &want_others);
}

#[test]
fn half_precision_conversion() {
    // The 16 bits of a DT_HALF tensor's half_val, read as its scalar.
    let f16 = |bits: u16| {
        proto::TensorProto {
            half_val: vec![i32::from(bits)],
            ..t(DT_HALF)
        }
        .scalar()
        .unwrap()
    };
    assert_eq!(f16(0x3c00), 1.0);
    assert_eq!(f16(0xc000), -2.0);
    assert_eq!(f16(0x7bff), 65504.0);
    assert_eq!(f16(0x0001), 2f64.powi(-24));
    assert_eq!(f16(0x7c00), f64::INFINITY);
    assert!(f16(0x7e00).is_nan());
}

#[test]
fn wall_time_rounding() {
    assert_eq!(wall_ms(1.2344), 1234);
    assert_eq!(wall_ms(1.2346), 1235);
    assert_eq!(wall_ms(f64::NAN), 0);
    assert_eq!(wall_ms(f64::INFINITY), i64::MAX);
}

#[test]
fn event_file_names() {
    assert!(is_event_file("events.out.tfevents.1712345678.host.123.0"));
    assert!(is_event_file("events.out.tfevents.1712345678.host.123.0.v2"));
    assert!(!is_event_file("events.out"));
    assert!(!is_event_file("checkpoint"));
}
