//! The INI layer of a `Guild` file, read as the original Guild (2016–17) read it: lines
//! into sections of attributes, with `@attrs` directives applied where they stand.
//!
//! Ours because the format is: line-exact errors, the original's positional `@attrs`
//! rule and its backslash continuations are not what any INI crate does.
//!
//! - Leading and trailing whitespace is not significant: an indented `name = value` is
//!   an attribute of its own.
//! - `name = value` and `name: value`; the name is what comes before the first `=` or `:`.
//! - Whole-line comments start with `#` or `;`. There are no inline comments: `a = b # c`
//!   has the value `b # c`, as the original read it.
//! - A line ending with `\` continues on the next line. Whitespace where the two meet
//!   becomes one space (`a \` + `  b` is `a b`); with none, the parts join (`a\` + `b` is
//!   `ab`), so every word is what the original read.
//! - A repeated attribute keeps the last value, in the position where it was first set.
//! - `@attrs KIND "NAME"` copies the attributes of the section `[KIND "NAME"]` defined
//!   above it (or built in), at that point: attributes written after the directive win
//!   over the copy, those written before it lose. A section that does not exist copies
//!   nothing, as in the original.
//!
//! The work is linear in the file's size: attribute and section look-ups are hashed,
//! the file is bounded ([`MAX_FILE_BYTES`]) and so is what `@attrs` may copy.

use std::collections::HashMap;

/// The largest Guild file read. Real project files are a few kilobytes.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;

/// How many attributes `@attrs` directives may copy in one file, all together.
const MAX_COPIED_ATTRS: usize = 200_000;

/// One attribute in effect in a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    pub key: String,
    pub value: String,
    /// Line of the assignment, or of the `@attrs` directive that copied it.
    pub line: usize,
}

/// A section with the attributes in effect at its end, in the order first set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub kind: String,
    pub name: Option<String>,
    /// Line of the header; 0 for built-in sections.
    pub line: usize,
    pub attrs: Vec<Attr>,
    index: HashMap<String, usize>,
}

impl Section {
    fn new(kind: String, name: Option<String>, line: usize) -> Section {
        Section {
            kind,
            name,
            line,
            attrs: Vec::new(),
            index: HashMap::new(),
        }
    }

    /// Sets an attribute: a new one goes last, a repeated one keeps its place.
    pub fn set(&mut self, key: &str, value: &str, line: usize) {
        match self.index.get(key) {
            Some(&at) => {
                if let Some(attr) = self.attrs.get_mut(at) {
                    attr.value = value.to_string();
                    attr.line = line;
                }
            }
            None => {
                self.index.insert(key.to_string(), self.attrs.len());
                self.attrs.push(Attr {
                    key: key.to_string(),
                    value: value.to_string(),
                    line,
                });
            }
        }
    }

    pub fn get(&self, key: &str) -> Option<&Attr> {
        self.index.get(key).and_then(|&at| self.attrs.get(at))
    }

    pub fn value(&self, key: &str) -> Option<&str> {
        self.get(key).map(|a| a.value.as_str())
    }
}

/// A problem on one line: its number and the message.
pub type LineError = (usize, String);

/// Sections the file's `@attrs` directives may copy from besides its own: the built-in
/// templates, fields and series. Looked up by (kind, name).
pub trait Earlier {
    fn earlier(&self, kind: &str, name: &str) -> Option<&Section>;
}

/// No built-in sections.
pub struct NoEarlier;

impl Earlier for NoEarlier {
    fn earlier(&self, _kind: &str, _name: &str) -> Option<&Section> {
        None
    }
}

/// Reads `text` into sections, in file order. A syntax error stops the reading: the
/// sections read so far come back with it, so the caller can report whichever problem
/// comes first in the file. Checks of keys and values are the caller's.
pub fn read(text: &str, builtins: &dyn Earlier) -> (Vec<Section>, Option<LineError>) {
    let mut reader = Reader {
        builtins,
        sections: Vec::new(),
        by_key: HashMap::new(),
        copied: 0,
    };
    let error = reader.read_all(text).err();
    (reader.sections, error)
}

impl Reader<'_> {
    fn read_all(&mut self, text: &str) -> Result<(), LineError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut lines = text.lines().enumerate().map(|(i, line)| (i + 1, line));
        while let Some((number, raw)) = lines.next() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if line.starts_with('[') {
                self.header(number, line)?;
            } else if let Some(directive) = line.strip_prefix('@') {
                self.directive(number, directive)?;
            } else {
                let logical = continued(number, line, &mut lines)?;
                self.attribute(number, &logical)?;
            }
        }
        Ok(())
    }
}

/// The line with its backslash continuations joined (see the module's rules).
fn continued<'a>(
    number: usize,
    first: &str,
    lines: &mut impl Iterator<Item = (usize, &'a str)>,
) -> Result<String, LineError> {
    let Some(head) = first.strip_suffix('\\') else {
        return Ok(first.to_string());
    };
    let mut joined = head.trim_end().to_string();
    let mut space_pending = head.ends_with(char::is_whitespace);
    let mut last = number;
    loop {
        let Some((next, raw)) = lines.next() else {
            return Err((
                last,
                "the value continues (\\ at the end of the line) past the end of the file".to_string(),
            ));
        };
        last = next;
        let piece = raw.trim();
        let (text, more) = match piece.strip_suffix('\\') {
            Some(text) => (text, true),
            None => (piece, false),
        };
        let spaced = space_pending || raw.starts_with(char::is_whitespace);
        if spaced && !joined.is_empty() && !text.trim().is_empty() {
            joined.push(' ');
        }
        joined.push_str(text.trim());
        if !more {
            return Ok(joined);
        }
        space_pending = text.ends_with(char::is_whitespace);
    }
}

struct Reader<'b> {
    builtins: &'b dyn Earlier,
    sections: Vec<Section>,
    /// (kind, name) of each file section to its index: duplicates and `@attrs`.
    by_key: HashMap<(String, Option<String>), usize>,
    copied: usize,
}

impl Reader<'_> {
    fn header(&mut self, number: usize, line: &str) -> Result<(), LineError> {
        let (kind, name) = parse_header(line).map_err(|m| (number, m))?;
        let key = (kind.clone(), name.clone());
        if let Some(&first) = self.by_key.get(&key) {
            let first_line = self.sections.get(first).map_or(0, |s| s.line);
            let shown = match &name {
                Some(name) => format!("[{kind} {name:?}]"),
                None => format!("[{kind}]"),
            };
            return Err((
                number,
                format!("duplicate section {shown} (first defined on line {first_line})"),
            ));
        }
        self.by_key.insert(key, self.sections.len());
        self.sections.push(Section::new(kind, name, number));
        Ok(())
    }

    fn directive(&mut self, number: usize, directive: &str) -> Result<(), LineError> {
        let Some(spec) = directive
            .strip_prefix("attrs")
            .filter(|s| s.starts_with(char::is_whitespace))
        else {
            let word: String = directive.chars().take_while(|c| !c.is_whitespace()).collect();
            return Err((
                number,
                format!(
                    "unknown directive \"@{word}\" (expected @attrs KIND \"NAME\", like @attrs template \"accuracy-field\")"
                ),
            ));
        };
        if self.sections.is_empty() {
            return Err((
                number,
                "@attrs before any section header (it copies attributes into the section it is in)".to_string(),
            ));
        }
        let (kind, name) = parse_header(&format!("[{}]", spec.trim())).map_err(|_| {
            (
                number,
                format!("malformed directive \"@attrs{spec}\" (expected @attrs KIND \"NAME\")"),
            )
        })?;
        let Some(name) = name else {
            return Err((
                number,
                format!(
                    "malformed directive \"@attrs{spec}\": the name must be in double quotes, like @attrs {kind} \"NAME\""
                ),
            ));
        };
        // The built-in section first, then the file's own above this one: the file's wins.
        let mut copy: Vec<(String, String)> = Vec::new();
        if let Some(builtin) = self.builtins.earlier(&kind, &name) {
            copy.extend(builtin.attrs.iter().map(|a| (a.key.clone(), a.value.clone())));
        }
        let current = self.sections.len() - 1;
        if let Some(&at) = self.by_key.get(&(kind, Some(name)))
            && at != current
            && let Some(section) = self.sections.get(at)
        {
            copy.extend(section.attrs.iter().map(|a| (a.key.clone(), a.value.clone())));
        }
        self.copied += copy.len();
        if self.copied > MAX_COPIED_ATTRS {
            return Err((
                number,
                format!("@attrs directives copy more than {MAX_COPIED_ATTRS} attributes in this file"),
            ));
        }
        if let Some(section) = self.sections.get_mut(current) {
            for (key, value) in copy {
                section.set(&key, &value, number);
            }
        }
        Ok(())
    }

    fn attribute(&mut self, number: usize, line: &str) -> Result<(), LineError> {
        let Some(section) = self.sections.last_mut() else {
            return Err((
                number,
                format!("expected a section header like [model \"NAME\"] before {line:?}"),
            ));
        };
        let Some(at) = line.find(['=', ':']) else {
            return Err((number, format!("expected NAME = VALUE, got {line:?}")));
        };
        let (key, value) = (
            line.get(..at).unwrap_or("").trim(),
            line.get(at + 1..).unwrap_or("").trim(),
        );
        if key.is_empty() {
            return Err((
                number,
                format!("missing name before \"=\" in {line:?} (expected NAME = VALUE)"),
            ));
        }
        if key.contains(char::is_whitespace) {
            return Err((
                number,
                format!("invalid name {key:?} in {line:?} (names cannot contain spaces; expected NAME = VALUE)"),
            ));
        }
        section.set(key, value, number);
        Ok(())
    }
}

/// `[kind]` or `[kind "name"]` (the line trimmed). Whitespace around the kind is free.
pub fn parse_header(line: &str) -> Result<(String, Option<String>), String> {
    let Some(inner) = line.strip_prefix('[').and_then(|s| s.strip_suffix(']')) else {
        let problem = if line.contains(']') {
            "unexpected text after \"]\""
        } else {
            "missing closing \"]\""
        };
        return Err(format!("malformed section header {line:?}: {problem}"));
    };
    let inner = inner.trim();
    let split = inner
        .find(|c: char| c.is_whitespace() || c == '"')
        .unwrap_or(inner.len());
    let (kind, rest) = inner.split_at_checked(split).unwrap_or((inner, ""));
    let rest = rest.trim();
    if kind.is_empty() {
        return Err(format!(
            "malformed section header {line:?} (expected [KIND] or [KIND \"NAME\"])"
        ));
    }
    if rest.is_empty() {
        return Ok((kind.to_string(), None));
    }
    let Some(name) = rest.strip_prefix('"').and_then(|s| s.strip_suffix('"')) else {
        return Err(format!(
            "malformed section header: the name must be in double quotes, like [{kind} \"NAME\"]"
        ));
    };
    if name.is_empty() {
        return Err(format!("empty name in [{kind} \"\"] (expected [{kind} \"NAME\"])"));
    }
    if name.contains('"') {
        return Err(format!(
            "invalid name {name:?} in [{kind}] header (names cannot contain quotes)"
        ));
    }
    Ok((kind.to_string(), Some(name.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sections(text: &str) -> Vec<Section> {
        let (sections, error) = read(text, &NoEarlier);
        assert_eq!(error, None);
        sections
    }

    fn error(text: &str) -> LineError {
        read(text, &NoEarlier).1.expect("an error")
    }

    fn attrs(section: &Section) -> Vec<(&str, &str)> {
        section
            .attrs
            .iter()
            .map(|a| (a.key.as_str(), a.value.as_str()))
            .collect()
    }

    #[test]
    fn indented_attributes_are_attributes() {
        let s = sections("[model \"m\"]\n  train = intro\n  prepare = intro --prepare\n");
        assert_eq!(attrs(&s[0]), vec![("train", "intro"), ("prepare", "intro --prepare")]);
    }

    #[test]
    fn colon_or_equals_and_empty_values() {
        let s = sections("[foo]\nbar: 123\nbaz = a: b = c\nempty=\nalso:\n");
        assert_eq!(
            attrs(&s[0]),
            vec![("bar", "123"), ("baz", "a: b = c"), ("empty", ""), ("also", "")]
        );
    }

    #[test]
    fn no_inline_comments() {
        let s = sections("[foo]\n# whole line\n; also\na = b # c\nd = x ; y\n");
        assert_eq!(attrs(&s[0]), vec![("a", "b # c"), ("d", "x ; y")]);
    }

    #[test]
    fn backslash_continuations_keep_the_words() {
        let s = sections(
            "[foo]\nbar = 1 \\\n      2 \\\n      3\n\nbaz = \\\n  4, 5, 6, \\\n  8, 9, 10\nglued = abc\\\ndef\n\
             list = a b \\\n\n next = 1\n",
        );
        assert_eq!(
            attrs(&s[0]),
            vec![
                ("bar", "1 2 3"),
                ("baz", "4, 5, 6, 8, 9, 10"),
                ("glued", "abcdef"),
                ("list", "a b"),
                ("next", "1"),
            ]
        );
        assert_eq!(
            error("[foo]\nbar = 123 \\"),
            (
                2,
                "the value continues (\\ at the end of the line) past the end of the file".to_string()
            )
        );
        assert_eq!(error("[foo]\nbar = 123 \\\n\\").0, 3);
    }

    #[test]
    fn the_last_assignment_wins_in_its_first_place() {
        let s = sections("[s]\na = 1\nb = 2\na = 3\n");
        assert_eq!(attrs(&s[0]), vec![("a", "3"), ("b", "2")]);
        assert_eq!(s[0].get("a").map(|a| a.line), Some(4));
    }

    #[test]
    fn attrs_directives_copy_where_they_stand() {
        let text = "[template \"foo\"]\na = 1\nb = 2\n[s1]\nb = 0\nc = 0\n@attrs template \"foo\"\nb = 3\n\
                    [s2]\n@attrs template \"missing\"\nx = 1\n";
        let s = sections(text);
        assert_eq!(attrs(&s[1]), vec![("b", "3"), ("c", "0"), ("a", "1")]);
        assert_eq!(attrs(&s[2]), vec![("x", "1")]);
    }

    #[test]
    fn attrs_directives_chain_and_see_only_sections_above() {
        let text = "[template \"summary-field\"]\n@attrs template \"summary-field\"\nlabel =\nicon = default\n\
                    color = gray-500\nreduce = last\n\n[template \"loss-field\"]\n@attrs template \"summary-field\"\n\
                    label = Loss\nicon = entropy\ncolor = blue-700\n\n[field \"loss\"]\n@attrs template \"loss-field\"\n\
                    label = Cross entropy\nsource = series/tf/loss\n[field \"early\"]\n@attrs template \"late\"\n\
                    [template \"late\"]\nx = 1\n";
        let s = sections(text);
        let loss = &s[2];
        assert_eq!(loss.value("label"), Some("Cross entropy"));
        assert_eq!(loss.value("icon"), Some("entropy"));
        assert_eq!(loss.value("color"), Some("blue-700"));
        assert_eq!(loss.value("reduce"), Some("last"));
        assert_eq!(loss.value("source"), Some("series/tf/loss"));
        assert!(s[3].attrs.is_empty());
    }

    #[test]
    fn line_errors() {
        let err = error;
        assert_eq!(err("foo = bar").0, 1);
        assert_eq!(err("\n\nfoo = bar").0, 3);
        assert_eq!(err("[foo\n").0, 1);
        assert_eq!(err("[foo bar]\n").0, 1);
        assert_eq!(err("[foo]\n\n[bar\n").0, 3);
        assert_eq!(err("[foo]\nbar").0, 2);
        assert_eq!(err("[foo]\nbar=123\nbaz").0, 3);
        assert_eq!(
            err("@foo\n"),
            (
                1,
                "unknown directive \"@foo\" (expected @attrs KIND \"NAME\", like @attrs template \"accuracy-field\")"
                    .into()
            )
        );
        assert_eq!(err("\n\n[s]\n@foo x\n").0, 4);
        assert_eq!(err("@attrs template \"x\"\n").0, 1);
        assert_eq!(err("[s]\n@attrs template x\n").0, 2);
        assert_eq!(
            err("[a]\n[b]\n[a]\n"),
            (3, "duplicate section [a] (first defined on line 1)".into())
        );
    }

    #[test]
    fn headers() {
        assert_eq!(parse_header("[  foo  ]"), Ok(("foo".into(), None)));
        assert_eq!(parse_header("[model \"a\"]"), Ok(("model".into(), Some("a".into()))));
        assert_eq!(
            parse_header("[series\t\"Val Loss\"]"),
            Ok(("series".into(), Some("Val Loss".into())))
        );
        assert!(parse_header("[model a]").is_err());
    }

    #[test]
    fn copies_are_bounded() {
        let mut text = String::from("[template \"t\"]\n");
        for i in 0..1000 {
            text.push_str(&format!("a{i} = 1\n"));
        }
        for i in 0..300 {
            text.push_str(&format!("[s \"{i}\"]\n@attrs template \"t\"\n"));
        }
        let err = error(&text);
        assert!(err.1.contains("copy more than"), "{err:?}");
    }
}
