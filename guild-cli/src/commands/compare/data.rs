//! What `guild compare` compares: every selected run as the daemon sent it (names,
//! values and keys once, rows referring to them by position), and what a column name
//! means — an attribute, a flag, a series' last, min or max, or a view column.

use guild_proto::time;
use guild_proto::v1 as pb;

use super::filter::{Operand, Value};
use crate::format::{format_exact, format_short, run_seconds, run_time, status_name};
use crate::rpc::{Client, rpc, status_error};
use crate::select::SelectArgs;

/// A run attribute column.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Attr {
    Id,
    Model,
    Op,
    Status,
    Started,
    Time,
    Label,
    Tags,
}

pub const ATTRS: [(&str, Attr); 8] = [
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
pub enum Source {
    Attr(Attr),
    Flag(u32),
    Last(u32),
    Min(u32),
    Max(u32),
    /// A compare column of the runs' view.
    View(u32),
}

impl Source {
    pub fn is_number(self) -> bool {
        matches!(
            self,
            Source::Last(_) | Source::Min(_) | Source::Max(_) | Source::Attr(Attr::Time)
        )
    }
}

pub struct Row {
    pub run: pb::Run,
    /// `YYYY-MM-DD HH:MM:SS`, empty when the run never started.
    pub started: String,
    /// Comma-separated.
    pub tags: String,
    /// (name position, value position), sorted by name position.
    pub flags: Vec<(u32, u32)>,
    /// (key position, last, min, max), sorted by key position.
    pub scalars: Vec<(u32, f64, f64, f64)>,
    /// (view column, value), sorted by column.
    pub view: Vec<(u32, pb::FieldValue)>,
}

/// Every selected run as the daemon sent it.
pub struct Data {
    pub flag_names: Vec<String>,
    pub flag_values: Vec<String>,
    pub scalar_keys: Vec<String>,
    pub view_columns: Vec<pb::ViewField>,
    pub rows: Vec<Row>,
}

impl Data {
    fn view_value<'a>(&self, row: &'a Row, column: u32) -> Option<&'a pb::FieldValue> {
        row.view
            .binary_search_by_key(&column, |v| v.0)
            .ok()
            .map(|i| &row.view[i].1)
            .filter(|v| v.present)
    }

    pub fn value<'a>(&'a self, row: &'a Row, source: Source) -> Value<'a> {
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
                Attr::Status => Value::Text(status_name(&row.run)),
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
    pub fn text(&self, row: &Row, source: Source, table: bool) -> Option<String> {
        match source {
            Source::Attr(Attr::Time) if table => run_seconds(&row.run).map(|_| run_time(&row.run)),
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
    pub fn resolve(&self, operand: &Operand) -> Result<Source, String> {
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
                let view_column = |n: &str| {
                    self.view_columns
                        .iter()
                        .position(|c| c.name == n || c.label == n)
                        .map(|p| p as u32)
                };
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
    pub fn header(&self, source: Source) -> String {
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
            Source::View(c) => self
                .view_columns
                .get(c as usize)
                .map(|f| f.label.clone())
                .unwrap_or_default(),
        }
    }
}

/// Every run the selection names, with the values `sys` (system and process stats) and
/// `view` (the view's compare columns instead of every value) ask for.
pub async fn fetch(client: &Client, select: &SelectArgs, sys: bool, view: bool) -> anyhow::Result<Data> {
    let mut stream = rpc(client
        .compare()
        .compare_runs(pb::CompareRunsRequest {
            selection: Some(select.to_proto(false)),
            sys,
            view,
        })
        .await)?;
    let mut data = Data {
        flag_names: Vec::new(),
        flag_values: Vec::new(),
        scalar_keys: Vec::new(),
        view_columns: Vec::new(),
        rows: Vec::new(),
    };
    while let Some(chunk) = stream.message().await.map_err(status_error)? {
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
