//! Standard output that never panics, and text from the daemon made safe for a terminal.
//!
//! `println!` panics when stdout cannot be written (`guild runs > /dev/full`); every
//! command writes through [`outln!`]/[`out!`] instead, which return the error, and
//! [`finish`] flushes at the end. A closed pipe (`guild runs | head -1`) ends the command
//! quietly, as it does for other Unix tools.
//!
//! Ids, labels, tags, keys and reasons come from the daemon, which may have them from an
//! imported archive or a run's own files: [`clean`] escapes control characters (a label
//! holding `ESC[2J` or a newline must not clear the screen or forge a row).

use std::borrow::Cow;
use std::io::Write;

/// A failed write to stdout.
#[derive(Debug)]
pub struct StdoutError(pub std::io::Error);

impl std::fmt::Display for StdoutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot write to standard output: {}", self.0)
    }
}

impl std::error::Error for StdoutError {}

/// Writes formatted text to stdout.
pub fn write(args: std::fmt::Arguments<'_>) -> Result<(), StdoutError> {
    std::io::stdout().lock().write_fmt(args).map_err(StdoutError)
}

/// Writes bytes to stdout (a whole CSV or JSON answer at once).
pub fn write_bytes(bytes: &[u8]) -> Result<(), StdoutError> {
    std::io::stdout().lock().write_all(bytes).map_err(StdoutError)
}

/// Flushes stdout: what is still buffered fails here, not silently at exit.
pub fn finish() -> Result<(), StdoutError> {
    std::io::stdout().lock().flush().map_err(StdoutError)
}

/// Whether an error is a closed pipe on stdout (the reader went away).
pub fn is_closed_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<StdoutError>()
            .is_some_and(|e| e.0.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// `print!` that returns the error instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => { $crate::out::write(format_args!($($arg)*)) };
}

/// `println!` that returns the error instead of panicking.
macro_rules! outln {
    () => { $crate::out::write(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::out::write(format_args!("{}\n", format_args!($($arg)*))) };
}

/// Whether a character would act on a terminal rather than show: C0 and C1 controls,
/// DEL, and the bidirectional overrides that reorder what follows them.
fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
}

/// Text from the daemon with every control character escaped (`\n`, `\t`, `\u{1b}`).
pub fn clean(text: &str) -> Cow<'_, str> {
    // Printable ASCII, the usual case, is safe byte by byte (and quick to check).
    if text.bytes().all(|b| (0x20..0x7f).contains(&b)) || !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A daemon's error message made safe: like [`clean`], but line breaks stay (messages
/// with a caret line under the bad part are meant as several lines).
pub fn clean_message(text: &str) -> String {
    text.split('\n')
        .map(|line| clean(line).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(clean("20261126T104218Z-intro"), "20261126T104218Z-intro");
        assert_eq!(clean("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(clean("x\ny\tz\r"), "x\\ny\\tz\\r");
        assert_eq!(clean("a\u{202E}b\u{9b}"), "a\\u{202e}b\\u{9b}");
        assert_eq!(clean("héllo ✓"), "héllo ✓");
        assert_eq!(clean_message("bad\u{1b}[31m\n  ^"), "bad\\u{1b}[31m\n  ^");
    }
}
