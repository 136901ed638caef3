//! A run's view and the values of its fields: the view from the Guild file the run was
//! started with (its copy in `guild.d/Guild`, so a run keeps its view when the project
//! file changes), the values reduced from its series, or read from its flags and
//! attributes, and written in each field's format.
//!
//! Everything here reads files: call it on a blocking thread.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::project::view::{self, Field, View, format, reduce};
use crate::project::{self, Project};
use crate::store::rundb::{self, Axis, Reader as RunDbReader};
use crate::store::{RunRecord, SeriesSummary};

/// The most samples a field reduces (more leaves it without a value).
const MAX_REDUCED: usize = 2_000_000;

/// A field's value for one run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FieldValue {
    pub name: String,
    /// False while the run has no such value.
    pub present: bool,
    /// The number; NaN for a flag or attribute that is not one.
    pub value: f64,
    /// The value in the field's format; flags and attributes as written.
    pub text: String,
    /// The series key it was reduced from.
    pub key: String,
}

/// The Guild file a run was started with, else its project's file now (a run imported
/// without its copy).
pub fn guild_file_of(run: &RunRecord) -> Option<PathBuf> {
    [
        run.run_dir.join("guild.d").join(project::FILE_NAME),
        Path::new(&run.project_dir).join(project::FILE_NAME),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

/// The view of a run's model, or None when its Guild file describes none (or is gone, or
/// no longer reads: the dashboard then lays the run out itself).
pub fn run_view(run: &RunRecord) -> Option<View> {
    let file = guild_file_of(run)?;
    let parsed = match project::load(&file) {
        Ok(parsed) => parsed,
        Err(err) => {
            tracing::debug!(run = %run.id, "no view: {err}");
            return None;
        }
    };
    view_of(&parsed, &run.model)
}

/// The view of a model (or resource) of a parsed project.
pub fn view_of(project: &Project, model: &str) -> Option<View> {
    let target = project.target(Some(model)).ok()?;
    project.view(target)
}

/// What a run's field values are made from. Flags and summaries the caller has at hand
/// are used as they are; run.db is opened only for what they lack.
pub struct RunData<'a> {
    pub run: &'a RunRecord,
    pub flags: &'a [(String, String)],
    /// Attributes, when the caller read them; else read from run.db when a field asks.
    pub attrs: Option<&'a [(String, String)]>,
    /// Per-key summaries (last, min, max, last step) the caller has.
    pub summaries: &'a [SeriesSummary],
}

/// The values of `fields` for one run, in order.
pub fn field_values(data: &RunData<'_>, fields: &[Field]) -> Vec<FieldValue> {
    let mut reader = Reader {
        data,
        conn: None,
        keys: None,
        attrs: None,
        patterns: HashMap::new(),
    };
    fields.iter().map(|field| reader.value(field)).collect()
}

struct Reader<'d, 'a> {
    data: &'d RunData<'a>,
    /// run.db, opened on first need (None inside: it could not be opened).
    conn: Option<Option<RunDbReader>>,
    keys: Option<Vec<String>>,
    attrs: Option<Vec<(String, String)>>,
    patterns: HashMap<String, Option<regex::Regex>>,
}

impl Reader<'_, '_> {
    fn conn(&mut self) -> Option<&RunDbReader> {
        if self.conn.is_none() {
            let opened = RunDbReader::open(&rundb::path(&self.data.run.run_dir)).ok();
            self.conn = Some(opened);
        }
        self.conn.as_ref().and_then(Option::as_ref)
    }

    fn value(&mut self, field: &Field) -> FieldValue {
        let mut out = FieldValue {
            name: field.name.clone(),
            value: f64::NAN,
            ..FieldValue::default()
        };
        let found = match field.source.as_str() {
            "flags" => self.flag(&field.attribute).map(|v| (v, String::new())),
            "attrs" => self.attr(&field.attribute).map(|v| (v, String::new())),
            source => match view::series_pattern(source) {
                Some(pattern) => self.reduced(pattern, &field.reduce),
                None => None,
            },
        };
        let Some((raw, key)) = found else {
            return out;
        };
        out.present = true;
        out.key = key;
        match raw {
            Raw::Number(value) => {
                out.value = value;
                out.text = format::format(value, &field.format);
            }
            Raw::Text(text) => {
                let number = text.trim().parse::<f64>().ok();
                out.value = number.unwrap_or(f64::NAN);
                out.text = match number {
                    Some(n) if !field.format.is_empty() => format::format(n, &field.format),
                    _ => text,
                };
            }
        }
        out
    }

    /// A flag by name; `batch-size` and `batch_size` name the same flag here.
    fn flag(&self, name: &str) -> Option<Raw> {
        let flags = self.data.flags;
        let find = |n: &str| flags.iter().find(|(k, _)| k == n).map(|(_, v)| Raw::Text(v.clone()));
        find(name)
            .or_else(|| find(&name.replace('-', "_")))
            .or_else(|| find(&name.replace('_', "-")))
    }

    fn attr(&mut self, name: &str) -> Option<Raw> {
        let run = self.data.run;
        let from_record = match name {
            "id" => Some(run.id.clone()),
            "model" => Some(run.model.clone()),
            "op" => Some(run.op.clone()),
            "status" => Some(run.status.as_str().to_string()),
            "label" => Some(run.label.clone()),
            "exit_status" => run.exit_status.map(|c| c.to_string()),
            _ => None,
        };
        if let Some(value) = from_record {
            return Some(Raw::Text(value));
        }
        if self.attrs.is_none() {
            let read = match self.data.attrs {
                Some(attrs) => attrs.to_vec(),
                None => self.conn().and_then(|c| c.attrs().ok()).unwrap_or_default(),
            };
            self.attrs = Some(read);
        }
        self.attrs
            .as_ref()?
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| Raw::Text(v.clone()))
    }

    /// The first key (in sorted order) that the pattern matches whole, reduced.
    fn reduced(&mut self, pattern: &str, reduce_name: &str) -> Option<(Raw, String)> {
        let regex = self
            .patterns
            .entry(pattern.to_string())
            .or_insert_with(|| view::key_regex(pattern).ok())
            .clone()?;
        let summary = {
            let mut known: Vec<&SeriesSummary> =
                self.data.summaries.iter().filter(|s| regex.is_match(&s.key)).collect();
            known.sort_by(|a, b| a.key.cmp(&b.key));
            known.first().map(|s| (*s).clone())
        };
        let key = match &summary {
            Some(s) => s.key.clone(),
            None => self.keys()?.iter().find(|k| regex.is_match(k))?.clone(),
        };
        if let Some(s) = &summary {
            let quick = match reduce_name {
                "" | "last" => Some(s.last),
                "steps0" => s.last_step.map(|step| step as f64),
                "min" if !s.min.is_nan() => Some(s.min),
                "max" if !s.max.is_nan() => Some(s.max),
                _ => None,
            };
            if let Some(value) = quick {
                return Some((Raw::Number(value), key));
            }
        }
        // A field reads at most what one GetSeries answer may hold.
        let samples = self
            .conn()?
            .read_samples(&key, Axis::Step, Default::default(), MAX_REDUCED)
            .ok()
            .flatten()?;
        let samples: Vec<reduce::Sample> = samples
            .iter()
            .map(|s| reduce::Sample {
                step: s.step,
                time_ms: s.time,
                value: s.value,
            })
            .collect();
        reduce::reduce(reduce_name, &samples).map(|v| (Raw::Number(v), key))
    }

    fn keys(&mut self) -> Option<&Vec<String>> {
        if self.keys.is_none() {
            let keys = self.conn().and_then(|c| c.keys().ok()).unwrap_or_default();
            self.keys = Some(keys);
        }
        self.keys.as_ref()
    }
}

enum Raw {
    Number(f64),
    Text(String),
}
