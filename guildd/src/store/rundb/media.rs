//! run.db's media tables (`image`, `audio`, `histogram`, `text`, `pr_curve`; schema in
//! `migrations/run/0004_media.sql`): one row per item, written with the batch that read
//! it, and the reads behind MediaService and the dashboard's `/media/` files: a run's
//! tags by kind, a tag's items (without their bytes), items whole, items committed after
//! a cursor, and one item's bytes. Histogram buckets and PR curves are JSON arrays, so
//! plain SQL reads them too (`json_extract`, `json_each`).

use rusqlite::{Connection, OptionalExtension, Row};

use super::reads::Reader;
use crate::error::Result;
use crate::samples::{Histogram, MediaData, MediaKind, MediaRow, PrCurve};
use crate::store::{from_sql_value, sql_value, sqlite};

/// The cursor after the last committed item (0: none), over every media table.
pub(super) fn last_seq(conn: &Connection) -> rusqlite::Result<i64> {
    let union: Vec<String> = MediaKind::ALL
        .iter()
        .map(|k| format!("SELECT max(seq) AS seq FROM {}", k.table()))
        .collect();
    conn.query_row(
        &format!("SELECT coalesce(max(seq), 0) FROM ({})", union.join(" UNION ALL ")),
        [],
        |r| r.get(0),
    )
}

/// Inserts `rows` with the seqs after `last`, in order; `last` ends at the last one given.
pub(super) fn write(conn: &Connection, rows: &[MediaRow], last: &mut i64) -> rusqlite::Result<()> {
    let mut statements: Vec<(MediaKind, rusqlite::Statement<'_>)> = Vec::new();
    for row in rows {
        let kind = row.data.kind();
        let at = match statements.iter().position(|(k, _)| *k == kind) {
            Some(at) => at,
            None => {
                statements.push((kind, conn.prepare(insert_sql(kind))?));
                statements.len() - 1
            }
        };
        let stmt = &mut statements[at].1;
        *last += 1;
        let head = (*last, &*row.key, row.step, row.time, row.index);
        match &row.data {
            MediaData::Image {
                width,
                height,
                mime,
                bytes,
            } => stmt.execute((head.0, head.1, head.2, head.3, head.4, width, height, mime, bytes))?,
            MediaData::Audio {
                sample_rate,
                channels,
                frames,
                mime,
                bytes,
            } => stmt.execute((
                head.0,
                head.1,
                head.2,
                head.3,
                head.4,
                sample_rate,
                channels,
                *frames as i64,
                mime,
                bytes,
            ))?,
            MediaData::Histogram(h) => {
                let buckets = json_buckets(&h.buckets);
                stmt.execute((
                    head.0,
                    head.1,
                    head.2,
                    head.3,
                    head.4,
                    sql_value(h.count),
                    sql_value(h.min),
                    sql_value(h.max),
                    sql_value(h.sum),
                    buckets,
                ))?
            }
            MediaData::Text(text) => stmt.execute((head.0, head.1, head.2, head.3, head.4, text))?,
            MediaData::PrCurve(pr) => stmt.execute(rusqlite::params![
                head.0,
                head.1,
                head.2,
                head.3,
                head.4,
                json(&pr.thresholds),
                json(&pr.precision),
                json(&pr.recall),
                json(&pr.tp),
                json(&pr.fp),
                json(&pr.tn),
                json(&pr.fn_),
            ])?,
        };
    }
    Ok(())
}

fn insert_sql(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Image => {
            "INSERT INTO image (seq, tag, step, time, idx, width, height, mime, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
        }
        MediaKind::Audio => {
            "INSERT INTO audio (seq, tag, step, time, idx, sample_rate, channels, frames, mime, data) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
        }
        MediaKind::Histogram => {
            "INSERT INTO histogram (seq, tag, step, time, idx, count, min, max, sum, buckets) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
        }
        MediaKind::Text => "INSERT INTO text (seq, tag, step, time, idx, value) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        MediaKind::PrCurve => {
            "INSERT INTO pr_curve (seq, tag, step, time, idx, thresholds, precision, recall, tp, fp, tn, fn) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
        }
    }
}

/// Numbers as JSON (serde_json: the shortest form that reads back the same f64); NaN and
/// ±inf, which JSON lacks, as null.
fn json(values: &[f64]) -> String {
    serde_json::to_string(values).unwrap_or_else(|_| "[]".to_string())
}

fn json_buckets(buckets: &[[f64; 3]]) -> String {
    serde_json::to_string(buckets).unwrap_or_else(|_| "[]".to_string())
}

fn parse_numbers(text: &str) -> Option<Vec<f64>> {
    let values: Vec<Option<f64>> = serde_json::from_str(text).ok()?;
    Some(values.into_iter().map(from_sql_value).collect())
}

/// A tag of one kind: how many items, their steps and the last one's wall time.
#[derive(Clone, Debug, PartialEq)]
pub struct MediaTag {
    pub kind: MediaKind,
    pub tag: String,
    pub count: u64,
    pub min_step: i64,
    pub max_step: i64,
    pub last_time: i64,
    /// The newest item: the greatest step, its first index.
    pub last: Option<MediaRef>,
}

/// One item, without its content: where it is, and what it is.
#[derive(Clone, Debug, PartialEq)]
pub struct MediaRef {
    pub seq: i64,
    pub kind: MediaKind,
    pub tag: String,
    pub step: i64,
    pub time: i64,
    pub index: u32,
    /// Images only.
    pub width: u32,
    pub height: u32,
    /// Images and audio: their type; text: text/markdown.
    pub mime: String,
    /// Bytes of the content as stored (an image's or clip's bytes, the JSON or text).
    pub size: u64,
}

/// Which of a tag's items a read takes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pick {
    /// The item with this seq.
    Seq(i64),
    /// Every item at this step.
    Step(i64),
    /// Every item, or at most this many spread evenly over them (first and last kept).
    All { max_items: usize },
}

/// Columns every ref reads, then kind-specific width, height, mime and size.
fn ref_columns(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Image => "seq, tag, step, time, idx, width, height, mime, length(data)",
        MediaKind::Audio => "seq, tag, step, time, idx, 0, 0, mime, length(data)",
        MediaKind::Histogram => "seq, tag, step, time, idx, 0, 0, '', length(buckets)",
        MediaKind::Text => "seq, tag, step, time, idx, 0, 0, 'text/markdown', length(CAST(value AS BLOB))",
        MediaKind::PrCurve => "seq, tag, step, time, idx, 0, 0, '', length(precision) + length(recall)",
    }
}

fn read_ref(kind: MediaKind, r: &Row<'_>) -> rusqlite::Result<MediaRef> {
    read_ref_at(kind, r, 0)
}

/// Content columns of a kind (after the ref's columns); images and audio without their
/// bytes unless asked.
fn data_columns(kind: MediaKind, bytes: bool) -> &'static str {
    match (kind, bytes) {
        (MediaKind::Image, true) => "data",
        (MediaKind::Image, false) => "x''",
        (MediaKind::Audio, true) => "data, sample_rate, channels, frames",
        (MediaKind::Audio, false) => "x'', sample_rate, channels, frames",
        (MediaKind::Histogram, _) => "buckets, count, min, max, sum",
        (MediaKind::Text, _) => "value",
        (MediaKind::PrCurve, _) => "thresholds, precision, recall, tp, fp, tn, fn",
    }
}

impl Reader {
    /// Whether this run.db has the media tables (a run.db no writer opened since they came
    /// in has none: it reads as having no media).
    fn has_media(&self) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'pr_curve'",
                [],
                |r| r.get(0),
            )
            .map_err(sqlite(&self.path))
    }

    /// The cursor of the last committed media item (0: none).
    pub fn last_media_cursor(&self) -> Result<i64> {
        if !self.has_media()? {
            return Ok(0);
        }
        last_seq(&self.conn).map_err(sqlite(&self.path))
    }

    /// Every tag of every kind, by kind then tag.
    pub fn media_tags(&self) -> Result<Vec<MediaTag>> {
        let path = &self.path;
        let mut out = Vec::new();
        if !self.has_media()? {
            return Ok(out);
        }
        for kind in MediaKind::ALL {
            let mut stmt = self
                .conn
                .prepare(&format!(
                    "SELECT tag, count(*), min(step), max(step), max(time) FROM {} GROUP BY tag ORDER BY tag",
                    kind.table()
                ))
                .map_err(sqlite(path))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(MediaTag {
                        kind,
                        tag: r.get(0)?,
                        count: r.get::<_, i64>(1)?.max(0) as u64,
                        min_step: r.get(2)?,
                        max_step: r.get(3)?,
                        last_time: r.get(4)?,
                        last: None,
                    })
                })
                .map_err(sqlite(path))?;
            for row in rows {
                out.push(row.map_err(sqlite(path))?);
            }
        }
        for t in &mut out {
            t.last = self
                .conn
                .query_row(
                    &format!(
                        "SELECT {} FROM {} WHERE tag = ?1 ORDER BY step DESC, idx, seq LIMIT 1",
                        ref_columns(t.kind),
                        t.kind.table()
                    ),
                    [&t.tag],
                    |r| read_ref(t.kind, r),
                )
                .optional()
                .map_err(sqlite(path))?;
        }
        Ok(out)
    }

    /// A tag's items without their content, by step, then index, then commit order.
    pub fn media_refs(&self, kind: MediaKind, tag: &str) -> Result<Vec<MediaRef>> {
        if !self.has_media()? {
            return Ok(Vec::new());
        }
        let path = &self.path;
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {} FROM {} WHERE tag = ?1 ORDER BY step, idx, seq",
                ref_columns(kind),
                kind.table()
            ))
            .map_err(sqlite(path))?;
        let rows = stmt.query_map([tag], |r| read_ref(kind, r)).map_err(sqlite(path))?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sqlite(path))
    }

    /// The bytes of content the pick would read (images' and clips' bytes, the JSON or
    /// text of the others): what an answer would carry, known before reading it.
    pub fn media_size(&self, kind: MediaKind, tag: &str, pick: Pick) -> Result<u64> {
        let refs = self.picked(kind, tag, pick)?;
        Ok(refs.iter().map(|r| r.size).sum())
    }

    fn picked(&self, kind: MediaKind, tag: &str, pick: Pick) -> Result<Vec<MediaRef>> {
        let refs = self.media_refs(kind, tag)?;
        Ok(match pick {
            Pick::Seq(seq) => refs.into_iter().filter(|r| r.seq == seq).collect(),
            Pick::Step(step) => refs.into_iter().filter(|r| r.step == step).collect(),
            Pick::All { max_items } => spread(refs, max_items),
        })
    }

    /// The picked items of a tag with their content (images and audio with their bytes
    /// only when `bytes`), by step.
    pub fn media_items(
        &self,
        kind: MediaKind,
        tag: &str,
        pick: Pick,
        bytes: bool,
    ) -> Result<Vec<(MediaRef, MediaData)>> {
        let refs = self.picked(kind, tag, pick)?;
        let path = &self.path;
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {} FROM {} WHERE seq = ?1",
                data_columns(kind, bytes),
                kind.table()
            ))
            .map_err(sqlite(path))?;
        let mut out = Vec::with_capacity(refs.len());
        for r in refs {
            let data = stmt
                .query_row([r.seq], |row| read_data(kind, &r, row))
                .map_err(sqlite(path))?;
            out.push((r, data));
        }
        Ok(out)
    }

    /// Items committed after `cursor`, in commit order, at most `limit`.
    pub fn media_after(&self, cursor: i64, limit: i64) -> Result<Vec<MediaRef>> {
        if !self.has_media()? {
            return Ok(Vec::new());
        }
        let path = &self.path;
        let union: Vec<String> = MediaKind::ALL
            .iter()
            .map(|k| {
                format!(
                    "SELECT '{}', {} FROM {} WHERE seq > ?1",
                    k.table(),
                    ref_columns(*k),
                    k.table()
                )
            })
            .collect();
        let mut stmt = self
            .conn
            .prepare(&format!("{} ORDER BY 2 LIMIT ?2", union.join(" UNION ALL ")))
            .map_err(sqlite(path))?;
        let mut rows = stmt.query((cursor, limit)).map_err(sqlite(path))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(sqlite(path))? {
            let table: String = row.get(0).map_err(sqlite(path))?;
            let Some(kind) = MediaKind::from_table(&table) else {
                continue;
            };
            out.push(read_ref_at(kind, row, 1).map_err(sqlite(path))?);
        }
        Ok(out)
    }

    /// One image's or clip's type and bytes.
    pub fn media_bytes(&self, kind: MediaKind, seq: i64) -> Result<Option<(String, Vec<u8>)>> {
        if !matches!(kind, MediaKind::Image | MediaKind::Audio) || !self.has_media()? {
            return Ok(None);
        }
        self.conn
            .query_row(
                &format!("SELECT mime, data FROM {} WHERE seq = ?1", kind.table()),
                [seq],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(sqlite(&self.path))
    }
}

/// A ref read from columns starting at `at`.
fn read_ref_at(kind: MediaKind, r: &Row<'_>, at: usize) -> rusqlite::Result<MediaRef> {
    Ok(MediaRef {
        seq: r.get(at)?,
        kind,
        tag: r.get(at + 1)?,
        step: r.get(at + 2)?,
        time: r.get(at + 3)?,
        index: r.get::<_, i64>(at + 4)?.clamp(0, u32::MAX as i64) as u32,
        width: r.get::<_, i64>(at + 5)?.clamp(0, u32::MAX as i64) as u32,
        height: r.get::<_, i64>(at + 6)?.clamp(0, u32::MAX as i64) as u32,
        mime: r.get(at + 7)?,
        size: r.get::<_, Option<i64>>(at + 8)?.unwrap_or(0).max(0) as u64,
    })
}

fn read_data(kind: MediaKind, r: &MediaRef, row: &Row<'_>) -> rusqlite::Result<MediaData> {
    let bad = |what: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            format!("{} {} of {} is not a JSON array of numbers", kind.table(), what, r.tag).into(),
        )
    };
    Ok(match kind {
        MediaKind::Image => MediaData::Image {
            width: r.width,
            height: r.height,
            mime: image_mime(&r.mime),
            bytes: row.get(0)?,
        },
        MediaKind::Audio => MediaData::Audio {
            bytes: row.get(0)?,
            sample_rate: row.get(1)?,
            channels: row.get::<_, i64>(2)?.clamp(0, u32::MAX as i64) as u32,
            frames: row.get::<_, i64>(3)?.max(0) as u64,
            mime: r.mime.clone(),
        },
        MediaKind::Histogram => {
            let text: String = row.get(0)?;
            let buckets: Vec<[Option<f64>; 3]> = serde_json::from_str(&text).map_err(|_| bad("buckets"))?;
            MediaData::Histogram(Histogram {
                buckets: buckets.into_iter().map(|b| b.map(from_sql_value)).collect(),
                count: from_sql_value(row.get(1)?),
                min: from_sql_value(row.get(2)?),
                max: from_sql_value(row.get(3)?),
                sum: from_sql_value(row.get(4)?),
            })
        }
        MediaKind::Text => MediaData::Text(row.get(0)?),
        MediaKind::PrCurve => {
            let col = |i: usize, what: &str| -> rusqlite::Result<Vec<f64>> {
                let text: String = row.get(i)?;
                parse_numbers(&text).ok_or_else(|| bad(what))
            };
            MediaData::PrCurve(PrCurve {
                thresholds: col(0, "thresholds")?,
                precision: col(1, "precision")?,
                recall: col(2, "recall")?,
                tp: col(3, "tp")?,
                fp: col(4, "fp")?,
                tn: col(5, "tn")?,
                fn_: col(6, "fn")?,
            })
        }
    })
}

/// The static name of a stored image type.
fn image_mime(mime: &str) -> &'static str {
    ["image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp"]
        .into_iter()
        .find(|m| *m == mime)
        .unwrap_or("application/octet-stream")
}

/// At most `max` of `items` (0: all), evenly spread, the first and last kept.
fn spread<T>(items: Vec<T>, max: usize) -> Vec<T> {
    let n = items.len();
    if max == 0 || n <= max {
        return items;
    }
    if max == 1 {
        return items.into_iter().last().into_iter().collect();
    }
    let keep: Vec<usize> = (0..max).map(|i| i * (n - 1) / (max - 1)).collect();
    let mut next = 0;
    items
        .into_iter()
        .enumerate()
        .filter_map(|(i, item)| {
            if keep.get(next) == Some(&i) {
                next += 1;
                Some(item)
            } else {
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples::Batch;
    use crate::store::RunDb;

    #[test]
    fn numbers_round_trip_through_json_and_non_finite_ones_are_null() {
        let text = json(&[1.0, f64::NAN, f64::INFINITY, 1e-7, -0.1f32 as f64]);
        assert!(text.starts_with("[1.0,null,null,"), "{text}");
        let back = parse_numbers(&text).unwrap();
        assert_eq!((back[0], back[3], back[4]), (1.0, 1e-7, -0.1f32 as f64));
        assert!(back[1].is_nan() && back[2].is_nan());
        assert_eq!(json_buckets(&[[0.0, 1.5, 2.0]]), "[[0.0,1.5,2.0]]");
    }

    #[test]
    fn spread_keeps_the_ends() {
        assert_eq!(spread((0..10).collect(), 4), vec![0, 3, 6, 9]);
        assert_eq!(spread((0..3).collect(), 5), vec![0, 1, 2]);
        assert_eq!(spread((0..3).collect(), 1), vec![2]);
        assert_eq!(spread((0..1000).collect(), 200).len(), 200);
    }

    #[tokio::test]
    async fn media_commit_with_the_batch_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.db");
        let mut db = RunDb::open(&path).await.unwrap();
        let png = {
            let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
            b.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 3]);
            b
        };
        let row = |key: &str, step: i64, data: MediaData| MediaRow {
            key: key.into(),
            step,
            time: 1000 + step,
            index: 0,
            data,
        };
        let hist = Histogram {
            min: -1.0,
            max: 1.0,
            count: 3.0,
            sum: f64::NAN,
            buckets: vec![[-1.0, 0.0, 1.0], [0.0, 1.0, 2.0]],
        };
        let pr = PrCurve {
            thresholds: vec![0.0, 1.0],
            tp: vec![2.0, 1.0],
            fp: vec![2.0, 0.0],
            tn: vec![0.0, 2.0],
            fn_: vec![0.0, 1.0],
            precision: vec![0.5, 1.0],
            recall: vec![1.0, 0.5],
        };
        let mut batch = Batch::default();
        for step in 0..3 {
            batch.media.push(row(
                "tf/img",
                step,
                MediaData::Image {
                    width: 2,
                    height: 3,
                    mime: "image/png",
                    bytes: png.clone(),
                },
            ));
            batch.media.push(row("tf/h", step, MediaData::Histogram(hist.clone())));
        }
        batch.media.push(row("tf/t", 5, MediaData::Text("**hi**".into())));
        batch.media.push(row("tf/pr", 5, MediaData::PrCurve(pr.clone())));
        db.commit(&batch).await.unwrap();
        assert_eq!(db.last_media(), 8);
        db.close().await;
        // A reopened writer goes on from the last seq.
        let mut db = RunDb::open(&path).await.unwrap();
        assert_eq!(db.last_media(), 8);
        let mut more = Batch::default();
        more.media.push(row("tf/t", 6, MediaData::Text("two".into())));
        db.commit(&more).await.unwrap();
        assert_eq!(db.last_media(), 9);
        db.close().await;

        let conn = Connection::open(&path).unwrap();
        let steps: Vec<(String, i64)> = conn
            .prepare("select tag, step from image")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            steps,
            vec![("tf/img".into(), 0), ("tf/img".into(), 1), ("tf/img".into(), 2)]
        );
        let second: f64 = conn
            .query_row(
                "select json_extract(buckets, '$[1][2]') from histogram limit 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(second, 2.0);

        let reader = Reader::open(&path).unwrap();
        let tags = reader.media_tags().unwrap();
        let summary: Vec<(MediaKind, &str, u64)> = tags.iter().map(|t| (t.kind, t.tag.as_str(), t.count)).collect();
        let last = tags[0].last.as_ref().unwrap();
        assert_eq!((last.step, last.width, last.height), (2, 2, 3));
        assert_eq!(
            summary,
            vec![
                (MediaKind::Image, "tf/img", 3),
                (MediaKind::Histogram, "tf/h", 3),
                (MediaKind::Text, "tf/t", 2),
                (MediaKind::PrCurve, "tf/pr", 1)
            ]
        );
        let refs = reader.media_refs(MediaKind::Image, "tf/img").unwrap();
        assert_eq!(refs.iter().map(|r| r.step).collect::<Vec<_>>(), vec![0, 1, 2]);
        assert_eq!((refs[0].width, refs[0].height, refs[0].size), (2, 3, png.len() as u64));
        let (mime, bytes) = reader.media_bytes(MediaKind::Image, refs[1].seq).unwrap().unwrap();
        assert_eq!((mime.as_str(), bytes), ("image/png", png.clone()));
        assert_eq!(reader.media_bytes(MediaKind::Audio, refs[1].seq).unwrap(), None);
        let items = reader
            .media_items(MediaKind::Histogram, "tf/h", Pick::Step(1), false)
            .unwrap();
        assert_eq!(items.len(), 1);
        let MediaData::Histogram(h) = &items[0].1 else { panic!() };
        assert_eq!(
            (h.buckets.clone(), h.count, h.sum.is_nan()),
            (hist.buckets.clone(), 3.0, true)
        );
        let items = reader
            .media_items(MediaKind::PrCurve, "tf/pr", Pick::All { max_items: 0 }, false)
            .unwrap();
        assert_eq!(items[0].1, MediaData::PrCurve(pr));
        let after = reader.media_after(6, 100).unwrap();
        assert_eq!(
            after.iter().map(|r| (r.seq, r.kind)).collect::<Vec<_>>(),
            vec![(7, MediaKind::Text), (8, MediaKind::PrCurve), (9, MediaKind::Text)]
        );
        assert_eq!(reader.last_media_cursor().unwrap(), 9);
    }
}
