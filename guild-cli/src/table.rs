//! Plain-text and JSON renderings of runs, projects and series.

use guild_proto::time;
use guild_proto::v1::{self as pb};

use crate::out::clean;

pub fn status_name(run: &pb::Run) -> &'static str {
    match run.status() {
        pb::RunStatus::Pending => "pending",
        pb::RunStatus::Running => "running",
        pb::RunStatus::Completed => "completed",
        pb::RunStatus::Error => "error",
        pb::RunStatus::Terminated => "terminated",
        pb::RunStatus::Failed => "failed",
        pb::RunStatus::Unspecified => "unknown",
    }
}

fn run_time(run: &pb::Run) -> String {
    if run.started_ms == 0 {
        return String::new();
    }
    let end = if run.stopped_ms > 0 {
        run.stopped_ms
    } else {
        time::now_ms()
    };
    time::duration(end - run.started_ms)
}

/// Columns padded to their widest cell; the last column is not padded. Cells are text
/// from the daemon: control characters are escaped first, so none can break a row.
fn render(rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|cell| clean(cell).into_owned()).collect())
        .collect();
    let rows = &rows;
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::with_capacity(rows.len() * 100);
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', widths[c] - cell.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The runs table; `first_index` 0 leaves out the index column.
pub fn runs(runs: &[pb::Run], first_index: usize) -> String {
    let rows: Vec<Vec<String>> = runs
        .iter()
        .enumerate()
        .map(|(i, run)| {
            let mut row = Vec::with_capacity(8);
            if first_index > 0 {
                row.push(format!("{}", first_index + i));
            }
            row.extend([
                run.id.clone(),
                run.model.clone(),
                run.op.clone(),
                status_name(run).to_string(),
                time::display(run.started_ms),
                run_time(run),
                label_cell(run),
            ]);
            row
        })
        .collect();
    render(&rows)
}

/// The label column: `label [tag1,tag2]`.
pub fn label_cell(run: &pb::Run) -> String {
    match (run.label.is_empty(), run.tags.is_empty()) {
        (_, true) => run.label.clone(),
        (true, false) => format!("[{}]", run.tags.join(",")),
        (false, false) => format!("{} [{}]", run.label, run.tags.join(",")),
    }
}

/// The runs table with each run's own index (as SelectRuns numbers them).
pub fn runs_indexed(runs: &[pb::Run], indexes: &[u32]) -> String {
    let rows: Vec<Vec<String>> = runs
        .iter()
        .zip(indexes)
        .map(|(run, index)| {
            vec![
                index.to_string(),
                run.id.clone(),
                run.model.clone(),
                run.op.clone(),
                status_name(run).to_string(),
                time::display(run.started_ms),
                run_time(run),
                label_cell(run),
            ]
        })
        .collect();
    render(&rows)
}

pub fn run_json(run: &pb::Run) -> serde_json::Value {
    serde_json::json!({
        "id": run.id,
        "project_dir": run.project_dir,
        "project_name": run.project_name,
        "model": run.model,
        "op": run.op,
        "status": status_name(run),
        "created_ms": run.created_ms,
        "started_ms": (run.started_ms > 0).then_some(run.started_ms),
        "stopped_ms": (run.stopped_ms > 0).then_some(run.stopped_ms),
        "exit_status": run.exit_status,
        "run_dir": run.run_dir,
        "label": run.label,
        "tags": run.tags,
        "pid": (run.pid > 0).then_some(run.pid),
        "reason": run.reason,
        "source_run": run.source_run,
    })
}

pub fn run_info(detail: &pb::RunDetail) -> String {
    let mut out = String::new();
    if let Some(run) = &detail.run {
        let mut fields = vec![
            ("id", run.id.clone()),
            ("model", run.model.clone()),
            ("op", run.op.clone()),
            ("status", status_name(run).to_string()),
            (
                "exit_status",
                run.exit_status.map(|c| c.to_string()).unwrap_or_default(),
            ),
            ("started", time::display(run.started_ms)),
            ("stopped", time::display(run.stopped_ms)),
            ("time", run_time(run)),
            ("run_dir", run.run_dir.clone()),
            ("project", run.project_dir.clone()),
            ("label", run.label.clone()),
            ("tags", run.tags.join(",")),
            (
                "pid",
                if run.pid > 0 {
                    run.pid.to_string()
                } else {
                    String::new()
                },
            ),
        ];
        if !run.source_run.is_empty() {
            fields.push(("source_run", run.source_run.clone()));
        }
        if !run.reason.is_empty() {
            fields.push(("reason", run.reason.clone()));
        }
        for (name, value) in fields {
            out.push_str(&format!("{name}: {}\n", clean(&value)));
        }
    }
    out.push_str("flags:\n");
    for flag in &detail.flags {
        out.push_str(&format!("  {}: {}\n", clean(&flag.name), clean(&flag.value)));
    }
    if !detail.series.is_empty() {
        out.push_str("scalars:\n");
        for key in &detail.series {
            out.push_str(&format!("  {}: {} (step {})\n", clean(&key.key), key.last, key.last_step));
        }
    }
    out
}

/// `guild list-models`: each model and resource with its ops and flags, then profiles.
pub fn models(project: &pb::Project) -> String {
    let mut out = String::new();
    if !project.tags.is_empty() {
        out.push_str(&format!("tags: {}\n", clean(&project.tags.join(" "))));
    }
    let targets = project
        .models
        .iter()
        .enumerate()
        .map(|(i, m)| (m, if i == 0 { " (default)" } else { "" }, "model"))
        .chain(project.resources.iter().map(|r| (r, "", "resource")));
    for (target, default, kind) in targets {
        let runtime = if target.runtime.is_empty() {
            String::new()
        } else {
            format!(" [{}]", target.runtime)
        };
        out.push_str(&format!(
            "{} {}{default}{}  {}\n",
            kind,
            clean(&target.name),
            clean(&runtime),
            clean(&target.description)
        ));
        for op in &target.operations {
            out.push_str(&format!("  {:<9} {}\n", clean(&op.name), clean(&op.command)));
        }
        let flags = resolved_flags(project, target, None);
        if !flags.is_empty() {
            let shown: Vec<String> = flags.iter().map(|(n, v)| format!("{}={}", clean(n), clean(v))).collect();
            out.push_str(&format!("  flags     {}\n", shown.join(" ")));
        }
    }
    if !project.profiles.is_empty() {
        let names: Vec<String> = project.profiles.iter().map(|p| clean(&p.name).into_owned()).collect();
        out.push_str(&format!("profiles: {}\n", names.join(", ")));
    }
    out
}

/// A model's flags as a run gets them: `[flags]`, then the model's, then the profile's.
fn resolved_flags(project: &pb::Project, model: &pb::Model, profile: Option<&pb::Profile>) -> Vec<(String, String)> {
    let mut flags: Vec<(String, String)> = Vec::new();
    let layers = [Some(&project.flags), Some(&model.flags), profile.map(|p| &p.flags)];
    for flag in layers.into_iter().flatten().flatten() {
        match flags.iter_mut().find(|(n, _)| *n == flag.name) {
            Some(slot) => slot.1 = flag.value.clone(),
            None => flags.push((flag.name.clone(), flag.value.clone())),
        }
    }
    flags
}

/// The flags part of `guild train --help`.
pub fn model_flags(project: &pb::Project, model: &pb::Model, profile: Option<&pb::Profile>) -> String {
    let flags = resolved_flags(project, model, profile);
    let mut out = format!(
        "\nFlags of {} (from {}/Guild{}):\n",
        model.name,
        project.dir,
        profile.map(|p| format!(", profile {}", p.name)).unwrap_or_default()
    );
    if flags.is_empty() {
        out.push_str("  (none)\n");
    }
    let width = flags.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    for (name, value) in &flags {
        out.push_str(&format!("  {name:<width$}  {value}\n"));
    }
    out.push_str("Set one with NAME=VALUE or -F NAME=VALUE.\n");
    if !project.profiles.is_empty() {
        let names: Vec<&str> = project.profiles.iter().map(|p| p.name.as_str()).collect();
        out.push_str(&format!("Profiles (-p NAME): {}\n", names.join(", ")));
    }
    out
}

/// `--preview`: what a start would do.
pub fn preview(preview: &pb::RunPreview) -> String {
    let mut out = String::from("This command would use the settings below; nothing was started.\n");
    out.push_str(&format!("Model:   {} ({})\n", preview.model, preview.op));
    if !preview.runtime.is_empty() {
        out.push_str(&format!("Runtime: {}\n", preview.runtime));
    }
    out.push_str("Command:\n");
    let mut words = preview.argv.iter().map(|w| shell_word(w));
    let mut line = format!("  {}", words.by_ref().take(3).collect::<Vec<_>>().join(" "));
    let rest: Vec<String> = words.collect();
    let mut i = 0;
    while i < rest.len() {
        out.push_str(&line);
        out.push_str(" \\\n");
        // An option and its value stay on one line.
        line = if rest[i].starts_with("--") && i + 1 < rest.len() && !rest[i + 1].starts_with("--") {
            i += 2;
            format!("    {} {}", rest[i - 2], rest[i - 1])
        } else {
            i += 1;
            format!("    {}", rest[i - 1])
        };
    }
    out.push_str(&line);
    out.push('\n');
    out.push_str("Flags:\n");
    for flag in &preview.flags {
        out.push_str(&format!("  {} = {}\n", flag.name, flag.value));
    }
    out.push_str(&format!(
        "Run folder: {} (made when the run starts; a -2, -3... suffix if that second is taken)\n",
        preview.run_dir
    ));
    out.push_str("Environment (besides yours):\n");
    for var in &preview.env {
        out.push_str(&format!("  {}={}\n", var.name, var.value));
    }
    out
}

/// A word as a shell would need it: quoted when it has spaces or quotes.
fn shell_word(word: &str) -> String {
    if !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%$".contains(c)) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

pub fn series_keys(keys: &[pb::SeriesKey]) -> String {
    let mut rows = vec![vec![
        "KEY".into(),
        "LAST".into(),
        "MIN".into(),
        "MAX".into(),
        "COUNT".into(),
        "STEP".into(),
    ]];
    rows.extend(keys.iter().map(|k| {
        vec![
            k.key.clone(),
            k.last.to_string(),
            k.min.to_string(),
            k.max.to_string(),
            k.count.to_string(),
            k.last_step.to_string(),
        ]
    }));
    render(&rows)
}
