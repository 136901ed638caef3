//! Number formats of the Guild file's fields and series: the Numeral.js patterns the
//! original used (its version 2.0.4: `0.00%`, `%`, `0.0 b`, `0,0`, `00:00:00`, ...) plus
//! its own `0.0e` (exponent form with that many decimals) and a trailing ` ms`.
//!
//! Ours because the patterns are the file format's; the dashboard has the same rules in
//! `guild-web/src/numeral.ts`, and both are tested against `tests/fixtures/formats.json`.
//!
//! - number: decimals are the `0`s after `.`; `,` groups thousands; no `.` rounds to an
//!   integer; halves round up, as JavaScript's `Math.round`.
//! - `%`: the value times 100, then `%` (`" %"` when the pattern has the space); `%`
//!   alone is a whole percent.
//! - bytes (`b`, after `0` or a space): units of 1000 (`B KB MB GB TB PB EB ZB YB`), or
//!   of 1024 with `ib` (`B KiB MiB ...`).
//! - time (any `:`): seconds as `H:MM:SS`, hours not padded.
//! - `e+`/`e-`: mantissa in the pattern's decimals, then `e` and the signed exponent.
//! - `a`: thousands as `k`, `m`, `b`, `t`.
//! - `$`: a dollar sign where the pattern has it; `o`: ordinal suffix.
//!
//! NaN and infinities print as `NaN`, `inf`, `-inf`; an empty pattern prints the value
//! in its shortest form.

/// `value` in `pattern`.
pub fn format(value: f64, pattern: &str) -> String {
    if value.is_nan() {
        return "NaN".to_string();
    }
    if value.is_infinite() {
        return if value > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    if pattern.is_empty() {
        return shortest(value);
    }
    if let Some(rest) = pattern.strip_suffix(" ms") {
        return format!("{} ms", format(value, rest));
    }
    if is_guild_exponent(pattern) {
        let decimals = pattern
            .split_once('.')
            .map(|(_, d)| d.chars().filter(|&c| c == '0').count())
            .unwrap_or(0);
        return js_exponential(value, decimals);
    }
    if let Some(at) = bytes_marker(pattern) {
        return bytes(value, pattern, at);
    }
    if pattern.contains('$') {
        return currency(value, pattern);
    }
    if pattern.contains("e+") || pattern.contains("e-") {
        return exponential(value, pattern);
    }
    if pattern.contains('o') {
        return ordinal(value, pattern);
    }
    if pattern.contains('%') {
        return percent(value, pattern);
    }
    if pattern.contains(':') {
        return time(value);
    }
    number(value, pattern)
}

/// The shortest text that reads back as the value (`0.1`, `12`, `1e-7`).
pub fn shortest(value: f64) -> String {
    if value == value.trunc() && value.abs() < 1e16 {
        return format!("{}", value as i64);
    }
    let plain = format!("{value}");
    let exp = format!("{value:e}");
    if exp.len() < plain.len() { exp } else { plain }
}

/// `0.0e`, `0.00e`, `0e`: the original's own exponent form (not Numeral's `e+0`).
fn is_guild_exponent(pattern: &str) -> bool {
    pattern.ends_with('e') && pattern.trim_end_matches('e').chars().all(|c| c == '0' || c == '.')
}

/// Where the bytes unit starts (`b` or `ib`), when the pattern is a bytes pattern.
fn bytes_marker(pattern: &str) -> Option<usize> {
    let chars: Vec<char> = pattern.chars().collect();
    let boundary = |c: Option<&char>| matches!(c, Some('0') | Some(' '));
    for (i, &c) in chars.iter().enumerate() {
        if c != 'b' {
            continue;
        }
        if i >= 1 && boundary(chars.get(i - 1)) {
            return Some(byte_offset(pattern, i));
        }
        if i >= 2 && chars.get(i - 1) == Some(&'i') && boundary(chars.get(i - 2)) {
            return Some(byte_offset(pattern, i - 1));
        }
    }
    None
}

fn byte_offset(s: &str, char_index: usize) -> usize {
    s.char_indices().nth(char_index).map_or(s.len(), |(i, _)| i)
}

/// JavaScript's `Math.round`: halves go up.
fn js_round(value: f64) -> f64 {
    (value + 0.5).floor()
}

/// The number part of a pattern: decimals, thousands, and the rounding JavaScript does.
fn number(value: f64, pattern: &str) -> String {
    if pattern.contains('a') {
        return abbreviated(value, pattern);
    }
    let decimals = pattern
        .split_once('.')
        .map(|(_, d)| d.chars().take_while(|&c| c == '0').count())
        .unwrap_or(0);
    let scale = 10f64.powi(decimals as i32);
    let rounded = js_round(value * scale) / scale;
    let text = format!("{:.decimals$}", rounded.abs());
    let (int, frac) = match text.split_once('.') {
        Some((i, f)) => (i.to_string(), Some(f)),
        None => (text.clone(), None),
    };
    let mut out = String::new();
    if rounded < 0.0 {
        out.push('-');
    } else if pattern.starts_with('+') && rounded > 0.0 {
        out.push('+');
    }
    out.push_str(&if pattern.contains(',') { group(&int) } else { int });
    if let Some(frac) = frac {
        out.push('.');
        out.push_str(frac);
    }
    out
}

fn group(int: &str) -> String {
    let digits: Vec<char> = int.chars().collect();
    let mut out = String::new();
    for (i, c) in digits.iter().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(*c);
    }
    out
}

fn abbreviated(value: f64, pattern: &str) -> String {
    let spaced = pattern.contains(" a");
    let rest = pattern.replace(" a", "").replace('a', "");
    let abs = value.abs();
    let (divisor, unit) = if abs >= 1e12 {
        (1e12, "t")
    } else if abs >= 1e9 {
        (1e9, "b")
    } else if abs >= 1e6 {
        (1e6, "m")
    } else if abs >= 1e3 {
        (1e3, "k")
    } else {
        (1.0, "")
    };
    let head = number(value / divisor, &rest);
    match (unit, spaced) {
        ("", _) => head,
        (unit, true) => format!("{head} {unit}"),
        (unit, false) => format!("{head}{unit}"),
    }
}

fn percent(value: f64, pattern: &str) -> String {
    let spaced = pattern.contains(" %");
    let rest = pattern.replace(" %", "").replace('%', "");
    let head = number(value * 100.0, &rest);
    if spaced {
        format!("{head} %")
    } else {
        format!("{head}%")
    }
}

fn bytes(value: f64, pattern: &str, at: usize) -> String {
    let binary = pattern.get(at..).is_some_and(|s| s.starts_with("ib"));
    let before = pattern.get(..at).unwrap_or("");
    let spaced = before.ends_with(' ');
    let after = pattern
        .get(at..)
        .unwrap_or("")
        .trim_start_matches('i')
        .trim_start_matches('b');
    let rest = format!("{}{after}", before.trim_end());
    let (base, units): (f64, [&str; 9]) = if binary {
        (1024.0, ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"])
    } else {
        (1000.0, ["B", "KB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"])
    };
    let mut power = 0;
    let abs = value.abs();
    while power + 1 < units.len() && abs >= base.powi(power as i32 + 1) {
        power += 1;
    }
    let head = number(value / base.powi(power as i32), &rest);
    let unit = units.get(power).copied().unwrap_or("B");
    if spaced {
        format!("{head} {unit}")
    } else {
        format!("{head}{unit}")
    }
}

fn time(value: f64) -> String {
    let total = js_round(value.abs()) as u64;
    let (h, m, s) = (total / 3600, total % 3600 / 60, total % 60);
    let sign = if value < 0.0 && total > 0 { "-" } else { "" };
    format!("{sign}{h}:{m:02}:{s:02}")
}

/// JavaScript's `toExponential(decimals)`: `1.2e-3`, `1.2e+3`.
fn js_exponential(value: f64, decimals: usize) -> String {
    let text = format!("{value:.decimals$e}");
    match text.split_once('e') {
        Some((mantissa, exp)) if !exp.starts_with('-') => format!("{mantissa}e+{exp}"),
        _ => text,
    }
}

fn exponential(value: f64, pattern: &str) -> String {
    let head = pattern.split(['e']).next().unwrap_or("0");
    let decimals = head
        .split_once('.')
        .map(|(_, d)| d.chars().take_while(|&c| c == '0').count())
        .unwrap_or(0);
    js_exponential(value, decimals)
}

fn currency(value: f64, pattern: &str) -> String {
    let before = pattern.trim_start().starts_with('$');
    let rest = pattern.replace('$', "");
    let head = number(value, rest.trim());
    if before { format!("${head}") } else { format!("{head}$") }
}

fn ordinal(value: f64, pattern: &str) -> String {
    let rest = pattern.replace('o', "");
    let head = number(value, rest.trim());
    let n = js_round(value.abs()) as u64;
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{head}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cases the dashboard's formatter is tested on too.
    #[test]
    fn shared_vectors() {
        let text = include_str!("../../../../tests/fixtures/formats.json");
        let cases: serde_json::Value = serde_json::from_str(text).expect("formats.json");
        let mut checked = 0;
        for case in cases.as_array().expect("a list") {
            let pattern = case["format"].as_str().expect("format");
            let value = match &case["value"] {
                serde_json::Value::String(s) if s == "NaN" => f64::NAN,
                serde_json::Value::String(s) if s == "inf" => f64::INFINITY,
                serde_json::Value::String(s) if s == "-inf" => f64::NEG_INFINITY,
                v => v.as_f64().expect("value"),
            };
            let expected = case["text"].as_str().expect("text");
            assert_eq!(format(value, pattern), expected, "{value} in {pattern:?}");
            checked += 1;
        }
        assert!(checked >= 40, "only {checked} cases");
    }
}
