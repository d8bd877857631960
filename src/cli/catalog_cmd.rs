//! `cts-audit catalog`: list, filter and look up catalog entries.

use super::{table, ListFormat, EXIT_FOUND, EXIT_OK};
use anyhow::{Context, Result};
use clap::Args;
use cts_audit::catalog::{self, Entry};
use std::io::{self, Write};

#[derive(Args, Debug)]
pub struct CatalogArgs {
    /// Keep entries whose trace name, operation, resource type or category
    /// contains this text (ASCII case ignored).
    filter: Option<String>,
    /// Show the entries of exactly this trace name.
    #[arg(long)]
    name: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    format: ListFormat,
}

pub fn run(args: &CatalogArgs) -> Result<u8> {
    let selected: Vec<&'static Entry> = match &args.name {
        Some(name) => {
            let entries = catalog::lookup(name);
            if entries.is_empty() {
                eprintln!("cts-audit: no catalog entry is named {name:?}");
                let close = close_matches(name);
                if !close.is_empty() {
                    eprintln!("  did you mean: {}", close.join(", "));
                }
                return Ok(EXIT_FOUND);
            }
            entries.iter().collect()
        }
        None => catalog::entries().iter().collect(),
    };
    let selected: Vec<&Entry> = match &args.filter {
        Some(text) => selected
            .into_iter()
            .filter(|entry| matches_filter(entry, text))
            .collect(),
        None => selected,
    };
    let mut out = io::BufWriter::new(io::stdout().lock());
    write_entries(&mut out, &selected, args.format)?;
    out.flush().context("writing to stdout")?;
    Ok(EXIT_OK)
}

fn matches_filter(entry: &Entry, text: &str) -> bool {
    let needle = text.to_ascii_lowercase();
    [
        entry.trace_name,
        entry.operation,
        entry.resource_type,
        entry.category.as_str(),
    ]
    .iter()
    .any(|field| field.to_ascii_lowercase().contains(&needle))
}

/// Up to five trace names that look like `name`: same name in another case,
/// a close spelling, or one that contains it.
fn close_matches(name: &str) -> Vec<&'static str> {
    let lower = name.to_ascii_lowercase();
    let mut scored: Vec<(f64, &'static str)> = catalog::entries()
        .iter()
        .map(|entry| {
            let candidate = entry.trace_name.to_ascii_lowercase();
            let mut score = strsim::jaro_winkler(&lower, &candidate);
            if candidate.contains(&lower) || lower.contains(&candidate) {
                score = score.max(0.9);
            }
            (score, entry.trace_name)
        })
        .filter(|(score, _)| *score >= 0.85)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(5).map(|(_, name)| name).collect()
}

fn write_entries(out: &mut impl Write, entries: &[&Entry], format: ListFormat) -> Result<()> {
    match format {
        ListFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, entries)?;
            writeln!(out)?;
        }
        ListFormat::Csv => {
            let mut writer = csv::Writer::from_writer(out);
            for entry in entries {
                writer.serialize(entry)?;
            }
            writer.flush()?;
        }
        ListFormat::Table => {
            let mut table = table::new(&[
                "trace_name",
                "resource_type",
                "category",
                "severity",
                "operation",
            ]);
            for entry in entries {
                table.add_row([
                    entry.trace_name,
                    entry.resource_type,
                    entry.category.as_str(),
                    entry.severity.as_str(),
                    entry.operation,
                ]);
            }
            table::write(out, &table)?;
            writeln!(out, "{} entries", entries.len())?;
        }
    }
    Ok(())
}
