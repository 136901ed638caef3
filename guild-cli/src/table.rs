//! Tables in the terminal: columns two spaces apart, each as wide as its widest cell
//! (laid out by `tabular`), lines without trailing spaces; the runs table that `guild
//! runs` and `guild status` print; and, for tables that may be wider than the terminal,
//! which columns fit (`terminal_size` reads the window's width).
//!
//! Cells are text from the daemon: control characters are escaped here, so none can
//! clear the screen or break a row.

use guild_proto::time;
use guild_proto::v1 as pb;
use unicode_width::UnicodeWidthStr;

use crate::format::{label_cell, run_time, status_name};
use crate::out::clean;

/// How a column's cells line up.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Align {
    Left,
    Right,
}

/// Lays out rows (the first may be a header) with the columns aligned as given; a
/// column without an alignment is left-aligned.
pub fn render(rows: &[Vec<String>], align: &[Align]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    if columns == 0 {
        return String::new();
    }
    let spec: Vec<&str> = (0..columns)
        .map(|c| match align.get(c) {
            Some(Align::Right) => "{:>}",
            _ => "{:<}",
        })
        .collect();
    let mut table = tabular::Table::new(&spec.join("  "));
    for row in rows {
        let mut cells = tabular::Row::new();
        for c in 0..columns {
            cells.add_cell(clean(row.get(c).map_or("", String::as_str)));
        }
        table.add_row(cells);
    }
    let text = table.to_string();
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// How many of the columns fit in `width` (all of them without a width): the first
/// always shows, then each while the line stays within the width. Widths are as the
/// terminal shows them (a CJK character takes two cells).
pub fn columns_that_fit(rows: &[Vec<String>], width: Option<usize>) -> usize {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let Some(width) = width else { return columns };
    let mut used = 0;
    for c in 0..columns {
        let widest = rows
            .iter()
            .filter_map(|r| r.get(c))
            .map(|cell| clean(cell).width())
            .max()
            .unwrap_or(0);
        let need = if c == 0 { widest } else { used + 2 + widest };
        if c > 0 && need > width {
            return c;
        }
        used = need;
    }
    columns
}

/// The terminal's width: `COLUMNS`, else the window size of stdout; None when stdout is
/// not a terminal (nothing is cut then).
pub fn terminal_width() -> Option<usize> {
    if let Some(cols) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&c| c > 0)
    {
        return Some(cols);
    }
    terminal_size::terminal_size_of(std::io::stdout())
        .map(|(terminal_size::Width(w), _)| usize::from(w))
        .filter(|&w| w > 0)
}

/// The runs table, each run with its index (`guild runs` numbers; None leaves the index
/// column out): id, model, op, status, started, time, `label [tags]`.
pub fn runs<'a>(runs: impl IntoIterator<Item = (Option<u32>, &'a pb::Run)>) -> String {
    let rows: Vec<Vec<String>> = runs
        .into_iter()
        .map(|(index, run)| {
            let mut row = Vec::with_capacity(8);
            if let Some(index) = index {
                row.push(index.to_string());
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
    render(&rows, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(cells: &[&[&str]]) -> Vec<Vec<String>> {
        cells
            .iter()
            .map(|r| r.iter().map(|c| c.to_string()).collect())
            .collect()
    }

    #[test]
    fn columns_line_up_without_trailing_spaces() {
        let table = rows(&[
            &["id", "loss", "label"],
            &["a-long-id", "0.5", ""],
            &["b", "12.25", "best"],
        ]);
        assert_eq!(
            render(&table, &[Align::Left, Align::Right]),
            "id          loss  label\n\
             a-long-id    0.5\n\
             b          12.25  best\n"
        );
    }

    #[test]
    fn control_characters_cannot_break_a_row() {
        let table = rows(&[&["a\nb", "\u{1b}[2J"]]);
        assert_eq!(render(&table, &[]), "a\\nb  \\u{1b}[2J\n");
    }

    #[test]
    fn the_first_column_always_shows_and_others_while_they_fit() {
        let table = rows(&[&["0123456789", "abc", "de"]]);
        assert_eq!(columns_that_fit(&table, None), 3);
        assert_eq!(columns_that_fit(&table, Some(4)), 1);
        assert_eq!(columns_that_fit(&table, Some(15)), 2);
        assert_eq!(columns_that_fit(&table, Some(18)), 2);
        assert_eq!(columns_that_fit(&table, Some(19)), 3);
        // Wide characters take two cells each.
        assert_eq!(columns_that_fit(&rows(&[&["a", "日本"]]), Some(7)), 2);
        assert_eq!(columns_that_fit(&rows(&[&["a", "日本"]]), Some(6)), 1);
    }
}
