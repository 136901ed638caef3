//! Tables in the terminal: columns two spaces apart, each as wide as its widest cell
//! (laid out by `tabular`), lines without trailing spaces; the runs table that `guild
//! runs` and `guild status` print; and, for tables that may be wider than the terminal,
//! which columns fit (`terminal_size` reads the window's width).
//!
//! Cells are text from the daemon: control characters are escaped here, so none can
//! clear the screen or break a row.

use std::borrow::Cow;

use guild_proto::time;
use guild_proto::v1 as pb;
use unicode_width::UnicodeWidthStr;

use crate::format::{label_cell, run_time};
use crate::out::clean;

/// How a column's cells line up.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Align {
    Left,
    Right,
}

/// Rows of cells (the first may be a header), cleaned and measured once.
pub struct Table {
    rows: Vec<Vec<String>>,
    /// Each cell's width on a terminal, by row.
    widths: Vec<Vec<usize>>,
    columns: usize,
}

impl Table {
    pub fn new(mut rows: Vec<Vec<String>>) -> Table {
        let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths = rows
            .iter_mut()
            .map(|row| {
                row.resize(columns, String::new());
                row.iter_mut()
                    .map(|cell| {
                        if let Cow::Owned(clean) = clean(cell) {
                            *cell = clean;
                        }
                        if cell.is_ascii() { cell.len() } else { cell.width() }
                    })
                    .collect()
            })
            .collect();
        Table { rows, widths, columns }
    }

    /// Keeps the columns that fit in `width` (all of them without a width): the first
    /// always shows, then each while the line stays within the width. Returns how many
    /// were left out.
    pub fn fit(&mut self, width: Option<usize>) -> usize {
        let Some(width) = width else { return 0 };
        let mut used = 0;
        let mut shown = self.columns;
        for c in 0..self.columns {
            let widest = self.widths.iter().map(|w| w[c]).max().unwrap_or(0);
            let need = if c == 0 { widest } else { used + 2 + widest };
            if c > 0 && need > width {
                shown = c;
                break;
            }
            used = need;
        }
        let left_out = self.columns - shown;
        self.columns = shown;
        left_out
    }

    /// The table as text, columns aligned as given (left where none is given).
    pub fn render(self, align: &[Align]) -> String {
        if self.columns == 0 {
            return String::new();
        }
        let spec: Vec<&str> = (0..self.columns)
            .map(|c| match align.get(c) {
                Some(Align::Right) => "{:>}",
                _ => "{:<}",
            })
            .collect();
        let mut table = tabular::Table::new(&spec.join("  "));
        for (row, widths) in self.rows.iter().zip(&self.widths) {
            let mut cells = tabular::Row::new();
            for (cell, &width) in row.iter().zip(widths).take(self.columns) {
                cells.add_custom_width_cell(cell.as_str(), width);
            }
            table.add_row(cells);
        }
        let text = table.to_string();
        // Tables are printed last, just before the process ends: freeing 100,000 cells
        // one by one would only cost time.
        std::mem::forget(table);
        std::mem::forget(self);
        let mut out = String::with_capacity(text.len());
        for line in text.lines() {
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Lays out rows (the first may be a header) with the columns aligned as given.
pub fn render(rows: Vec<Vec<String>>, align: &[Align]) -> String {
    Table::new(rows).render(align)
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
                if run.trial > 0 {
                    format!("{} (trial {})", run.op, run.trial)
                } else {
                    run.op.clone()
                },
                crate::format::status_cell(run),
                time::display(run.started_ms),
                run_time(run),
                label_cell(run),
            ]);
            row
        })
        .collect();
    render(rows, &[])
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
            render(table, &[Align::Left, Align::Right]),
            "id          loss  label\n\
             a-long-id    0.5\n\
             b          12.25  best\n"
        );
    }

    #[test]
    fn control_characters_cannot_break_a_row() {
        let table = rows(&[&["a\nb", "\u{1b}[2J"], &["日本", "x"]]);
        assert_eq!(render(table, &[]), "a\\nb  \\u{1b}[2J\n日本  x\n");
    }

    #[test]
    fn the_first_column_always_shows_and_others_while_they_fit() {
        let fit = |cells: &[&[&str]], width| {
            let mut table = Table::new(rows(cells));
            let left_out = table.fit(width);
            (left_out, table.render(&[]))
        };
        let cells: &[&[&str]] = &[&["0123456789", "abc", "de"]];
        assert_eq!(fit(cells, None), (0, "0123456789  abc  de\n".into()));
        assert_eq!(fit(cells, Some(4)), (2, "0123456789\n".into()));
        assert_eq!(fit(cells, Some(15)).0, 1);
        assert_eq!(fit(cells, Some(18)).0, 1);
        assert_eq!(fit(cells, Some(19)).0, 0);
        // Wide characters take two cells each.
        assert_eq!(fit(&[&["a", "日本"]], Some(7)).0, 0);
        assert_eq!(fit(&[&["a", "日本"]], Some(6)).0, 1);
    }
}
