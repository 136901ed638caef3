//! The dashboard's view of a run as its Guild file describes it: summary cards (fields),
//! rows of charts (series) and compare columns, as the original Guild showed them.
//!
//! A model's view comes from `[view "MODEL"]`, else `[view]`: `fields` (cards, in
//! order), `series`, `series-a`, `series-b`, ... (one row of charts each) and `compare`
//! (columns; `fields` when absent). Each name is a field or series: the built-in one of
//! that name (`builtin.guild`, with the model's runtime's sources), changed attribute by
//! attribute by the file's `[field "NAME"]` or `[series "NAME"]` (and, for cards,
//! `[train-field "NAME"]`; for columns, `[compare-field "NAME"]`). A file of the
//! original's last design has no `[view]` but its sections: then every `[train-field]`
//! (else `[field]`) is a card, every `[series]` a chart, every `[compare-field]` a column.
//! A file with neither has no view: the dashboard lays the run out itself.

pub mod format;
pub mod reduce;

use std::collections::HashMap;
use std::sync::OnceLock;

use super::ini::{self, Earlier, Section};
use super::{Model, Project};

/// Section kinds that make up views.
const VIEW_KINDS: [&str; 6] = ["view", "field", "train-field", "compare-field", "series", "template"];
const FIELD_KEYS: [&str; 12] = [
    "source",
    "sources",
    "reduce",
    "format",
    "label",
    "caption",
    "color",
    "icon",
    "attribute",
    "template",
    "fieldref",
    "description",
];
const SERIES_KEYS: [&str; 7] = [
    "source",
    "title",
    "label",
    "format",
    "template",
    "description",
    "colclass",
];
/// The charts the original's last design added below a file's own series.
const EXTRA_SERIES_TEMPLATES: [&str; 4] = [
    "op-cpu-percent-series",
    "op-memory-series",
    "gpu-percent-series",
    "gpu-memory-series",
];

pub fn is_view_kind(kind: &str) -> bool {
    VIEW_KINDS.contains(&kind)
}

/// A summary value: a reduced series, a flag or an attribute.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Field {
    pub name: String,
    pub label: String,
    /// `series/REGEX`, `flags` or `attrs`; empty when nothing defines it.
    pub source: String,
    /// The flag or attribute, for `flags` and `attrs` sources.
    pub attribute: String,
    pub reduce: String,
    pub format: String,
    pub color: String,
    pub icon: String,
}

/// One chart: a line for each series key its source matches.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    pub name: String,
    pub title: String,
    /// The y axis's label.
    pub label: String,
    pub format: String,
    /// A regular expression that a whole series key must match (`series/` taken off);
    /// empty matches nothing.
    pub source: String,
}

/// A row of charts (`series`, `series-a`, ...).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Row {
    pub name: String,
    pub series: Vec<Series>,
}

/// A model's resolved view.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct View {
    /// Where it comes from: `[view "intro"]`, `[view]`, or `sections` (fields and series
    /// sections without a view section).
    pub origin: String,
    pub fields: Vec<Field>,
    pub rows: Vec<Row>,
    pub compare: Vec<Field>,
}

/// The view-making sections of a file, in file order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ViewSections {
    sections: Vec<Section>,
}

impl ViewSections {
    pub(super) fn new(sections: Vec<Section>) -> ViewSections {
        ViewSections { sections }
    }

    fn find(&self, kind: &str, name: Option<&str>) -> Option<&Section> {
        self.sections
            .iter()
            .find(|s| s.kind == kind && s.name.as_deref() == name)
    }

    fn all(&self, kind: &str) -> impl Iterator<Item = &Section> {
        self.sections.iter().filter(move |s| s.kind == kind)
    }
}

/// Which page a field is shown on: cards read `[train-field]`, columns `[compare-field]`.
#[derive(Clone, Copy, PartialEq)]
enum Page {
    Train,
    Compare,
}

impl Project {
    /// The view of a model's runs, or None when the file describes none.
    pub fn view(&self, model: &Model) -> Option<View> {
        // Views are for models; a resource only prepares.
        if model.kind == super::TargetKind::Resource {
            return None;
        }
        let sections = &self.view;
        let runtime = model.runtime.as_deref();
        let view_section = model
            .named
            .then(|| sections.find("view", Some(&model.name)))
            .flatten()
            .or_else(|| sections.find("view", None));
        let resolver = Resolver { sections, runtime };
        if let Some(view) = view_section {
            let names = |key: &str| view.value(key).map(super::parse::words);
            let fields = names("fields").unwrap_or_default();
            let rows = view
                .attrs
                .iter()
                .filter(|a| a.key == "series" || a.key.starts_with("series-"))
                .map(|a| Row {
                    name: a.key.clone(),
                    series: super::parse::words(&a.value)
                        .iter()
                        .map(|n| resolver.series(n))
                        .collect(),
                })
                .collect();
            let compare = names("compare")
                .or_else(|| names("compare-fields"))
                .unwrap_or_else(|| fields.clone());
            return Some(View {
                origin: match &view.name {
                    Some(name) => format!("[view {name:?}]"),
                    None => "[view]".to_string(),
                },
                fields: fields.iter().map(|n| resolver.field(n, Page::Train)).collect(),
                rows,
                compare: compare.iter().map(|n| resolver.field(n, Page::Compare)).collect(),
            });
        }
        // The original's last design: the sections themselves are the view.
        let named = |kind: &str| -> Vec<String> { sections.all(kind).filter_map(|s| s.name.clone()).collect() };
        let mut cards = named("train-field");
        if cards.is_empty() {
            cards = named("field");
        }
        let charts = named("series");
        let mut columns = named("compare-field");
        if cards.is_empty() && charts.is_empty() && columns.is_empty() {
            return None;
        }
        if columns.is_empty() {
            columns = cards.clone();
        }
        let mut series: Vec<Series> = charts.iter().map(|n| resolver.series(n)).collect();
        series.extend(EXTRA_SERIES_TEMPLATES.iter().map(|t| resolver.template_series(t)));
        Some(View {
            origin: "sections".to_string(),
            fields: cards.iter().map(|n| resolver.field(n, Page::Train)).collect(),
            rows: vec![Row {
                name: "series".to_string(),
                series,
            }],
            compare: columns.iter().map(|n| resolver.field(n, Page::Compare)).collect(),
        })
    }
}

/// Attributes by key, later layers over earlier ones.
type Attrs = HashMap<String, String>;

struct Resolver<'a> {
    sections: &'a ViewSections,
    runtime: Option<&'a str>,
}

impl Resolver<'_> {
    /// The built-in section, the runtime's changes to it, then the file's section.
    fn layered(&self, kinds: &[&str], name: &str) -> Attrs {
        let mut attrs = Attrs::new();
        let builtin_kind = if kinds.contains(&"series") { "series" } else { "field" };
        let layer = |attrs: &mut Attrs, section: Option<&Section>| {
            for a in section.into_iter().flat_map(|s| &s.attrs) {
                attrs.insert(a.key.clone(), a.value.clone());
            }
        };
        layer(&mut attrs, builtins().section(builtin_kind, name));
        if self.runtime == Some("tflearn") {
            layer(&mut attrs, tflearn().section(builtin_kind, name));
        }
        for kind in kinds {
            layer(&mut attrs, self.sections.find(kind, Some(name)));
        }
        attrs
    }

    /// `template = NAME` (the original's era before `@attrs`): the template's attributes
    /// fill what the section leaves unset.
    fn fill_from_template(&self, attrs: &mut Attrs) {
        let Some(template) = attrs.get("template").cloned() else {
            return;
        };
        for section in [
            builtins().section("template", &template),
            self.sections.find("template", Some(&template)),
        ]
        .into_iter()
        .flatten()
        .rev()
        {
            for a in &section.attrs {
                attrs.entry(a.key.clone()).or_insert_with(|| a.value.clone());
            }
        }
    }

    fn field(&self, name: &str, page: Page) -> Field {
        let kinds: &[&str] = match page {
            Page::Train => &["field", "train-field"],
            Page::Compare => &["field", "compare-field"],
        };
        let mut attrs = self.layered(kinds, name);
        // `fieldref = NAME` in a compare field: the named field fills what it leaves unset.
        if let Some(reference) = attrs.get("fieldref").cloned()
            && reference != name
        {
            let referenced = self.layered(&["field", "train-field"], &reference);
            for (key, value) in referenced {
                attrs.entry(key).or_insert(value);
            }
        }
        self.fill_from_template(&mut attrs);
        let get = |key: &str| attrs.get(key).cloned().unwrap_or_default();
        let mut field = Field {
            name: name.to_string(),
            label: attrs
                .get("label")
                .or_else(|| attrs.get("caption"))
                .cloned()
                .unwrap_or_default(),
            source: get("source"),
            attribute: get("attribute"),
            reduce: get("reduce"),
            format: get("format"),
            color: get("color"),
            icon: get("icon"),
        };
        // `NAME-flag`, when nothing defines it, is the flag NAME as a column.
        if field.source.is_empty()
            && let Some(flag) = name.strip_suffix("-flag")
            && !flag.is_empty()
        {
            field.source = "flags".to_string();
            field.attribute = flag.to_string();
        }
        if field.label.is_empty() {
            field.label = name.to_string();
        }
        field
    }

    fn series(&self, name: &str) -> Series {
        let mut attrs = self.layered(&["series"], name);
        self.fill_from_template(&mut attrs);
        series_from(name, &attrs)
    }

    fn template_series(&self, template: &str) -> Series {
        let mut attrs = Attrs::new();
        for section in [
            builtins().section("template", template),
            self.sections.find("template", Some(template)),
        ]
        .into_iter()
        .flatten()
        {
            for a in &section.attrs {
                attrs.insert(a.key.clone(), a.value.clone());
            }
        }
        let name = template.strip_suffix("-series").unwrap_or(template);
        series_from(name, &attrs)
    }
}

fn series_from(name: &str, attrs: &Attrs) -> Series {
    let get = |key: &str| attrs.get(key).cloned().unwrap_or_default();
    let title = get("title");
    Series {
        name: name.to_string(),
        title: if title.is_empty() { name.to_string() } else { title },
        label: get("label"),
        format: get("format"),
        source: series_pattern(&get("source")).unwrap_or_default().to_string(),
    }
}

/// The key pattern of a `series/PATTERN` source.
pub fn series_pattern(source: &str) -> Option<&str> {
    source.strip_prefix("series/")
}

/// A series pattern as a regular expression over whole keys.
pub fn key_regex(pattern: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|e| match e {
        regex::Error::Syntax(text) => {
            let last = text.lines().last().unwrap_or("invalid").trim();
            last.strip_prefix("error: ").unwrap_or(last).to_string()
        }
        regex::Error::CompiledTooBig(_) => "the pattern is too large".to_string(),
        _ => "invalid pattern".to_string(),
    })
}

/// Problems with a view-making section's keys and values, by line.
pub(super) fn check_section(section: &Section) -> Vec<(usize, String)> {
    let mut problems = Vec::new();
    let title = match &section.name {
        Some(name) => format!("[{} {name:?}]", section.kind),
        None => format!("[{}]", section.kind),
    };
    match section.kind.as_str() {
        "view" => {
            for a in &section.attrs {
                let known = matches!(a.key.as_str(), "fields" | "compare" | "compare-fields")
                    || a.key == "series"
                    || a.key.starts_with("series-");
                if !known {
                    problems.push((
                        a.line,
                        format!(
                            "unknown key {:?} in {title} (expected fields, series, series-a, series-b, ..., compare)",
                            a.key
                        ),
                    ));
                }
            }
        }
        "field" | "train-field" | "compare-field" => {
            if section.name.is_none() {
                problems.push((
                    section.line,
                    format!("{title} needs a name, like [{} \"NAME\"]", section.kind),
                ));
            }
            for a in &section.attrs {
                if !FIELD_KEYS.contains(&a.key.as_str()) {
                    problems.push((
                        a.line,
                        format!(
                            "unknown key {:?} in {title} (expected one of {})",
                            a.key,
                            FIELD_KEYS.join(", ")
                        ),
                    ));
                    continue;
                }
                let problem = match a.key.as_str() {
                    "reduce" if !a.value.is_empty() && !reduce::NAMES.contains(&a.value.as_str()) => Some(format!(
                        "unknown reduce {:?} in {title} (expected one of {})",
                        a.value,
                        reduce::NAMES.join(", ")
                    )),
                    "source" => check_field_source(&a.value).err().map(|m| format!("{m} in {title}")),
                    _ => None,
                };
                if let Some(message) = problem {
                    problems.push((a.line, message));
                }
            }
        }
        "series" => {
            if section.name.is_none() {
                problems.push((section.line, format!("{title} needs a name, like [series \"NAME\"]")));
            }
            for a in &section.attrs {
                if !SERIES_KEYS.contains(&a.key.as_str()) {
                    problems.push((
                        a.line,
                        format!(
                            "unknown key {:?} in {title} (expected one of {})",
                            a.key,
                            SERIES_KEYS.join(", ")
                        ),
                    ));
                } else if a.key == "source"
                    && let Err(m) = check_series_source(&a.value)
                {
                    problems.push((a.line, format!("{m} in {title}")));
                }
            }
        }
        // A template is a bag of attributes for others to copy.
        _ => {}
    }
    problems
}

fn check_series_source(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    let Some(pattern) = series_pattern(value) else {
        return Err(format!(
            "source {value:?} is not a series (expected series/PATTERN, like series/tf/[^/]+/loss)"
        ));
    };
    key_regex(pattern)
        .map(|_| ())
        .map_err(|e| format!("invalid pattern in source {value:?}: {e}"))
}

fn check_field_source(value: &str) -> Result<(), String> {
    match value {
        "" | "flags" | "attrs" => Ok(()),
        _ if value.starts_with("series/") => check_series_source(value),
        _ => Err(format!(
            "unknown source {value:?} (expected series/KEY, flags or attrs)"
        )),
    }
}

/// Checks a `sources` value: whitespace-separated glob patterns.
pub fn check_globs(value: &str) -> Result<(), String> {
    for word in value.split_whitespace() {
        globset::Glob::new(word).map_err(|e| format!("invalid pattern {word:?}: {}", e.kind()))?;
    }
    Ok(())
}

/// Built-in sections, by kind and name.
pub struct Builtins {
    by_key: HashMap<(String, String), Section>,
}

impl Builtins {
    fn parse(text: &str, earlier: &dyn Earlier) -> Builtins {
        let (sections, error) = ini::read(text, earlier);
        debug_assert!(error.is_none(), "built-in view definitions: {error:?}");
        Builtins {
            by_key: sections
                .into_iter()
                .filter_map(|s| Some(((s.kind.clone(), s.name.clone()?), s)))
                .collect(),
        }
    }

    pub fn section(&self, kind: &str, name: &str) -> Option<&Section> {
        self.by_key.get(&(kind.to_string(), name.to_string()))
    }
}

impl Earlier for Builtins {
    /// `@attrs` may copy a built-in template, field or series; train and compare fields
    /// copy the built-in field of that name.
    fn earlier(&self, kind: &str, name: &str) -> Option<&Section> {
        let kind = match kind {
            "train-field" | "compare-field" => "field",
            other => other,
        };
        self.section(kind, name)
    }
}

/// The built-in fields, series and templates.
pub fn builtins() -> &'static Builtins {
    static BUILTINS: OnceLock<Builtins> = OnceLock::new();
    BUILTINS.get_or_init(|| Builtins::parse(include_str!("builtin.guild"), &ini::NoEarlier))
}

/// What the tflearn runtime changes in them.
fn tflearn() -> &'static Builtins {
    static TFLEARN: OnceLock<Builtins> = OnceLock::new();
    TFLEARN.get_or_init(|| Builtins::parse(include_str!("tflearn.guild"), &ini::NoEarlier))
}

#[cfg(test)]
mod tests;
