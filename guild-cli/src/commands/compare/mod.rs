//! `guild compare`: one row per run — id, model, op, status, started, time, label, tags,
//! every flag, and the last value of each series (system and process stats only with
//! `--sys`) — as a table that fits the terminal, CSV or JSON. The daemon sends the
//! rows from its index in one stream (`data`); filtering (`filter`), sorting and the
//! choice of columns happen here; `write` prints them.

mod data;
mod filter;
mod write;

use std::cmp::Ordering;

use anyhow::{anyhow, bail};
use clap::Args;

use crate::rpc::{self, Target};
use crate::select::SelectArgs;
use data::{ATTRS, Attr, Data, Source};
use filter::{Operand, Value};

#[derive(Args, Clone, Debug, Default)]
pub struct CompareArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// A table that fits the terminal (the default).
    #[arg(long, conflicts_with_all = ["csv", "json"])]
    pub table: bool,
    /// CSV with a header row.
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,
    /// A JSON array of objects, one per run, keyed by column.
    #[arg(long)]
    pub json: bool,
    /// The columns to show, in order (comma-separated names: id, lr, loss, min(loss)...).
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub columns: Vec<String>,
    /// Add a column with a series' minimum (repeatable).
    #[arg(long = "min", value_name = "KEY")]
    pub min: Vec<String>,
    /// Add a column with a series' maximum (repeatable).
    #[arg(long = "max", value_name = "KEY")]
    pub max: Vec<String>,
    /// Sort by these columns (comma-separated; a leading - sorts descending: -loss).
    #[arg(long, allow_hyphen_values = true, value_name = "NAMES")]
    pub sort: Option<String>,
    /// Only runs matching this expression, e.g. "status = completed and lr < 0.1".
    #[arg(long, value_name = "EXPR")]
    pub filter: Option<String>,
    /// Include system and process stats (sys/*, op/*).
    #[arg(long)]
    pub sys: bool,
    /// Every attribute, flag and series, instead of the compare columns of the runs'
    /// view (a Guild file's `[view] compare = ...`).
    #[arg(long)]
    pub all_columns: bool,
}

pub async fn run(target: &Target, args: CompareArgs) -> anyhow::Result<u8> {
    // A bad expression is reported before anything is asked of the daemon.
    let parsed = match &args.filter {
        Some(expr) => Some((expr, filter::parse(expr).map_err(|e| anyhow!("{}", e.render(expr)))?)),
        None => None,
    };
    let client = rpc::connect(target).await?;
    let mut select = args.select.clone();
    if !select.runs.is_empty() {
        // A sweep named among RUNS stands for its trials.
        select.runs = crate::sweep::expand(&client, select.runs).await?;
    }
    let mut data = data::fetch(&client, &select, args.sys, !args.all_columns).await?;
    if let Some((expr, tree)) = parsed {
        let tree = tree
            .resolve(&mut |operand| data.resolve(operand))
            .map_err(|e| anyhow!("{}", e.render(expr)))?;
        let rows = std::mem::take(&mut data.rows);
        data.rows = rows
            .into_iter()
            .filter(|row| tree.matches(&|source: &Source| data.value(row, *source)))
            .collect();
    }
    if let Some(sort) = &args.sort {
        sort_rows(&mut data, sort)?;
    }
    let columns = columns(&data, &args)?;
    let out = if args.csv {
        write::csv(&data, &columns)
    } else if args.json {
        write::json(&data, &columns)?
    } else {
        let (text, left_out) = write::table(&data, &columns, crate::table::terminal_width());
        if left_out > 0 {
            eprintln!(
                "({left_out} more column{} did not fit: use --columns, --csv, --json or a wider terminal)",
                if left_out == 1 { "" } else { "s" }
            );
        }
        text.into_bytes()
    };
    // The process ends next: freeing 10,000 rows one by one would only cost time.
    std::mem::forget(data);
    crate::out::write_bytes(&out)?;
    Ok(0)
}

fn sort_rows(data: &mut Data, spec: &str) -> anyhow::Result<()> {
    let mut keys = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (descending, name) = match part.strip_prefix('-') {
            Some(name) => (true, name),
            None => (false, part.strip_prefix('+').unwrap_or(part)),
        };
        let source = data
            .resolve(&filter::operand(name))
            .map_err(|e| anyhow!("--sort: {e}"))?;
        keys.push((source, descending));
    }
    if keys.is_empty() {
        bail!("--sort: name a column, e.g. --sort -loss");
    }
    let mut rows = std::mem::take(&mut data.rows);
    rows.sort_by(|a, b| {
        for &(source, descending) in &keys {
            let order = compare_values(data.value(a, source), data.value(b, source), descending);
            if order != Ordering::Equal {
                return order;
            }
        }
        Ordering::Equal
    });
    data.rows = rows;
    Ok(())
}

/// Numbers before text, missing last in either direction.
fn compare_values(a: Value<'_>, b: Value<'_>, descending: bool) -> Ordering {
    let number = |v: Value<'_>| match v {
        Value::Number(n) if !n.is_nan() => Some(n),
        Value::Text(t) => filter::parse_number(t),
        _ => None,
    };
    let rank = |v: Value<'_>| match v {
        Value::Missing => 2,
        Value::Number(n) if n.is_nan() => 2,
        _ => 0,
    };
    match (rank(a), rank(b)) {
        (2, 2) => return Ordering::Equal,
        (2, _) => return Ordering::Greater,
        (_, 2) => return Ordering::Less,
        _ => {}
    }
    let order = match (number(a), number(b)) {
        (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => {
            let text = |v: Value<'_>| match v {
                Value::Text(t) => t.to_string(),
                _ => String::new(),
            };
            text(a).cmp(&text(b))
        }
    };
    if descending { order.reverse() } else { order }
}

/// The columns to print: as --columns says; else, when the runs' view has compare
/// columns, the run's identity then those; else attributes, flags and series keys that
/// any shown run has (names sorted). Then --min and --max columns.
fn columns(data: &Data, args: &CompareArgs) -> anyhow::Result<Vec<Source>> {
    let named = |name: &str| {
        data.resolve(&filter::operand(name))
            .map_err(|e| anyhow!("--columns: {e}"))
    };
    let mut columns = Vec::new();
    if !args.columns.is_empty() {
        for name in args.columns.iter().map(|c| c.trim()).filter(|c| !c.is_empty()) {
            columns.push(named(name)?);
        }
    } else if !data.view_columns.is_empty() {
        for (_, attr) in ATTRS {
            let shown = match attr {
                // The view says how long a run took, if it wants to.
                Attr::Time => false,
                Attr::Tags => data.rows.iter().any(|r| !r.tags.is_empty()),
                _ => true,
            };
            if shown {
                columns.push(Source::Attr(attr));
            }
        }
        columns.extend((0..data.view_columns.len() as u32).map(Source::View));
    } else {
        let has = |source: Source| {
            data.rows
                .iter()
                .any(|r| !matches!(data.value(r, source), Value::Missing))
        };
        // Every attribute; tags only when a shown run has some.
        for (_, attr) in ATTRS {
            if attr != Attr::Tags || data.rows.iter().any(|r| !r.tags.is_empty()) {
                columns.push(Source::Attr(attr));
            }
        }
        let mut flags: Vec<u32> = (0..data.flag_names.len() as u32)
            .filter(|&p| has(Source::Flag(p)))
            .collect();
        flags.sort_by(|a, b| data.flag_names[*a as usize].cmp(&data.flag_names[*b as usize]));
        columns.extend(flags.into_iter().map(Source::Flag));
        let mut keys: Vec<u32> = (0..data.scalar_keys.len() as u32)
            .filter(|&k| has(Source::Last(k)))
            .collect();
        keys.sort_by(|a, b| data.scalar_keys[*a as usize].cmp(&data.scalar_keys[*b as usize]));
        columns.extend(keys.into_iter().map(Source::Last));
    }
    for (keys, min) in [(&args.min, true), (&args.max, false)] {
        for key in keys {
            let operand = if min {
                Operand::Min(key.clone())
            } else {
                Operand::Max(key.clone())
            };
            let source = data
                .resolve(&operand)
                .map_err(|e| anyhow!("--{}: {e}", if min { "min" } else { "max" }))?;
            if !columns.contains(&source) {
                columns.push(source);
            }
        }
    }
    Ok(columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_order_puts_missing_last() {
        let (a, b, m) = (Value::Number(1.0), Value::Text("2"), Value::Missing);
        assert_eq!(compare_values(a, b, false), Ordering::Less);
        assert_eq!(compare_values(a, b, true), Ordering::Greater);
        assert_eq!(compare_values(m, a, false), Ordering::Greater);
        assert_eq!(compare_values(m, a, true), Ordering::Greater);
        assert_eq!(
            compare_values(Value::Text("a"), Value::Text("b"), false),
            Ordering::Less
        );
    }
}
