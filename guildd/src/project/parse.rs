//! From the file's sections (`ini`) to a [`Project`]: which sections and keys exist,
//! what their values must be, and which flags belong to which model.
//!
//! Errors are reported in file order: the first problem in the file wins, whether it is
//! a syntax error or a key or value that does not belong.

use std::path::Path;

use super::flags::{FLAG_NAME_RULE, is_valid_flag_name};
use super::ini::{self, Attr, Section};
use super::view::{self, ViewSections};
use super::{
    DEFAULT_RUNROOT, GuildFileError, MAX_FILE_BYTES, Model, OPERATIONS, Op, Profile, Project, RUNTIMES, TargetKind,
};

const SECTION_KINDS: &str = r#"[project], [model "NAME"], [resource "NAME"], [flags], [flags "NAME"], [view], [field "NAME"], [train-field "NAME"], [compare-field "NAME"], [series "NAME"], [template "NAME"]"#;
const PROJECT_KEYS: [&str; 7] = [
    "name",
    "description",
    "runroot",
    "stats_interval",
    "sources",
    "tags",
    "runtime",
];
const OP_LIST: &str = "prepare, train, evaluate, serve";
const REQUIRES_LIST: &str = "prepare_requires, train_requires, evaluate_requires, serve_requires";
const REQUIRES_SUFFIX: &str = "_requires";
/// Sections of the original's last design that shape its own pages; read and let be.
const QUIET_KINDS: [&str; 5] = ["train-view", "evaluate-view", "compare-view", "component", "var"];

/// Reads and parses the `Guild` file at `path`; errors are labelled with the path as
/// given. A file over [`MAX_FILE_BYTES`] is refused before it is read whole.
pub fn load(path: &Path) -> Result<Project, GuildFileError> {
    let label = path.display().to_string();
    let read_error = |reason: String| GuildFileError::Read {
        path: label.clone(),
        reason,
    };
    let size = std::fs::metadata(path).map_err(|e| read_error(e.to_string()))?.len();
    if size > MAX_FILE_BYTES as u64 {
        return Err(too_large(&label, size));
    }
    let bytes = std::fs::read(path).map_err(|e| read_error(e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        read_error(format!(
            "not valid UTF-8 (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })?;
    parse(&text, &label)
}

fn too_large(label: &str, size: u64) -> GuildFileError {
    GuildFileError::File {
        label: label.to_string(),
        message: format!("the file is {size} bytes; a Guild file may be at most {MAX_FILE_BYTES} bytes (1 MiB)"),
    }
}

/// Parses the text of a `Guild` file. `label` names the file in errors (usually
/// `"Guild"` or a path).
pub fn parse(text: &str, label: &str) -> Result<Project, GuildFileError> {
    if text.len() > MAX_FILE_BYTES {
        return Err(too_large(label, text.len() as u64));
    }
    let line_error = |line: usize, message: String| GuildFileError::Line {
        label: label.to_string(),
        line,
        message,
    };
    let (sections, syntax) = ini::read(text, view::builtins());
    // The first problem in the file wins: a section's problem above a syntax error is
    // reported before it.
    let mut problems = Checks::default();
    for section in &sections {
        check_section(section, &mut problems);
    }
    let first = [problems.first.take(), syntax]
        .into_iter()
        .flatten()
        .min_by_key(|(line, _)| *line);
    if let Some((line, message)) = first {
        return Err(line_error(line, message));
    }
    build(sections, label)
}

/// The first problem found, by line.
#[derive(Default)]
struct Checks {
    first: Option<(usize, String)>,
}

impl Checks {
    fn add(&mut self, line: usize, message: String) {
        if self.first.as_ref().is_none_or(|(l, _)| line < *l) {
            self.first = Some((line, message));
        }
    }
}

/// What a section's header says it is.
fn section_title(section: &Section) -> String {
    match &section.name {
        Some(name) => format!("[{} {name:?}]", section.kind),
        None => format!("[{}]", section.kind),
    }
}

fn check_section(section: &Section, checks: &mut Checks) {
    let title = section_title(section);
    match (section.kind.as_str(), &section.name) {
        ("project", None) => {
            for attr in &section.attrs {
                if let Err(m) = check_project_attr(attr) {
                    checks.add(attr.line, m);
                }
            }
        }
        ("project", Some(name)) => checks.add(
            section.line,
            format!("[project] does not take a name (got [project {name:?}]); use [project]"),
        ),
        ("model" | "resource", name) => {
            if let Some(name) = name
                && let Err(m) = check_target_name(&section.kind, name)
            {
                checks.add(section.line, m);
            }
            if section.kind == "resource" && name.is_none() {
                checks.add(
                    section.line,
                    "[resource] needs a name, like [resource \"NAME\"]".to_string(),
                );
            }
            check_target(section, checks);
        }
        ("flags", name) => {
            if let Some(name) = name
                && let Err(m) = check_target_name("flags", name)
            {
                checks.add(section.line, m);
            }
            for attr in &section.attrs {
                if !is_valid_flag_name(&attr.key) {
                    checks.add(
                        attr.line,
                        format!("invalid flag name {:?} in {title} ({FLAG_NAME_RULE})", attr.key),
                    );
                }
            }
        }
        (kind, _) if view::is_view_kind(kind) => {
            for (line, message) in view::check_section(section) {
                checks.add(line, message);
            }
        }
        (kind, _) if QUIET_KINDS.contains(&kind) => {}
        (kind, _) => checks.add(
            section.line,
            format!("unknown section kind {kind:?} (expected one of {SECTION_KINDS})"),
        ),
    }
}

/// Names that become part of run ids and flag profile names.
fn check_target_name(kind: &str, name: &str) -> Result<(), String> {
    if name.chars().any(|c| c.is_whitespace() || c.is_control() || c == '/') {
        return Err(format!(
            "invalid name {name:?} in [{kind}] header (names cannot contain whitespace or \"/\")"
        ));
    }
    Ok(())
}

fn check_project_attr(attr: &Attr) -> Result<(), String> {
    let (key, value) = (attr.key.as_str(), attr.value.as_str());
    match key {
        "stats_interval" if parse_interval(value).is_none() => Err(format!(
            "invalid stats_interval {value:?} in [project] (expected a number of seconds, 0 for no stats)"
        )),
        "runroot" if value.is_empty() => Err(format!(
            "empty runroot in [project] (expected a folder for runs; leave it out to use {DEFAULT_RUNROOT:?})"
        )),
        "runtime" => check_runtime(value, "[project]"),
        "sources" => view::check_globs(value).map_err(|m| format!("sources in [project]: {m}")),
        _ if PROJECT_KEYS.contains(&key) => Ok(()),
        _ => Err(format!(
            "unknown key {key:?} in [project] (expected one of {})",
            PROJECT_KEYS.join(", ")
        )),
    }
}

fn check_runtime(value: &str, place: &str) -> Result<(), String> {
    if RUNTIMES.contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "unknown runtime {value:?} in {place} (known runtimes: {})",
            RUNTIMES.join(", ")
        ))
    }
}

fn target_label(section: &Section) -> String {
    match (&section.name, section.kind.as_str()) {
        (Some(name), "resource") => format!("resource {name:?}"),
        (Some(name), _) => format!("model {name:?}"),
        (None, _) => "[model]".to_string(),
    }
}

fn check_target(section: &Section, checks: &mut Checks) {
    let what = target_label(section);
    let resource = section.kind == "resource";
    for attr in &section.attrs {
        let (key, value) = (attr.key.as_str(), attr.value.as_str());
        let problem = match key {
            "description" => None,
            "runtime" => check_runtime(value, &section_title(section)).err(),
            "sources" => view::check_globs(value)
                .err()
                .map(|m| format!("sources in {what}: {m}")),
            "sbatch" => super::command::split_words(value)
                .err()
                .map(|m| format!("sbatch in {what}: {m}")),
            "gpus" if !resource => value
                .trim()
                .parse::<u32>()
                .err()
                .map(|_| format!("invalid gpus {value:?} in {what} (expected a whole number of GPUs, 0 or more)")),
            "prepare" | "prepare_requires" if resource => None,
            _ if resource => Some(format!(
                "unknown key {key:?} in {what} (a resource has description, runtime, sources, \
                 sbatch, prepare and prepare_requires)"
            )),
            _ if OPERATIONS.contains(&key) => None,
            _ => check_model_key(&what, key).err(),
        };
        if let Some(message) = problem {
            checks.add(attr.line, message);
            continue;
        }
        if OPERATIONS.contains(&key) && value.is_empty() {
            checks.add(attr.line, format!("empty command for operation {key:?} in {what}"));
        }
        if let Some(op) = key.strip_suffix(REQUIRES_SUFFIX)
            && section.get(op).is_none()
        {
            checks.add(
                attr.line,
                format!("{key:?} is set but {what} defines no {op:?} operation"),
            );
        }
    }
}

fn check_model_key(what: &str, key: &str) -> Result<(), String> {
    if let Some(op) = key.strip_suffix(REQUIRES_SUFFIX) {
        if OPERATIONS.contains(&op) {
            return Ok(());
        }
        return Err(format!(
            "unknown key {key:?} in {what}: {op:?} is not an operation (expected one of {REQUIRES_LIST})"
        ));
    }
    if looks_like_op(key) {
        Err(format!(
            "unknown operation {key:?} in {what} (expected one of {OP_LIST})"
        ))
    } else {
        Err(format!(
            "unknown key {key:?} in {what} \
             (expected one of description, runtime, sources, gpus, sbatch, {OP_LIST}, {REQUIRES_LIST})"
        ))
    }
}

fn build(sections: Vec<Section>, label: &str) -> Result<Project, GuildFileError> {
    let mut project = Project {
        runroot: DEFAULT_RUNROOT.to_string(),
        ..Project::default()
    };
    let mut project_runtime: Option<String> = None;
    let mut project_sources: Vec<String> = Vec::new();
    let mut named_flags = Vec::new();
    let mut targets: Vec<&Section> = Vec::new();
    let mut view_sections = Vec::new();
    for section in &sections {
        match section.kind.as_str() {
            "project" => {
                for attr in &section.attrs {
                    let value = attr.value.clone();
                    match attr.key.as_str() {
                        "name" => project.name = value,
                        "description" => project.description = value,
                        "runroot" => project.runroot = value,
                        "stats_interval" => project.stats_interval = parse_interval(&value),
                        "tags" => project.tags = words(&value),
                        "sources" => project_sources = words(&value),
                        "runtime" => project_runtime = Some(value),
                        _ => {}
                    }
                }
            }
            "flags" => match &section.name {
                None => project.flags = pairs(&section.attrs),
                Some(name) => named_flags.push((name.clone(), section.line, pairs(&section.attrs))),
            },
            "model" | "resource" => targets.push(section),
            kind if view::is_view_kind(kind) => view_sections.push(section.clone()),
            _ => {}
        }
    }
    for section in targets {
        let target = build_target(section, project_runtime.as_deref(), &project_sources);
        if let Some(other) = project
            .models
            .iter()
            .chain(&project.resources)
            .find(|m| m.name == target.name)
        {
            let message = if target.named {
                format!(
                    "{} {:?} has the name of the {} defined on line {}",
                    section.kind,
                    target.name,
                    kind_word(other.kind),
                    other.line
                )
            } else {
                format!(
                    "[model] without a name reads as model {:?} (its train op), which is also defined on line {}; name it",
                    target.name, other.line
                )
            };
            return Err(GuildFileError::Line {
                label: label.to_string(),
                line: section.line,
                message,
            });
        }
        match target.kind {
            TargetKind::Model => project.models.push(target),
            TargetKind::Resource => project.resources.push(target),
        }
    }
    if project.models.is_empty() {
        return Err(GuildFileError::File {
            label: label.to_string(),
            message: "no [model \"NAME\"] section; define at least one model".to_string(),
        });
    }
    for (name, line, flags) in named_flags {
        match project
            .models
            .iter_mut()
            .chain(project.resources.iter_mut())
            .find(|m| m.named && m.name == name)
        {
            Some(target) => target.flags = flags,
            None => project.profiles.push(Profile { name, flags, line }),
        }
    }
    project.view = ViewSections::new(view_sections);
    Ok(project)
}

fn kind_word(kind: TargetKind) -> &'static str {
    match kind {
        TargetKind::Model => "model",
        TargetKind::Resource => "resource",
    }
}

fn pairs(attrs: &[Attr]) -> Vec<(String, String)> {
    attrs.iter().map(|a| (a.key.clone(), a.value.clone())).collect()
}

/// Whitespace-separated words.
pub(super) fn words(value: &str) -> Vec<String> {
    value.split_whitespace().map(str::to_string).collect()
}

fn build_target(section: &Section, project_runtime: Option<&str>, project_sources: &[String]) -> Model {
    let ops: Vec<Op> = OPERATIONS
        .iter()
        .filter_map(|&op| {
            let attr = section.get(op)?;
            let requires = section
                .get(&format!("{op}{REQUIRES_SUFFIX}"))
                .map(|a| split_requires(&a.value))
                .unwrap_or_default();
            Some(Op {
                name: op.to_string(),
                command: attr.value.clone(),
                requires,
                line: attr.line,
            })
        })
        .collect();
    let (name, named) = match &section.name {
        Some(name) => (name.clone(), true),
        None => (unnamed_model_name(&ops), false),
    };
    let sources = match section.value("sources") {
        Some(value) => words(value),
        None => project_sources.to_vec(),
    };
    Model {
        name,
        kind: if section.kind == "resource" {
            TargetKind::Resource
        } else {
            TargetKind::Model
        },
        named,
        description: section.value("description").unwrap_or_default().to_string(),
        line: section.line,
        runtime: section.value("runtime").or(project_runtime).map(str::to_string),
        sources,
        // Checked above: a value that does not split is an error there.
        sbatch: section
            .value("sbatch")
            .and_then(|v| super::command::split_words(v).ok())
            .unwrap_or_default(),
        ops,
        flags: Vec::new(),
        gpus: section.value("gpus").and_then(|v| v.trim().parse().ok()),
    }
}

/// A `[model]` without a name is known by its train op's module (the original named its
/// runs so): `train = mnist_softmax --x` is model `mnist_softmax`.
fn unnamed_model_name(ops: &[Op]) -> String {
    let op = ops.iter().find(|o| o.name == "train").or_else(|| ops.first());
    let word = op
        .and_then(|o| o.command.trim_start_matches(['!', ' ']).split_whitespace().next())
        .unwrap_or("model");
    let base = word.rsplit('/').next().unwrap_or(word);
    let stem = base.strip_suffix(".py").unwrap_or(base);
    let name: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() { "model".to_string() } else { name }
}

fn split_requires(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

fn parse_interval(value: &str) -> Option<f64> {
    value.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0)
}

/// Whether a key is most likely a misspelled operation: at most two edits (a swap of
/// neighbours counts as one) from one, ignoring case.
fn looks_like_op(key: &str) -> bool {
    let key = key.to_lowercase();
    OPERATIONS.iter().any(|op| edit_distance(&key, op) <= 2)
}

/// Optimal string alignment distance between two strings, by chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Cell `j` of a row; out of range never happens, but reads as "far".
    let at = |row: &[usize], j: usize| row.get(j).copied().unwrap_or(usize::MAX / 2);
    // Rows for the previous two prefixes of `a`.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, &ca) in a.iter().enumerate() {
        let mut cur = Vec::with_capacity(b.len() + 1);
        cur.push(i + 1);
        for (j, &cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            let mut d = (at(&prev, j + 1) + 1).min(at(&cur, j) + 1).min(at(&prev, j) + cost);
            let swapped = i > 0 && j > 0 && a.get(i - 1) == Some(&cb) && b.get(j - 1) == Some(&ca);
            if swapped {
                d = d.min(at(&before, j - 1) + 1);
            }
            cur.push(d);
        }
        before = std::mem::replace(&mut prev, cur);
    }
    prev.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("train", "train"), 0);
        assert_eq!(edit_distance("trian", "train"), 1);
        assert_eq!(edit_distance("tran", "train"), 1);
        assert_eq!(edit_distance("evalute", "evaluate"), 1);
        assert_eq!(edit_distance("", "serve"), 5);
        assert_eq!(edit_distance("serve", ""), 5);
        assert_eq!(edit_distance("test", "serve"), 4);
        assert!(looks_like_op("TRAIN"));
        assert!(looks_like_op("prepar"));
        assert!(!looks_like_op("test"));
        assert!(!looks_like_op("description"));
    }

    #[test]
    fn unnamed_models_take_their_train_module() {
        let op = |name: &str, command: &str| Op {
            name: name.into(),
            command: command.into(),
            requires: vec![],
            line: 1,
        };
        assert_eq!(
            unnamed_model_name(&[op("train", "mnist_softmax --train")]),
            "mnist_softmax"
        );
        assert_eq!(unnamed_model_name(&[op("train", "!./bin/train.sh x")]), "train.sh");
        assert_eq!(unnamed_model_name(&[op("prepare", "src/prep.py")]), "prep");
        assert_eq!(unnamed_model_name(&[]), "model");
    }
}
