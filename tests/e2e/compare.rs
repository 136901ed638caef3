//! `guild compare`: every cell of known runs in each format (table, CSV, JSON, each
//! parsed back), columns, sorting, min/max, selectors, and the filter language as a
//! user meets it (results and errors pointing at the column).

use std::collections::HashMap;

use crate::helpers::*;

/// Prints two loss samples, a validation accuracy, and exits 3 when lr > 1.
pub const TRAIN_PY: &str = r#"import argparse, sys
p = argparse.ArgumentParser()
p.add_argument("--lr", type=float)
p.add_argument("--batch", type=int)
p.add_argument("--note")
a, _ = p.parse_known_args()
print("loss: %r (step 1)" % (a.lr * 10))
print("loss: %r (step 2)" % (a.lr * 5))
print("val/acc: %r" % (1 - a.lr))
if a.lr > 1:
    sys.exit(3)
"#;

pub const GUILD: &str = r#"[project]
name = compare

[model "m"]
train = train

[model "other"]
train = train

[flags]
lr = 0.1
batch = 32
note = plain
"#;

/// A project with `train.py` and its Guild file.
pub fn train_env() -> Env {
    let env = Env::new();
    env.write("Guild", GUILD);
    env.write("train.py", TRAIN_PY);
    env
}

/// Runs `guild train ARGS` to its end; returns the run id.
#[track_caller]
pub fn train(env: &Env, args: &[&str]) -> String {
    let mut all = vec!["train"];
    all.extend_from_slice(args);
    let out = env.guild(&all);
    out.started_run().0
}

/// A minimal RFC 4180 reader: rows of fields.
pub fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', true) => quoted = false,
            ('"', false) if field.is_empty() => quoted = true,
            (',', false) => row.push(std::mem::take(&mut field)),
            ('\n', false) => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (c, _) => field.push(c),
        }
    }
    assert!(
        field.is_empty() && row.is_empty(),
        "CSV does not end with a newline: {text:?}"
    );
    rows
}

/// CSV rows as maps from header to cell.
pub fn csv_maps(text: &str) -> Vec<HashMap<String, String>> {
    let rows = parse_csv(text);
    let (header, rows) = rows.split_first().expect("a header row");
    rows.iter()
        .map(|r| {
            assert_eq!(r.len(), header.len(), "row {r:?} vs header {header:?}");
            header.iter().cloned().zip(r.iter().cloned()).collect()
        })
        .collect()
}

struct Known {
    id: String,
    model: &'static str,
    status: &'static str,
    label: &'static str,
    lr: f64,
    batch: &'static str,
    note: &'static str,
}

fn known_runs(env: &Env) -> Vec<Known> {
    let a = train(env, &["lr=0.1"]);
    let b = train(env, &["lr=0.01", "batch=64", "--label", "best"]);
    let c = train(env, &["other", "lr=0.5", "note=has, \"quotes\""]);
    let out = env.guild(&["train", "lr=2"]).exits(3);
    let d = out.started_run().0;
    // Newest first, as compare lists them.
    vec![
        Known {
            id: d,
            model: "m",
            status: "error",
            label: "",
            lr: 2.0,
            batch: "32",
            note: "plain",
        },
        Known {
            id: c,
            model: "other",
            status: "completed",
            label: "",
            lr: 0.5,
            batch: "32",
            note: "has, \"quotes\"",
        },
        Known {
            id: b,
            model: "m",
            status: "completed",
            label: "best",
            lr: 0.01,
            batch: "64",
            note: "plain",
        },
        Known {
            id: a,
            model: "m",
            status: "completed",
            label: "",
            lr: 0.1,
            batch: "32",
            note: "plain",
        },
    ]
}

#[test]
fn compare_every_cell_in_every_format() {
    let env = train_env();
    let runs = known_runs(&env);
    let started: HashMap<String, i64> = env
        .runs_json()
        .iter()
        .map(|r| (r["id"].as_str().unwrap().to_string(), r["started_ms"].as_i64().unwrap()))
        .collect();

    // CSV: the header, then each cell.
    let out = env.guild(&["compare", "--csv"]).ok();
    let header = parse_csv(&out.stdout)[0].clone();
    assert_eq!(
        header,
        [
            "id", "model", "op", "status", "started", "time", "label", "batch", "lr", "note", "loss", "val/acc"
        ],
        "{out:?}"
    );
    let rows = csv_maps(&out.stdout);
    assert_eq!(rows.len(), runs.len(), "{out:?}");
    for (row, run) in rows.iter().zip(&runs) {
        assert_eq!(row["id"], run.id);
        assert_eq!(row["model"], run.model);
        assert_eq!(row["op"], "train");
        assert_eq!(row["status"], run.status);
        assert_eq!(row["started"], guild_proto::time::display(started[&run.id]));
        let seconds: f64 = row["time"].parse().unwrap_or_else(|_| panic!("time {:?}", row["time"]));
        assert!((0.0..60.0).contains(&seconds), "time {seconds}");
        assert_eq!(row["label"], run.label);
        assert_eq!(row["batch"], run.batch);
        assert_eq!(row["lr"].parse::<f64>().unwrap(), run.lr, "flag lr as written");
        assert_eq!(row["note"], run.note);
        assert_eq!(
            row["loss"].parse::<f64>().unwrap(),
            run.lr * 5.0,
            "last loss of {}",
            run.id
        );
        assert_eq!(row["val/acc"].parse::<f64>().unwrap(), 1.0 - run.lr);
    }

    // JSON: the same cells; numbers are numbers, empty cells null.
    let out = env.guild(&["compare", "--json"]).ok();
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    let array = json.as_array().expect("an array");
    assert_eq!(array.len(), runs.len());
    for (object, (row, run)) in array.iter().zip(rows.iter().zip(&runs)) {
        for column in ["id", "model", "op", "status", "started", "batch", "lr", "note"] {
            assert_eq!(
                object[column].as_str(),
                Some(row[column].as_str()),
                "{column} of {}",
                run.id
            );
        }
        if run.label.is_empty() {
            assert!(object["label"].is_null(), "{object}");
        } else {
            assert_eq!(object["label"], run.label);
        }
        assert_eq!(object["loss"].as_f64(), Some(run.lr * 5.0));
        assert_eq!(object["val/acc"].as_f64(), Some(1.0 - run.lr));
        assert!(object["time"].is_number(), "{object}");
    }

    // The table (wide terminal): every column, short numbers, a row per run.
    let out = env.guild_env(&["compare"], &[("COLUMNS", "400")]).ok();
    let lines = out.stdout_lines();
    assert_eq!(lines.len(), runs.len() + 1, "{out:?}");
    let words: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(words, header, "table header");
    for (line, run) in lines[1..].iter().zip(&runs) {
        assert!(line.starts_with(&run.id), "{line}");
        let loss = format!("{}", run.lr * 5.0);
        assert!(line.contains(&format!(" {loss}")), "loss {loss} in {line}");
        assert!(line.contains(run.status), "{line}");
    }
    // A narrow terminal: the columns that fit, and a note of the rest.
    let out = env.guild_env(&["compare"], &[("COLUMNS", "40")]).ok();
    assert!(out.stdout_lines().iter().all(|l| l.chars().count() <= 40), "{out:?}");
    assert!(out.stdout_lines()[0].starts_with("id"), "{out:?}");
    assert!(out.stderr.contains("more columns did not fit"), "{out:?}");
}

#[test]
fn columns_sort_min_max_and_selectors() {
    let env = train_env();
    let runs = known_runs(&env);
    let ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();

    let csv = |args: &[&str]| {
        let mut all = vec!["compare", "--csv"];
        all.extend_from_slice(args);
        let out = env.guild(&all).ok();
        parse_csv(&out.stdout)
    };
    assert_eq!(
        csv(&["--columns", "id,lr,min(loss),max(loss)"]),
        vec![
            vec!["id".to_string(), "lr".into(), "min(loss)".into(), "max(loss)".into()],
            vec![ids[0].into(), "2".into(), "10".into(), "20".into()],
            vec![ids[1].into(), "0.5".into(), "2.5".into(), "5".into()],
            vec![ids[2].into(), "0.01".into(), "0.05".into(), "0.1".into()],
            vec![ids[3].into(), "0.1".into(), "0.5".into(), "1".into()],
        ]
    );
    // --min/--max add columns; --sort orders numerically, - descending.
    let rows = csv(&["--columns", "id,lr", "--min", "loss", "--sort", "lr"]);
    assert_eq!(rows[0], ["id", "lr", "min(loss)"]);
    let order: Vec<&str> = rows[1..].iter().map(|r| r[0].as_str()).collect();
    assert_eq!(order, [ids[2], ids[3], ids[1], ids[0]]);
    let rows = csv(&["--columns", "id", "--sort", "-val/acc"]);
    let order: Vec<&str> = rows[1..].iter().map(|r| r[0].as_str()).collect();
    assert_eq!(order, [ids[2], ids[3], ids[1], ids[0]]);

    // Selectors: indexes, ranges, prefixes and filters.
    let picked = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["--columns", "id"];
        all.extend_from_slice(args);
        csv(&all)[1..].iter().map(|r| r[0].clone()).collect()
    };
    assert_eq!(picked(&["2:3"]), [ids[1], ids[2]]);
    assert_eq!(picked(&["4", "1"]), [ids[0], ids[3]]);
    // A unique prefix ("...Z-oth": the only run of model other).
    assert_eq!(picked(&[&ids[1][..ids[1].len() - 2]]), [ids[1]]);
    assert_eq!(picked(&["--model", "other"]), [ids[1]]);
    assert_eq!(picked(&["--status", "error"]), [ids[0]]);
    assert_eq!(picked(&["--label", "BES"]), [ids[2]]);
    assert_eq!(picked(&["1:3", "--model", "m"]), [ids[0], ids[2]]);

    let out = env.guild(&["compare", "5"]).exits(1);
    assert_eq!(out.stderr, "guild: no run at index 5: there are 4 (see `guild runs`)\n");
    let out = env.guild(&["compare", "3:1"]).exits(1);
    assert!(out.stderr.contains("3 is after 1"), "{out:?}");
    let out = env.guild(&["compare", "--columns", "id,nope"]).exits(1);
    assert!(out.stderr.contains("unknown name \"nope\""), "{out:?}");
    let out = env.guild(&["compare", "--status", "done"]).exits(1);
    assert!(out.stderr.contains("unknown status \"done\""), "{out:?}");
}

#[test]
fn filter_language() {
    let env = train_env();
    let runs = known_runs(&env);
    let ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
    let filtered = |expr: &str| -> Vec<String> {
        let out = env
            .guild(&["compare", "--csv", "--columns", "id", "--filter", expr])
            .ok();
        parse_csv(&out.stdout)[1..].iter().map(|r| r[0].clone()).collect()
    };
    assert_eq!(
        filtered("status = completed and lr < 0.2 and val/acc >= 0.9"),
        [ids[2], ids[3]]
    );
    assert_eq!(filtered("lr >= 0.5 or label ~ BEST"), [ids[0], ids[1], ids[2]]);
    assert_eq!(filtered("not (model = m) "), [ids[1]]);
    assert_eq!(filtered("min(loss) < 0.1"), [ids[2]]);
    assert_eq!(filtered("note ~ 'has, \"quo'"), [ids[1]]);
    assert_eq!(filtered("batch = 64 and time >= 0"), [ids[2]]);
    assert_eq!(filtered("flag:lr = 2 and scalar:loss = 10"), [ids[0]]);
    assert_eq!(filtered("label = nobody"), Vec::<String>::new());

    // Errors print the expression with a caret under the column.
    let cases = [
        (
            "status = completed and lr <",
            "--filter: expected a value after \"<\", found the end at column 28",
            27,
        ),
        (
            "lr < 0.1 and (batch = 64",
            "--filter: expected \")\" to close the \"(\" at column 14, found the end at column 25",
            24,
        ),
        (
            "lrr < 0.1",
            "--filter: unknown name \"lrr\" (not an attribute, flag or series key of the compared runs) at column 1",
            0,
        ),
        (
            "lr 0.1",
            "--filter: expected a comparison (= != < <= > >= ~) after \"lr\", found \"0.1\" at column 4",
            3,
        ),
        (
            "min(lr) < 1",
            "--filter: unknown series key \"lr\" in min(lr) (no compared run has it) at column 1",
            0,
        ),
    ];
    for (expr, message, caret) in cases {
        let out = env.guild(&["compare", "--filter", expr]).exits(1);
        assert_eq!(
            out.stderr,
            format!("guild: {message}\n  {expr}\n  {}^\n", " ".repeat(caret)),
            "{out:?}"
        );
        assert!(out.stdout.is_empty(), "{out:?}");
    }
}
