//! `cts-audit scan`: read exports, classify, report.

use super::{table, EXIT_FOUND, EXIT_OK, EXIT_USAGE};
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use cts_audit::catalog::Severity;
use cts_audit::report::{self, Format};
use cts_audit::scan::{self, Filters, ScanError, ScanOptions, Sink, Stats};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;

/// Problems printed one by one before the rest are only counted.
const MAX_PRINTED_PROBLEMS: u64 = 20;

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanFormat {
    /// An aligned table of the records, for people.
    Table,
    /// One JSON object per line (see docs/OUTPUT.md).
    Jsonl,
    /// One JSON array.
    Json,
    /// CSV with a header row.
    Csv,
}

#[derive(Args, Debug)]
pub struct ScanArgs {
    /// Files or directories to read (recursively); `-` reads stdin.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ScanFormat::Table)]
    format: ScanFormat,
    /// Emit every record, not only flagged ones.
    #[arg(long, conflicts_with = "min_severity")]
    all: bool,
    /// Emit records at or above this severity (none, info, low, medium, high, critical).
    #[arg(long, value_parser = parse_severity, default_value = "low")]
    min_severity: Severity,
    /// Exit with status 1 when a record at or above this severity is emitted.
    #[arg(long, value_parser = parse_severity)]
    fail_on: Option<Severity>,
    /// Write the scan's counts and problems as one JSON object to FILE.
    #[arg(long, value_name = "FILE")]
    stats: Option<PathBuf>,
    /// Keep records at or after this time: RFC 3339, a date (YYYY-MM-DD, UTC), or a span back from now (30m, 12h, 7d, 2w).
    #[arg(long, value_parser = parse_time_bound)]
    since: Option<i64>,
    /// Keep records before this time (same forms as --since).
    #[arg(long, value_parser = parse_time_bound)]
    until: Option<i64>,
    /// Keep one trace type (ConsoleAction, ApiCall, SystemAction, ...).
    #[arg(long)]
    trace_type: Option<String>,
    /// Keep one service (service_type, e.g. CBC).
    #[arg(long)]
    service: Option<String>,
    /// Keep one resource type.
    #[arg(long)]
    resource_type: Option<String>,
    /// Keep one user (name or id).
    #[arg(long)]
    user: Option<String>,
    /// Keep one rating.
    #[arg(long, value_parser = ["normal", "warning", "incident"])]
    rating: Option<String>,
    /// Keep one resource id.
    #[arg(long)]
    resource_id: Option<String>,
    /// Keep one trace name.
    #[arg(long)]
    trace_name: Option<String>,
    /// Worker threads (default: all cores).
    #[arg(long, short = 'j')]
    threads: Option<usize>,
    /// No progress bar and no summary line.
    #[arg(long, short)]
    quiet: bool,
}

fn parse_severity(text: &str) -> Result<Severity, String> {
    Severity::parse(text)
        .ok_or_else(|| "expected none, info, low, medium, high or critical".to_owned())
}

/// RFC 3339, a date (midnight UTC), or a span back from now.
fn parse_time_bound(text: &str) -> Result<i64, String> {
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(time.timestamp_millis());
    }
    if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(date
            .and_time(chrono::NaiveTime::MIN)
            .and_utc()
            .timestamp_millis());
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let seconds_per = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => 0,
    };
    match number.parse::<i64>() {
        Ok(n) if seconds_per > 0 && !number.is_empty() => {
            let span = n.checked_mul(seconds_per * 1_000).ok_or("span too large")?;
            Ok(chrono::Utc::now().timestamp_millis() - span)
        }
        _ => Err("expected RFC 3339 (2024-06-19T06:18:51Z), a date (2024-06-19) or a span (30m, 12h, 7d, 2w)".to_owned()),
    }
}

/// Writes records to stdout as they come, counting what `--fail-on` needs.
struct CliSink<W: Write> {
    out: W,
    format: ScanFormat,
    first: bool,
    table_rows: Vec<u8>,
    fail_on: Option<Severity>,
    failed_on: bool,
    problems_printed: u64,
    problems: u64,
    progress: Option<ProgressBar>,
    error: Option<io::Error>,
}

impl<W: Write> CliSink<W> {
    fn write(&mut self, bytes: &[u8]) {
        if self.error.is_none() {
            if let Err(err) = self.out.write_all(bytes) {
                self.error = Some(err);
            }
        }
    }
}

impl<W: Write> Sink for CliSink<W> {
    fn record(&mut self, rendered: &[u8], severity: Severity) {
        self.failed_on |= self.fail_on.is_some_and(|level| severity >= level);
        match self.format {
            ScanFormat::Jsonl | ScanFormat::Csv => self.write(rendered),
            ScanFormat::Json => {
                let separator: &[u8] = if self.first { b"[\n" } else { b",\n" };
                self.first = false;
                self.write(separator);
                self.write(rendered.strip_suffix(b"\n").unwrap_or(rendered));
            }
            ScanFormat::Table => self.table_rows.extend_from_slice(rendered),
        }
    }

    fn problem(&mut self, problem: &ScanError) {
        self.problems += 1;
        if self.problems <= MAX_PRINTED_PROBLEMS {
            let line = format!("cts-audit: warning: {problem}");
            match &self.progress {
                Some(bar) => bar.println(line),
                None => eprintln!("{line}"),
            }
        }
    }

    fn progress(&mut self, bytes: u64) {
        if let Some(bar) = &self.progress {
            bar.inc(bytes);
        }
    }
}

pub fn run(args: &ScanArgs) -> Result<u8> {
    let started = Instant::now();
    let format = match args.format {
        ScanFormat::Csv | ScanFormat::Table => Format::Csv,
        ScanFormat::Jsonl | ScanFormat::Json => Format::Jsonl,
    };
    let options = ScanOptions {
        filters: Filters {
            since_ms: args.since,
            until_ms: args.until,
            trace_type: args.trace_type.clone(),
            service: args.service.clone(),
            resource_type: args.resource_type.clone(),
            user: args.user.clone(),
            rating: args.rating.clone(),
            resource_id: args.resource_id.clone(),
            trace_name: args.trace_name.clone(),
        },
        min_severity: if args.all {
            Severity::None
        } else {
            args.min_severity
        },
        format,
        threads: args.threads,
    };
    let progress = (!args.quiet && io::stderr().is_terminal()).then(|| {
        let total = args
            .paths
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .sum::<u64>();
        let bar = if total > 0 {
            ProgressBar::new(total)
        } else {
            ProgressBar::new_spinner()
        };
        bar.set_style(
            ProgressStyle::with_template("{spinner} {bytes} read {wide_bar} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    });
    let stdout = io::stdout();
    let mut sink = CliSink {
        out: io::BufWriter::with_capacity(1 << 20, stdout.lock()),
        format: args.format,
        first: true,
        table_rows: Vec::new(),
        fail_on: args.fail_on,
        failed_on: false,
        problems_printed: 0,
        problems: 0,
        progress,
        error: None,
    };
    if args.format == ScanFormat::Csv {
        report::write_csv_header(&mut sink.out).context("writing to stdout")?;
    }
    let stats = scan::scan(&args.paths, &options, &mut sink);
    if let Some(bar) = sink.progress.take() {
        bar.finish_and_clear();
    }
    match args.format {
        ScanFormat::Json => sink.write(if sink.first { b"[]\n" } else { b"\n]\n" }),
        ScanFormat::Table => {
            let rows = std::mem::take(&mut sink.table_rows);
            let mut buffer = Vec::new();
            write_table(&mut buffer, &rows)?;
            sink.write(&buffer);
        }
        _ => {}
    }
    if let Some(err) = sink.error.take() {
        return Err(err).context("writing to stdout");
    }
    sink.out.flush().context("writing to stdout")?;
    sink.problems_printed = sink.problems.min(MAX_PRINTED_PROBLEMS);
    if sink.problems > sink.problems_printed {
        eprintln!(
            "cts-audit: warning: {} more problems not shown (see --stats)",
            sink.problems - sink.problems_printed
        );
    }
    if let Some(path) = &args.stats {
        let file = std::fs::File::create(path)
            .with_context(|| format!("cannot write --stats file {}", path.display()))?;
        let mut writer = io::BufWriter::new(file);
        serde_json::to_writer_pretty(&mut writer, &stats)?;
        writeln!(writer)?;
        writer.flush()?;
    }
    if !args.quiet {
        eprintln!("{}", summary_line(&stats, started.elapsed().as_secs_f64()));
    }
    if stats.files == 0 {
        eprintln!("cts-audit: error: no input could be read");
        return Ok(EXIT_USAGE);
    }
    Ok(if sink.failed_on { EXIT_FOUND } else { EXIT_OK })
}

fn summary_line(stats: &Stats, seconds: f64) -> String {
    let flagged: u64 = stats
        .by_severity
        .iter()
        .filter(|(s, _)| Severity::parse(s).is_some_and(|s| s >= Severity::Low))
        .map(|(_, n)| n)
        .sum();
    format!(
        "cts-audit: {} files ({} skipped, {} digests), {} records, {} duplicates, {} billing ({} catalogued, {} uncatalogued), {} flagged, {} emitted, {} errors, {:.1} MB in {:.2}s",
        stats.files,
        stats.files_skipped,
        stats.digests_skipped,
        stats.records,
        stats.duplicates,
        stats.billing,
        stats.catalogued,
        stats.uncatalogued,
        flagged,
        stats.emitted,
        stats.errors,
        stats.bytes as f64 / 1e6,
        seconds
    )
}

/// The table shows the columns a person reads first; the CSV rows rendered
/// by the workers are read back in.
fn write_table(out: &mut Vec<u8>, csv_rows: &[u8]) -> Result<()> {
    let columns = [
        "time",
        "severity",
        "trace_name",
        "category",
        "user",
        "source_ip",
        "rating",
        "error_code",
        "resource_id",
        "source",
    ];
    let index: Vec<usize> = columns
        .iter()
        .filter_map(|c| report::CSV_HEADER.iter().position(|h| h == c))
        .collect();
    let mut table = table::new(&columns);
    let mut count = 0;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(csv_rows);
    for row in reader.records() {
        let row = row.context("re-reading rendered rows")?;
        table.add_row(index.iter().map(|&i| row.get(i).unwrap_or("")));
        count += 1;
    }
    if count == 0 {
        writeln!(out, "no records at or above the severity floor")?;
    } else {
        table::write(out, &table)?;
        writeln!(out, "{count} records")?;
    }
    Ok(())
}
