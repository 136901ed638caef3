//! Run output processing: turning the raw bytes of a growing output file into
//! clean text lines, and reading guildai-style output scalars from those lines.
//!
//! Ours because what it keeps is ours: carriage-return progress bars reduced to their
//! final state, ANSI codes dropped from stored lines only, long lines cut with a note,
//! all fed in pieces as the file grows; no terminal or line crate does these together.

use std::fmt::Write as _;

/// Longest line kept, in bytes of (escape-stripped) content.
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// Longest scalar key, in characters.
pub const MAX_KEY_LEN: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum EscState {
    /// Not inside an escape sequence.
    #[default]
    Ground,
    /// Just saw ESC.
    Start,
    /// `ESC` followed by intermediate bytes (0x20-0x2F), e.g. `ESC ( B`.
    Intermediate,
    /// Control Sequence: `ESC [ params final`.
    Csi,
    /// String sequence (OSC, DCS, SOS, PM, APC), ended by BEL or `ESC \`.
    Str,
    /// ESC seen inside a string sequence.
    StrEsc,
}

/// Splits a byte stream into lines, applying carriage-return overwrites,
/// stripping ANSI escapes and control characters, and capping line length.
#[derive(Debug, Default)]
pub struct LineSplitter {
    /// Content bytes of the current segment (text since the last `\r` that
    /// was followed by text). Never longer than `MAX_LINE_BYTES`.
    buf: Vec<u8>,
    /// Content bytes dropped from the current segment because it was too long.
    dropped: usize,
    /// A `\r` was seen and no content has followed it yet.
    cr: bool,
    /// Where the next byte goes after backspaces moved back over the segment (None: at
    /// its end). Always inside `buf`, on a character's first byte.
    cursor: Option<usize>,
    esc: EscState,
}

impl LineSplitter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed bytes as they are read (chunks may cut lines, UTF-8 sequences or
    /// ANSI escapes anywhere). Calls `emit` for each complete line (without
    /// the trailing `\n` or `\r\n`).
    pub fn feed(&mut self, bytes: &[u8], emit: &mut impl FnMut(String)) {
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            // Fast path: a run of plain text outside any escape is copied in bulk.
            if self.esc == EscState::Ground && !self.cr && self.cursor.is_none() && is_plain(b) {
                let run = bytes[i..].iter().position(|&c| !is_plain(c)).unwrap_or(bytes.len() - i);
                self.push_slice(&bytes[i..i + run]);
                i += run;
                continue;
            }
            i += 1;
            if !self.in_escape(b) {
                self.ground(b, emit);
            }
        }
    }

    fn push_slice(&mut self, text: &[u8]) {
        let room = MAX_LINE_BYTES.saturating_sub(self.buf.len()).min(text.len());
        self.buf.extend_from_slice(&text[..room]);
        self.dropped = self.dropped.saturating_add(text.len() - room);
    }

    /// At end of stream: emits what is pending as a last line if non-empty.
    pub fn finish(&mut self, emit: &mut impl FnMut(String)) {
        self.esc = EscState::Ground;
        if self.buf.is_empty() && self.dropped == 0 {
            self.cr = false;
            return;
        }
        let line = self.take_line();
        if !line.is_empty() {
            emit(line);
        }
    }

    /// Advances the escape-sequence state machine. Returns true when `b` was
    /// consumed by an escape sequence; false when it is ordinary input (an
    /// aborted sequence hands its offending byte back as ordinary input).
    fn in_escape(&mut self, b: u8) -> bool {
        use EscState::*;
        let (next, consumed) = match (self.esc, b) {
            (Ground, _) => (Ground, false),
            (Start, b'[') => (Csi, true),
            (Start, b']' | b'P' | b'X' | b'^' | b'_') => (Str, true),
            (Start | Intermediate | Csi, 0x1B) => (Start, true),
            (Start | Intermediate, 0x20..=0x2F) => (Intermediate, true),
            (Start | Intermediate, 0x30..=0x7E) => (Ground, true), // e.g. 2-byte `ESC 7`
            (Csi, 0x20..=0x3F) => (Csi, true),
            (Csi, 0x40..=0x7E) => (Ground, true),
            // Malformed sequence: abort, the byte is ordinary input.
            (Start | Intermediate | Csi, _) => (Ground, false),
            // An unterminated string must not swallow the rest of the output.
            (Str | StrEsc, b'\n') => (Ground, false),
            (Str, 0x07) => (Ground, true),
            (Str, 0x1B) => (StrEsc, true),
            (Str, _) => (Str, true),
            (StrEsc, b'\\') => (Ground, true),
            // The string ended at that ESC, which starts a new sequence.
            (StrEsc, _) => {
                self.esc = Start;
                return self.in_escape(b);
            }
        };
        self.esc = next;
        consumed
    }

    fn ground(&mut self, b: u8, emit: &mut impl FnMut(String)) {
        match b {
            b'\n' => emit(self.take_line()),
            b'\r' => self.cr = true,
            0x1B => self.esc = EscState::Start,
            // Backspace moves back one character; what follows overwrites, as a terminal
            // shows it (progress bars drawn with backspaces end as their last state).
            0x08 => self.back(),
            // A NUL byte is shown, not dropped: it ends nothing and hides nothing.
            0x00 => {
                let mut shown = [0; 3];
                for &b in NUL_SHOWN.encode_utf8(&mut shown).as_bytes() {
                    self.push(b);
                }
            }
            b'\t' | 0x20..=0x7E | 0x80..=0xFF => self.push(b),
            _ => {} // other C0 controls and DEL are dropped
        }
    }

    fn back(&mut self) {
        if self.cr {
            return; // at the start of the segment already
        }
        let mut at = self.cursor.unwrap_or(self.buf.len());
        if at == 0 {
            return;
        }
        at -= 1;
        while at > 0 && self.buf.get(at).is_some_and(|b| b & 0xC0 == 0x80) {
            at -= 1;
        }
        self.cursor = Some(at);
    }

    fn push(&mut self, b: u8) {
        if self.cr {
            // Text after a `\r` overwrites the segment before it.
            self.cr = false;
            self.buf.clear();
            self.dropped = 0;
            self.cursor = None;
        }
        if let Some(at) = self.cursor {
            // After backspaces: a character's first byte replaces the character there,
            // its other bytes follow it.
            let old = utf8_len(self.buf[at]).min(self.buf.len() - at);
            if b & 0xC0 != 0x80 && old == 1 {
                self.buf[at] = b;
            } else if self.buf.len() >= MAX_LINE_BYTES {
                // A line is never longer than the limit, overwritten or not.
                self.dropped = self.dropped.saturating_add(1);
                return;
            } else if b & 0xC0 == 0x80 {
                self.buf.insert(at, b);
            } else {
                self.buf.splice(at..at + old, [b]);
            }
            self.cursor = Some(at + 1).filter(|&next| next < self.buf.len());
            return;
        }
        if self.buf.len() < MAX_LINE_BYTES {
            self.buf.push(b);
        } else {
            self.dropped = self.dropped.saturating_add(1);
        }
    }

    fn take_line(&mut self) -> String {
        if self.dropped == 0 && self.buf.is_ascii() {
            // C0 controls never reach `buf`, and ASCII holds no C1 controls: nothing to filter.
            let line = String::from_utf8_lossy(&self.buf).into_owned();
            self.buf.clear();
            self.cr = false;
            self.cursor = None;
            return line;
        }
        let mut end = self.buf.len();
        let mut dropped = self.dropped;
        if dropped > 0 {
            // Do not cut a multi-byte character in half.
            let partial = incomplete_utf8_tail(&self.buf);
            end -= partial;
            dropped = dropped.saturating_add(partial);
        }
        let kept = self.buf.get(..end).unwrap_or_default();
        let mut line: String = String::from_utf8_lossy(kept)
            .chars()
            .filter(|&c| c == '\t' || !c.is_control())
            .collect();
        if dropped > 0 {
            let _ = write!(line, "…[truncated {dropped} bytes]");
        }
        self.buf.clear();
        self.dropped = 0;
        self.cr = false;
        self.cursor = None;
        line
    }
}

/// How a NUL byte in the output is shown in stored lines.
pub const NUL_SHOWN: char = '\u{2400}';

/// Bytes of the UTF-8 character that starts with `lead` (1 for a byte that starts none).
fn utf8_len(lead: u8) -> usize {
    match lead {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        _ => 1,
    }
}

/// Text that needs no escape, control or line handling: tab, printable ASCII, and
/// every byte of a multi-byte UTF-8 character.
fn is_plain(b: u8) -> bool {
    b == b'\t' || (b >= 0x20 && b != 0x7F)
}

/// Length of an incomplete UTF-8 sequence at the end of `buf` (0 if none).
fn incomplete_utf8_tail(buf: &[u8]) -> usize {
    for (back, &b) in buf.iter().rev().take(4).enumerate() {
        let have = back + 1;
        if b & 0xC0 == 0x80 {
            continue; // continuation byte: keep looking for the lead byte
        }
        let need = utf8_len(b);
        return if need > have { have } else { 0 };
    }
    0
}

/// An output scalar read from a line.
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    pub key: String,
    pub value: f64,
    pub step: Option<i64>,
}

/// Reads output scalars from lines: guildai's `key: value [(step N)]`, and lines that carry
/// several pairs, as Keras progress lines do
/// (`3/3 [====] - 1s 10ms/step - loss: 0.3000 - acc: 0.9000 - val_loss: 0.31`).
/// Tracks the current step set by `step: N`.
///
/// A line carries scalars when it ends in a run of `key: number` pairs (separated by
/// spaces or by `-`, `|`, `,`, `;` tokens), optionally followed by `(step N)`, and that run
/// starts the line or follows a separator token. So `loss: 0.5 acc: 0.9` gives two, while
/// `loss: 0.5 extra`, `a: b: 1` and `Epoch 1: loss 0.5` give none: free text that happens
/// to hold a colon is not taken for a measurement.
#[derive(Debug, Default)]
pub struct ScalarParser {
    step: Option<i64>,
}

impl ScalarParser {
    pub fn new() -> Self {
        Self { step: None }
    }

    /// Parses one emitted line: the scalars it carries, in the line's order (none for most
    /// lines, without allocating).
    pub fn parse(&mut self, line: &str) -> Vec<Scalar> {
        if !line.contains(':') {
            return Vec::new();
        }
        let line = line.trim_matches(is_space);
        // A trailing `(step N)` applies to every pair on the line; any other trailing
        // parenthesis means the line is not a scalar line.
        let (body, line_step) = match line.ends_with(')').then(|| line.rfind('(')).flatten() {
            Some(open) => match step_suffix(&line[open..]) {
                Some(step) => (&line[..open], step),
                None => return Vec::new(),
            },
            _ => (line, None),
        };
        // Pairs start the line or follow a separator: a line that neither starts with a
        // key nor holds a separator is turned away before anything else.
        let mut words = body.split_ascii_whitespace();
        if !(words.next().is_some_and(|t| key_token(t.trim_matches(NUL_SHOWN)).is_some()) || words.any(is_separator)) {
            return Vec::new();
        }
        // Then by the tokens' look alone (no number is parsed for the many lines that only
        // end like a pair), then for real, keeping the pairs (last first).
        if pairs_at_end(body, looks_numeric, None) == 0 {
            return Vec::new();
        }
        let mut pairs = Vec::new();
        pairs_at_end(body, |t| parse_number(t).is_some(), Some(&mut pairs));
        pairs
            .into_iter()
            .rev()
            .filter_map(|(key, value)| {
                let (value, step) = if key == "step" {
                    // `step: N` sets the current step and is recorded at step N.
                    let n: i64 = value.trim_end_matches([',', ';']).parse().ok()?;
                    self.step = Some(n);
                    (n as f64, Some(n))
                } else {
                    (parse_number(value)?, self.step)
                };
                Some(Scalar {
                    key: key.to_string(),
                    value,
                    step: line_step.or(step),
                })
            })
            .collect()
    }
}

/// The number of `key: value` pairs that end `body`, separators between them allowed,
/// where they start it or follow a separator; 0 otherwise. From the end backwards; with
/// `found`, the pairs (key, value) go there, last first (none when the line is not one).
fn pairs_at_end<'a>(
    body: &'a str,
    is_value: impl Fn(&str) -> bool,
    mut found: Option<&mut Vec<(&'a str, &'a str)>>,
) -> usize {
    let mut rest = tokens_rev(body);
    let mut count = 0;
    let mut separated = false;
    loop {
        let mut look = rest.clone();
        let pair = match (look.next(), look.next()) {
            (Some(value), Some(key)) if is_value(value) => key_token(key).map(|key| (key, value)),
            _ => None,
        };
        let Some(pair) = pair else {
            // Anything else before the pairs is free text that only ends like a pair.
            if separated || rest.clone().next().is_none() {
                return count;
            }
            if let Some(found) = found {
                found.clear();
            }
            return 0;
        };
        if let Some(found) = found.as_deref_mut() {
            found.push(pair);
        }
        rest = look;
        count += 1;
        separated = false;
        while rest.clone().next().is_some_and(is_separator) {
            rest.next();
            separated = true;
        }
    }
}

/// Whether a token may be a number: what Rust's parser accepts starts so.
fn looks_numeric(token: &str) -> bool {
    token.as_bytes().first().is_some_and(|b| b.is_ascii_digit() || b"+-.nNiI".contains(b))
}

/// The line's tokens, last first: split at ASCII white space (byte by byte: every split is
/// a character boundary), a `␀` at either end of a token trimmed.
fn tokens_rev(body: &str) -> RevTokens<'_> {
    RevTokens { text: body, end: body.len() }
}

#[derive(Clone)]
struct RevTokens<'a> {
    text: &'a str,
    end: usize,
}

impl<'a> Iterator for RevTokens<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        loop {
            let bytes = self.text.as_bytes().get(..self.end)?;
            let end = bytes.iter().rposition(|b| !b.is_ascii_whitespace())? + 1;
            let start = bytes[..end].iter().rposition(|b| b.is_ascii_whitespace()).map_or(0, |i| i + 1);
            self.end = start;
            let token = self.text.get(start..end)?.trim_matches(NUL_SHOWN);
            if !token.is_empty() {
                return Some(token);
            }
        }
    }
}

/// White space around a line (a NUL byte, shown as `␀`, counts as one).
fn is_space(c: char) -> bool {
    c.is_ascii_whitespace() || c == NUL_SHOWN
}

/// `key:` with a whole key before the colon.
fn key_token(token: &str) -> Option<&str> {
    let key = token.strip_suffix(':')?;
    match split_key(key) {
        Some((key, "")) => Some(key),
        _ => None,
    }
}

/// A value: a number as Rust reads one (`0.5`, `-1e-3`, `nan`, `inf`), with the comma or
/// semicolon that may end a pair in a list.
fn parse_number(token: &str) -> Option<f64> {
    token.trim_end_matches([',', ';']).parse().ok()
}

/// Tokens that separate pairs (Keras' ` - `) or end the line's own text before them.
fn is_separator(token: &str) -> bool {
    matches!(token, "-" | "|" | "," | ";" | "—" | "–")
}

/// Splits a leading `[A-Za-z_][A-Za-z0-9_./-]*` key (at most `MAX_KEY_LEN`
/// chars) off `s`.
fn split_key(s: &str) -> Option<(&str, &str)> {
    let bytes = s.as_bytes();
    if !bytes.first().is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_') {
        return None;
    }
    let len = bytes
        .iter()
        .take(MAX_KEY_LEN + 1)
        .position(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'/' | b'-')))
        .unwrap_or(bytes.len().min(MAX_KEY_LEN + 1));
    if len > MAX_KEY_LEN {
        return None;
    }
    // All key bytes are ASCII, so `len` is a char boundary.
    Some((s.get(..len)?, s.get(len..)?))
}

/// Parses the part after the value: empty (`Some(None)`), `(step N)`
/// (`Some(Some(N))`), or anything else (`None`: not a scalar line).
fn step_suffix(tail: &str) -> Option<Option<i64>> {
    if tail.is_empty() {
        return Some(None);
    }
    let inner = tail.strip_prefix('(')?.strip_suffix(')')?.trim();
    let num = inner.strip_prefix("step")?;
    if !num.starts_with(char::is_whitespace) {
        return None;
    }
    num.trim().parse().ok().map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_chunks(chunks: &[&[u8]]) -> Vec<String> {
        let mut out = Vec::new();
        let mut s = LineSplitter::new();
        for c in chunks {
            s.feed(c, &mut |l| out.push(l));
        }
        s.finish(&mut |l| out.push(l));
        out
    }

    fn split(input: &[u8]) -> Vec<String> {
        split_chunks(&[input])
    }

    fn split_bytewise(input: &[u8]) -> Vec<String> {
        let chunks: Vec<&[u8]> = input.chunks(1).collect();
        split_chunks(&chunks)
    }

    #[test]
    fn splits_lines_and_crlf() {
        assert_eq!(split(b"a\nb\r\n\nc"), ["a", "b", "", "c"]);
        assert_eq!(split(b"a\n"), ["a"]);
        assert!(split(b"").is_empty());
        assert_eq!(split_chunks(&[b"ab", b"c\r", b"\nd", b"e\n"]), ["abc", "de"]);
    }

    #[test]
    fn carriage_return_keeps_last_segment() {
        assert_eq!(split(b"a\rb\n"), ["b"]);
        assert_eq!(split(b"abc\r\n"), ["abc"]);
        assert_eq!(split_chunks(&[b"\r 10%\r 20%\r", b"\n"]), [" 20%"]);
        assert_eq!(split(b"\r 10%\r 20%\r 30%\n"), [" 30%"]);
        assert_eq!(split(b"long text\rshort\n"), ["short"]);
        assert_eq!(split(b"x\r\r\n"), ["x"]);
        assert_eq!(split(b"done\r"), ["done"]); // finish keeps text before a bare \r
        assert_eq!(split(b"\x1b[2K\r\x1b[1A\rok\n"), ["ok"]);
    }

    #[test]
    fn progress_bar_without_newline_stays_bounded() {
        let mut s = LineSplitter::new();
        let mut out = Vec::new();
        for i in 0..100_000 {
            s.feed(format!("\rprogress {i:>6} [=====>    ]").as_bytes(), &mut |l| {
                out.push(l)
            });
            assert!(s.buf.len() <= 32);
        }
        assert!(out.is_empty());
        s.finish(&mut |l| out.push(l));
        assert_eq!(out, ["progress  99999 [=====>    ]"]);
    }

    #[test]
    fn long_lines_are_truncated() {
        let mut input = vec![b'x'; MAX_LINE_BYTES + 100];
        input.extend_from_slice(b"\nnext\n");
        let out = split(&input);
        let expected = format!("{}…[truncated 100 bytes]", "x".repeat(MAX_LINE_BYTES));
        assert_eq!(out, [expected.as_str(), "next"]);
        // fed in small chunks, memory stays bounded and the result is the same
        let mut s = LineSplitter::new();
        let mut out2 = Vec::new();
        for c in input.chunks(1000) {
            s.feed(c, &mut |l| out2.push(l));
            assert!(s.buf.len() <= MAX_LINE_BYTES);
        }
        assert_eq!(out2, out);
        // exactly at the limit: no truncation
        let mut exact = vec![b'y'; MAX_LINE_BYTES];
        exact.push(b'\n');
        assert_eq!(split(&exact), ["y".repeat(MAX_LINE_BYTES)]);
    }

    #[test]
    fn truncation_does_not_split_a_char() {
        let mut input = vec![b'a'; MAX_LINE_BYTES - 1];
        input.extend_from_slice("ébb\n".as_bytes());
        let expected = format!("{}…[truncated 4 bytes]", "a".repeat(MAX_LINE_BYTES - 1));
        assert_eq!(split(&input), [expected]);
        let mut endless = vec![b'z'; 3 * MAX_LINE_BYTES];
        endless.extend_from_slice(b"\rshort\n");
        assert_eq!(split(&endless), ["short"]);
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        assert_eq!(split(b"a\xffb\n"), ["a\u{FFFD}b"]);
        assert_eq!(split(b"\xc3\n"), ["\u{FFFD}"]);
    }

    #[test]
    fn multibyte_split_across_feeds() {
        assert_eq!(split_chunks(&[b"caf\xc3", b"\xa9\n"]), ["café"]);
        assert_eq!(split_bytewise("🦀 ✓ é\n".as_bytes()), ["🦀 ✓ é"]);
    }

    #[test]
    fn ansi_escapes_are_removed() {
        assert_eq!(split(b"\x1b[31mred\x1b[0m plain\n"), ["red plain"]);
        assert_eq!(split(b"\x1b[?25l\x1b[38;5;196mx\x1b[K\n"), ["x"]);
        assert_eq!(split(b"\x1b]0;title\x07text\n"), ["text"]);
        assert_eq!(split(b"\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\\n"), ["link"]);
        assert_eq!(split(b"a\x1b7b\x1b8c\x1b=d\n"), ["abcd"]);
        assert_eq!(split(b"\x1b(Bx\n"), ["x"]);
        assert_eq!(split(b"\x1bP1$r0m\x1b\\y\n"), ["y"]);
        assert_eq!(
            split_chunks(&[b"\x1b", b"[3", b"1m", b"red\x1b]0;t", b"\x1b", b"\\!\n"]),
            ["red!"]
        );
    }

    #[test]
    fn malformed_escapes_do_not_swallow_output() {
        assert_eq!(split(b"\x1b[\nnext\n"), ["", "next"]);
        assert_eq!(split(b"\x1b]unterminated\nnext\n"), ["", "next"]);
        assert_eq!(split(b"a\x1b\nb\n"), ["a", "b"]);
        assert_eq!(split(b"a\x1b[1\xc3\xa9\n"), ["aé"]);
        assert_eq!(split(b"x\x1b"), ["x"]);
    }

    #[test]
    fn control_chars_are_removed_except_tab() {
        assert_eq!(split(b"a\x01b\x07c\td\x7fe\x0c\n"), ["abc\tde"]);
        assert_eq!(split("a\u{85}b\u{9b}c\n".as_bytes()), ["abc"]);
    }

    #[test]
    fn bytewise_matches_whole_chunk() {
        let mixed: &[u8] = b"\x1b[1mEpoch 1\x1b[0m\r\n\r 10%\r 20%\r\x1b[2K 30%\nloss: 0.5\t\xe2\x9c\x93\n\
            \x1b]0;t\x07caf\xc3\xa9 \xff\x01end\r\n\x1b(B\x1b=ok\rfinal";
        let whole = split(mixed);
        assert_eq!(whole, ["Epoch 1", " 30%", "loss: 0.5\t✓", "café \u{FFFD}end", "final"]);
        assert_eq!(split_bytewise(mixed), whole);
        for size in 2..9 {
            let chunks: Vec<&[u8]> = mixed.chunks(size).collect();
            assert_eq!(split_chunks(&chunks), whole, "chunk size {size}");
        }
    }

    #[test]
    fn random_input_never_panics_and_chunking_is_irrelevant() {
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as u8
        };
        let alphabet = b"ab \t\r\n\x1b[]();\x07\\\x00\x08\x7f\xc3\xa9\xe2\x9c\x93\xff0m";
        for _ in 0..200 {
            let input: Vec<u8> = (0..500).map(|_| alphabet[next() as usize % alphabet.len()]).collect();
            let whole = split(&input);
            let mut chunks = Vec::new();
            let mut rest = input.as_slice();
            while !rest.is_empty() {
                let n = (next() as usize % 16 + 1).min(rest.len());
                let (c, r) = rest.split_at(n);
                chunks.push(c);
                rest = r;
            }
            assert_eq!(split_chunks(&chunks), whole);
            for line in &whole {
                assert!(!line.contains(['\x1b', '\r', '\n', '\x00', '\x7f']));
            }
        }
    }

    impl ScalarParser {
        /// The line's one scalar, if any (a line with more fails the test).
        fn one(&mut self, line: &str) -> Option<Scalar> {
            let mut found = self.parse(line);
            assert!(found.len() <= 1, "{line:?}: {found:?}");
            found.pop()
        }
    }

    fn sc(key: &str, value: f64, step: Option<i64>) -> Option<Scalar> {
        Some(Scalar {
            key: key.to_string(),
            value,
            step,
        })
    }

    #[test]
    fn parses_valid_forms() {
        let mut p = ScalarParser::new();
        assert_eq!(p.one("loss: 0.5"), sc("loss", 0.5, None));
        assert_eq!(p.one("  acc:\t1e-3  "), sc("acc", 1e-3, None));
        assert_eq!(p.one("x: -0.5"), sc("x", -0.5, None));
        assert_eq!(p.one("x: +2"), sc("x", 2.0, None));
        assert_eq!(p.one("x: 3"), sc("x", 3.0, None));
        assert_eq!(p.one("val/loss: 0.25"), sc("val/loss", 0.25, None));
        assert_eq!(p.one("_a.b-c/D9: 1.5E2"), sc("_a.b-c/D9", 150.0, None));
        assert_eq!(p.one("loss: 0.5 (step 7)"), sc("loss", 0.5, Some(7)));
        assert_eq!(p.one("loss: 0.5(step 7)"), sc("loss", 0.5, Some(7)));
        assert_eq!(p.one("loss: 0.5 ( step  -3 )"), sc("loss", 0.5, Some(-3)));
    }

    #[test]
    fn parses_nan_and_inf() {
        let mut p = ScalarParser::new();
        for v in ["nan", "NaN"] {
            let s = p.one(&format!("loss: {v}"));
            assert!(s.is_some_and(|s| s.key == "loss" && s.value.is_nan()), "{v}");
        }
        assert_eq!(p.one("a: inf"), sc("a", f64::INFINITY, None));
        assert_eq!(p.one("a: -inf"), sc("a", f64::NEG_INFINITY, None));
        assert_eq!(p.one("a: Infinity"), sc("a", f64::INFINITY, None));
    }

    #[test]
    fn tracks_step() {
        let mut p = ScalarParser::new();
        assert_eq!(p.one("loss: 1"), sc("loss", 1.0, None));
        assert_eq!(p.one("step: 1"), sc("step", 1.0, Some(1)));
        assert_eq!(p.one("loss: 0.5"), sc("loss", 0.5, Some(1)));
        assert_eq!(p.one("unrelated text"), None);
        assert_eq!(p.one("acc: 0.7"), sc("acc", 0.7, Some(1)));
        assert_eq!(p.one("step: 2"), sc("step", 2.0, Some(2)));
        assert_eq!(p.one("loss: 0.4 (step 10)"), sc("loss", 0.4, Some(10)));
        assert_eq!(p.one("loss: 0.3"), sc("loss", 0.3, Some(2)));
        assert_eq!(p.one("step: 1.5"), None);
        assert_eq!(p.one("loss: 0.2"), sc("loss", 0.2, Some(2)));
        assert_eq!(p.one("step: 5 (step 9)"), sc("step", 5.0, Some(9)));
        assert_eq!(p.one("loss: 0.1"), sc("loss", 0.1, Some(5)));
        assert_eq!(p.one("Step: 8"), sc("Step", 8.0, Some(5)));
    }

    #[test]
    fn rejects_non_scalars() {
        let mut p = ScalarParser::new();
        let lines = "Epoch 1: loss 0.5|loss: 0.5 extra|http://x: 1|a: b: 1|a:b: 1|time: 12:30|\
            loss:|loss: |: 1|1abc: 2|loss:0.5|loss : 0.5|loss: 0x10|loss: 1,000|lö: 1|\
            loss: 0.5 (step x)|loss: 0.5 (step 1.5)|loss: 0.5 (step 1) more|\
            loss: 0.5 (epoch 1)|loss: 0.5 (step1)|loss: (step 1)|step: x|";
        for line in lines.split('|') {
            assert_eq!(p.one(line), None, "{line:?}");
        }
        assert_eq!(p.step, None);
    }

    #[test]
    fn long_keys_and_lines() {
        let mut p = ScalarParser::new();
        let k200 = "k".repeat(MAX_KEY_LEN);
        assert_eq!(p.one(&format!("{k200}: 1")), sc(&k200, 1.0, None));
        assert_eq!(p.one(&format!("{k200}k: 1")), None);
        let huge = "a".repeat(1_000_000);
        assert_eq!(p.one(&format!("{huge}: 1")), None);
        assert_eq!(p.one(&format!("loss: 1 {huge}")), None);
        assert_eq!(
            p.one(&format!("loss: 0.5{}", " ".repeat(1_000_000))),
            sc("loss", 0.5, None)
        );
        assert_eq!(p.one(&"é".repeat(100_000)), None);
    }
}

#[cfg(test)]
mod fidelity_tests {
    use super::*;

    fn split(input: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        let mut s = LineSplitter::new();
        s.feed(input, &mut |l| out.push(l));
        s.finish(&mut |l| out.push(l));
        out
    }

    fn pairs(line: &str) -> Vec<(String, f64, Option<i64>)> {
        ScalarParser::new().parse(line).into_iter().map(|s| (s.key, s.value, s.step)).collect()
    }

    #[test]
    fn keras_progress_lines_give_every_pair() {
        assert_eq!(
            pairs("3/3 [==============================] - 1s 10ms/step - loss: 0.3000 - acc: 0.9000 - val_loss: 0.31"),
            [("loss".into(), 0.3, None), ("acc".into(), 0.9, None), ("val_loss".into(), 0.31, None)]
        );
        // The ETA form, and an epoch prefix ended by a separator.
        assert_eq!(
            pairs("1/3 [=========>....................] - ETA: 0s - loss: 0.5"),
            [("loss".into(), 0.5, None)]
        );
        assert_eq!(
            pairs("Epoch 2/10 | loss: 0.25, acc: 0.75"),
            [("loss".into(), 0.25, None), ("acc".into(), 0.75, None)]
        );
    }

    #[test]
    fn several_pairs_on_a_line() {
        assert_eq!(
            pairs("loss: 0.5 acc: 0.9 (step 3)"),
            [("loss".into(), 0.5, Some(3)), ("acc".into(), 0.9, Some(3))]
        );
        // `step` first sets the step of the pairs after it.
        assert_eq!(
            pairs("step: 4 loss: 0.1"),
            [("step".into(), 4.0, Some(4)), ("loss".into(), 0.1, Some(4))]
        );
        // Free text around a pair keeps the line out.
        for line in ["Epoch 3 loss: 0.5", "loss: 0.5 acc", "note: loss: 0.5", "x - loss: 0.5 and more"] {
            assert_eq!(pairs(line), [], "{line}");
        }
    }

    #[test]
    fn backspaces_are_applied() {
        assert_eq!(split(b"50%\x08\x08\x0860%\n"), ["60%"]);
        assert_eq!(split(b"abc\x08\n"), ["abc"]);
        assert_eq!(split(b"abcd\x08\x08X\n"), ["abXd"]);
        assert_eq!(split(b"\x08\x08a\n"), ["a"]);
        // Over multi-byte characters, by character.
        assert_eq!(split("caf\u{e9}\x08e\n".as_bytes()), ["cafe"]);
        assert_eq!(split("ab\x08\x08\u{e9}\n".as_bytes()), ["\u{e9}b"]);
        // A Keras-style bar: drawn, backspaced over, drawn again, then a newline.
        let mut bar = b"1/2 [====>.....] - loss: 0.9".to_vec();
        bar.extend(std::iter::repeat_n(0x08u8, bar.len()));
        bar.extend_from_slice(b"\r2/2 [==========] - loss: 0.4\n");
        let lines = split(&bar);
        assert_eq!(lines, ["2/2 [==========] - loss: 0.4"]);
        assert_eq!(pairs(&lines[0]), [("loss".into(), 0.4, None)]);
    }

    #[test]
    fn nul_bytes_are_shown_and_end_nothing() {
        assert_eq!(split(b"a\x00b\nnext\n"), ["a\u{2400}b", "next"]);
        assert_eq!(split(b"\x00\x00\n"), ["\u{2400}\u{2400}"]);
        // A NUL after a value separates like a space.
        assert_eq!(pairs(&split(b"loss: 0.5\x00\n")[0]), [("loss".into(), 0.5, None)]);
    }
}
