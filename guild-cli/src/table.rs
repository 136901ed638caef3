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

pub fn models(project: &pb::Project) -> String {
    let mut out = String::new();
    for (i, model) in project.models.iter().enumerate() {
        let default = if i == 0 { " (default)" } else { "" };
        out.push_str(&format!("{}{default}  {}\n", clean(&model.name), clean(&model.description)));
        for op in &model.operations {
            out.push_str(&format!("  {:<9} {}\n", clean(&op.name), clean(&op.command)));
        }
    }
    if !project.profiles.is_empty() {
        let names: Vec<String> = project.profiles.iter().map(|p| clean(&p.name).into_owned()).collect();
        out.push_str(&format!("profiles: {}\n", names.join(", ")));
    }
    out
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
