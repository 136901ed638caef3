//! Splitting an operation value into the command to run.

use super::ResolveError;

/// What an operation runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpCommand {
    /// A Python module (such as `intro` for `intro.py`) plus arguments.
    Python { module: String, args: Vec<String> },
    /// An executable (a path relative to the project folder, or a name on
    /// PATH) plus arguments; written with a leading `!`.
    Exec { program: String, args: Vec<String> },
}

/// Splits an op value into the command to run. A value starting with `!`
/// is an executable plus arguments (`!./train.sh --fast`, also
/// `! ./train.sh`); otherwise it is a Python module plus arguments.
///
/// Splitting is shell-like, as Python's `shlex.split` (what the original
/// Guild used): spaces and tabs separate words; `'...'` quotes literally;
/// `"..."` quotes, and inside it a backslash escapes `"` and `\` (before
/// any other character the backslash is kept); outside quotes a backslash
/// escapes any character. Quoted and unquoted parts next to each other
/// join into one word. `#`, `$` and `` ` `` are plain characters.
pub fn parse_op_command(value: &str) -> Result<OpCommand, ResolveError> {
    let bad = |reason: &str| ResolveError::BadCommand {
        command: value.to_string(),
        reason: reason.to_string(),
    };
    let trimmed = value.trim();
    if let Some(rest) = trimmed.strip_prefix('!') {
        let mut words = split_words(rest).map_err(bad)?.into_iter();
        match words.next() {
            None => Err(bad("missing program after \"!\"")),
            Some(program) if program.is_empty() => Err(bad("empty program name")),
            Some(program) => Ok(OpCommand::Exec {
                program,
                args: words.collect(),
            }),
        }
    } else {
        let mut words = split_words(trimmed).map_err(bad)?.into_iter();
        match words.next() {
            None => Err(bad("empty command")),
            Some(module) if module.is_empty() => Err(bad("empty module name")),
            Some(module) => Ok(OpCommand::Python {
                module,
                args: words.collect(),
            }),
        }
    }
}

/// Shell-like word splitting; see [`parse_op_command`]. The `shlex` crate splits; it
/// reads as a POSIX shell does where Python's `shlex.split` differs in three ways that
/// Guild files keep (a `#` opening a word starts a comment there, and in double quotes
/// `\$` and `` \` `` lose their backslash), so `#`, `$` and `` ` `` stand aside as
/// characters no shell treats specially while it splits.
pub(crate) fn split_words(s: &str) -> Result<Vec<String>, &'static str> {
    const ASIDE: [char; 3] = ['#', '$', '`'];
    if !s.contains(ASIDE) {
        return shlex::split(s).ok_or_else(|| why_unsplittable(s));
    }
    let used: std::collections::HashSet<char> = s.chars().filter(|c| *c >= STAND_INS).collect();
    let mut free = (STAND_INS..=char::MAX).filter(|c| !used.contains(c));
    let aside: Vec<(char, char)> = ASIDE.iter().filter_map(|&c| Some((c, free.next()?))).collect();
    let back: Vec<(char, char)> = aside.iter().map(|&(c, stand_in)| (stand_in, c)).collect();
    let hidden = replace_chars(s, &aside);
    let words = shlex::split(&hidden).ok_or_else(|| why_unsplittable(&hidden))?;
    Ok(words.iter().map(|word| replace_chars(word, &back)).collect())
}

fn replace_chars(text: &str, pairs: &[(char, char)]) -> String {
    text.chars()
        .map(|c| pairs.iter().find(|(from, _)| *from == c).map_or(c, |(_, to)| *to))
        .collect()
}

/// The first of the private-use characters that stand in for `#`, `$` and `` ` ``.
const STAND_INS: char = '\u{E000}';

/// Why `shlex` could not split `s`. Splitting fails only at the end of the text, so
/// what would complete it says what was open: any character completes a trailing
/// backslash, a `'` an open single quote, and only a `"` an open double quote.
fn why_unsplittable(s: &str) -> &'static str {
    if shlex::split(&format!("{s}x")).is_some() {
        "trailing backslash"
    } else if shlex::split(&format!("{s}'")).is_some() {
        "unterminated single quote"
    } else {
        "unterminated double quote"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn py(module: &str, args: &[&str]) -> OpCommand {
        OpCommand::Python {
            module: module.to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
        }
    }

    fn exec(program: &str, args: &[&str]) -> OpCommand {
        OpCommand::Exec {
            program: program.to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
        }
    }

    fn words(s: &str) -> Vec<String> {
        split_words(s).unwrap()
    }

    #[test]
    fn python_module() {
        assert_eq!(parse_op_command("intro").unwrap(), py("intro", &[]));
        assert_eq!(
            parse_op_command("  expert --hidden 64\t--fast ").unwrap(),
            py("expert", &["--hidden", "64", "--fast"])
        );
        assert_eq!(parse_op_command("pkg.train --x").unwrap(), py("pkg.train", &["--x"]));
    }

    #[test]
    fn executable() {
        assert_eq!(
            parse_op_command("!./train.sh --fast").unwrap(),
            exec("./train.sh", &["--fast"])
        );
        assert_eq!(
            parse_op_command("! ./train.sh --fast").unwrap(),
            exec("./train.sh", &["--fast"])
        );
        assert_eq!(
            parse_op_command("!\"my tool\" 'a b'").unwrap(),
            exec("my tool", &["a b"])
        );
        assert_eq!(parse_op_command("!make").unwrap(), exec("make", &[]));
    }

    #[test]
    fn quoting() {
        assert_eq!(words("a 'b c' d"), ["a", "b c", "d"]);
        assert_eq!(words(r#"a "b c" d"#), ["a", "b c", "d"]);
        assert_eq!(words(r#"--msg="hello world""#), ["--msg=hello world"]);
        assert_eq!(words(r#"a'b c'd"#), ["ab cd"]);
        assert_eq!(words(r#"'' """#), ["", ""]);
        assert_eq!(words(r#"'it"s' "it's""#), [r#"it"s"#, "it's"]);
        assert_eq!(words(r#"'a\nb'"#), [r"a\nb"]);
        assert_eq!(words(""), Vec::<String>::new());
        assert_eq!(words("  \t "), Vec::<String>::new());
    }

    #[test]
    fn backslashes() {
        assert_eq!(words(r"a\ b c"), ["a b", "c"]);
        assert_eq!(words(r"\'x\'"), ["'x'"]);
        assert_eq!(words(r#""a\"b""#), [r#"a"b"#]);
        assert_eq!(words(r#""a\\b""#), [r"a\b"]);
        assert_eq!(words(r#""a\nb""#), [r"a\nb"]);
        assert_eq!(words(r"a\\b"), [r"a\b"]);
    }

    /// Where a POSIX shell (and the `shlex` crate) reads these otherwise, Guild files
    /// keep Python's `shlex.split`: no comments, backslashes kept before `$` and `` ` ``
    /// in double quotes.
    #[test]
    fn hash_dollar_and_backtick_are_plain() {
        assert_eq!(words("train #1 --tag #x"), ["train", "#1", "--tag", "#x"]);
        assert_eq!(words("#first"), ["#first"]);
        assert_eq!(words(r#""\$RUNDIR" "\`x\`" \$y"#), [r"\$RUNDIR", r"\`x\`", "$y"]);
        assert_eq!(words("--out $RUNDIR/x '#' \"#\""), ["--out", "$RUNDIR/x", "#", "#"]);
        assert_eq!(
            parse_op_command("!./run.sh --note #1").unwrap(),
            exec("./run.sh", &["--note", "#1"])
        );
        // The private-use characters that stand in for them while splitting are kept too.
        assert_eq!(words("a\u{E000}# \u{E001}$`"), ["a\u{E000}#", "\u{E001}$`"]);
    }

    /// Spaces and tabs separate words, as in a shell; other white space (a no-break
    /// space, a carriage return) is part of a word.
    #[test]
    fn only_spaces_and_tabs_separate() {
        assert_eq!(words("a\u{a0}b\tc d"), ["a\u{a0}b", "c", "d"]);
        assert_eq!(words("a\rb"), ["a\rb"]);
    }

    #[test]
    fn errors() {
        let cases = [
            ("intro 'x", "invalid command \"intro 'x\": unterminated single quote"),
            (
                r#"intro "x"#,
                r#"invalid command "intro \"x": unterminated double quote"#,
            ),
            (
                r#"intro "x\"#,
                r#"invalid command "intro \"x\\": unterminated double quote"#,
            ),
            (r"intro x\", r#"invalid command "intro x\\": trailing backslash"#),
            ("", r#"invalid command "": empty command"#),
            ("   ", r#"invalid command "   ": empty command"#),
            ("!", r#"invalid command "!": missing program after "!""#),
            ("! ", r#"invalid command "! ": missing program after "!""#),
            ("!'' x", r#"invalid command "!'' x": empty program name"#),
            ("'' x", r#"invalid command "'' x": empty module name"#),
        ];
        for (value, message) in cases {
            let err = parse_op_command(value).unwrap_err();
            assert_eq!(err.to_string(), message, "{value}");
        }
    }
}
