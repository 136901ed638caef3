//! How values read in the terminal and in files: run statuses and durations, the label
//! column, serve states, and numbers (exact for CSV and JSON, short for tables).

use guild_proto::time;
use guild_proto::v1::{self as pb, ServeState};

use crate::out::clean_message;

pub fn status_name(run: &pb::Run) -> &'static str {
    match run.status() {
        pb::RunStatus::Pending => "pending",
        pb::RunStatus::Queued => "queued",
        pb::RunStatus::Running => "running",
        pb::RunStatus::Completed => "completed",
        pb::RunStatus::Error => "error",
        pb::RunStatus::Terminated => "terminated",
        pb::RunStatus::Failed => "failed",
        pb::RunStatus::Unspecified => "unknown",
    }
}

/// The status column of `guild runs`: a queued run's place (`queued #2`) and the GPUs
/// a run was given (`running gpu 0,1`).
pub fn status_cell(run: &pb::Run) -> String {
    let mut cell = status_name(run).to_string();
    if let Some(queue) = &run.queue {
        if queue.position > 0 {
            cell.push_str(&format!(" #{}", queue.position));
        }
        if !queue.gpus.is_empty() && run.status() == pb::RunStatus::Running {
            cell.push_str(&format!(" gpu {}", queue.gpus.join(",")));
        }
    }
    cell
}

pub fn serve_state_name(state: ServeState) -> &'static str {
    match state {
        ServeState::Starting => "starting",
        ServeState::Ready => "ready",
        ServeState::Restarting => "restarting",
        ServeState::NoModel => "no model",
        ServeState::Stopped => "stopped",
        ServeState::Unspecified => "unknown",
    }
}

/// What `guild status` and `guild daemon status` say about the daemon.
pub fn daemon_status(status: &pb::DaemonStatus) -> String {
    let mut out = format!(
        "guildd {} (protocol {}) pid {}\n  socket:   {}\n  data dir: {}\n",
        status.version, status.protocol, status.pid, status.socket, status.data_dir
    );
    if !status.tcp_address.is_empty() {
        out.push_str(&format!("  tcp:      {}\n", status.tcp_address));
    }
    out.push_str(&format!("  running:  {}\n", status.running_runs));
    if let Some(slurm) = status.slurm.as_ref().filter(|s| s.found || s.runs > 0) {
        out.push_str(&format!("  slurm:    {}\n", clean_message(&slurm_line(slurm))));
    }
    for problem in &status.problems {
        out.push_str(&format!("  problem:  {}\n", clean_message(problem)));
    }
    out
}

/// `reachable (debug up 1 idle), 2 runs on it` or `not reachable: ...`.
fn slurm_line(slurm: &pb::SlurmStatus) -> String {
    let runs = match slurm.runs {
        1 => "1 run on it".to_string(),
        n => format!("{n} runs on it"),
    };
    if slurm.reachable {
        format!("reachable ({}), {runs}", slurm.detail)
    } else {
        format!("not reachable: {}; {runs}", slurm.detail)
    }
}

/// When the run stopped, or now while it runs.
fn run_end(run: &pb::Run) -> i64 {
    if run.stopped_ms > 0 {
        run.stopped_ms
    } else {
        time::now_ms()
    }
}

/// Seconds the run ran (so far), None when it never started.
pub fn run_seconds(run: &pb::Run) -> Option<f64> {
    (run.started_ms > 0).then(|| (run_end(run) - run.started_ms).max(0) as f64 / 1000.0)
}

/// How long the run ran (so far) as `H:MM:SS`; empty when it never started.
pub fn run_time(run: &pb::Run) -> String {
    if run.started_ms == 0 {
        return String::new();
    }
    time::duration(run_end(run) - run.started_ms)
}

/// The label column: `label [tag1,tag2]`.
pub fn label_cell(run: &pb::Run) -> String {
    match (run.label.is_empty(), run.tags.is_empty()) {
        (_, true) => run.label.clone(),
        (true, false) => format!("[{}]", run.tags.join(",")),
        (false, false) => format!("{} [{}]", run.label, run.tags.join(",")),
    }
}

/// A number in its shortest form (`0.1`, `3`, `1e-7`, `2.5e20`), `nan`, `inf`, `-inf`: the
/// same in every table, CSV and JSON. A value that a float32 holds exactly (event files
/// store float32) is written as that float32: `0.9`, not `0.8999999761581421`; any other
/// reads back as the same f64.
pub fn format_exact(v: f64) -> String {
    let mut out = String::new();
    write_exact(&mut out, v);
    out
}

/// Appends [`format_exact`]. zmij (already in the tree through serde_json) formats about
/// three times faster than `{}`, which matters at 100,000 cells.
pub fn write_exact(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("nan");
        return;
    }
    if v.is_infinite() {
        out.push_str(if v > 0.0 { "inf" } else { "-inf" });
        return;
    }
    let mut buffer = zmij::Buffer::new();
    let narrow = v as f32;
    let text = if f64::from(narrow) == v { buffer.format_finite(narrow) } else { buffer.format_finite(v) };
    // zmij writes `3.0` and `1e+20`; keep them short: `3`, `1e20`.
    let (mantissa, exponent) = match text.find('e') {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        None => (text, None),
    };
    out.push_str(mantissa.strip_suffix(".0").unwrap_or(mantissa));
    if let Some(exponent) = exponent {
        out.push('e');
        out.push_str(exponent.strip_prefix('+').unwrap_or(exponent));
    }
}

/// A number for a table: 6 significant digits, like printf's %g.
pub fn format_short(v: f64) -> String {
    if !v.is_finite() {
        return format_exact(v);
    }
    if v == 0.0 {
        return "0".into();
    }
    let exp = v.abs().log10().floor() as i32;
    if !(-5..6).contains(&exp) {
        let s = format!("{v:.5e}");
        let (mantissa, e) = s.split_once('e').unwrap_or((&s, "0"));
        let mantissa = trim_zeros(mantissa);
        return format!("{mantissa}e{e}");
    }
    let decimals = (5 - exp).max(0) as usize;
    trim_zeros(&format!("{v:.decimals$}")).to_string()
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_format() {
        for (v, exact, short) in [
            (0.1, "0.1", "0.1"),
            (1.0, "1", "1"),
            (-2.5, "-2.5", "-2.5"),
            (1e-7, "1e-7", "1e-7"),
            (123456789.0, "123456789", "1.23457e8"),
            (0.912345678, "0.912345678", "0.912346"),
            (1e20, "1e20", "1e20"),
            (f64::NAN, "nan", "nan"),
            (f64::NEG_INFINITY, "-inf", "-inf"),
            (0.0, "0", "0"),
            // float32 values as the float32 they were.
            (f64::from(0.9f32), "0.9", "0.9"),
            (f64::from(1e-7f32), "1e-7", "1e-7"),
            (f64::from(3.4e38f32), "3.4e38", "3.4e38"),
        ] {
            assert_eq!(format_exact(v), exact, "{v}");
            assert_eq!(format_short(v), short, "{v}");
            if v.is_finite() {
                let back = format_exact(v).parse::<f64>().unwrap();
                assert!(back == v || f64::from(back as f32) == v, "{v}");
            }
        }
    }
}
