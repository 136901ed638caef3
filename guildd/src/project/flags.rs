//! Flag names, command-line flags and flag resolution.

use super::{Model, Project, ResolveError};

/// Explains which flag names are valid; used in error messages.
pub(crate) const FLAG_NAME_RULE: &str = "flag names start with a letter or \"_\" and contain \
     only letters, digits, \"_\", \"-\" and \".\"";

/// A flag name starts with an ASCII letter or `_` and contains only ASCII
/// letters, digits, `_`, `-` and `.`.
pub(crate) fn is_valid_flag_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Parses a `NAME=VALUE` command-line flag. The value is kept as given
/// (it may be empty or contain `=`); the name must be a valid flag name.
pub fn parse_cli_flag(arg: &str) -> Result<(String, String), ResolveError> {
    let Some((name, value)) = arg.split_once('=') else {
        return Err(ResolveError::BadCliFlag(arg.to_string()));
    };
    if name.is_empty() {
        return Err(ResolveError::BadCliFlag(arg.to_string()));
    }
    if !is_valid_flag_name(name) {
        return Err(ResolveError::InvalidFlagName {
            name: name.to_string(),
            arg: arg.to_string(),
        });
    }
    Ok((name.to_string(), value.to_string()))
}

/// Sets `name` to `value`, keeping the position of a name already present.
fn set(flags: &mut Vec<(String, String)>, name: &str, value: &str) {
    match flags.iter_mut().find(|(n, _)| n == name) {
        Some(slot) => slot.1 = value.to_string(),
        None => flags.push((name.to_string(), value.to_string())),
    }
}

impl Project {
    /// Resolved flags for a model and optional profile, with command-line
    /// overrides. Precedence: cli > profile > model > `[flags]`. Order:
    /// `[flags]` order, then names first seen in the model's flags, then
    /// the profile's, then the command line's.
    ///
    /// A command-line flag must name a flag defined by `[flags]`, the
    /// model's flags or the chosen profile. When the command line sets a
    /// flag twice, the last value wins.
    pub fn resolve_flags(
        &self,
        model: &Model,
        profile: Option<&str>,
        cli: &[(String, String)],
    ) -> Result<Vec<(String, String)>, ResolveError> {
        let profile = match profile {
            None => None,
            Some(name) => Some(self.profile(name).ok_or_else(|| ResolveError::UnknownProfile {
                name: name.to_string(),
                profiles: self.profiles.iter().map(|p| p.name.clone()).collect(),
            })?),
        };
        let mut resolved: Vec<(String, String)> = Vec::new();
        let layers = [Some(&self.flags), Some(&model.flags), profile.map(|p| &p.flags)];
        for layer in layers.into_iter().flatten() {
            for (name, value) in layer {
                set(&mut resolved, name, value);
            }
        }
        if let Some((unknown, _)) = cli.iter().find(|(name, _)| !resolved.iter().any(|(n, _)| n == name)) {
            let mut flags: Vec<String> = resolved.iter().map(|(n, _)| n.clone()).collect();
            flags.sort();
            return Err(ResolveError::UnknownFlag {
                name: unknown.clone(),
                model: model.name.clone(),
                flags,
            });
        }
        for (name, value) in cli {
            set(&mut resolved, name, value);
        }
        Ok(resolved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::parse;

    const FILE: &str = r#"
[model "intro"]
train = intro

[model "expert"]
train = expert

[flags]
datadir = ./data
epochs = 10
batch_size = 100

[flags "intro"]
learning_rate = 0.5
epochs = 20

[flags "fast"]
epochs = 2
dropout = 0.1
learning_rate = 0.9
"#;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    #[test]
    fn precedence_of_all_four_levels() {
        let project = parse(FILE, "Guild").unwrap();
        let intro = project.model(Some("intro")).unwrap();
        let cli = pairs(&[("epochs", "7"), ("dropout", "0.2")]);
        let flags = project.resolve_flags(intro, Some("fast"), &cli).unwrap();
        assert_eq!(
            flags,
            pairs(&[
                ("datadir", "./data"),    // [flags]
                ("epochs", "7"),          // cli over profile 2, model 20, [flags] 10
                ("batch_size", "100"),    // [flags]
                ("learning_rate", "0.9"), // profile over model
                ("dropout", "0.2"),       // cli over profile
            ])
        );
    }

    #[test]
    fn each_level_alone() {
        let project = parse(FILE, "Guild").unwrap();
        let expert = project.model(Some("expert")).unwrap();
        let base = project.resolve_flags(expert, None, &[]).unwrap();
        assert_eq!(
            base,
            pairs(&[("datadir", "./data"), ("epochs", "10"), ("batch_size", "100")])
        );
        let intro = project.model(None).unwrap();
        let model = project.resolve_flags(intro, None, &[]).unwrap();
        assert_eq!(
            model,
            pairs(&[
                ("datadir", "./data"),
                ("epochs", "20"),
                ("batch_size", "100"),
                ("learning_rate", "0.5"),
            ])
        );
        let profile = project.resolve_flags(expert, Some("fast"), &[]).unwrap();
        assert_eq!(
            profile,
            pairs(&[
                ("datadir", "./data"),
                ("epochs", "2"),
                ("batch_size", "100"),
                ("dropout", "0.1"),
                ("learning_rate", "0.9"),
            ])
        );
    }

    #[test]
    fn order_keeps_first_seen_position() {
        let text = "[model \"m\"]\ntrain = m\n[flags]\nb = 1\na = 2\n\
                    [flags \"m\"]\nz = 3\nb = 4\n[flags \"p\"]\ny = 5\na = 6\nz = 7\n";
        let project = parse(text, "Guild").unwrap();
        let m = project.model(None).unwrap();
        let cli = pairs(&[("y", "8"), ("b", "9")]);
        let flags = project.resolve_flags(m, Some("p"), &cli).unwrap();
        assert_eq!(flags, pairs(&[("b", "9"), ("a", "6"), ("z", "7"), ("y", "8")]));
    }

    #[test]
    fn last_cli_value_wins() {
        let project = parse(FILE, "Guild").unwrap();
        let m = project.model(None).unwrap();
        let cli = pairs(&[("epochs", "1"), ("epochs", "2")]);
        let flags = project.resolve_flags(m, None, &cli).unwrap();
        assert!(flags.contains(&("epochs".to_string(), "2".to_string())));
    }

    #[test]
    fn unknown_profile_lists_profiles() {
        let project = parse(FILE, "Guild").unwrap();
        let m = project.model(None).unwrap();
        let err = project.resolve_flags(m, Some("slow"), &[]).unwrap_err();
        assert_eq!(err.to_string(), r#"unknown profile "slow" (profiles: fast)"#);

        let bare = parse("[model \"m\"]\ntrain = m\n", "Guild").unwrap();
        let m = bare.model(None).unwrap();
        let err = bare.resolve_flags(m, Some("fast"), &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"unknown profile "fast" (this project defines no profiles)"#
        );
    }

    #[test]
    fn unknown_cli_flag_lists_sorted_flags() {
        let text = "[model \"intro\"]\ntrain = intro\n[flags]\ndatadir = ./data\n\
                    rundir = $RUNDIR\nbatch_size = 100\nepochs = 10\n";
        let project = parse(text, "Guild").unwrap();
        let m = project.model(None).unwrap();
        let err = project
            .resolve_flags(m, None, &pairs(&[("epochs", "1"), ("lr", "0.1")]))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"unknown flag "lr" for model "intro" (flags: batch_size, datadir, epochs, rundir)"#
        );

        let bare = parse("[model \"m\"]\ntrain = m\n", "Guild").unwrap();
        let m = bare.model(None).unwrap();
        let err = bare.resolve_flags(m, None, &pairs(&[("x", "1")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"unknown flag "x" for model "m" (no flags are defined)"#
        );
    }

    #[test]
    fn cli_may_set_flags_of_model_and_profile() {
        let project = parse(FILE, "Guild").unwrap();
        let intro = project.model(Some("intro")).unwrap();
        let expert = project.model(Some("expert")).unwrap();
        let lr = pairs(&[("learning_rate", "1")]);
        assert!(project.resolve_flags(intro, None, &lr).is_ok());
        assert!(project.resolve_flags(expert, Some("fast"), &lr).is_ok());
        let err = project.resolve_flags(expert, None, &lr).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"unknown flag "learning_rate" for model "expert" (flags: batch_size, datadir, epochs)"#
        );
    }

    #[test]
    fn cli_flags() {
        assert_eq!(parse_cli_flag("lr=0.1").unwrap(), ("lr".to_string(), "0.1".to_string()));
        assert_eq!(
            parse_cli_flag("msg=a=b c").unwrap(),
            ("msg".to_string(), "a=b c".to_string())
        );
        assert_eq!(parse_cli_flag("empty=").unwrap(), ("empty".to_string(), String::new()));
        assert_eq!(
            parse_cli_flag("x").unwrap_err().to_string(),
            r#"expected NAME=VALUE, got "x""#
        );
        assert_eq!(
            parse_cli_flag("=3").unwrap_err().to_string(),
            r#"expected NAME=VALUE, got "=3""#
        );
        assert_eq!(
            parse_cli_flag("1x=3").unwrap_err().to_string(),
            r#"invalid flag name "1x" in "1x=3" (flag names start with a letter or "_" and contain only letters, digits, "_", "-" and ".")"#
        );
    }

    #[test]
    fn flag_name_rule() {
        for good in ["a", "_", "A1", "learning_rate", "a-b", "a.b", "_x.y-z"] {
            assert!(is_valid_flag_name(good), "{good}");
        }
        for bad in ["", "1a", "-a", ".a", "a b", "a$", "é", "a=b"] {
            assert!(!is_valid_flag_name(bad), "{bad}");
        }
    }
}
