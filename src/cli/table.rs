//! Aligned plain-text tables for people.

use comfy_table::{presets::NOTHING, ContentArrangement, Table};
use std::io::{self, Write};
use unicode_width::UnicodeWidthStr;

/// A borderless table with a header row, wrapped to no width (pipes and
/// files keep whole lines).
pub fn new(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.iter().map(|h| h.to_uppercase()));
    table
}

/// Writes `table` with trailing padding trimmed from every line.
pub fn write(out: &mut impl Write, table: &Table) -> io::Result<()> {
    for line in table.lines() {
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// A table of records that may be far too many to hold: laid out from all
/// its rows when they are few, as [`new`] does; once `hold` rows have come,
/// those are written with the widths they need and every later row as it
/// comes, in the same columns (a longer cell pushes the rest of its line
/// on, and is never cut). Memory stays flat however many rows come.
pub struct RowsTable {
    header: Vec<String>,
    held: Vec<Vec<String>>,
    hold: usize,
    /// Set once the table streams.
    widths: Option<Vec<usize>>,
    rows: u64,
}

impl RowsTable {
    pub fn new(header: &[&str], hold: usize) -> RowsTable {
        RowsTable {
            header: header.iter().map(|h| h.to_uppercase()).collect(),
            held: Vec::new(),
            hold: hold.max(1),
            widths: None,
            rows: 0,
        }
    }

    /// Adds a row, writing to `out` once the table streams.
    pub fn push(&mut self, out: &mut impl Write, row: Vec<String>) -> io::Result<()> {
        self.rows += 1;
        if let Some(widths) = &self.widths {
            return write_row(out, widths, &row);
        }
        self.held.push(row);
        if self.held.len() < self.hold {
            return Ok(());
        }
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.width()).collect();
        for row in &self.held {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(one_line(cell).width());
            }
        }
        // The table streams from here on, even if the output fails now: a
        // later row must never lay out the held ones again.
        let held = std::mem::take(&mut self.held);
        let widths = self.widths.insert(widths);
        write_row(out, widths, &self.header)?;
        for row in held {
            write_row(out, widths, &row)?;
        }
        Ok(())
    }

    /// Writes what is still held, the whole table if it never streamed;
    /// returns how many rows there were.
    pub fn finish(&mut self, out: &mut impl Write) -> io::Result<u64> {
        if self.widths.is_none() && !self.held.is_empty() {
            let header: Vec<&str> = self.header.iter().map(String::as_str).collect();
            let mut table = new(&header);
            for row in std::mem::take(&mut self.held) {
                table.add_row(row);
            }
            write(out, &table)?;
        }
        Ok(self.rows)
    }
}

/// A cell on one line: a streamed row must stay one line of output.
fn one_line(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.contains(['\r', '\n', '\t']) {
        cell.replace(['\r', '\n', '\t'], " ").into()
    } else {
        cell.into()
    }
}

/// One row in the columns of `widths`, laid out as [`new`]'s tables are: a
/// space either side of each cell, trailing padding trimmed.
fn write_row(out: &mut impl Write, widths: &[usize], cells: &[String]) -> io::Result<()> {
    let mut line = String::new();
    for (cell, width) in cells.iter().zip(widths) {
        let cell = one_line(cell);
        line.push(' ');
        line.push_str(&cell);
        line.extend(std::iter::repeat_n(
            ' ',
            width.saturating_sub(cell.width()) + 1,
        ));
    }
    writeln!(out, "{}", line.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize) -> Vec<Vec<String>> {
        (0..n)
            .map(|i| {
                vec![
                    format!("name-{i}"),
                    "x".repeat(i % 3),
                    format!("line\nbreak {i}"),
                ]
            })
            .collect()
    }

    fn render(n: usize, hold: usize) -> (String, u64) {
        let mut out = Vec::new();
        let mut table = RowsTable::new(&["name", "pad", "note"], hold);
        for row in rows(n) {
            table.push(&mut out, row).unwrap();
        }
        let count = table.finish(&mut out).unwrap();
        (String::from_utf8(out).unwrap(), count)
    }

    #[test]
    fn a_streamed_table_lays_out_its_rows_as_a_held_one() {
        // Cells of one line each, so both layouts agree line for line.
        let mut held = Vec::new();
        let mut table = RowsTable::new(&["name", "pad"], 100);
        let mut streamed = Vec::new();
        let mut streaming = RowsTable::new(&["name", "pad"], 1);
        for i in 0..10 {
            let row = vec![format!("name-{i}"), "x".repeat(i % 3)];
            table.push(&mut held, row.clone()).unwrap();
            streaming.push(&mut streamed, row).unwrap();
        }
        assert_eq!(table.finish(&mut held).unwrap(), 10);
        assert_eq!(streaming.finish(&mut streamed).unwrap(), 10);
        // Streaming fixes widths from the first row, so only later, wider
        // cells may push their line on; these all fit once the name has.
        let held = String::from_utf8(held).unwrap();
        let streamed = String::from_utf8(streamed).unwrap();
        assert_eq!(held.lines().next(), Some(" NAME    PAD"));
        assert_eq!(streamed.lines().count(), 11);
        assert!(streamed.lines().all(|l| l.starts_with(' ')));
    }

    #[test]
    fn past_the_hold_every_row_is_one_line_and_none_is_lost() {
        let (text, count) = render(50, 10);
        assert_eq!(count, 50);
        assert_eq!(text.lines().count(), 51);
        assert!(text.contains(" name-49 "));
        assert!(text.contains("line break 49"));
        // Under the hold, the laid-out table keeps a cell's line break.
        let (text, count) = render(5, 10);
        assert_eq!(count, 5);
        assert!(text.lines().count() > 6);
    }
}
