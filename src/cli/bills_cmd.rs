//! `cts-audit bills`: read bill records and write them as FOCUS 1.2 rows.

use super::{table, EXIT_OK, EXIT_USAGE};
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use cts_audit::bills::{self, read_bills, BillRecord, Bills, FocusRow, ReadOptions};
use cts_audit::report::escape_control;
use std::io::{self, Write};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct BillsArgs {
    /// Bill files or folders: Huawei fee records, resource records or
    /// account changes, UCloud bill items; API JSON pages, JSON lines or
    /// CSV exports, gzip or tar as well (`-`: stdin).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = BillsFormat::Table)]
    format: BillsFormat,
    /// Write to this file instead of stdout (required for parquet).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    read: BillReadArgs,
    /// Write the counts and totals as JSON to this file.
    #[arg(long, value_name = "FILE")]
    stats: Option<PathBuf>,
}

/// How bills are read: `bills`' and `scan --bills`'.
#[derive(Args, Debug, Default, Clone)]
pub struct BillReadArgs {
    /// The currency (ISO 4217) of records whose record and page name none.
    /// UCloud's, which never do, are CNY without it.
    #[arg(long, value_name = "CODE")]
    pub currency: Option<String>,
}

impl BillReadArgs {
    pub fn options(&self) -> ReadOptions {
        ReadOptions {
            currency: self.currency.clone(),
        }
    }
}

/// How FOCUS rows are written.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BillsFormat {
    /// The rows people read first, and each currency's totals.
    Table,
    /// FOCUS CSV: every column, texts escaped for spreadsheets.
    FocusCsv,
    /// One FOCUS row a line as JSON.
    Jsonl,
    /// Parquet (polars): exact decimals, UTC datetimes.
    Parquet,
}

pub fn run(args: &BillsArgs) -> Result<u8> {
    if args.format == BillsFormat::Parquet && args.output.is_none() {
        eprintln!("cts-audit: error: --format parquet needs -o FILE");
        return Ok(EXIT_USAGE);
    }
    let bills = read_bills(&args.paths, &args.read.options());
    report_problems(&bills);
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot write {}", path.display()))?,
        )),
        None => Box::new(io::BufWriter::new(io::stdout().lock())),
    };
    match args.format {
        BillsFormat::Table => write_table(&bills.records, &mut out)?,
        BillsFormat::FocusCsv => bills::write_focus_csv(&bills.records, &mut out)?,
        BillsFormat::Jsonl => bills::write_focus_jsonl(&bills.records, &mut out)?,
        BillsFormat::Parquet => write_parquet(&bills.records, out)?,
    }
    let totals = bills::totals(&bills.records);
    if let Some(path) = &args.stats {
        let stats = serde_json::json!({ "read": bills.stats, "totals": totals });
        std::fs::write(path, serde_json::to_vec_pretty(&stats)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    eprintln!("{}", summary_line(&bills));
    if bills.stats.records == 0 && bills.stats.read == 0 {
        return Ok(EXIT_USAGE);
    }
    Ok(EXIT_OK)
}

/// Each problem on stderr, with its file and record.
pub fn report_problems(bills: &Bills) {
    for problem in &bills.problems {
        let kind = if problem.record_lost {
            "error"
        } else {
            "warning"
        };
        eprintln!(
            "cts-audit: {kind}: {}",
            escape_control(&problem.to_string())
        );
    }
}

/// `cts-audit: bills: 4 files, 10 records read (10 normalised, 0 errors, 0 warnings); CNY 2,535.30 …`
pub fn summary_line(bills: &Bills) -> String {
    let s = &bills.stats;
    let totals: Vec<String> = bills::totals(&bills.records)
        .iter()
        .map(|(currency, t)| {
            format!(
                "{currency} {} ({} charged, {} refunded)",
                t.billed, t.spend, t.refunds
            )
        })
        .collect();
    format!(
        "cts-audit: bills: {} files ({} not read), {} records read: {} normalised, {} errors, {} warnings; total {}",
        s.files,
        s.files_not_read,
        s.read,
        s.records,
        s.errors,
        s.warnings,
        if totals.is_empty() { "none".to_owned() } else { totals.join(", ") }
    )
}

const TABLE_COLUMNS: [&str; 8] = [
    "charge period start",
    "category",
    "billed cost",
    "currency",
    "service",
    "resource",
    "order",
    "bill type",
];

fn write_table(records: &[BillRecord], out: &mut dyn Write) -> io::Result<()> {
    let mut text = table::new(&TABLE_COLUMNS);
    for record in records {
        let row = FocusRow::from(record);
        let cells = [
            row.charge_period_start,
            row.charge_category.to_owned(),
            row.billed_cost,
            row.billing_currency,
            row.service_name,
            row.resource_id.unwrap_or_default(),
            row.x_trade_id.unwrap_or_default(),
            format!("{} ({})", row.x_bill_type, row.x_charge),
        ];
        text.add_row(cells.iter().map(|c| escape_control(c).into_owned()));
    }
    let mut out = out;
    table::write(&mut out, &text)?;
    for (currency, t) in bills::totals(records) {
        writeln!(
            out,
            "{}: {} rows, billed {} (charged {}, refunded {}), list {}",
            escape_control(&currency),
            t.rows,
            t.billed,
            t.spend,
            t.refunds,
            t.list
        )?;
    }
    Ok(())
}

#[cfg(feature = "summary")]
fn write_parquet(records: &[BillRecord], out: Box<dyn Write>) -> Result<()> {
    use polars_io::prelude::ParquetWriter;
    let mut frame = bills::focus_frame(records)?;
    ParquetWriter::new(out).finish(&mut frame)?;
    Ok(())
}

#[cfg(not(feature = "summary"))]
fn write_parquet(_: &[BillRecord], _: Box<dyn Write>) -> Result<()> {
    anyhow::bail!("--format parquet needs the `summary` feature (polars)")
}
