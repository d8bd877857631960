//! `cts-audit scan`: read exports, classify, report.

use super::{table, EXIT_FOUND, EXIT_OK, EXIT_USAGE};
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use cts_audit::catalog::Severity;
use cts_audit::report::{self, Format};
use cts_audit::rules::{BusinessHours, RuleSet};
use cts_audit::scan::{self, Record, ScanError, ScanOptions, Sink, Stats};
use cts_audit::verdict::Verdict;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{self, IsTerminal, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
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
    /// OCSF 1.x API Activity (class 6003), one object per line (docs/SIEM.md).
    Ocsf,
    /// Elastic Common Schema, one document per line (docs/SIEM.md).
    Ecs,
    /// A summary table by --summary-by (polars), worst groups first.
    #[cfg(feature = "summary")]
    Summary,
    /// Parquet (polars), a row group every 16,384 records; needs -o FILE
    /// (docs/OUTPUT.md gives the schema).
    #[cfg(feature = "summary")]
    Parquet,
}

#[derive(Args, Debug)]
pub struct ScanArgs {
    /// Files or directories to read (recursively); `-` reads stdin.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ScanFormat::Table)]
    format: ScanFormat,
    /// Write the records to FILE instead of stdout (required for parquet).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Emit every record, not only flagged ones.
    #[arg(long, conflicts_with = "min_severity")]
    all: bool,
    /// Emit records at or above this severity (none, info, low, medium, high, critical).
    #[arg(long, value_parser = parse_severity, default_value = "low")]
    min_severity: Severity,
    /// Exit with status 1 when a record at or above this severity is emitted.
    #[arg(long, value_parser = parse_severity)]
    fail_on: Option<Severity>,
    /// Check each file against the download's signed digests as it is read:
    /// records get `integrity`, and audit.integrity flags those of a
    /// modified or unlisted file (docs/INTEGRITY.md).
    #[arg(long)]
    verify: bool,
    #[command(flatten)]
    keys: super::verify_cmd::KeyArgs,
    /// Bill records (a file or folder; repeatable) whose charges are put
    /// beside the billing actions that caused them: records get `cost`
    /// (docs/COST.md). Files under it are not read as traces.
    #[arg(long = "bills", value_name = "PATH")]
    bills: Vec<PathBuf>,
    /// With --bills: how long after a billing action its charges may come.
    #[arg(long, default_value = "48h", value_parser = parse_window)]
    cost_window: i64,
    /// With --bills: write the actions without charges and the charges
    /// without actions, one JSON object a line, to FILE.
    #[arg(long, value_name = "FILE", requires = "bills")]
    unmatched: Option<PathBuf>,
    /// With --bills: cost.large flags a charge or refund of at least
    /// AMOUNT, in any currency, or AMOUNT:CUR in one (repeatable).
    #[arg(long, value_name = "AMOUNT[:CUR]", requires = "bills")]
    cost_threshold: Vec<cts_audit::rules::CostThreshold>,
    #[command(flatten)]
    bill_read: super::bills_cmd::BillReadArgs,
    /// Write the scan's counts and problems as one JSON object to FILE.
    #[arg(long, value_name = "FILE")]
    stats: Option<PathBuf>,
    /// Also write a self-contained HTML report to FILE: what was read, the
    /// flagged records at a glance, a timeline, the actors, integrity, and
    /// the most severe records (docs/REPORT.md). Times in --tz.
    #[cfg(feature = "html")]
    #[arg(long, value_name = "FILE.html")]
    report: Option<PathBuf>,
    /// With --report: flagged records listed at most (the page says how
    /// many were left out).
    #[cfg(feature = "html")]
    #[arg(long, value_name = "N", default_value_t = cts_audit::report::html::DEFAULT_MAX_LISTED, requires = "report")]
    report_records: usize,
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
    /// Load rules from a TOML rules file (repeatable); see examples/rules.toml.
    #[arg(long = "rules", value_name = "FILE")]
    rule_files: Vec<PathBuf>,
    /// Turn a rule off by id (repeatable); `cts-audit rules` lists them.
    #[arg(long, value_name = "ID")]
    exclude_rule: Vec<String>,
    /// Earlier exports whose (user, source IP) pairs count as already seen for source.first_seen.
    #[arg(long, value_name = "PATH")]
    baseline: Vec<PathBuf>,
    /// Failed sensitive attempts by one actor that make failed.repeated fire.
    #[arg(long, default_value_t = 5)]
    failure_threshold: u32,
    /// Window for --failure-threshold (30s, 10m, 1h, ...).
    #[arg(long, default_value = "10m", value_parser = parse_window)]
    failure_window: i64,
    /// Exports by one actor that make export.burst fire.
    #[arg(long, default_value_t = 10)]
    export_threshold: u32,
    /// Window for --export-threshold.
    #[arg(long, default_value = "1h", value_parser = parse_window)]
    export_window: i64,
    /// Turn on the off-hours rule: business hours as HH-HH, e.g. 09-18.
    #[arg(long, value_parser = parse_hours)]
    business_hours: Option<(u32, u32)>,
    /// Time zone of --business-hours as an offset, e.g. +08:00 (default UTC).
    #[arg(long, value_parser = parse_offset, allow_hyphen_values = true)]
    tz: Option<i32>,
    /// With --business-hours, Saturdays and Sundays count as off-hours.
    #[arg(long, requires = "business_hours")]
    weekends_off: bool,
    /// Worker threads (default: all cores).
    #[arg(long, short = 'j')]
    threads: Option<usize>,
    /// MiB of rule candidates held in memory; beyond it they spill, sorted,
    /// to a temporary file, so memory stays flat on any input.
    #[arg(long, value_name = "MIB", default_value_t = 8)]
    held_memory: usize,
    /// Problems listed one by one in --stats; past this they are counted
    /// by file and kind, so memory stays flat on any input.
    #[arg(long, value_name = "N", default_value_t = 1_000)]
    max_errors: usize,
    /// Read at most this much of one file, decompressed (e.g. 8G, 512M); the rest is skipped and reported.
    #[arg(long, value_name = "SIZE", default_value = "8G", value_parser = parse_size)]
    max_file_bytes: u64,
    /// Largest record, JSON document or CSV table read whole (e.g. 512M).
    #[arg(long, value_name = "SIZE", default_value = "512M", value_parser = parse_size)]
    max_record_bytes: u64,
    /// No progress bar and no summary line.
    #[arg(long, short)]
    quiet: bool,
    /// With --format summary: the columns to group by (user, category, trace_name, severity).
    #[cfg(feature = "summary")]
    #[arg(long, value_delimiter = ',', default_value = "user,category", value_parser = ["user", "category", "trace_name", "severity"])]
    summary_by: Vec<String>,
    /// With --format summary: also write the table to FILE (.parquet or .csv).
    #[cfg(feature = "summary")]
    #[arg(long, value_name = "FILE")]
    summary_out: Option<PathBuf>,
}

/// A size in bytes: digits with an optional K, M or G (powers of 1024).
fn parse_size(text: &str) -> Result<u64, String> {
    let bad = || "expected a size such as 512M, 8G or 65536".to_owned();
    let text = text.trim();
    let (digits, shift) = match text.as_bytes().last() {
        Some(b'k' | b'K') => (&text[..text.len() - 1], 10),
        Some(b'm' | b'M') => (&text[..text.len() - 1], 20),
        Some(b'g' | b'G') => (&text[..text.len() - 1], 30),
        _ => (text, 0),
    };
    let number: u64 = digits.parse().map_err(|_| bad())?;
    number
        .checked_mul(1 << shift)
        .filter(|bytes| *bytes > 0)
        .ok_or_else(bad)
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
    match cts_audit::rules::parse_span(text) {
        Some(span) => Ok(chrono::Utc::now().timestamp_millis() - span),
        None => Err("expected RFC 3339 (2024-06-19T06:18:51Z), a date (2024-06-19) or a span (30m, 12h, 7d, 2w)".to_owned()),
    }
}

fn parse_window(text: &str) -> Result<i64, String> {
    cts_audit::rules::parse_span(text)
        .filter(|ms| *ms > 0)
        .ok_or_else(|| "expected a span such as 30s, 10m, 1h or 1d".to_owned())
}

fn parse_hours(text: &str) -> Result<(u32, u32), String> {
    let bad = || "expected HH-HH, e.g. 09-18".to_owned();
    let (start, end) = text.split_once('-').ok_or_else(bad)?;
    let start: u32 = start.parse().map_err(|_| bad())?;
    let end: u32 = end.parse().map_err(|_| bad())?;
    if start < end && end <= 24 {
        Ok((start, end))
    } else {
        Err("business hours must satisfy start < end <= 24".into())
    }
}

fn parse_offset(text: &str) -> Result<i32, String> {
    if text.eq_ignore_ascii_case("utc") || text == "Z" {
        return Ok(0);
    }
    let bad = || "expected an offset such as +08:00 or -05:00".to_owned();
    let sign = match text.as_bytes().first() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return Err(bad()),
    };
    let (h, m) = text[1..].split_once(':').unwrap_or((&text[1..], "0"));
    match (h.parse::<i32>(), m.parse::<i32>()) {
        (Ok(h), Ok(m)) if h <= 14 && m < 60 => Ok(sign * (h * 60 + m)),
        _ => Err(bad()),
    }
}

/// Builds the rule set from the command line: files, exclusions,
/// thresholds, business hours and the first-seen baseline.
fn build_rules(args: &ScanArgs) -> Result<RuleSet> {
    let mut rules = RuleSet::builtin();
    for file in &args.rule_files {
        rules.load_file(file)?;
    }
    for id in &args.exclude_rule {
        if !rules.exclude(id) {
            anyhow::bail!("--exclude-rule {id}: no rule has this id (see `cts-audit rules`)");
        }
    }
    rules.settings.failure_threshold = args.failure_threshold;
    rules.settings.failure_window_ms = args.failure_window;
    rules.settings.export_threshold = args.export_threshold;
    rules.settings.export_window_ms = args.export_window;
    rules.settings.cost_thresholds = args.cost_threshold.clone();
    rules.settings.business_hours =
        args.business_hours
            .map(|(start_hour, end_hour)| BusinessHours {
                start_hour,
                end_hour,
                utc_offset_minutes: args.tz.unwrap_or(0),
                weekends_off: args.weekends_off,
            });
    if !args.baseline.is_empty() {
        let mut options = ScanOptions::default();
        options.min_severity = Severity::None;
        options.threads = args.threads;
        options.format = Format::Verdicts;
        let mut sink = BaselineSink(&mut rules);
        let stats = scan::scan(&args.baseline, &options, &mut sink);
        if stats.files == 0 {
            anyhow::bail!("--baseline: no input could be read");
        }
    }
    Ok(rules)
}

/// Learns each actor's source addresses from a `--baseline` scan.
struct BaselineSink<'r>(&'r mut RuleSet);

impl Sink for BaselineSink<'_> {
    fn record(&mut self, record: Record<'_>, _: Severity) -> ControlFlow<()> {
        if let Record::Verdict(verdict) = record {
            if let (Some(user), Some(ip)) = (verdict.user.as_deref(), verdict.source_ip.as_deref())
            {
                self.0.add_baseline(user, ip);
            }
        }
        ControlFlow::Continue(())
    }
    fn problem(&mut self, _: &ScanError) {}
}

/// Writes records to stdout as they come, counting what `--fail-on` needs.
struct CliSink<W: Write> {
    out: W,
    format: ScanFormat,
    first: bool,
    /// `--format table`: the rows, held while they are few.
    table: table::RowsTable,
    /// `--format table`: its columns.
    columns: Vec<&'static str>,
    /// `--format summary`: the records so far, in groups.
    #[cfg(feature = "summary")]
    summary: cts_audit::summary::Summary,
    /// `--format parquet`: the file being written, a row group at a time.
    #[cfg(feature = "summary")]
    parquet: Option<cts_audit::parquet::VerdictParquet>,
    /// `--report`: the verdicts folded as they come.
    #[cfg(feature = "html")]
    report: Option<cts_audit::report::html::HtmlReport>,
    fail_on: Option<Severity>,
    failed_on: bool,
    problems: u64,
    progress: Option<ProgressBar>,
    error: Option<io::Error>,
}

impl<W: Write> CliSink<W> {
    /// One table row: the verdict's fields, control characters escaped.
    fn push_row(&mut self, verdict: &Verdict<'_>) {
        let row = self
            .columns
            .iter()
            .map(|column| {
                let cell = verdict.output_field(column).unwrap_or_default();
                report::escape_control(&cell).into_owned()
            })
            .collect();
        if let Err(err) = self.table.push(&mut self.out, row) {
            self.error.get_or_insert(err);
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        if self.error.is_none() {
            if let Err(err) = self.out.write_all(bytes) {
                self.error = Some(err);
            }
        }
    }
}

impl<W: Write> Sink for CliSink<W> {
    fn record(&mut self, record: Record<'_>, severity: Severity) -> ControlFlow<()> {
        // What was seen counts for --fail-on, even past a closed pipe.
        self.failed_on |= self.fail_on.is_some_and(|level| severity >= level);
        #[cfg(feature = "html")]
        if let (Some(report), Some(verdict)) = (&mut self.report, record.verdict()) {
            report.add(verdict);
        }
        match (self.format, record.rendered(), record.verdict()) {
            (ScanFormat::Json, Some(rendered), _) => {
                let separator: &[u8] = if self.first { b"[\n" } else { b",\n" };
                self.first = false;
                self.write(separator);
                self.write(rendered.strip_suffix(b"\n").unwrap_or(rendered));
            }
            (_, Some(rendered), _) => self.write(rendered),
            (ScanFormat::Table, None, Some(verdict)) => self.push_row(verdict),
            #[cfg(feature = "summary")]
            (ScanFormat::Parquet, None, Some(verdict)) => {
                if let Some(parquet) = &mut self.parquet {
                    if let Err(err) = parquet.push(verdict) {
                        self.error.get_or_insert(io::Error::other(err));
                    }
                }
            }
            #[cfg(feature = "summary")]
            (ScanFormat::Summary, None, Some(verdict)) => {
                self.summary
                    .add(&cts_audit::summary::SummaryRecord::of(verdict));
            }
            // The other formats were rendered; a report folds verdicts.
            _ => {}
        }
        // Output that cannot be written (a closed pipe, a full disk)
        // stops the scan: nothing more is read.
        if self.error.is_some() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    fn problem(&mut self, problem: &ScanError) {
        self.problems += 1;
        if self.problems <= MAX_PRINTED_PROBLEMS {
            let problem = problem.to_string();
            let line = format!("cts-audit: warning: {}", report::escape_control(&problem));
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
    // A --stats path in a missing directory fails before anything is read.
    // (The file itself is written at the end: created now, it would be
    // read as an empty input when it lies inside a scanned directory.)
    if let Some(path) = &args.stats {
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !parent.is_dir() {
            eprintln!(
                "cts-audit: error: cannot write --stats file {}: {} is not a directory",
                path.display(),
                parent.display()
            );
            return Ok(EXIT_USAGE);
        }
    }
    let format = match args.format {
        ScanFormat::Csv => Format::Csv,
        ScanFormat::Jsonl | ScanFormat::Json => Format::Jsonl,
        ScanFormat::Ocsf => Format::Ocsf,
        ScanFormat::Ecs => Format::Ecs,
        // Read field by field: nothing is rendered to be parsed back.
        ScanFormat::Table => Format::Verdicts,
        #[cfg(feature = "summary")]
        ScanFormat::Summary | ScanFormat::Parquet => Format::Verdicts,
    };
    let rules = match build_rules(args) {
        Ok(rules) => rules,
        Err(err) => {
            eprintln!("cts-audit: error: {err:#}");
            return Ok(EXIT_USAGE);
        }
    };
    let mut options = ScanOptions::default();
    let filters = &mut options.filters;
    filters.since_ms = args.since;
    filters.until_ms = args.until;
    filters.trace_type = args.trace_type.clone();
    filters.service = args.service.clone();
    filters.resource_type = args.resource_type.clone();
    filters.user = args.user.clone();
    filters.rating = args.rating.clone();
    filters.resource_id = args.resource_id.clone();
    filters.trace_name = args.trace_name.clone();
    options.min_severity = if args.all {
        Severity::None
    } else {
        args.min_severity
    };
    options.format = format;
    options.threads = threads(args.threads);
    options.held_memory = args.held_memory.saturating_mul(1 << 20);
    options.max_errors = args.max_errors;
    options.limits = cts_audit::input::Limits {
        max_file_bytes: args.max_file_bytes,
        max_record_bytes: usize::try_from(args.max_record_bytes).unwrap_or(usize::MAX),
    };
    options.rules = rules;
    // A report folds verdicts beside the rendered output.
    #[cfg(feature = "html")]
    let report = match &args.report {
        Some(path) => {
            std::fs::File::create(path)
                .with_context(|| format!("cannot write --report file {}", path.display()))?;
            // Created before the scan: never read back as an input.
            options.skip_paths.push(path.clone());
            options.keep_verdicts = format != Format::Verdicts;
            let mut settings = cts_audit::report::html::ReportSettings::default();
            settings.inputs = args.paths.iter().map(|p| p.display().to_string()).collect();
            settings.utc_offset_minutes = args.tz.unwrap_or(0);
            settings.max_listed = args.report_records;
            settings.bills = !args.bills.is_empty();
            settings.verify = args.verify;
            Some(cts_audit::report::html::HtmlReport::new(settings))
        }
        None => None,
    };
    if args.keys.given() && !args.verify {
        eprintln!("cts-audit: error: --public-key, --signatures and --signature need --verify");
        return Ok(EXIT_USAGE);
    }
    if args.verify {
        let (key, signatures) = match args.keys.load() {
            Ok(loaded) => loaded,
            Err(err) => {
                eprintln!("cts-audit: error: {err}");
                return Ok(EXIT_USAGE);
            }
        };
        let mut digests = cts_audit::integrity::read_digests(&args.paths, key);
        for (object, hex) in &signatures {
            digests.give_signature(object, hex);
        }
        options.integrity = Some(std::sync::Arc::new(digests.check()));
    }
    let bills = (!args.bills.is_empty()).then(|| {
        let bills = cts_audit::bills::read_bills(&args.bills, &args.bill_read.options());
        super::bills_cmd::report_problems(&bills);
        bills
    });
    if let Some(bills) = &bills {
        if bills.stats.read == 0 {
            eprintln!("cts-audit: error: --bills: no bill records could be read");
            return Ok(EXIT_USAGE);
        }
        options.skip_paths.extend(args.bills.iter().cloned());
        options.bills = Some(std::sync::Arc::new(cts_audit::bills::join::CostBasis {
            records: bills.records.clone(),
            window_ms: args.cost_window,
        }));
    }
    // With --bills, the money right after what was done.
    let columns: Vec<&str> = TABLE_COLUMNS
        .iter()
        .flat_map(|&c| {
            let cost = (c == "category" && bills.is_some()).then_some("cost");
            std::iter::once(c).chain(cost)
        })
        .collect();
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
    #[cfg(feature = "summary")]
    let parquet = args.format == ScanFormat::Parquet;
    #[cfg(not(feature = "summary"))]
    let parquet = false;
    if parquet && args.output.is_none() {
        eprintln!("cts-audit: error: --format parquet needs -o FILE");
        return Ok(EXIT_USAGE);
    }
    let file: Option<Box<dyn Write + Send>> = match &args.output {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            // Created before the scan: never read back as an input.
            options.skip_paths.push(path.clone());
            Some(Box::new(io::BufWriter::with_capacity(1 << 20, file)))
        }
        None => None,
    };
    let (out, parquet_file): (Box<dyn Write>, Option<Box<dyn Write + Send>>) = match (file, parquet)
    {
        (file, true) => (Box::new(io::sink()), file),
        (Some(file), false) => (file, None),
        (None, false) => (
            Box::new(io::BufWriter::with_capacity(1 << 20, io::stdout().lock())),
            None,
        ),
    };
    #[cfg(not(feature = "summary"))]
    drop(parquet_file);
    let mut sink = CliSink {
        out,
        #[cfg(feature = "summary")]
        parquet: match parquet_file {
            Some(file) => Some(
                cts_audit::parquet::VerdictParquet::new(file)
                    .context("starting the Parquet file")?,
            ),
            None => None,
        },
        format: args.format,
        first: true,
        table: table::RowsTable::new(&columns, TABLE_ROWS_HELD),
        columns: columns.clone(),
        #[cfg(feature = "summary")]
        summary: Default::default(),
        #[cfg(feature = "html")]
        report,
        fail_on: args.fail_on,
        failed_on: false,
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
    let finished = if sink.error.is_none() {
        finish_output(&mut sink, args)
    } else {
        Ok(())
    };
    if sink.error.is_none() {
        if let Err(err) = sink.out.flush() {
            sink.error = Some(err);
        }
    }
    let printed = stats.errors.min(MAX_PRINTED_PROBLEMS);
    if stats.errors > printed {
        eprintln!(
            "cts-audit: warning: {} more problems not shown (see --stats)",
            stats.errors - printed
        );
    }
    #[cfg(feature = "html")]
    if let (Some(report), Some(path)) = (&sink.report, &args.report) {
        let page = report.render(&stats);
        std::fs::write(path, page)
            .with_context(|| format!("cannot write --report file {}", path.display()))?;
        if !args.quiet {
            let fold = report.fold();
            eprintln!(
                "cts-audit: report: {} ({} records, {} flagged, {} actors)",
                report::escape_control(&path.display().to_string()),
                fold.records,
                fold.flagged,
                fold.actors.len()
            );
        }
    }
    // The stats are written however the output ended: they say what was read.
    if let Some(path) = &args.stats {
        match &bills {
            Some(bills) => {
                let mut value = serde_json::to_value(&stats)?;
                if let serde_json::Value::Object(fields) = &mut value {
                    fields.insert("bills".into(), serde_json::to_value(&bills.stats)?);
                }
                write_stats(path, &value)?;
            }
            None => write_stats(path, &stats)?,
        }
    }
    if let (Some(bills), Some(joined)) = (&bills, &stats.cost) {
        if let Some(path) = &args.unmatched {
            write_unmatched(path, bills, joined)?;
        }
        if !args.quiet {
            eprintln!("{}", cost_line(joined));
        }
    }
    if !args.quiet {
        if let Some(report) = &stats.integrity {
            for problem in report.problems.iter().take(MAX_PRINTED_PROBLEMS as usize) {
                eprintln!(
                    "cts-audit: integrity: {} {}: {}",
                    problem.check,
                    report::escape_control(&problem.object),
                    report::escape_control(&problem.message)
                );
            }
            eprintln!(
                "cts-audit: integrity: {}",
                super::verify_cmd::summary_line(&report.counts)
            );
        }
        eprintln!("{}", summary_line(&stats, started.elapsed().as_secs_f64()));
    }
    finished?;
    match sink.error.take() {
        // A closed pipe (`| head`) ends the output as grep's does: quietly,
        // with --fail-on's answer for what was seen.
        Some(err) if err.kind() == io::ErrorKind::BrokenPipe => {}
        Some(err) => {
            eprintln!("cts-audit: error: writing to stdout: {err}");
            return Ok(EXIT_USAGE);
        }
        None => {
            if stats.files == 0 && stats.digests_skipped == 0 {
                eprintln!("cts-audit: error: no input could be read");
                return Ok(EXIT_USAGE);
            }
        }
    }
    Ok(if sink.failed_on { EXIT_FOUND } else { EXIT_OK })
}

/// Writes what the format holds back to the end: the JSON array's close,
/// the table, the summary.
fn finish_output<W: Write>(sink: &mut CliSink<W>, args: &ScanArgs) -> Result<()> {
    match args.format {
        ScanFormat::Json => sink.write(if sink.first { b"[]\n" } else { b"\n]\n" }),
        ScanFormat::Table => {
            if sink.error.is_some() {
                return Ok(());
            }
            let mut buffer = Vec::new();
            match sink.table.finish(&mut buffer)? {
                0 => writeln!(buffer, "no records at or above the severity floor")?,
                count => writeln!(buffer, "{count} records")?,
            }
            sink.write(&buffer);
        }
        #[cfg(feature = "summary")]
        ScanFormat::Summary => {
            let text = write_summary(&sink.summary, args)?;
            sink.write(text.as_bytes());
        }
        #[cfg(feature = "summary")]
        ScanFormat::Parquet => {
            if let Some(parquet) = sink.parquet.take() {
                parquet.finish().context("writing the Parquet file")?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Writes `stats` as pretty JSON to `path` (`--stats`).
pub(super) fn write_stats(path: &Path, stats: &impl serde::Serialize) -> Result<()> {
    let file = std::fs::File::create(path)
        .with_context(|| format!("cannot write --stats file {}", path.display()))?;
    let mut writer = io::BufWriter::new(file);
    serde_json::to_writer_pretty(&mut writer, stats)?;
    writeln!(writer)?;
    writer.flush()?;
    Ok(())
}

/// `cts-audit: cost: 5 billing actions (3 with charges, 2 without); 10 charges: …`
fn cost_line(joined: &cts_audit::bills::join::Joined) -> String {
    let s = &joined.stats;
    format!(
        "cts-audit: cost: {} billing actions ({} with charges, {} without); {} charges: {} by order, {} by resource, {} superseded (account changes of orders billed by resource), {} unmatched",
        s.actions,
        s.actions_with_charges,
        s.actions_without_charges,
        s.charges,
        s.charges_by_order,
        s.charges_by_resource,
        s.charges_superseded,
        s.charges_unmatched
    )
}

/// `--unmatched FILE`: each action without charges and each charge
/// without an action, one JSON object a line.
fn write_unmatched(
    path: &Path,
    bills: &cts_audit::bills::Bills,
    joined: &cts_audit::bills::join::Joined,
) -> Result<()> {
    let file = std::fs::File::create(path)
        .with_context(|| format!("cannot write --unmatched file {}", path.display()))?;
    let mut out = io::BufWriter::new(file);
    for action in &joined.actions_without_charges {
        let time = action
            .time_ms
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        let ids: Vec<serde_json::Value> = action
            .bill
            .ids
            .iter()
            .map(|(kind, id)| {
                serde_json::json!({ "kind": if kind == "o" { "order" } else { "resource" }, "id": id })
            })
            .collect();
        let line = serde_json::json!({
            "unmatched": "action",
            "action": action.bill.action.as_str(),
            "trace_name": action.bill.trace_name,
            "trace_id": action.bill.trace_id,
            "time": time,
            "ids": ids,
        });
        serde_json::to_writer(&mut out, &line)?;
        writeln!(out)?;
    }
    for &index in &joined.charges_unmatched {
        if let Some(record) = bills.records.get(index) {
            let mut line = serde_json::to_value(cts_audit::bills::FocusRow::from(record))?;
            if let serde_json::Value::Object(fields) = &mut line {
                fields.insert("unmatched".into(), "charge".into());
            }
            serde_json::to_writer(&mut out, &line)?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// `-j N`, capped at [`scan::max_threads`] with a word on stderr.
fn threads(asked: Option<usize>) -> Option<usize> {
    let max = scan::max_threads();
    match asked {
        Some(n) if n > max => {
            eprintln!(
                "cts-audit: warning: -j {n} is more threads than is useful here; using {max}"
            );
            Some(max)
        }
        other => other,
    }
}

fn summary_line(stats: &Stats, seconds: f64) -> String {
    let flagged: u64 = stats
        .by_severity
        .iter()
        .filter(|(s, _)| Severity::parse(s).is_some_and(|s| s >= Severity::Low))
        .map(|(_, n)| n)
        .sum();
    format!(
        "cts-audit: {} files ({} skipped, {} digests), {} records, {} duplicates, {} conflicts, {} billing and {} audit-trail ({} catalogued, {} uncatalogued), {} flagged, {} emitted, {} errors, {:.1} MB in {:.2}s",
        stats.files,
        stats.files_skipped,
        stats.digests_skipped,
        stats.records,
        stats.duplicates,
        stats.conflicts,
        stats.billing,
        stats.audit_trail,
        stats.catalogued,
        stats.uncatalogued,
        flagged,
        stats.emitted,
        stats.errors,
        stats.bytes as f64 / 1e6,
        seconds
    ) + &if stats.bill_pages_skipped > 0 {
        format!(
            "; {} pages of bill records skipped (give them with --bills)",
            stats.bill_pages_skipped
        )
    } else {
        String::new()
    }
}

/// The columns of `--format table`: the ones a person reads first.
const TABLE_COLUMNS: [&str; 9] = [
    "time",
    "severity",
    "trace_name",
    "category",
    "user",
    "source_ip",
    "error_code",
    "rules",
    "source",
];

/// Rows a table is laid out from before it streams (see
/// [`table::RowsTable`]): every row of a usual scan, while `--all` over a
/// large export stays within a few MB.
const TABLE_ROWS_HELD: usize = 10_000;

/// Groups the emitted records with polars and renders the table; writes it
/// to --summary-out as Parquet or CSV too.
#[cfg(feature = "summary")]
fn write_summary(summary: &cts_audit::summary::Summary, args: &ScanArgs) -> Result<String> {
    use polars_io::prelude::{CsvWriter, ParquetWriter, SerWriter};
    let by: Vec<&str> = args.summary_by.iter().map(String::as_str).collect();
    let mut table = summary.table(&by)?;
    if let Some(path) = &args.summary_out {
        let file = std::fs::File::create(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        match path.extension().and_then(|e| e.to_str()) {
            Some("parquet") => {
                ParquetWriter::new(file).finish(&mut table)?;
            }
            Some("csv") => CsvWriter::new(file).finish(&mut table)?,
            _ => anyhow::bail!(
                "--summary-out {}: use a .parquet or .csv file name",
                path.display()
            ),
        }
    }
    let names: Vec<String> = table
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    let header: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut text = table::new(&header);
    for row in 0..table.height() {
        let cells = table.columns().iter().map(|column| match column.get(row) {
            Ok(polars::prelude::AnyValue::Null) | Err(_) => String::new(),
            Ok(polars::prelude::AnyValue::String(s)) => report::escape_control(s).into_owned(),
            Ok(value) => report::escape_control(&value.to_string()).into_owned(),
        });
        text.add_row(cells);
    }
    let mut out = Vec::new();
    table::write(&mut out, &text)?;
    writeln!(
        out,
        "{} groups, {} records",
        table.height(),
        summary.records()
    )?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}
