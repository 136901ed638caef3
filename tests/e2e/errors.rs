//! Mistakes a user makes in a Guild file or on the command line: `guild train` fails
//! with the exact message, and no run is created.

use crate::helpers::*;

/// Asserts `guild ARGS` fails (exit 1) with exactly `guild: MESSAGE` on stderr.
#[track_caller]
fn fails_with(env: &Env, args: &[&str], message: &str) -> Vec<String> {
    let out = env.guild(args);
    let mut problems = Vec::new();
    if out.status.code() != Some(1) {
        problems.push(format!("expected exit 1 from {out:?}"));
    }
    let expected = format!("guild: {message}\n");
    if out.stderr != expected {
        problems.push(format!(
            "`guild {}`\n  expected stderr: {expected:?}\n  got:             {:?}",
            args.join(" "),
            out.stderr
        ));
    }
    if !out.stdout.is_empty() {
        problems.push(format!("unexpected stdout from {out:?}"));
    }
    problems
}

#[test]
fn bad_guild_files() {
    let env = Env::new();
    env.write("m.py", OK_PY);
    let guild = env.project.join("Guild");
    let g = guild.display();
    let cases: Vec<(&str, &str, String)> = vec![
        (
            "misspelled operation",
            "[project]\nname = p\n\n[model \"intro\"]\ndescription = x\ntrian = m\n",
            format!(
                "{g}:6: unknown operation \"trian\" in model \"intro\" \
                 (expected one of prepare, train, evaluate, serve)"
            ),
        ),
        (
            "line without = or :",
            "[model \"m\"]\ntrain m\n",
            format!("{g}:2: expected NAME = VALUE, got \"train m\""),
        ),
        (
            "text before any section",
            "# a comment\nx = 1\n[model \"m\"]\ntrain = m\n",
            format!("{g}:2: expected a section header like [model \"NAME\"] before \"x = 1\""),
        ),
        (
            "unknown runtime",
            "[model \"m\"]\n  runtime = tensorflw\n  train = m\n",
            format!(
                "{g}:2: unknown runtime \"tensorflw\" in [model \"m\"] (known runtimes: tensorflow, tflearn, python)"
            ),
        ),
        (
            "unknown directive",
            "[model \"m\"]\n  train = m\n  @include \"x\"\n",
            format!(
                "{g}:3: unknown directive \"@include\" (expected @attrs KIND \"NAME\", like @attrs template \"accuracy-field\")"
            ),
        ),
        (
            "continuation past the end",
            "[model \"m\"]\n  train = m \\\n",
            format!("{g}:2: the value continues (\\ at the end of the line) past the end of the file"),
        ),
        (
            "unknown section kind",
            "[model \"m\"]\ntrain = m\n[models \"x\"]\n",
            format!(
                "{g}:3: unknown section kind \"models\" \
                 (expected one of [project], [model \"NAME\"], [resource \"NAME\"], [flags], [flags \"NAME\"], \
                 [view], [field \"NAME\"], [train-field \"NAME\"], [compare-field \"NAME\"], [series \"NAME\"], \
                 [template \"NAME\"])"
            ),
        ),
        (
            "no model",
            "[project]\nname = p\n\n[flags]\nepochs = 1\n",
            format!("{g}: no [model \"NAME\"] section; define at least one model"),
        ),
    ];
    let mut problems = Vec::new();
    for (what, text, message) in &cases {
        env.write("Guild", text);
        for problem in fails_with(&env, &["train"], message) {
            problems.push(format!("{what}: {problem}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    assert_eq!(env.runs_json(), Vec::<serde_json::Value>::new(), "runs were created");
    assert!(!env.project.join("runs").exists(), "a run folder was created");
}

#[test]
fn bad_models_profiles_flags_and_missing_inputs() {
    let env = Env::mnist();
    let p = env.project.display().to_string();
    let cases: Vec<(&[&str], String)> = vec![
        (
            &["train", "nosuch"],
            "unknown model \"nosuch\" (models: intro, expert)".into(),
        ),
        (
            &["train", "--profile", "nosuch"],
            "unknown profile \"nosuch\" (profiles: fast)".into(),
        ),
        (
            &["train", "nosuch=1"],
            "unknown flag \"nosuch\" for model \"intro\" \
             (flags: batch_size, datadir, epochs, learning_rate, rundir)"
                .into(),
        ),
        (
            &["train", "expert", "nosuch=1"],
            "unknown flag \"nosuch\" for model \"expert\" \
             (flags: batch_size, datadir, epochs, hidden, learning_rate, rundir)"
                .into(),
        ),
        (
            &["run", "intro:nosuch"],
            "model \"intro\" has no operation \"nosuch\" \
             (it defines: prepare, train, evaluate, serve)"
                .into(),
        ),
        (
            &["train"],
            format!("intro:train requires ./data, which does not exist in {p}; run `guild prepare` first"),
        ),
        (
            &["train", "expert", "epochs=1"],
            format!("expert:train requires ./data, which does not exist in {p}; run `guild prepare expert` first"),
        ),
        (
            &["evaluate", "--latest-run"],
            format!("no completed train run in {p} (run `guild train` first)"),
        ),
    ];
    let mut problems = Vec::new();
    for (args, message) in &cases {
        problems.extend(fails_with(&env, args, message));
    }
    std::fs::remove_file(env.project.join("Guild")).unwrap();
    problems.extend(fails_with(
        &env,
        &["train"],
        &format!("no Guild file in {p} (run guild in a project folder, or pass -C DIR)"),
    ));
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    assert_eq!(env.runs_json(), Vec::<serde_json::Value>::new(), "runs were created");
    assert!(!env.project.join("runs").exists(), "a run folder was created");
}
