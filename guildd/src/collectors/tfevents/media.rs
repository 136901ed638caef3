//! Media from summary values: TF1 `Summary.Image`, `HistogramProto` and `Summary.Audio`,
//! and the tensors TF2 (and tensorboardX) write for the images, histograms, audio, text
//! and pr_curves plugins, in the forms TensorBoard's own plugins read. What cannot be
//! read (bytes that are no image, a tensor of the wrong shape, an item over its bound)
//! is a reason, which the reader reports once as an issue; the value is still counted.

use super::proto::{self, DT_STRING, TensorProto};
use crate::samples::{Histogram, MediaData, PrCurve};

/// An image or audio item over this is skipped (a record is at most 64 MiB anyway).
pub const MAX_BYTES: usize = 32 << 20;
/// A text item over this is skipped.
pub const MAX_TEXT: usize = 4 << 20;
/// A histogram with more buckets, or a PR curve with more thresholds, is skipped
/// (TensorBoard's writers use 30 buckets and 127 thresholds).
pub const MAX_POINTS: usize = 100_000;
/// At most this many items in one summary value (images or clips of a batch).
pub const MAX_ITEMS: usize = 1_000;

pub type Items = Result<Vec<MediaData>, String>;

/// A TF1 image.
pub fn image(img: proto::Image) -> Items {
    let declared = (img.width.max(0) as u32, img.height.max(0) as u32);
    Ok(vec![checked_image(img.encoded_image_string, declared)?])
}

/// A TF1 histogram, its bucket edges as TensorBoard reads them: the first bucket starts
/// at `min` and the last ends at `max` (writers put ±DBL_MAX in the outer limits).
pub fn histogram(h: proto::HistogramProto) -> Items {
    let n = h.bucket.len();
    if n != h.bucket_limit.len() {
        return Err(format!(
            "histogram has {n} bucket counts but {} bucket limits",
            h.bucket_limit.len()
        ));
    }
    if n > MAX_POINTS {
        return Err(format!("histogram has {n} buckets, over the limit of {MAX_POINTS}"));
    }
    let buckets = (0..n)
        .map(|i| {
            let left = if i == 0 { h.min } else { h.bucket_limit[i - 1] };
            let right = if i == n - 1 { h.max } else { h.bucket_limit[i] };
            [left, right, h.bucket[i]]
        })
        .collect();
    Ok(vec![MediaData::Histogram(Histogram {
        min: h.min,
        max: h.max,
        count: h.num,
        sum: h.sum,
        buckets,
    })])
}

/// A TF1 audio clip.
pub fn audio(a: proto::Audio) -> Items {
    let content_type = String::from_utf8_lossy(&a.content_type).into_owned();
    Ok(vec![checked_audio(
        a.encoded_audio_string,
        &content_type,
        f64::from(a.sample_rate),
        a.num_channels.max(0) as u32,
        a.length_frames.max(0) as u64,
    )?])
}

/// A tensor of one of the media plugins (`images`, `histograms`, `audio`, `text`,
/// `pr_curves`); None for other plugins.
pub fn from_tensor(plugin: &str, t: TensorProto) -> Option<Items> {
    Some(match plugin {
        "images" => tensor_images(t),
        "histograms" => tensor_histogram(&t),
        "audio" => tensor_audio(t),
        "text" => tensor_text(t),
        "pr_curves" => tensor_pr_curve(&t),
        _ => return None,
    })
}

/// `[width, height, png, png, ...]` as strings (tf.summary.image).
fn tensor_images(t: TensorProto) -> Items {
    let strings = strings(t, "image")?;
    if strings.len() < 2 {
        return Err(format!(
            "image tensor has {} elements; expected width, height and the images",
            strings.len()
        ));
    }
    let number = |b: &[u8]| {
        std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .unwrap_or(0)
    };
    let declared = (number(&strings[0][..]), number(&strings[1][..]));
    let images = strings.into_iter().skip(2);
    if images.len() > MAX_ITEMS {
        return Err(format!(
            "{} images in one value, over the limit of {MAX_ITEMS}",
            images.len()
        ));
    }
    images.map(|bytes| checked_image(bytes, declared)).collect()
}

/// `[k, 3]` doubles: left edge, right edge, count (tf.summary.histogram).
fn tensor_histogram(t: &TensorProto) -> Items {
    let values = t
        .floats()
        .ok_or_else(|| format!("histogram tensor of dtype {} holds no float numbers", t.dtype))?;
    let dims = t.dims();
    let shape_ok = matches!(dims.as_slice(), [_, 3] | [0]) || (dims.is_empty() && values.is_empty());
    if !shape_ok || values.len() % 3 != 0 {
        return Err(format!(
            "histogram tensor has shape {dims:?} and {} values; expected [k, 3]",
            values.len()
        ));
    }
    if values.len() / 3 > MAX_POINTS {
        return Err(format!(
            "histogram has {} buckets, over the limit of {MAX_POINTS}",
            values.len() / 3
        ));
    }
    let buckets: Vec<[f64; 3]> = values.chunks_exact(3).map(|b| [b[0], b[1], b[2]]).collect();
    let min = buckets.first().map_or(0.0, |b| b[0]);
    let max = buckets.last().map_or(0.0, |b| b[1]);
    let count = buckets.iter().map(|b| b[2]).sum();
    Ok(vec![MediaData::Histogram(Histogram {
        min,
        max,
        count,
        sum: f64::NAN,
        buckets,
    })])
}

/// `[k, 2]` strings: encoded clip and its label (tf.summary.audio); `[k]` clips alone.
fn tensor_audio(t: TensorProto) -> Items {
    let dims = t.dims();
    let strings = strings(t, "audio")?;
    let stride = match dims.as_slice() {
        [_, 2] => 2,
        [_] | [] => 1,
        _ => return Err(format!("audio tensor has shape {dims:?}; expected [k, 2]")),
    };
    let clips: Vec<Vec<u8>> = strings.into_iter().step_by(stride).collect();
    if clips.len() > MAX_ITEMS {
        return Err(format!(
            "{} clips in one value, over the limit of {MAX_ITEMS}",
            clips.len()
        ));
    }
    clips
        .into_iter()
        .map(|bytes| checked_audio(bytes, "", 0.0, 0, 0))
        .collect()
}

/// A string tensor as Markdown: one string as it is; several as a table (rows of a rank-2
/// tensor, or one column), as TensorBoard's text plugin shows them.
fn tensor_text(t: TensorProto) -> Items {
    let dims = t.dims();
    let strings = strings(t, "text")?;
    let total: usize = strings.iter().map(Vec::len).sum();
    if total > MAX_TEXT {
        return Err(format!("text of {total} bytes, over the limit of {MAX_TEXT}"));
    }
    let cells: Vec<String> = strings
        .into_iter()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .collect();
    let text = match (cells.len(), dims.as_slice()) {
        (0, _) => String::new(),
        (1, _) => cells.into_iter().next().unwrap_or_default(),
        (_, [rows, cols]) if *rows >= 0 && *cols > 0 && (*rows * *cols) as usize == cells.len() => {
            table(cells.chunks(*cols as usize))
        }
        _ => table(cells.chunks(1)),
    };
    Ok(vec![MediaData::Text(text)])
}

/// A Markdown table of `rows` (cells' `|` and line breaks escaped), headed by column
/// numbers.
fn table<'a>(rows: impl Iterator<Item = &'a [String]> + Clone) -> String {
    let cols = rows.clone().map(<[String]>::len).max().unwrap_or(0);
    let mut out = String::new();
    let line = |cells: &mut dyn Iterator<Item = String>| {
        let mut s = String::from("|");
        for c in cells {
            s.push(' ');
            s.push_str(&c);
            s.push_str(" |");
        }
        s.push('\n');
        s
    };
    out.push_str(&line(&mut (0..cols).map(|i| i.to_string())));
    out.push_str(&line(&mut (0..cols).map(|_| "---".to_string())));
    for row in rows {
        out.push_str(&line(
            &mut row.iter().map(|c| c.replace('|', "\\|").replace(['\n', '\r'], " ")),
        ));
    }
    out
}

/// `[6, n]` floats: true positives, false positives, true negatives, false negatives,
/// precision and recall at n thresholds evenly spaced over [0, 1] (pr_curves plugin).
fn tensor_pr_curve(t: &TensorProto) -> Items {
    let values = t
        .floats()
        .ok_or_else(|| format!("PR curve tensor of dtype {} holds no float numbers", t.dtype))?;
    let dims = t.dims();
    let n = match dims.as_slice() {
        [6, n] if *n >= 0 && values.len() == 6 * *n as usize => *n as usize,
        _ => {
            return Err(format!(
                "PR curve tensor has shape {dims:?} and {} values; expected [6, thresholds]",
                values.len()
            ));
        }
    };
    if n > MAX_POINTS {
        return Err(format!("PR curve has {n} thresholds, over the limit of {MAX_POINTS}"));
    }
    let row = |i: usize| values[i * n..(i + 1) * n].to_vec();
    let thresholds = (0..n)
        .map(|i| if n > 1 { i as f64 / (n - 1) as f64 } else { 0.0 })
        .collect();
    Ok(vec![MediaData::PrCurve(PrCurve {
        thresholds,
        tp: row(0),
        fp: row(1),
        tn: row(2),
        fn_: row(3),
        precision: row(4),
        recall: row(5),
    })])
}

fn strings(t: TensorProto, what: &str) -> Result<Vec<Vec<u8>>, String> {
    if t.dtype != DT_STRING {
        return Err(format!("{what} tensor of dtype {}; expected strings", t.dtype));
    }
    Ok(t.string_val)
}

/// An image's bytes, checked to be an image a browser shows, with the size its header
/// gives (the size the writer declared when the header has none we read).
fn checked_image(bytes: Vec<u8>, declared: (u32, u32)) -> Result<MediaData, String> {
    if bytes.len() > MAX_BYTES {
        return Err(format!("image of {} bytes, over the limit of {MAX_BYTES}", bytes.len()));
    }
    let (mime, size) = sniff_image(&bytes)?;
    let (width, height) = size.unwrap_or(declared);
    Ok(MediaData::Image {
        width,
        height,
        mime,
        bytes,
    })
}

fn checked_audio(
    bytes: Vec<u8>,
    content_type: &str,
    sample_rate: f64,
    channels: u32,
    frames: u64,
) -> Result<MediaData, String> {
    if bytes.len() > MAX_BYTES {
        return Err(format!("audio of {} bytes, over the limit of {MAX_BYTES}", bytes.len()));
    }
    if bytes.is_empty() {
        return Err("audio clip is empty".into());
    }
    let wav = bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WAVE";
    let mime = if wav {
        "audio/wav".to_string()
    } else if content_type.starts_with("audio/")
        && content_type.len() < 64
        && content_type.bytes().all(|b| b.is_ascii_graphic())
    {
        content_type.to_string()
    } else {
        return Err(format!(
            "audio clip is not WAV and its content type ({:?}) is not audio/*",
            short(content_type)
        ));
    };
    // A WAV header says what the writer may not have.
    let (mut sample_rate, mut channels, mut frames) = (sample_rate, channels, frames);
    if wav && let Some((rate, chans, n)) = wav_header(&bytes) {
        if sample_rate <= 0.0 {
            sample_rate = f64::from(rate);
        }
        if channels == 0 {
            channels = u32::from(chans);
        }
        if frames == 0 {
            frames = n;
        }
    }
    Ok(MediaData::Audio {
        sample_rate,
        channels,
        frames,
        mime,
        bytes,
    })
}

fn short(s: &str) -> String {
    s.chars().take(40).collect()
}

/// The kind of image `b` holds and, for PNG, GIF, BMP and JPEG, its width and height.
pub fn sniff_image(b: &[u8]) -> Result<(&'static str, Option<(u32, u32)>), String> {
    let be32 = |at: usize| b.get(at..at + 4).map(|x| u32::from_be_bytes([x[0], x[1], x[2], x[3]]));
    let le16 = |at: usize| b.get(at..at + 2).map(|x| u32::from(u16::from_le_bytes([x[0], x[1]])));
    if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        if b.get(12..16) != Some(b"IHDR".as_slice()) {
            return Err("PNG image without its IHDR header".into());
        }
        let size = be32(16).zip(be32(20)).ok_or("PNG image cut short in its header")?;
        return Ok(("image/png", Some(size)));
    }
    if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
        let size = le16(6).zip(le16(8)).ok_or("GIF image cut short in its header")?;
        return Ok(("image/gif", Some(size)));
    }
    if b.starts_with(&[0xff, 0xd8, 0xff]) {
        return Ok(("image/jpeg", jpeg_size(b)));
    }
    if b.len() >= 12 && &b[..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        return Ok(("image/webp", None));
    }
    if b.starts_with(b"BM") && b.len() >= 26 {
        let w = b
            .get(18..22)
            .map(|x| i32::from_le_bytes([x[0], x[1], x[2], x[3]]).unsigned_abs());
        let h = b
            .get(22..26)
            .map(|x| i32::from_le_bytes([x[0], x[1], x[2], x[3]]).unsigned_abs());
        return Ok(("image/bmp", w.zip(h)));
    }
    if b.is_empty() {
        return Err("image is empty".into());
    }
    let head: Vec<String> = b.iter().take(8).map(|x| format!("{x:02x}")).collect();
    Err(format!(
        "not a PNG, JPEG, GIF, WebP or BMP image (it starts {})",
        head.join(" ")
    ))
}

/// A JPEG's size from its first start-of-frame segment.
fn jpeg_size(b: &[u8]) -> Option<(u32, u32)> {
    let mut at = 2;
    while at + 4 <= b.len() {
        if b[at] != 0xff {
            return None;
        }
        let marker = b[at + 1];
        if marker == 0xff {
            at += 1;
            continue;
        }
        let len = usize::from(u16::from_be_bytes([b[at + 2], b[at + 3]]));
        let sof = matches!(marker, 0xc0..=0xcf) && !matches!(marker, 0xc4 | 0xc8 | 0xcc);
        if sof {
            let seg = b.get(at + 4..at + 9)?;
            let h = u32::from(u16::from_be_bytes([seg[1], seg[2]]));
            let w = u32::from(u16::from_be_bytes([seg[3], seg[4]]));
            return Some((w, h));
        }
        at += 2 + len;
    }
    None
}

/// A WAV file's sample rate, channels and frames (from its `fmt ` and `data` chunks).
fn wav_header(b: &[u8]) -> Option<(u32, u16, u64)> {
    let mut at = 12;
    let (mut rate, mut channels, mut block) = (None, None, None);
    while at + 8 <= b.len() {
        let id = &b[at..at + 4];
        let len = u32::from_le_bytes([b[at + 4], b[at + 5], b[at + 6], b[at + 7]]) as usize;
        let body = at + 8;
        if id == b"fmt " {
            let f = b.get(body..body + 14)?;
            channels = Some(u16::from_le_bytes([f[2], f[3]]));
            rate = Some(u32::from_le_bytes([f[4], f[5], f[6], f[7]]));
            block = Some(u16::from_le_bytes([f[12], f[13]]));
        } else if id == b"data" {
            let frames = match block {
                Some(bl) if bl > 0 => (len.min(b.len() - body) / usize::from(bl)) as u64,
                _ => 0,
            };
            return Some((rate?, channels?, frames));
        }
        at = body.checked_add(len)?.checked_add(len % 2)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_sniffed_with_their_size() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend_from_slice(&64u32.to_be_bytes());
        png.extend_from_slice(&32u32.to_be_bytes());
        assert_eq!(sniff_image(&png).unwrap(), ("image/png", Some((64, 32))));
        assert!(sniff_image(&png[..18]).unwrap_err().contains("cut short"));
        let gif = b"GIF89a\x05\x00\x07\x00rest";
        assert_eq!(sniff_image(gif).unwrap(), ("image/gif", Some((5, 7))));
        // SOI, an APP0 segment of 4 bytes, then SOF0 with height 3 and width 9.
        let jpeg = [0xff, 0xd8, 0xff, 0xe0, 0, 4, 0, 0, 0xff, 0xc0, 0, 11, 8, 0, 3, 0, 9, 3];
        assert_eq!(sniff_image(&jpeg).unwrap(), ("image/jpeg", Some((9, 3))));
        let err = sniff_image(b"<svg onload=alert(1)>").unwrap_err();
        assert!(
            err.starts_with("not a PNG, JPEG, GIF, WebP or BMP image (it starts 3c 73"),
            "{err}"
        );
        assert_eq!(sniff_image(b"").unwrap_err(), "image is empty");
    }

    #[test]
    fn items_over_their_bounds_are_refused_with_the_reason() {
        let mut big = b"\x89PNG\r\n\x1a\n".to_vec();
        big.resize(MAX_BYTES + 1, 0);
        let err = checked_image(big, (1, 1)).unwrap_err();
        assert_eq!(
            err,
            format!("image of {} bytes, over the limit of {MAX_BYTES}", MAX_BYTES + 1)
        );
        let err = checked_audio(vec![0; MAX_BYTES + 1], "audio/wav", 1.0, 1, 1).unwrap_err();
        assert!(err.starts_with("audio of 33554433 bytes, over the limit"), "{err}");
        let h = proto::HistogramProto {
            bucket_limit: vec![0.0; MAX_POINTS + 1],
            bucket: vec![0.0; MAX_POINTS + 1],
            ..Default::default()
        };
        assert_eq!(
            histogram(h).unwrap_err(),
            format!(
                "histogram has {} buckets, over the limit of {MAX_POINTS}",
                MAX_POINTS + 1
            )
        );
        let n = MAX_POINTS as i64 + 1;
        let pr = TensorProto {
            dtype: proto::DT_FLOAT,
            tensor_shape: Some(proto::TensorShapeProto {
                dim: vec![proto::Dim { size: 6 }, proto::Dim { size: n }],
                unknown_rank: false,
            }),
            tensor_content: vec![0; 4 * 6 * n as usize],
            ..Default::default()
        };
        assert!(tensor_pr_curve(&pr).unwrap_err().contains("over the limit of 100000"));
        let text = TensorProto {
            dtype: DT_STRING,
            string_val: vec![vec![b'x'; MAX_TEXT + 1]],
            ..Default::default()
        };
        assert!(
            tensor_text(text)
                .unwrap_err()
                .starts_with("text of 4194305 bytes, over the limit")
        );
        // A WAV that is not audio/*, and bytes that are neither.
        assert!(
            checked_audio(b"junk".to_vec(), "text/html", 0.0, 0, 0)
                .unwrap_err()
                .contains("not audio/*")
        );
    }

    #[test]
    fn tf1_histograms_take_min_and_max_as_outer_edges() {
        let h = proto::HistogramProto {
            min: -1.0,
            max: 2.0,
            num: 6.0,
            sum: 3.0,
            sum_squares: 0.0,
            bucket_limit: vec![0.0, 1.0, f64::MAX],
            bucket: vec![1.0, 2.0, 3.0],
        };
        let Ok(items) = histogram(h.clone()) else { panic!() };
        let MediaData::Histogram(got) = &items[0] else { panic!() };
        assert_eq!(got.buckets, vec![[-1.0, 0.0, 1.0], [0.0, 1.0, 2.0], [1.0, 2.0, 3.0]]);
        assert_eq!((got.count, got.sum), (6.0, 3.0));
        let bad = proto::HistogramProto { bucket: vec![1.0], ..h };
        assert!(
            histogram(bad)
                .unwrap_err()
                .contains("1 bucket counts but 3 bucket limits")
        );
    }

    #[test]
    fn string_tensors_become_markdown() {
        let t = |dims: &[i64], cells: &[&str]| TensorProto {
            dtype: DT_STRING,
            tensor_shape: Some(proto::TensorShapeProto {
                dim: dims.iter().map(|&size| proto::Dim { size }).collect(),
                unknown_rank: false,
            }),
            string_val: cells.iter().map(|c| c.as_bytes().to_vec()).collect(),
            ..Default::default()
        };
        let text = |t| match tensor_text(t).unwrap().pop() {
            Some(MediaData::Text(s)) => s,
            other => panic!("{other:?}"),
        };
        assert_eq!(text(t(&[], &["# hi"])), "# hi");
        assert_eq!(
            text(t(&[2, 2], &["a", "b|c", "d", "e\nf"])),
            "| 0 | 1 |\n| --- | --- |\n| a | b\\|c |\n| d | e f |\n"
        );
        assert_eq!(text(t(&[2], &["x", "y"])), "| 0 |\n| --- |\n| x |\n| y |\n");
        assert!(
            tensor_text(TensorProto::default())
                .unwrap_err()
                .contains("expected strings")
        );
    }
}
