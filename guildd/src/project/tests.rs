//! Tests of the `Guild` file parser and the project API.

use super::*;

const EXAMPLE: &str = r#"# comment (also ; comments), blank lines ignored
[project]
name            = MNIST
description     = Guild MNIST example
runroot         = runs          # optional, default "runs" (folder for runs, relative to project)
stats_interval  = 5             # optional, seconds (a positive number)

[model "intro"]
description     = Simple softmax regression
train           = intro
prepare         = intro --prepare
train_requires  = ./data
evaluate        = intro --test
serve           = intro --serve

[model "expert"]
train           = expert --hidden 64
train_requires  = ./data, ./other

[flags]
datadir         = ./data
rundir          = $RUNDIR
batch_size      = 100
epochs          = 10

[flags "intro"]          # name matches a model: that model's flags
learning_rate   = 0.5

[flags "fast"]           # name is not a model: a profile, selected with --profile fast
epochs          = 2
"#;

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn op(name: &str, command: &str, requires: &[&str], line: usize) -> Op {
    Op {
        name: name.to_string(),
        command: command.to_string(),
        requires: strings(requires),
        line,
    }
}

/// The Display of the error from parsing `text` with label "Guild".
fn error(text: &str) -> String {
    match parse(text, "Guild") {
        Ok(project) => panic!("expected an error, parsed {project:?}"),
        Err(err) => err.to_string(),
    }
}

/// Prefixes `body` with a valid model section (two lines).
fn with_model(body: &str) -> String {
    format!("[model \"m\"]\ntrain = m\n{body}")
}

#[test]
fn full_example() {
    let project = parse(EXAMPLE, "Guild").unwrap();
    let expected = Project {
        name: "MNIST".to_string(),
        description: "Guild MNIST example".to_string(),
        runroot: "runs".to_string(),
        stats_interval: Some(5.0),
        models: vec![
            Model {
                name: "intro".to_string(),
                description: "Simple softmax regression".to_string(),
                line: 8,
                ops: vec![
                    op("prepare", "intro --prepare", &[], 11),
                    op("train", "intro", &["./data"], 10),
                    op("evaluate", "intro --test", &[], 13),
                    op("serve", "intro --serve", &[], 14),
                ],
                flags: pairs(&[("learning_rate", "0.5")]),
            },
            Model {
                name: "expert".to_string(),
                description: String::new(),
                line: 16,
                ops: vec![op("train", "expert --hidden 64", &["./data", "./other"], 17)],
                flags: Vec::new(),
            },
        ],
        flags: pairs(&[
            ("datadir", "./data"),
            ("rundir", "$RUNDIR"),
            ("batch_size", "100"),
            ("epochs", "10"),
        ]),
        profiles: vec![Profile {
            name: "fast".to_string(),
            flags: pairs(&[("epochs", "2")]),
            line: 29,
        }],
    };
    assert_eq!(project, expected);
}

#[test]
fn example_api() {
    let project = parse(EXAMPLE, "Guild").unwrap();
    assert_eq!(project.model(None).unwrap().name, "intro");
    assert_eq!(project.model(Some("expert")).unwrap().name, "expert");
    assert_eq!(
        project.model(Some("x")).unwrap_err().to_string(),
        r#"unknown model "x" (models: intro, expert)"#
    );
    let expert = project.model(Some("expert")).unwrap();
    assert_eq!(expert.op("train").unwrap().command, "expert --hidden 64");
    assert_eq!(
        expert.op("serve").unwrap_err().to_string(),
        r#"model "expert" has no operation "serve" (it defines: train)"#
    );
    let intro = project.model(None).unwrap();
    assert_eq!(
        intro.op("test").unwrap_err().to_string(),
        r#"model "intro" has no operation "test" (it defines: prepare, train, evaluate, serve)"#
    );
    let flags = project.resolve_flags(intro, Some("fast"), &[]).unwrap();
    assert_eq!(
        flags,
        pairs(&[
            ("datadir", "./data"),
            ("rundir", "$RUNDIR"),
            ("batch_size", "100"),
            ("epochs", "2"),
            ("learning_rate", "0.5"),
        ])
    );
    assert_eq!(
        parse_op_command(&intro.op("prepare").unwrap().command).unwrap(),
        OpCommand::Python {
            module: "intro".to_string(),
            args: strings(&["--prepare"]),
        }
    );
}

#[test]
fn defaults_and_minimal_file() {
    let project = parse("[model \"m\"]\ntrain = m", "Guild").unwrap();
    assert_eq!(project.name, "");
    assert_eq!(project.description, "");
    assert_eq!(project.runroot, DEFAULT_RUNROOT);
    assert_eq!(project.stats_interval, None);
    assert!(project.flags.is_empty() && project.profiles.is_empty());
    assert_eq!(project.models.len(), 1);
    // A model need not define any operation.
    let bare = parse("[model \"m\"]\ndescription = nothing yet\n", "Guild").unwrap();
    assert_eq!(
        bare.model(None).unwrap().op("train").unwrap_err().to_string(),
        r#"model "m" has no operation "train" (it defines no operations)"#
    );
}

#[test]
fn model_flags_declared_before_the_model() {
    let text = "[flags \"late\"]\nx = 1\n[flags \"p\"]\ny = 2\n\
                [model \"first\"]\ntrain = a\n[model \"late\"]\ntrain = b\n";
    let project = parse(text, "Guild").unwrap();
    assert_eq!(project.model(Some("late")).unwrap().flags, pairs(&[("x", "1")]));
    assert!(project.model(None).unwrap().flags.is_empty());
    assert_eq!(project.model(None).unwrap().name, "first");
    assert_eq!(project.profiles.len(), 1);
    assert_eq!(project.profiles[0].name, "p");
    assert_eq!(project.profiles[0].line, 3);
}

#[test]
fn continuation_lines() {
    let text = "[model \"m\"]\n\
                train = m --a 1\n  --b 2\n\t--c 3   # comment\n\
                train_requires = ./data,\n    ./more,\n    ,./last\n\
                evaluate =\n   m --test\n\
                serve = m\n# a comment line does not end the value\n  --serve\n\
                [flags]\nmsg = hello\n  world\n\n  after = blank\n";
    let project = parse(text, "Guild").unwrap();
    let m = project.model(None).unwrap();
    let train = m.op("train").unwrap();
    assert_eq!(train.command, "m --a 1 --b 2 --c 3");
    assert_eq!(train.requires, strings(&["./data", "./more", "./last"]));
    assert_eq!(m.op("evaluate").unwrap().command, "m --test");
    assert_eq!(m.op("serve").unwrap().command, "m --serve");
    // After a blank line, an indented line is a line of its own.
    assert_eq!(project.flags, pairs(&[("msg", "hello world"), ("after", "blank")]));
}

#[test]
fn indented_line_after_header_is_not_a_continuation() {
    let project = parse("  [model \"m\"]\n  train = m\n", "Guild").unwrap();
    assert_eq!(project.model(None).unwrap().op("train").unwrap().command, "m");
}

#[test]
fn inline_comments() {
    let text = with_model(
        "[flags]\na=b#c\nb = x # c\nc = x ; c\nd = x;c\ne = x\t# tab\nf = # all comment\n\
         g =#kept\nh = url=http://x/#frag\ni = \"a # b\"\n",
    );
    let project = parse(&text, "Guild").unwrap();
    assert_eq!(
        project.flags,
        pairs(&[
            ("a", "b#c"),
            ("b", "x"),
            ("c", "x"),
            ("d", "x;c"),
            ("e", "x"),
            ("f", ""),
            ("g", "#kept"),
            ("h", "url=http://x/#frag"),
            ("i", "\"a"),
        ])
    );
}

#[test]
fn line_endings_bom_and_header_spacing() {
    let text = "\u{feff}[ model  \"x\" ]\r\ntrain = x\r\n[ flags ]\r\na = 1\r\n[flags\t\"p\"]\r\nb = 2";
    let project = parse(text, "Guild").unwrap();
    assert_eq!(project.models[0].name, "x");
    assert_eq!(project.models[0].ops[0].command, "x");
    assert_eq!(project.flags, pairs(&[("a", "1")]));
    assert_eq!(project.profiles[0].flags, pairs(&[("b", "2")]));
}

#[test]
fn stats_interval_values() {
    for (value, expected) in [("5", 5.0), ("0.5", 0.5), ("1e1", 10.0), ("0", 0.0)] {
        let text = with_model(&format!("[project]\nstats_interval = {value}\n"));
        assert_eq!(parse(&text, "Guild").unwrap().stats_interval, Some(expected));
    }
    for value in ["abc", "-1", "inf", "NaN", "5s", ""] {
        let text = with_model(&format!("[project]\nstats_interval = {value}\n"));
        assert_eq!(
            error(&text),
            format!(
                "Guild:4: invalid stats_interval {value:?} in [project] \
                 (expected a number of seconds, 0 for no stats)"
            )
        );
    }
}

#[test]
fn errors_name_the_line_and_expectation() {
    let cases: &[(&str, &str)] = &[
        (
            "x = 1\n[model \"m\"]\ntrain = m\n",
            r#"Guild:1: expected a section header like [model "NAME"] before "x = 1""#,
        ),
        (
            "# intro\n\nname\n",
            r#"Guild:3: expected a section header like [model "NAME"] before "name""#,
        ),
        (
            "[model \"m\"\n",
            r#"Guild:1: malformed section header "[model \"m\"": missing closing "]""#,
        ),
        (
            "[project] x\n",
            r#"Guild:1: malformed section header "[project] x": unexpected text after "]""#,
        ),
        (
            "[model m]\n",
            r#"Guild:1: malformed section header: the name must be in double quotes, like [model "NAME"]"#,
        ),
        (
            "[flags \"p]\n",
            r#"Guild:1: malformed section header: the name must be in double quotes, like [flags "NAME"]"#,
        ),
        (
            "[model \"\"]\n",
            r#"Guild:1: empty name in [model ""] (expected [model "NAME"])"#,
        ),
        (
            "[model \"a b\"]\n",
            r#"Guild:1: invalid name "a b" in [model] header (names cannot contain whitespace or quotes)"#,
        ),
        (
            "[model \"a\"b\"]\n",
            r#"Guild:1: invalid name "a\"b" in [model] header (names cannot contain whitespace or quotes)"#,
        ),
        (
            "[models \"m\"]\n",
            r#"Guild:1: unknown section kind "models" (expected one of [project], [model "NAME"], [flags], [flags "NAME"])"#,
        ),
        (
            "[]\n",
            r#"Guild:1: malformed section header "[]" (expected one of [project], [model "NAME"], [flags], [flags "NAME"])"#,
        ),
        (
            "[\"m\"]\n",
            r#"Guild:1: malformed section header "[\"m\"]" (expected one of [project], [model "NAME"], [flags], [flags "NAME"])"#,
        ),
        ("[model]\n", r#"Guild:1: [model] needs a name, like [model "NAME"]"#),
        (
            "[project \"p\"]\n",
            r#"Guild:1: [project] does not take a name (got [project "p"]); use [project]"#,
        ),
        (
            "[model \"m\"]\ntrain: m\n",
            r#"Guild:2: expected NAME = VALUE, got "train: m""#,
        ),
        (
            "[model \"m\"]\n= m\n",
            r#"Guild:2: missing name before "=" in "= m" (expected NAME = VALUE)"#,
        ),
        (
            "[model \"m\"]\ntrain = m\n[flags]\n1x = 2\n",
            r#"Guild:4: invalid flag name "1x" in [flags] (flag names start with a letter or "_" and contain only letters, digits, "_", "-" and ".")"#,
        ),
        (
            "[model \"m\"]\ntrain = m\n[flags \"m\"]\nlearning rate = 2\n",
            r#"Guild:4: invalid flag name "learning rate" in [flags "m"] (flag names start with a letter or "_" and contain only letters, digits, "_", "-" and ".")"#,
        ),
        (
            "[project]\nname = MNIST\n\n[model \"intro\"]\ndescription = x\ntrain = intro\ntrian = intro --x\n",
            r#"Guild:7: unknown operation "trian" in model "intro" (expected one of prepare, train, evaluate, serve)"#,
        ),
        (
            "[model \"m\"]\nServe = m\n",
            r#"Guild:2: unknown operation "Serve" in model "m" (expected one of prepare, train, evaluate, serve)"#,
        ),
        (
            "[model \"m\"]\ndescripton = m\n",
            r#"Guild:2: unknown key "descripton" in model "m" (expected one of description, prepare, train, evaluate, serve, prepare_requires, train_requires, evaluate_requires, serve_requires)"#,
        ),
        (
            "[model \"m\"]\ntrain = m\ntest_requires = ./data\n",
            r#"Guild:3: unknown key "test_requires" in model "m": "test" is not an operation (expected one of prepare_requires, train_requires, evaluate_requires, serve_requires)"#,
        ),
        (
            "[model \"m\"]\nserve_requires = ./x\ntrain = m\n[flags]\n",
            r#"Guild:2: "serve_requires" is set but model "m" defines no "serve" operation"#,
        ),
        (
            "[model \"m\"]\ntrain =\n",
            r#"Guild:2: empty command for operation "train" in model "m""#,
        ),
        (
            "[model \"m\"]\ntrain = # later\n\n  [flags]\n",
            r#"Guild:2: empty command for operation "train" in model "m""#,
        ),
        (
            "[project]\nnme = x\n",
            r#"Guild:2: unknown key "nme" in [project] (expected one of name, description, runroot, stats_interval)"#,
        ),
        (
            "[project]\nrunroot =\n",
            r#"Guild:2: empty runroot in [project] (expected a folder for runs; leave it out to use "runs")"#,
        ),
        (
            "[model \"m\"]\ntrain = m\n[flags]\nepochs = 10\nbatch_size = 1\n\n# more\ndatadir = x\nepochs = 3\n",
            r#"Guild:9: duplicate key "epochs" in [flags] (first set on line 4)"#,
        ),
        (
            "[model \"m\"]\ntrain = a\ntrain = b\n",
            r#"Guild:3: duplicate key "train" in [model "m"] (first set on line 2)"#,
        ),
        (
            "[model \"m\"]\ntrain = a\n[model \"m\"]\n",
            r#"Guild:3: duplicate section [model "m"] (first defined on line 1)"#,
        ),
        (
            "[model \"m\"]\ntrain = a\n[flags \"p\"]\n[flags \"p\"]\n",
            r#"Guild:4: duplicate section [flags "p"] (first defined on line 3)"#,
        ),
        (
            "[flags]\n[model \"m\"]\ntrain = a\n[flags]\n",
            r#"Guild:4: duplicate section [flags] (first defined on line 1)"#,
        ),
        (
            "[project]\n[model \"m\"]\ntrain = a\n[project]\n",
            r#"Guild:4: duplicate section [project] (first defined on line 1)"#,
        ),
        (
            "[project]\nname = x\n[flags]\na = 1\n",
            r#"Guild: no [model "NAME"] section; define at least one model"#,
        ),
        ("", r#"Guild: no [model "NAME"] section; define at least one model"#),
    ];
    for (text, message) in cases {
        assert_eq!(&error(text), message, "for {text:?}");
    }
}

#[test]
fn first_error_in_the_file_wins() {
    // The empty command on line 2 is found before the bad header on line 3.
    assert_eq!(
        error("[model \"m\"]\ntrain =\n[bad\n"),
        r#"Guild:2: empty command for operation "train" in model "m""#
    );
    // The missing op (line 2) is found when the section ends, before line 3.
    assert_eq!(
        error("[model \"m\"]\nserve_requires = x\n[bad\n"),
        r#"Guild:2: "serve_requires" is set but model "m" defines no "serve" operation"#
    );
}

#[test]
fn error_parts_and_label() {
    let err = parse("[model \"m\"]\ntrian = x\n", "/p/Guild").unwrap_err();
    assert_eq!(err.label(), "/p/Guild");
    assert_eq!(err.line(), Some(2));
    assert!(err.message().starts_with("unknown operation \"trian\""));
    assert!(err.to_string().starts_with("/p/Guild:2: unknown operation"));
    let err = parse("", "Guild").unwrap_err();
    assert_eq!(err.line(), None);
}

fn temp_file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("guildfile-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn load_files() {
    let path = temp_file("Guild-ok", EXAMPLE.as_bytes());
    assert_eq!(load(&path).unwrap(), parse(EXAMPLE, "Guild").unwrap());

    let path = temp_file("Guild-bad", b"[model \"m\"]\ntrian = x\n");
    let label = path.display().to_string();
    assert_eq!(
        load(&path).unwrap_err().to_string(),
        format!(
            "{label}:2: unknown operation \"trian\" in model \"m\" \
             (expected one of prepare, train, evaluate, serve)"
        )
    );

    let path = temp_file("Guild-latin1", b"[model \"m\"]\ntrain = caf\xe9\n");
    let label = path.display().to_string();
    let err = load(&path).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("cannot read Guild file at {label}: not valid UTF-8 (invalid byte at offset 23)")
    );
    assert_eq!(err.label(), label);
    assert_eq!(err.line(), None);

    let missing = std::path::Path::new("/nonexistent/dir/Guild");
    let err = load(missing).unwrap_err().to_string();
    assert!(
        err.starts_with("cannot read Guild file at /nonexistent/dir/Guild: "),
        "{err}"
    );
    if let Some(dir) = path.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn model_lookup_errors() {
    let project = Project {
        name: String::new(),
        description: String::new(),
        runroot: DEFAULT_RUNROOT.to_string(),
        stats_interval: None,
        models: Vec::new(),
        flags: Vec::new(),
        profiles: Vec::new(),
    };
    assert_eq!(
        project.model(None).unwrap_err().to_string(),
        "this project defines no models"
    );
    assert_eq!(
        project.model(Some("m")).unwrap_err().to_string(),
        r#"unknown model "m" (this project defines no models)"#
    );
}

#[test]
fn no_panics_on_odd_input() {
    let mut inputs: Vec<String> = vec![
        "[".into(),
        "]".into(),
        "[[]]".into(),
        "[model \"".into(),
        "[model \"\"\"]".into(),
        "=".into(),
        "\u{feff}".into(),
        "[model \"é\"]\nträin = ü\n".into(),
        "[model \"m\"]\n_requires = x\n".into(),
        "[model \"m\"]\n\u{0}=\u{0}\n".into(),
        "\t\n \r\n\r".into(),
        "[flags \"m\"]\n  continued\n".into(),
    ];
    // Every prefix of the example, cut at each char boundary.
    for (i, _) in EXAMPLE.char_indices() {
        inputs.push(EXAMPLE.get(..i).unwrap_or_default().to_string());
    }
    // Pseudo-random text from the file's own alphabet.
    let alphabet: Vec<char> = "[]\"=#; \t\nmodelflagsprojectrain_requires!'\\é".chars().collect();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..2000 {
        let mut s = String::new();
        for _ in 0..40 {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let index = usize::try_from(seed >> 33).unwrap_or(0) % alphabet.len();
            s.push(alphabet[index]);
        }
        inputs.push(s);
    }
    for input in &inputs {
        if let Ok(project) = parse(input, "Guild") {
            for model in &project.models {
                let _ = project.resolve_flags(model, None, &[]);
                for op in &model.ops {
                    let _ = parse_op_command(&op.command);
                }
            }
        }
        let _ = parse_op_command(input);
        let _ = parse_cli_flag(input);
    }
}
