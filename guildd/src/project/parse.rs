//! The `Guild` file parser.
//!
//! One pass over the lines. Header and key lines are checked as they are
//! read; a value is checked when its entry is complete (after any
//! continuation lines), and a model when its section ends, so the error
//! reported is the first one in the file.

use std::fmt;
use std::path::Path;

use super::flags::{FLAG_NAME_RULE, is_valid_flag_name};
use super::{DEFAULT_RUNROOT, GuildFileError, Model, OPERATIONS, Op, Profile, Project};

const SECTION_KINDS: &str = r#"[project], [model "NAME"], [flags], [flags "NAME"]"#;
const PROJECT_KEYS: &str = "name, description, runroot, stats_interval";
const OP_LIST: &str = "prepare, train, evaluate, serve";
const REQUIRES_LIST: &str = "prepare_requires, train_requires, evaluate_requires, serve_requires";
const REQUIRES_SUFFIX: &str = "_requires";

/// Reads and parses the `Guild` file at `path`; errors are labelled with
/// the path as given.
pub fn load(path: &Path) -> Result<Project, GuildFileError> {
    let label = path.display().to_string();
    let read_error = |reason: String| GuildFileError::Read {
        path: label.clone(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| read_error(e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        read_error(format!(
            "not valid UTF-8 (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })?;
    parse(&text, &label)
}

/// Parses the text of a `Guild` file. `label` names the file in errors
/// (usually `"Guild"` or a path).
pub fn parse(text: &str, label: &str) -> Result<Project, GuildFileError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut parser = Parser {
        label,
        sections: Vec::new(),
        open: None,
    };
    for (index, raw) in text.lines().enumerate() {
        parser.line(index + 1, raw)?;
    }
    parser.close_entry()?;
    parser.close_section()?;
    parser.build()
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Project,
    Flags,
    Model(String),
    NamedFlags(String),
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::Project => f.write_str("[project]"),
            Kind::Flags => f.write_str("[flags]"),
            Kind::Model(name) => write!(f, "[model {name:?}]"),
            Kind::NamedFlags(name) => write!(f, "[flags {name:?}]"),
        }
    }
}

#[derive(Debug)]
struct Entry {
    key: String,
    value: String,
    line: usize,
}

#[derive(Debug)]
struct Section {
    kind: Kind,
    line: usize,
    entries: Vec<Entry>,
}

struct Parser<'a> {
    label: &'a str,
    sections: Vec<Section>,
    /// The entry still open for continuation lines; it belongs to the
    /// last section.
    open: Option<Entry>,
}

impl Parser<'_> {
    fn error(&self, line: usize, message: impl Into<String>) -> GuildFileError {
        GuildFileError::Line {
            label: self.label.to_string(),
            line,
            message: message.into(),
        }
    }

    fn line(&mut self, number: usize, raw: &str) -> Result<(), GuildFileError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            // A blank line ends a value: no continuation after it.
            return self.close_entry();
        }
        if trimmed.starts_with('#') || trimmed.starts_with(';') {
            return Ok(());
        }
        let content = strip_inline_comment(raw).trim();
        if raw.starts_with(char::is_whitespace)
            && let Some(open) = self.open.as_mut()
        {
            if !open.value.is_empty() {
                open.value.push(' ');
            }
            open.value.push_str(content);
            return Ok(());
        }
        self.close_entry()?;
        if content.starts_with('[') {
            self.close_section()?;
            self.header(number, content)
        } else {
            self.key_line(number, content)
        }
    }

    fn header(&mut self, number: usize, content: &str) -> Result<(), GuildFileError> {
        let kind = parse_header(content).map_err(|m| self.error(number, m))?;
        if let Some(first) = self.sections.iter().find(|s| s.kind == kind) {
            return Err(self.error(
                number,
                format!("duplicate section {kind} (first defined on line {})", first.line),
            ));
        }
        self.sections.push(Section {
            kind,
            line: number,
            entries: Vec::new(),
        });
        Ok(())
    }

    fn key_line(&mut self, number: usize, content: &str) -> Result<(), GuildFileError> {
        let Some(section) = self.sections.last() else {
            return Err(self.error(
                number,
                format!("expected a section header like [model \"NAME\"] before {content:?}"),
            ));
        };
        let Some((key, value)) = content.split_once('=') else {
            return Err(self.error(number, format!("expected NAME = VALUE, got {content:?}")));
        };
        let (key, value) = (key.trim(), value.trim());
        if key.is_empty() {
            return Err(self.error(
                number,
                format!("missing name before \"=\" in {content:?} (expected NAME = VALUE)"),
            ));
        }
        check_key(&section.kind, key).map_err(|m| self.error(number, m))?;
        if let Some(first) = section.entries.iter().find(|e| e.key == key) {
            return Err(self.error(
                number,
                format!(
                    "duplicate key {key:?} in {} (first set on line {})",
                    section.kind, first.line
                ),
            ));
        }
        self.open = Some(Entry {
            key: key.to_string(),
            value: value.to_string(),
            line: number,
        });
        Ok(())
    }

    /// Checks the open entry's complete value and files it in its section.
    fn close_entry(&mut self) -> Result<(), GuildFileError> {
        let Some(entry) = self.open.take() else {
            return Ok(());
        };
        let Some(section) = self.sections.last_mut() else {
            return Ok(());
        };
        if let Err(message) = check_value(&section.kind, &entry) {
            return Err(self.error(entry.line, message));
        }
        section.entries.push(entry);
        Ok(())
    }

    /// Checks what needs a whole section: `<op>_requires` needs `<op>`.
    fn close_section(&mut self) -> Result<(), GuildFileError> {
        let Some(section) = self.sections.last() else {
            return Ok(());
        };
        let Kind::Model(model) = &section.kind else {
            return Ok(());
        };
        for entry in &section.entries {
            if let Some(op) = entry.key.strip_suffix(REQUIRES_SUFFIX)
                && !section.entries.iter().any(|e| e.key == op)
            {
                let message = format!("{:?} is set but model {model:?} defines no {op:?} operation", entry.key);
                return Err(self.error(entry.line, message));
            }
        }
        Ok(())
    }

    fn build(self) -> Result<Project, GuildFileError> {
        let mut project = Project {
            name: String::new(),
            description: String::new(),
            runroot: DEFAULT_RUNROOT.to_string(),
            stats_interval: None,
            models: Vec::new(),
            flags: Vec::new(),
            profiles: Vec::new(),
        };
        let mut named_flags = Vec::new();
        for section in self.sections {
            match section.kind {
                Kind::Project => {
                    for entry in section.entries {
                        match entry.key.as_str() {
                            "name" => project.name = entry.value,
                            "description" => project.description = entry.value,
                            "runroot" => project.runroot = entry.value,
                            "stats_interval" => {
                                project.stats_interval = parse_interval(&entry.value);
                            }
                            _ => {}
                        }
                    }
                }
                Kind::Flags => project.flags = pairs(section.entries),
                Kind::Model(name) => {
                    project.models.push(build_model(name, section.line, &section.entries));
                }
                Kind::NamedFlags(name) => named_flags.push((name, section.line, section.entries)),
            }
        }
        if project.models.is_empty() {
            return Err(GuildFileError::File {
                label: self.label.to_string(),
                message: "no [model \"NAME\"] section; define at least one model".to_string(),
            });
        }
        for (name, line, entries) in named_flags {
            match project.models.iter_mut().find(|m| m.name == name) {
                Some(model) => model.flags = pairs(entries),
                None => project.profiles.push(Profile {
                    name,
                    flags: pairs(entries),
                    line,
                }),
            }
        }
        Ok(project)
    }
}

fn pairs(entries: Vec<Entry>) -> Vec<(String, String)> {
    entries.into_iter().map(|e| (e.key, e.value)).collect()
}

fn build_model(name: String, line: usize, entries: &[Entry]) -> Model {
    let get = |key: &str| entries.iter().find(|e| e.key == key);
    let ops = OPERATIONS
        .iter()
        .filter_map(|&op| {
            let entry = get(op)?;
            let requires = get(&format!("{op}{REQUIRES_SUFFIX}"))
                .map(|e| split_requires(&e.value))
                .unwrap_or_default();
            Some(Op {
                name: op.to_string(),
                command: entry.value.clone(),
                requires,
                line: entry.line,
            })
        })
        .collect();
    Model {
        name,
        description: get("description").map(|e| e.value.clone()).unwrap_or_default(),
        line,
        ops,
        flags: Vec::new(),
    }
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

/// Cuts a `#` or `;` comment that follows whitespace (`a=b#c` keeps `b#c`).
fn strip_inline_comment(s: &str) -> &str {
    let mut after_space = false;
    for (i, c) in s.char_indices() {
        if after_space && (c == '#' || c == ';') {
            return s.get(..i).unwrap_or(s);
        }
        after_space = c.is_whitespace();
    }
    s
}

/// Parses a header line (comment removed, trimmed, starting with `[`).
fn parse_header(content: &str) -> Result<Kind, String> {
    let Some(inner) = content.strip_prefix('[').and_then(|s| s.strip_suffix(']')) else {
        let problem = if content.contains(']') {
            "unexpected text after \"]\""
        } else {
            "missing closing \"]\""
        };
        return Err(format!("malformed section header {content:?}: {problem}"));
    };
    let inner = inner.trim();
    let split = inner
        .find(|c: char| c.is_whitespace() || c == '"')
        .unwrap_or(inner.len());
    let (kind, rest) = inner.split_at_checked(split).unwrap_or((inner, ""));
    let rest = rest.trim();
    if kind.is_empty() {
        return Err(format!(
            "malformed section header {content:?} (expected one of {SECTION_KINDS})"
        ));
    }
    if !matches!(kind, "project" | "model" | "flags") {
        return Err(format!(
            "unknown section kind {kind:?} (expected one of {SECTION_KINDS})"
        ));
    }
    let name = if rest.is_empty() {
        None
    } else {
        Some(parse_section_name(kind, rest)?)
    };
    match (kind, name) {
        ("project", None) => Ok(Kind::Project),
        ("project", Some(name)) => Err(format!(
            "[project] does not take a name (got [project {name:?}]); use [project]"
        )),
        ("model", Some(name)) => Ok(Kind::Model(name)),
        ("model", None) => Err("[model] needs a name, like [model \"NAME\"]".to_string()),
        (_, Some(name)) => Ok(Kind::NamedFlags(name)),
        (_, None) => Ok(Kind::Flags),
    }
}

fn parse_section_name(kind: &str, rest: &str) -> Result<String, String> {
    let Some(name) = rest.strip_prefix('"').and_then(|s| s.strip_suffix('"')) else {
        return Err(format!(
            "malformed section header: the name must be in double quotes, like [{kind} \"NAME\"]"
        ));
    };
    if name.is_empty() {
        return Err(format!("empty name in [{kind} \"\"] (expected [{kind} \"NAME\"])"));
    }
    if name.chars().any(|c| c.is_whitespace() || c == '"') {
        return Err(format!(
            "invalid name {name:?} in [{kind}] header (names cannot contain whitespace or quotes)"
        ));
    }
    Ok(name.to_string())
}

/// Checks a key against its section kind.
fn check_key(kind: &Kind, key: &str) -> Result<(), String> {
    match kind {
        Kind::Project => {
            if matches!(key, "name" | "description" | "runroot" | "stats_interval") {
                Ok(())
            } else {
                Err(format!(
                    "unknown key {key:?} in [project] (expected one of {PROJECT_KEYS})"
                ))
            }
        }
        Kind::Flags | Kind::NamedFlags(_) => {
            if is_valid_flag_name(key) {
                Ok(())
            } else {
                Err(format!("invalid flag name {key:?} in {kind} ({FLAG_NAME_RULE})"))
            }
        }
        Kind::Model(model) => check_model_key(model, key),
    }
}

fn check_model_key(model: &str, key: &str) -> Result<(), String> {
    if key == "description" || OPERATIONS.contains(&key) {
        return Ok(());
    }
    if let Some(op) = key.strip_suffix(REQUIRES_SUFFIX) {
        if OPERATIONS.contains(&op) {
            return Ok(());
        }
        return Err(format!(
            "unknown key {key:?} in model {model:?}: {op:?} is not an operation \
             (expected one of {REQUIRES_LIST})"
        ));
    }
    if looks_like_op(key) {
        Err(format!(
            "unknown operation {key:?} in model {model:?} (expected one of {OP_LIST})"
        ))
    } else {
        Err(format!(
            "unknown key {key:?} in model {model:?} \
             (expected one of description, {OP_LIST}, {REQUIRES_LIST})"
        ))
    }
}

/// Whether a key is most likely a misspelled operation: at most two edits
/// (a swap of neighbours counts as one) from one, ignoring case.
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

/// Checks a complete value against its key and section kind.
fn check_value(kind: &Kind, entry: &Entry) -> Result<(), String> {
    let (key, value) = (entry.key.as_str(), entry.value.as_str());
    match kind {
        Kind::Project if key == "stats_interval" && parse_interval(value).is_none() => Err(format!(
            "invalid stats_interval {value:?} in [project] (expected a number of seconds, 0 for no stats)"
        )),
        Kind::Project if key == "runroot" && value.is_empty() => Err(format!(
            "empty runroot in [project] (expected a folder for runs; leave it out to use {DEFAULT_RUNROOT:?})"
        )),
        Kind::Model(model) if OPERATIONS.contains(&key) && value.is_empty() => {
            Err(format!("empty command for operation {key:?} in model {model:?}"))
        }
        _ => Ok(()),
    }
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
    fn inline_comment_stripping() {
        assert_eq!(strip_inline_comment("a = b # c"), "a = b ");
        assert_eq!(strip_inline_comment("a = b#c"), "a = b#c");
        assert_eq!(strip_inline_comment("a = é ;c"), "a = é ");
        assert_eq!(strip_inline_comment("#x"), "#x");
    }
}
