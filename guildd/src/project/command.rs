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
/// Splitting is shell-like, as Python's `shlex.split`: whitespace
/// separates words; `'...'` quotes literally; `"..."` quotes, and inside
/// it a backslash escapes `"` and `\` (before any other character the
/// backslash is kept); outside quotes a backslash escapes any character.
/// Quoted and unquoted parts next to each other join into one word.
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

/// Shell-like word splitting; see [`parse_op_command`].
fn split_words(s: &str) -> Result<Vec<String>, &'static str> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unterminated single quote"),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("unterminated double quote"),
                        },
                        Some(c) => word.push(c),
                        None => return Err("unterminated double quote"),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => word.push(c),
                    None => return Err("trailing backslash"),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
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
