//! `guild compare`: one row per run — id, model, op, status, started, time, label, tags,
//! every flag, and the last value of each series (system and process stats only with
//! `--sys`) — as a table that fits the terminal, CSV or JSON. The daemon sends the
//! rows from its index in one stream; filtering, sorting and columns happen here.

use std::cmp::Ordering;
use std::fmt::Write as _;
use std::io::Write as _;

use anyhow::{Context, anyhow, bail};
use clap::Args;
use guild_proto::time;
use guild_proto::v1::{self as pb, compare_service_client::CompareServiceClient};

use crate::client::Client;
use crate::filter::{self, Operand, Value};
use crate::select::SelectArgs;

/// Largest message the CLI accepts from CompareRuns (chunks are far smaller).
const MAX_MESSAGE: usize = 256 * 1024 * 1024;
/// The widest a table cell gets before it is cut with `…`.
const MAX_CELL: usize = 40;

#[derive(Args, Clone, Debug, Default)]
pub struct CompareArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// A table that fits the terminal (the default).
    #[arg(long, conflicts_with_all = ["csv", "json"])]
    pub table: bool,
    /// CSV with a header row.
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,
    /// A JSON array of objects, one per run, keyed by column.
    #[arg(long)]
    pub json: bool,
    /// The columns to show, in order (comma-separated names: id, lr, loss, min(loss)...).
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub columns: Vec<String>,
    /// Add a column with a series' minimum (repeatable).
    #[arg(long = "min", value_name = "KEY")]
    pub min: Vec<String>,
    /// Add a column with a series' maximum (repeatable).
    #[arg(long = "max", value_name = "KEY")]
    pub max: Vec<String>,
    /// Sort by these columns (comma-separated; a leading - sorts descending: -loss).
    #[arg(long, allow_hyphen_values = true, value_name = "NAMES")]
    pub sort: Option<String>,
    /// Only runs matching this expression, e.g. "status = completed and lr < 0.1".
    #[arg(long, value_name = "EXPR")]
    pub filter: Option<String>,
    /// Include system and process stats (sys/*, op/*).
    #[arg(long)]
    pub sys: bool,
    /// Every attribute, flag and series, instead of the compare columns of the runs'
    /// view (a Guild file's `[view] compare = ...`).
    #[arg(long)]
    pub all_columns: bool,
}

/// A run attribute column.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Attr {
    Id,
    Model,
    Op,
    Status,
    Started,
    Time,
    Label,
    Tags,
}

const ATTRS: [(&str, Attr); 8] = [
    ("id", Attr::Id),
    ("model", Attr::Model),
    ("op", Attr::Op),
    ("status", Attr::Status),
    ("started", Attr::Started),
    ("time", Attr::Time),
    ("label", Attr::Label),
    ("tags", Attr::Tags),
];

/// Where a column's values come from.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Source {
    Attr(Attr),
    Flag(u32),
    Last(u32),
    Min(u32),
    Max(u32),
    /// A compare column of the runs' view.
    View(u32),
}

impl Source {
    fn is_number(self) -> bool {
        matches!(
            self,
            Source::Last(_) | Source::Min(_) | Source::Max(_) | Source::Attr(Attr::Time)
        )
    }
}

struct Row {
    run: pb::Run,
    /// `YYYY-MM-DD HH:MM:SS`, empty when the run never started.
    started: String,
    /// Comma-separated.
    tags: String,
    /// (name position, value position), sorted by name position.
    flags: Vec<(u32, u32)>,
    /// (key position, last, min, max), sorted by key position.
    scalars: Vec<(u32, f64, f64, f64)>,
    /// (view column, value), sorted by column.
    view: Vec<(u32, pb::FieldValue)>,
}

/// Every selected run as the daemon sent it.
struct Data {
    flag_names: Vec<String>,
    flag_values: Vec<String>,
    scalar_keys: Vec<String>,
    view_columns: Vec<pb::ViewField>,
    rows: Vec<Row>,
}

impl Data {
    fn view_value<'a>(&self, row: &'a Row, column: u32) -> Option<&'a pb::FieldValue> {
        row.view
            .binary_search_by_key(&column, |v| v.0)
            .ok()
            .map(|i| &row.view[i].1)
            .filter(|v| v.present)
    }

    fn value<'a>(&'a self, row: &'a Row, source: Source) -> Value<'a> {
        let scalar = |key: u32| {
            row.scalars
                .binary_search_by_key(&key, |s| s.0)
                .ok()
                .map(|i| row.scalars[i])
        };
        match source {
            Source::Attr(attr) => match attr {
                Attr::Id => Value::Text(&row.run.id),
                Attr::Model => Value::Text(&row.run.model),
                Attr::Op => Value::Text(&row.run.op),
                Attr::Status => Value::Text(crate::table::status_name(&row.run)),
                Attr::Started if row.started.is_empty() => Value::Missing,
                Attr::Started => Value::Text(&row.started),
                Attr::Time => match run_seconds(&row.run) {
                    Some(s) => Value::Number(s),
                    None => Value::Missing,
                },
                Attr::Label if row.run.label.is_empty() => Value::Missing,
                Attr::Label => Value::Text(&row.run.label),
                Attr::Tags if row.tags.is_empty() => Value::Missing,
                Attr::Tags => Value::Text(&row.tags),
            },
            Source::Flag(name) => match row.flags.binary_search_by_key(&name, |f| f.0) {
                Ok(i) => Value::Text(&self.flag_values[row.flags[i].1 as usize]),
                Err(_) => Value::Missing,
            },
            Source::Last(k) => scalar(k).map_or(Value::Missing, |s| Value::Number(s.1)),
            Source::Min(k) => scalar(k).map_or(Value::Missing, |s| Value::Number(s.2)),
            Source::Max(k) => scalar(k).map_or(Value::Missing, |s| Value::Number(s.3)),
            Source::View(c) => match self.view_value(row, c) {
                None => Value::Missing,
                Some(v) if !v.value.is_nan() => Value::Number(v.value),
                Some(v) => Value::Text(&v.text),
            },
        }
    }

    /// A cell's text: owned forms for values that are computed (started, tags).
    fn text(&self, row: &Row, source: Source, table: bool) -> Option<String> {
        match source {
            Source::Attr(Attr::Time) if table => run_seconds(&row.run).map(|_| run_duration(&row.run)),
            // The table shows a view column in its format; CSV and JSON the exact value.
            Source::View(c) if table => self.view_value(row, c).map(|v| v.text.clone()),
            _ => match self.value(row, source) {
                Value::Missing => None,
                Value::Text(t) => Some(t.to_string()),
                Value::Number(n) if table => Some(format_short(n)),
                Value::Number(n) => Some(format_exact(n)),
            },
        }
    }

    /// What a name means: an attribute, then a flag, then a series key (last value).
    fn resolve(&self, operand: &Operand) -> Result<Source, String> {
        let key = |name: &str| self.scalar_keys.iter().position(|k| k == name).map(|p| p as u32);
        match operand {
            Operand::Min(name) | Operand::Max(name) => {
                let name = name.strip_prefix("scalar:").unwrap_or(name);
                let k = key(name)
                    .ok_or_else(|| format!("unknown series key \"{name}\" in {operand} (no compared run has it)"))?;
                Ok(if matches!(operand, Operand::Min(_)) {
                    Source::Min(k)
                } else {
                    Source::Max(k)
                })
            }
            Operand::Name(name) => {
                if let Some(flag) = name.strip_prefix("flag:") {
                    return self
                        .flag_names
                        .iter()
                        .position(|f| f == flag)
                        .map(|p| Source::Flag(p as u32))
                        .ok_or_else(|| format!("unknown flag \"{flag}\" (no compared run has it)"));
                }
                if let Some(scalar) = name.strip_prefix("scalar:") {
                    return key(scalar)
                        .map(Source::Last)
                        .ok_or_else(|| format!("unknown series key \"{scalar}\" (no compared run has it)"));
                }
                let view_column =
                    |n: &str| self.view_columns.iter().position(|c| c.name == n || c.label == n).map(|p| p as u32);
                if let Some(column) = name.strip_prefix("view:") {
                    return view_column(column)
                        .map(Source::View)
                        .ok_or_else(|| format!("unknown view column \"{column}\" (no compared run's view has it)"));
                }
                if let Some((_, attr)) = ATTRS.iter().find(|(n, _)| n == name) {
                    return Ok(Source::Attr(*attr));
                }
                if let Some(p) = self.flag_names.iter().position(|f| f == name) {
                    return Ok(Source::Flag(p as u32));
                }
                if let Some(k) = key(name) {
                    return Ok(Source::Last(k));
                }
                if let Some(c) = view_column(name) {
                    return Ok(Source::View(c));
                }
                // The headers the table prints for columns whose names collide.
                for (prefix, kind) in [("min(", 0), ("max(", 1)] {
                    if let Some(inner) = name.strip_prefix(prefix).and_then(|r| r.strip_suffix(')')) {
                        let operand = if kind == 0 {
                            Operand::Min(inner.to_string())
                        } else {
                            Operand::Max(inner.to_string())
                        };
                        return self.resolve(&operand);
                    }
                }
                Err(format!(
                    "unknown name \"{name}\" (not an attribute, flag or series key of the compared runs)"
                ))
            }
        }
    }

    /// A column's header: its name, prefixed when it collides with an earlier kind.
    fn header(&self, source: Source) -> String {
        let is_attr = |n: &str| ATTRS.iter().any(|(a, _)| *a == n);
        match source {
            Source::Attr(attr) => ATTRS
                .iter()
                .find(|(_, a)| *a == attr)
                .map(|(n, _)| n.to_string())
                .unwrap_or_default(),
            Source::Flag(p) => {
                let name = &self.flag_names[p as usize];
                if is_attr(name) {
                    format!("flag:{name}")
                } else {
                    name.clone()
                }
            }
            Source::Last(k) => {
                let key = &self.scalar_keys[k as usize];
                if is_attr(key) || self.flag_names.contains(key) {
                    format!("scalar:{key}")
                } else {
                    key.clone()
                }
            }
            Source::Min(k) => format!("min({})", self.scalar_keys[k as usize]),
            Source::Max(k) => format!("max({})", self.scalar_keys[k as usize]),
            Source::View(c) => self.view_columns.get(c as usize).map(|f| f.label.clone()).unwrap_or_default(),
        }
    }
}

fn run_end(run: &pb::Run) -> i64 {
    if run.stopped_ms > 0 {
        run.stopped_ms
    } else {
        time::now_ms()
    }
}

/// Seconds the run ran (so far), None when it never started.
fn run_seconds(run: &pb::Run) -> Option<f64> {
    (run.started_ms > 0).then(|| (run_end(run) - run.started_ms).max(0) as f64 / 1000.0)
}

fn run_duration(run: &pb::Run) -> String {
    time::duration(run_end(run) - run.started_ms)
}

/// A number that reads back as the same f64: the shortest form (`0.1`, `3`, `1e-7`,
/// `2.5e20`), `nan`, `inf`, `-inf`.
pub fn format_exact(v: f64) -> String {
    let mut out = String::new();
    write_exact(&mut out, v);
    out
}

/// Appends [`format_exact`]. zmij (already in the tree through serde_json) formats about
/// three times faster than `{}`, which matters at 100,000 cells.
fn write_exact(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("nan");
        return;
    }
    if v.is_infinite() {
        out.push_str(if v > 0.0 { "inf" } else { "-inf" });
        return;
    }
    let mut buffer = zmij::Buffer::new();
    let text = buffer.format_finite(v);
    // zmij writes `3.0` and `1e+20`; keep them short: `3`, `1e20`.
    let (mantissa, exponent) = match text.find('e') {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        None => (text, None),
    };
    out.push_str(mantissa.strip_suffix(".0").unwrap_or(mantissa));
    if let Some(exponent) = exponent {
        out.push('e');
        out.push_str(exponent.strip_prefix('+').unwrap_or(exponent));
    }
}

/// A number for the table: 6 significant digits, like printf's %g.
pub fn format_short(v: f64) -> String {
    if !v.is_finite() {
        return format_exact(v);
    }
    if v == 0.0 {
        return "0".into();
    }
    let exp = v.abs().log10().floor() as i32;
    if !(-5..6).contains(&exp) {
        let s = format!("{v:.5e}");
        let (mantissa, e) = s.split_once('e').unwrap_or((&s, "0"));
        let mantissa = trim_zeros(mantissa);
        return format!("{mantissa}e{e}");
    }
    let decimals = (5 - exp).max(0) as usize;
    trim_zeros(&format!("{v:.decimals$}")).to_string()
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

async fn fetch(client: &Client, args: &CompareArgs) -> anyhow::Result<Data> {
    let mut compare = CompareServiceClient::new(client.channel.clone()).max_decoding_message_size(MAX_MESSAGE);
    let mut stream = crate::commands::rpc(
        compare
            .compare_runs(pb::CompareRunsRequest {
                selection: Some(args.select.to_proto(false)),
                sys: args.sys,
                view: !args.all_columns,
            })
            .await,
    )?;
    let mut data = Data {
        flag_names: Vec::new(),
        flag_values: Vec::new(),
        scalar_keys: Vec::new(),
        view_columns: Vec::new(),
        rows: Vec::new(),
    };
    while let Some(chunk) = stream.message().await.map_err(|s| anyhow!("{}", s.message()))? {
        data.flag_names.extend(chunk.new_flag_names);
        data.scalar_keys.extend(chunk.new_scalar_keys);
        data.flag_values.extend(chunk.new_flag_values);
        data.view_columns.extend(chunk.new_view_columns);
        for row in chunk.rows {
            let mut flags: Vec<(u32, u32)> = row.flag_names.into_iter().zip(row.flag_values).collect();
            flags.sort_unstable_by_key(|f| f.0);
            let mut scalars: Vec<(u32, f64, f64, f64)> = row
                .scalar_keys
                .iter()
                .enumerate()
                .map(|(i, &k)| {
                    let at = |v: &[f64]| v.get(i).copied().unwrap_or(f64::NAN);
                    (k, at(&row.scalar_last), at(&row.scalar_min), at(&row.scalar_max))
                })
                .collect();
            scalars.sort_unstable_by_key(|s| s.0);
            let mut view: Vec<(u32, pb::FieldValue)> = row.view_columns.into_iter().zip(row.view_values).collect();
            view.sort_unstable_by_key(|v| v.0);
            let run = row.run.unwrap_or_default();
            data.rows.push(Row {
                started: time::display(run.started_ms),
                tags: run.tags.join(","),
                run,
                flags,
                scalars,
                view,
            });
        }
    }
    Ok(data)
}

pub async fn run(client: &Client, args: CompareArgs) -> anyhow::Result<u8> {
    // A bad expression is reported before anything is asked of the daemon.
    let parsed = match &args.filter {
        Some(expr) => Some((expr, filter::parse(expr).map_err(|e| anyhow!("{}", e.render(expr)))?)),
        None => None,
    };
    let mut data = fetch(client, &args).await?;
    if let Some((expr, tree)) = parsed {
        let tree = tree
            .resolve(&mut |operand| data.resolve(operand))
            .map_err(|e| anyhow!("{}", e.render(expr)))?;
        let rows = std::mem::take(&mut data.rows);
        data.rows = rows
            .into_iter()
            .filter(|row| tree.matches(&|source: &Source| data.value(row, *source)))
            .collect();
    }
    if let Some(sort) = &args.sort {
        sort_rows(&mut data, sort)?;
    }
    let columns = columns(&data, &args)?;
    let mut out = String::with_capacity(data.rows.len() * 256);
    if args.csv {
        write_csv(&data, &columns, &mut out);
    } else if args.json {
        write_json(&data, &columns, &mut out);
    } else {
        let width = terminal_width();
        let left_out = write_table(&data, &columns, width, &mut out);
        if left_out > 0 {
            eprintln!(
                "({left_out} more column{} did not fit: use --columns, --csv, --json or a wider terminal)",
                if left_out == 1 { "" } else { "s" }
            );
        }
    }
    // The process ends next: freeing 10,000 rows one by one would only cost time.
    std::mem::forget(data);
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(out.as_bytes()).and_then(|_| stdout.flush()) {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        other => other.map(|_| 0).context("cannot write to stdout"),
    }
}

fn sort_rows(data: &mut Data, spec: &str) -> anyhow::Result<()> {
    let mut keys = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (descending, name) = match part.strip_prefix('-') {
            Some(name) => (true, name),
            None => (false, part.strip_prefix('+').unwrap_or(part)),
        };
        let operand = match filter::parse(&format!("{name} = 0")) {
            Ok(filter::Expr::Cmp { operand: (o, _), .. }) => o,
            _ => Operand::Name(name.to_string()),
        };
        let source = data.resolve(&operand).map_err(|e| anyhow!("--sort: {e}"))?;
        keys.push((source, descending));
    }
    if keys.is_empty() {
        bail!("--sort: name a column, e.g. --sort -loss");
    }
    let mut rows = std::mem::take(&mut data.rows);
    rows.sort_by(|a, b| {
        for &(source, descending) in &keys {
            let order = compare_values(data.value(a, source), data.value(b, source), descending);
            if order != Ordering::Equal {
                return order;
            }
        }
        Ordering::Equal
    });
    data.rows = rows;
    Ok(())
}

/// Numbers before text, missing last in either direction.
fn compare_values(a: Value<'_>, b: Value<'_>, descending: bool) -> Ordering {
    let number = |v: Value<'_>| match v {
        Value::Number(n) if !n.is_nan() => Some(n),
        Value::Text(t) => filter::parse_number(t),
        _ => None,
    };
    let rank = |v: Value<'_>| match v {
        Value::Missing => 2,
        Value::Number(n) if n.is_nan() => 2,
        _ => 0,
    };
    match (rank(a), rank(b)) {
        (2, 2) => return Ordering::Equal,
        (2, _) => return Ordering::Greater,
        (_, 2) => return Ordering::Less,
        _ => {}
    }
    let order = match (number(a), number(b)) {
        (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => {
            let text = |v: Value<'_>| match v {
                Value::Text(t) => t.to_string(),
                _ => String::new(),
            };
            text(a).cmp(&text(b))
        }
    };
    if descending { order.reverse() } else { order }
}

/// The columns to print: as --columns says; else, when the runs' view has compare
/// columns, the run's identity then those; else attributes, flags and series keys that
/// any shown run has (names sorted). Then --min and --max columns.
fn columns(data: &Data, args: &CompareArgs) -> anyhow::Result<Vec<Source>> {
    let named = |name: &str| -> anyhow::Result<Source> {
        let operand = match filter::parse(&format!("{name} = 0")) {
            Ok(filter::Expr::Cmp { operand: (o, _), .. }) => o,
            _ => Operand::Name(name.to_string()),
        };
        data.resolve(&operand).map_err(|e| anyhow!("--columns: {e}"))
    };
    let mut columns = Vec::new();
    if !args.columns.is_empty() {
        for name in args.columns.iter().map(|c| c.trim()).filter(|c| !c.is_empty()) {
            columns.push(named(name)?);
        }
    } else if !data.view_columns.is_empty() {
        for (_, attr) in ATTRS {
            let shown = match attr {
                // The view says how long a run took, if it wants to.
                Attr::Time => false,
                Attr::Tags => data.rows.iter().any(|r| !r.tags.is_empty()),
                _ => true,
            };
            if shown {
                columns.push(Source::Attr(attr));
            }
        }
        columns.extend((0..data.view_columns.len() as u32).map(Source::View));
    } else {
        let has = |source: Source| {
            data.rows
                .iter()
                .any(|r| !matches!(data.value(r, source), Value::Missing))
        };
        // Every attribute; tags only when a shown run has some.
        for (_, attr) in ATTRS {
            if attr != Attr::Tags || data.rows.iter().any(|r| !r.tags.is_empty()) {
                columns.push(Source::Attr(attr));
            }
        }
        let mut flags: Vec<u32> = (0..data.flag_names.len() as u32)
            .filter(|&p| has(Source::Flag(p)))
            .collect();
        flags.sort_by(|a, b| data.flag_names[*a as usize].cmp(&data.flag_names[*b as usize]));
        columns.extend(flags.into_iter().map(Source::Flag));
        let mut keys: Vec<u32> = (0..data.scalar_keys.len() as u32)
            .filter(|&k| has(Source::Last(k)))
            .collect();
        keys.sort_by(|a, b| data.scalar_keys[*a as usize].cmp(&data.scalar_keys[*b as usize]));
        columns.extend(keys.into_iter().map(Source::Last));
    }
    for (keys, min) in [(&args.min, true), (&args.max, false)] {
        for key in keys {
            let operand = if min {
                Operand::Min(key.clone())
            } else {
                Operand::Max(key.clone())
            };
            let source = data
                .resolve(&operand)
                .map_err(|e| anyhow!("--{}: {e}", if min { "min" } else { "max" }))?;
            if !columns.contains(&source) {
                columns.push(source);
            }
        }
    }
    Ok(columns)
}

fn csv_field(out: &mut String, text: &str) {
    if text.contains([',', '"', '\n', '\r']) || text.starts_with(' ') || text.ends_with(' ') {
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(text);
    }
}

fn write_csv(data: &Data, columns: &[Source], out: &mut String) {
    for (i, &c) in columns.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(out, &data.header(c));
    }
    out.push('\n');
    for row in &data.rows {
        for (i, &c) in columns.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            match data.value(row, c) {
                Value::Missing => {}
                Value::Text(t) => csv_field(out, t),
                Value::Number(n) => write_exact(out, n),
            }
        }
        out.push('\n');
    }
}

/// Appends a JSON string literal.
fn json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write_json(data: &Data, columns: &[Source], out: &mut String) {
    let mut headers = Vec::with_capacity(columns.len());
    for &c in columns {
        let mut h = String::new();
        json_string(&mut h, &data.header(c));
        headers.push(h);
    }
    out.push('[');
    for (r, row) in data.rows.iter().enumerate() {
        out.push_str(if r == 0 { "\n  {" } else { ",\n  {" });
        for (i, &c) in columns.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(&headers[i]);
            out.push_str(": ");
            if c == Source::Attr(Attr::Tags) {
                out.push('[');
                for (t, tag) in row.run.tags.iter().enumerate() {
                    if t > 0 {
                        out.push_str(", ");
                    }
                    json_string(out, tag);
                }
                out.push(']');
                continue;
            }
            match data.value(row, c) {
                Value::Missing => out.push_str("null"),
                Value::Text(t) => json_string(out, t),
                Value::Number(n) if n.is_finite() => write_exact(out, n),
                Value::Number(n) => json_string(out, &format_exact(n)),
            }
        }
        out.push('}');
    }
    out.push_str(if data.rows.is_empty() { "]\n" } else { "\n]\n" });
}

/// The terminal's width: COLUMNS, else the window size of stdout; None when stdout is
/// not a terminal (nothing is cut then).
fn terminal_width() -> Option<usize> {
    if let Some(cols) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        && cols > 0
    {
        return Some(cols);
    }
    // SAFETY: TIOCGWINSZ writes a winsize into the struct we pass; fd 1 is ours.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut size) };
    (rc == 0 && size.ws_col > 0).then_some(size.ws_col as usize)
}

/// A table cell: control characters from the daemon escaped, cut to [`MAX_CELL`].
fn cut(text: String) -> String {
    let text = match crate::out::clean(&text) {
        std::borrow::Cow::Borrowed(_) => text,
        std::borrow::Cow::Owned(clean) => clean,
    };
    if text.chars().count() <= MAX_CELL {
        return text;
    }
    let mut cut: String = text.chars().take(MAX_CELL - 1).collect();
    cut.push('…');
    cut
}

/// Writes the table; returns how many columns did not fit in `width`.
fn write_table(data: &Data, columns: &[Source], width: Option<usize>, out: &mut String) -> usize {
    let header: Vec<String> = columns.iter().map(|&c| cut(data.header(c))).collect();
    let cells: Vec<Vec<String>> = data
        .rows
        .iter()
        .map(|row| {
            columns
                .iter()
                .map(|&c| data.text(row, c, true).map(cut).unwrap_or_default())
                .collect()
        })
        .collect();
    let widths: Vec<usize> = (0..columns.len())
        .map(|c| {
            cells
                .iter()
                .map(|r| r[c].chars().count())
                .chain([header[c].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    // The id column always shows; others while they fit.
    let mut shown = 0;
    let mut used = 0;
    for (c, w) in widths.iter().enumerate() {
        let need = if c == 0 { *w } else { used + 2 + w };
        if c > 0 && width.is_some_and(|max| need > max) {
            break;
        }
        used = need;
        shown = c + 1;
    }
    let line = |out: &mut String, row: &[String]| {
        let mut text = String::new();
        for c in 0..shown {
            if c > 0 {
                text.push_str("  ");
            }
            let pad = widths[c] - row[c].chars().count();
            if columns[c].is_number() {
                text.extend(std::iter::repeat_n(' ', pad));
                text.push_str(&row[c]);
            } else {
                text.push_str(&row[c]);
                if c + 1 < shown {
                    text.extend(std::iter::repeat_n(' ', pad));
                }
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(out, &header);
    for row in &cells {
        line(out, row);
    }
    columns.len() - shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_format() {
        for (v, exact, short) in [
            (0.1, "0.1", "0.1"),
            (1.0, "1", "1"),
            (-2.5, "-2.5", "-2.5"),
            (1e-7, "1e-7", "1e-7"),
            (123456789.0, "123456789", "1.23457e8"),
            (0.912345678, "0.912345678", "0.912346"),
            (1e20, "1e20", "1e20"),
            (f64::NAN, "nan", "nan"),
            (f64::NEG_INFINITY, "-inf", "-inf"),
            (0.0, "0", "0"),
        ] {
            assert_eq!(format_exact(v), exact, "{v}");
            assert_eq!(format_short(v), short, "{v}");
            if v.is_finite() {
                assert_eq!(format_exact(v).parse::<f64>().unwrap(), v);
            }
        }
    }

    #[test]
    fn sort_order_puts_missing_last() {
        let (a, b, m) = (Value::Number(1.0), Value::Text("2"), Value::Missing);
        assert_eq!(compare_values(a, b, false), Ordering::Less);
        assert_eq!(compare_values(a, b, true), Ordering::Greater);
        assert_eq!(compare_values(m, a, false), Ordering::Greater);
        assert_eq!(compare_values(m, a, true), Ordering::Greater);
        assert_eq!(
            compare_values(Value::Text("a"), Value::Text("b"), false),
            Ordering::Less
        );
    }
}
