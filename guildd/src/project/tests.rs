//! Tests of the `Guild` file parser and the project API.

use super::*;

const EXAMPLE: &str = r#"# comment (also ; comments), blank lines ignored
[project]
name            = MNIST
description     = Guild MNIST example
# optional, default "runs" (folder for runs, relative to project)
runroot         = runs
stats_interval  = 5

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

# name matches a model: that model's flags
[flags "intro"]
learning_rate   = 0.5

# name is not a model: a profile, selected with --profile fast
[flags "fast"]
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
    let model = |name: &str, description: &str, line: usize, ops: Vec<Op>, flags| Model {
        name: name.to_string(),
        kind: TargetKind::Model,
        named: true,
        description: description.to_string(),
        line,
        runtime: None,
        sources: Vec::new(),
        sbatch: Vec::new(),
        ops,
        flags,
        gpus: None,
    };
    let expected = Project {
        name: "MNIST".to_string(),
        description: "Guild MNIST example".to_string(),
        runroot: "runs".to_string(),
        stats_interval: Some(5.0),
        models: vec![
            model(
                "intro",
                "Simple softmax regression",
                9,
                vec![
                    op("prepare", "intro --prepare", &[], 12),
                    op("train", "intro", &["./data"], 11),
                    op("evaluate", "intro --test", &[], 14),
                    op("serve", "intro --serve", &[], 15),
                ],
                pairs(&[("learning_rate", "0.5")]),
            ),
            model(
                "expert",
                "",
                17,
                vec![op("train", "expert --hidden 64", &["./data", "./other"], 18)],
                Vec::new(),
            ),
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
            line: 32,
        }],
        ..Project::default()
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
    // A backslash continues a value; whitespace where the parts meet is one space.
    let text = "[model \"m\"]\n\
                train = m --a 1 \\\n  --b 2 \\\n\t--c 3\n\
                train_requires = ./data, \\\n    ./more,\\\n    ,./last\n\
                evaluate = \\\n   m --test\n\
                [flags]\nmsg = hello \\\n  world\n\n  after = blank\n";
    let project = parse(text, "Guild").unwrap();
    let m = project.model(None).unwrap();
    let train = m.op("train").unwrap();
    assert_eq!(train.command, "m --a 1 --b 2 --c 3");
    assert_eq!(train.requires, strings(&["./data", "./more", "./last"]));
    assert_eq!(m.op("evaluate").unwrap().command, "m --test");
    assert_eq!(project.flags, pairs(&[("msg", "hello world"), ("after", "blank")]));
}

#[test]
fn indented_lines_are_attributes_of_their_own() {
    // As the original read them (the later example files indent every attribute):
    // leading whitespace is not significant, so no line continues another by indenting.
    let project = parse("  [model \"m\"]\n  train = m\n    prepare = m --prepare\n", "Guild").unwrap();
    let m = project.model(None).unwrap();
    assert_eq!(m.op("train").unwrap().command, "m");
    assert_eq!(m.op("prepare").unwrap().command, "m --prepare");
}

#[test]
fn comments_are_whole_lines() {
    // The original has no inline comments: a `#` or `;` inside a value is the value's.
    let text = with_model(
        "[flags]\n# a comment\n  ; another\na=b#c\nb = x # c\nc = x ; c\nf = # all\nh = url=http://x/#frag\n",
    );
    let project = parse(&text, "Guild").unwrap();
    assert_eq!(
        project.flags,
        pairs(&[
            ("a", "b#c"),
            ("b", "x # c"),
            ("c", "x ; c"),
            ("f", "# all"),
            ("h", "url=http://x/#frag"),
        ])
    );
}

#[test]
fn colon_delimiters_repeats_and_unnamed_models() {
    let project = parse("[model]\ntrain: intro --x=1\n[flags]\na = 1\na: 2\n", "Guild").unwrap();
    let m = project.model(None).unwrap();
    assert_eq!(m.name, "intro");
    assert_eq!(m.op("train").unwrap().command, "intro --x=1");
    assert_eq!(project.flags, pairs(&[("a", "2")]));
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
            r#"Guild:1: invalid name "a b" in [model] header (names cannot contain whitespace or "/")"#,
        ),
        (
            "[model \"a\"b\"]\n",
            r#"Guild:1: invalid name "a\"b" in [model] header (names cannot contain quotes)"#,
        ),
        (
            "[models \"m\"]\n",
            r#"Guild:1: unknown section kind "models" (expected one of [project], [model "NAME"], [resource "NAME"], [flags], [flags "NAME"], [view], [field "NAME"], [train-field "NAME"], [compare-field "NAME"], [series "NAME"], [template "NAME"])"#,
        ),
        (
            "[]\n",
            r#"Guild:1: malformed section header "[]" (expected [KIND] or [KIND "NAME"])"#,
        ),
        (
            "[\"m\"]\n",
            r#"Guild:1: malformed section header "[\"m\"]" (expected [KIND] or [KIND "NAME"])"#,
        ),
        (
            "[resource]\nprepare = x\n",
            r#"Guild:1: [resource] needs a name, like [resource "NAME"]"#,
        ),
        (
            "[project \"p\"]\n",
            r#"Guild:1: [project] does not take a name (got [project "p"]); use [project]"#,
        ),
        (
            "[model \"m\"]\ntrain m\n",
            r#"Guild:2: expected NAME = VALUE, got "train m""#,
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
            r#"Guild:4: invalid name "learning rate" in "learning rate = 2" (names cannot contain spaces; expected NAME = VALUE)"#,
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
            r#"Guild:2: unknown key "descripton" in model "m" (expected one of description, runtime, sources, gpus, sbatch, prepare, train, evaluate, serve, prepare_requires, train_requires, evaluate_requires, serve_requires)"#,
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
            "[model \"m\"]\nruntime = tensorflw\ntrain = m\n",
            r#"Guild:2: unknown runtime "tensorflw" in [model "m"] (known runtimes: tensorflow, tflearn, python)"#,
        ),
        (
            "[project]\nruntime = theano\n[model \"m\"]\ntrain = m\n",
            r#"Guild:2: unknown runtime "theano" in [project] (known runtimes: tensorflow, tflearn, python)"#,
        ),
        (
            "[model \"m\"]\ntrain = m\n@attr template \"x\"\n",
            r#"Guild:3: unknown directive "@attr" (expected @attrs KIND "NAME", like @attrs template "accuracy-field")"#,
        ),
        (
            "@attrs template \"x\"\n[model \"m\"]\ntrain = m\n",
            "Guild:1: @attrs before any section header (it copies attributes into the section it is in)",
        ),
        (
            "[model \"m\"]\ntrain = m --a \\\n",
            "Guild:2: the value continues (\\ at the end of the line) past the end of the file",
        ),
        (
            "[model \"m\"]\ntrain = m\n[resource \"data\"]\ntrain = x\n",
            r#"Guild:4: unknown key "train" in resource "data" (a resource has description, runtime, sources, sbatch, prepare and prepare_requires)"#,
        ),
        (
            "[model \"m\"]\ntrain = m\n[resource \"m\"]\nprepare = x\n",
            r#"Guild:3: resource "m" has the name of the model defined on line 1"#,
        ),
        (
            "[model \"intro\"]\ntrain = a\n[model]\ntrain = intro --x\n",
            r#"Guild:3: [model] without a name reads as model "intro" (its train op), which is also defined on line 1; name it"#,
        ),
        (
            "[model \"m\"]\ntrain = m\nsources = [\n",
            r#"Guild:3: sources in model "m": invalid pattern "[": unclosed character class; missing ']'"#,
        ),
        (
            "[project]\nnme = x\n",
            r#"Guild:2: unknown key "nme" in [project] (expected one of name, description, runroot, stats_interval, sources, tags, runtime)"#,
        ),
        (
            "[project]\nrunroot =\n",
            r#"Guild:2: empty runroot in [project] (expected a folder for runs; leave it out to use "runs")"#,
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
    let mut wrong = Vec::new();
    for (text, message) in cases {
        let got = parse(text, "Guild")
            .err()
            .map_or("<parsed>".to_string(), |e| e.to_string());
        if &got != message {
            wrong.push(format!("for {text:?}\n   got: {got}\n  want: {message}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
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

/// A file of `bytes` named `name` in a temporary folder (removed with the returned
/// guard).
fn temp_file(name: &str, bytes: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

#[test]
fn load_files() {
    let (_dir, path) = temp_file("Guild-ok", EXAMPLE.as_bytes());
    assert_eq!(load(&path).unwrap(), parse(EXAMPLE, "Guild").unwrap());

    let (_bad, path) = temp_file("Guild-bad", b"[model \"m\"]\ntrian = x\n");
    let label = path.display().to_string();
    assert_eq!(
        load(&path).unwrap_err().to_string(),
        format!(
            "{label}:2: unknown operation \"trian\" in model \"m\" \
             (expected one of prepare, train, evaluate, serve)"
        )
    );

    let (_latin1, path) = temp_file("Guild-latin1", b"[model \"m\"]\ntrain = caf\xe9\n");
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
    let project = Project::default();
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

#[test]
fn a_models_sbatch_arguments_split_as_a_shell_would() {
    let project = parse(&with_model("sbatch = --partition=gpu --comment=\"two words\"\n"), "Guild").unwrap();
    assert_eq!(project.models[0].sbatch, strings(&["--partition=gpu", "--comment=two words"]));
    let plain = parse(&with_model(""), "Guild").unwrap();
    assert!(plain.models[0].sbatch.is_empty());
    let err = error(&with_model("sbatch = --comment=\"unclosed\n"));
    assert!(err.starts_with("Guild:3: sbatch in model \"m\": "), "{err}");
}
