//! Aligned plain-text tables for people.

use comfy_table::{presets::NOTHING, ContentArrangement, Table};

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
pub fn write(out: &mut impl std::io::Write, table: &Table) -> std::io::Result<()> {
    for line in table.lines() {
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}
