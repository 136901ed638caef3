//! The three ways `guild compare` prints its rows: CSV (the `csv` crate), JSON
//! (`serde_json`, one run per line) and a table that fits the terminal. CSV and JSON
//! carry every value exactly: numbers in their shortest form that reads back as the
//! same f64, `nan`, `inf` and `-inf` as text, empty cells empty in CSV and `null` in JSON.

use std::io;

use serde::ser::{Serialize, SerializeMap, Serializer};

use super::data::{Attr, Data, Row, Source};
use super::filter::Value;
use crate::format::write_exact;
use crate::out::clean;
use crate::table::{self, Align};

/// The widest a table cell gets before it is cut with `…`.
const MAX_CELL: usize = 40;

/// The exact form of a number, as [`write_exact`] writes it.
fn exact(n: f64) -> String {
    let mut text = String::with_capacity(24);
    write_exact(&mut text, n);
    text
}

/// Room for the whole answer at once: growing a buffer of megabytes copies it, while
/// room that is never written costs nothing (its pages are never touched).
fn room(data: &Data, columns: &[Source], per_cell: usize) -> Vec<u8> {
    Vec::with_capacity((data.rows.len() + 1) * (columns.len() * per_cell + 16))
}

pub fn csv(data: &Data, columns: &[Source]) -> Vec<u8> {
    let mut out = Csv {
        // RFC 4180 as the csv crate writes it: quotes only where a field needs them.
        rules: csv_core::Writer::new(),
        out: room(data, columns, 32),
        scratch: Vec::new(),
    };
    for (i, &c) in columns.iter().enumerate() {
        out.text(i, &data.header(c));
    }
    out.out.push(b'\n');
    let mut number = String::with_capacity(24);
    for row in &data.rows {
        for (i, &c) in columns.iter().enumerate() {
            match data.value(row, c) {
                Value::Missing => out.text(i, ""),
                Value::Text(t) => out.text(i, t),
                // A number's exact form never needs quotes: straight out.
                Value::Number(n) => {
                    number.clear();
                    write_exact(&mut number, n);
                    out.raw(i, number.as_bytes());
                }
            }
        }
        out.out.push(b'\n');
    }
    out.out
}

/// CSV written a field at a time: csv-core (the csv crate's engine) decides which fields
/// need quotes and escapes them; the rest is copied straight into one buffer, without
/// the csv crate's intermediate buffer and per-record bookkeeping (which cost 5% more
/// time at 280,000 fields).
struct Csv {
    rules: csv_core::Writer,
    out: Vec<u8>,
    scratch: Vec<u8>,
}

impl Csv {
    fn raw(&mut self, column: usize, field: &[u8]) {
        if column > 0 {
            self.out.push(b',');
        }
        self.out.extend_from_slice(field);
    }

    fn text(&mut self, column: usize, field: &str) {
        let field = field.as_bytes();
        if !self.rules.should_quote(field) {
            return self.raw(column, field);
        }
        // Every byte a quote, doubled: the most the quoted form takes.
        self.scratch.resize(field.len() * 2, 0);
        let (_, _, written) = csv_core::quote(field, &mut self.scratch, b'"', b'\\', true);
        if column > 0 {
            self.out.push(b',');
        }
        self.out.push(b'"');
        self.out.extend_from_slice(&self.scratch[..written]);
        self.out.push(b'"');
    }
}

/// A JSON array of objects, one per run, keyed by column header.
pub fn json(data: &Data, columns: &[Source]) -> anyhow::Result<Vec<u8>> {
    let headers: Vec<String> = columns.iter().map(|&c| data.header(c)).collect();
    let mut out = room(data, columns, 48);
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, Layout::default());
    serializer.collect_seq(data.rows.iter().map(|row| JsonRow {
        data,
        row,
        columns,
        headers: &headers,
    }))?;
    out.push(b'\n');
    Ok(out)
}

struct JsonRow<'a> {
    data: &'a Data,
    row: &'a Row,
    columns: &'a [Source],
    headers: &'a [String],
}

impl Serialize for JsonRow<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.columns.len()))?;
        for (header, &c) in self.headers.iter().zip(self.columns) {
            if c == Source::Attr(Attr::Tags) {
                map.serialize_entry(header, &self.row.run.tags)?;
                continue;
            }
            match self.data.value(self.row, c) {
                Value::Missing => map.serialize_entry(header, &())?,
                Value::Text(t) => map.serialize_entry(header, t)?,
                Value::Number(n) if n.is_finite() => map.serialize_entry(header, &n)?,
                // JSON has no NaN or infinities: they are text, as in CSV.
                Value::Number(n) => map.serialize_entry(header, &exact(n))?,
            }
        }
        map.end()
    }
}

/// serde_json's compact output with our layout: one run per line, `", "` and `": "`
/// between items, and numbers in their shortest exact form (`3`, not `3.0`).
#[derive(Default)]
struct Layout {
    depth: usize,
    /// Whether the outer array has a row (it closes on a line of its own then).
    rows: bool,
}

impl serde_json::ser::Formatter for Layout {
    fn write_f64<W: ?Sized + io::Write>(&mut self, out: &mut W, value: f64) -> io::Result<()> {
        out.write_all(exact(value).as_bytes())
    }

    fn begin_array<W: ?Sized + io::Write>(&mut self, out: &mut W) -> io::Result<()> {
        self.depth += 1;
        out.write_all(b"[")
    }

    fn end_array<W: ?Sized + io::Write>(&mut self, out: &mut W) -> io::Result<()> {
        self.depth -= 1;
        out.write_all(if self.depth == 0 && self.rows { b"\n]" } else { b"]" })
    }

    fn begin_array_value<W: ?Sized + io::Write>(&mut self, out: &mut W, first: bool) -> io::Result<()> {
        if self.depth == 1 {
            self.rows = true;
            out.write_all(if first { b"\n  " } else { b",\n  " })
        } else if first {
            Ok(())
        } else {
            out.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + io::Write>(&mut self, out: &mut W, first: bool) -> io::Result<()> {
        if first { Ok(()) } else { out.write_all(b", ") }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, out: &mut W) -> io::Result<()> {
        out.write_all(b": ")
    }
}

/// A table cell: control characters from the daemon escaped, cut to [`MAX_CELL`].
fn cut(text: String) -> String {
    let text = match clean(&text) {
        std::borrow::Cow::Borrowed(_) => text,
        std::borrow::Cow::Owned(clean) => clean,
    };
    if text.len() <= MAX_CELL || text.chars().count() <= MAX_CELL {
        return text;
    }
    let mut cut: String = text.chars().take(MAX_CELL - 1).collect();
    cut.push('…');
    cut
}

/// The table: the columns that fit in `width` (the first always shows); numbers
/// right-aligned. Returns the text and how many columns were left out.
pub fn table(data: &Data, columns: &[Source], width: Option<usize>) -> (String, usize) {
    let mut rows: Vec<Vec<String>> = Vec::with_capacity(data.rows.len() + 1);
    rows.push(columns.iter().map(|&c| cut(data.header(c))).collect());
    rows.extend(data.rows.iter().map(|row| {
        columns
            .iter()
            .map(|&c| data.text(row, c, true).map(cut).unwrap_or_default())
            .collect()
    }));
    let mut table = table::Table::new(rows);
    let left_out = table.fit(width);
    let align: Vec<Align> = columns
        .iter()
        .map(|c| if c.is_number() { Align::Right } else { Align::Left })
        .collect();
    (table.render(&align), left_out)
}
