//! The flat, stable output record ([`Verdict`]) and its writers.
//!
//! Field meanings are documented in `docs/OUTPUT.md`.

use crate::catalog::{Category, Severity};
use crate::classify::{Classification, Kind};
use crate::trace::{Trace, User};
use serde::Serialize;
use std::borrow::Cow;
use std::io::Write;

/// One classified trace, flat and ready to serialise. Borrows from the
/// input where it can.
#[derive(Debug, Serialize)]
pub struct Verdict<'a> {
    /// CTS trace id.
    pub trace_id: Option<&'a str>,
    /// When the operation happened, RFC 3339 UTC with milliseconds.
    pub time: Option<String>,
    /// Operation name.
    pub trace_name: Option<&'a str>,
    /// Service abbreviation.
    pub service_type: Option<&'a str>,
    /// Resource type.
    pub resource_type: Option<&'a str>,
    /// Resource id.
    pub resource_id: Option<&'a str>,
    /// Resource name.
    pub resource_name: Option<&'a str>,
    /// Who acted: the user name.
    pub user: Option<Cow<'a, str>>,
    /// `User`, `AssumedAgency`, `ExternalUser`.
    pub user_type: Option<Cow<'a, str>>,
    /// The account (domain) name.
    pub domain: Option<Cow<'a, str>>,
    /// Caller IP.
    pub source_ip: Option<&'a str>,
    /// `ConsoleAction`, `ApiCall`, `SystemAction`, ...
    pub trace_type: Option<&'a str>,
    /// `normal`, `warning` or `incident`.
    pub rating: Option<&'a str>,
    /// HTTP status.
    pub code: Option<u16>,
    /// Service error code of a failed attempt, e.g. `CBC.0151`.
    pub error_code: Option<String>,
    /// The attempt failed.
    pub failed: bool,
    /// In scope for a billing audit (catalogued, or a billing service).
    pub billing: bool,
    /// Named by the catalog.
    pub catalogued: bool,
    /// The catalog's operation text.
    pub operation: Option<&'static str>,
    /// The catalog category.
    pub category: Option<Category>,
    /// The severity after rules.
    pub severity: Severity,
    /// Ids of the rules that fired.
    pub rules: Vec<&'static str>,
    /// Why each rule fired, naming its evidence.
    pub reasons: Vec<String>,
    /// Where the record was read: `FILE:LINE` for JSON lines, `FILE#N` for
    /// the N-th record of an array or document (`FILE#N.M` for the M-th trace
    /// of an API page).
    pub source: String,
}

fn non_empty<'a>(text: &'a Option<Cow<'_, str>>) -> Option<&'a str> {
    text.as_deref().filter(|t| !t.is_empty())
}

fn owned_text<'a>(text: Option<Cow<'a, str>>) -> Option<Cow<'a, str>> {
    text.filter(|t| !t.is_empty())
}

impl<'a> Verdict<'a> {
    /// Builds the verdict of a trace from its classification.
    pub fn new(
        trace: &'a Trace<'a>,
        user: Option<User<'a>>,
        class: &Classification,
        source: String,
    ) -> Verdict<'a> {
        let entry = class.entry();
        let (rules, reasons) = match entry {
            Some(entry) if class.severity >= Severity::Low => (
                vec!["catalog"],
                vec![format!(
                    "{}: {} ({}, {})",
                    entry.trace_name, entry.operation, entry.category, entry.severity
                )],
            ),
            _ => (Vec::new(), Vec::new()),
        };
        let (user_name, user_type, domain) = match user {
            Some(user) => {
                let name = user
                    .name
                    .clone()
                    .filter(|n| !n.is_empty())
                    .or(user.user_name.clone());
                (
                    owned_text(name),
                    owned_text(user.user_type),
                    owned_text(user.domain.and_then(|d| d.name)),
                )
            }
            None => (None, None, None),
        };
        Verdict {
            trace_id: non_empty(&trace.trace_id),
            time: trace.time_ms().and_then(rfc3339),
            trace_name: non_empty(&trace.trace_name),
            service_type: non_empty(&trace.service_type),
            resource_type: non_empty(&trace.resource_type),
            resource_id: non_empty(&trace.resource_id),
            resource_name: non_empty(&trace.resource_name),
            user: user_name,
            user_type,
            domain,
            source_ip: non_empty(&trace.source_ip),
            trace_type: non_empty(&trace.trace_type),
            rating: trace.rating(),
            code: trace.code.and_then(|c| c.0),
            error_code: class.error_code.clone(),
            failed: class.failed,
            billing: class.is_billing(),
            catalogued: matches!(class.kind, Kind::Catalogued(_)),
            operation: entry.map(|e| e.operation),
            category: entry.map(|e| e.category),
            severity: class.severity,
            rules,
            reasons,
            source,
        }
    }
}

/// Formats epoch milliseconds as RFC 3339 UTC, e.g. `2024-06-19T06:18:51.170Z`.
///
/// ```
/// assert_eq!(cts_audit::report::rfc3339(1718777931170).unwrap(), "2024-06-19T06:18:51.170Z");
/// ```
pub fn rfc3339(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// How emitted records are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line.
    Jsonl,
    /// CSV rows (see [`CSV_HEADER`]); lists are joined with `; `.
    Csv,
}

/// The CSV columns, in order.
pub const CSV_HEADER: &[&str] = &[
    "trace_id",
    "time",
    "trace_name",
    "service_type",
    "resource_type",
    "resource_id",
    "resource_name",
    "user",
    "user_type",
    "domain",
    "source_ip",
    "trace_type",
    "rating",
    "code",
    "error_code",
    "failed",
    "billing",
    "catalogued",
    "operation",
    "category",
    "severity",
    "rules",
    "reasons",
    "source",
];

/// Appends one verdict to `out` in `format` (a line for JSONL, a row for CSV).
pub fn render(verdict: &Verdict<'_>, format: Format, out: &mut Vec<u8>) {
    match format {
        Format::Jsonl => {
            // Serialising plain strings and numbers into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, verdict);
            out.push(b'\n');
        }
        Format::Csv => {
            let v = verdict;
            let text = |t: Option<&str>| t.unwrap_or("").to_owned();
            let row = [
                text(v.trace_id),
                v.time.clone().unwrap_or_default(),
                text(v.trace_name),
                text(v.service_type),
                text(v.resource_type),
                text(v.resource_id),
                text(v.resource_name),
                text(v.user.as_deref()),
                text(v.user_type.as_deref()),
                text(v.domain.as_deref()),
                text(v.source_ip),
                text(v.trace_type),
                text(v.rating),
                v.code.map(|c| c.to_string()).unwrap_or_default(),
                text(v.error_code.as_deref()),
                v.failed.to_string(),
                v.billing.to_string(),
                v.catalogued.to_string(),
                text(v.operation),
                text(v.category.map(|c| c.as_str())),
                v.severity.as_str().to_owned(),
                v.rules.join("; "),
                v.reasons.join("; "),
                v.source.clone(),
            ];
            let mut writer = csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(&mut *out);
            let _ = writer.write_record(&row);
            let _ = writer.flush();
        }
    }
}

/// Writes the CSV header row.
pub fn write_csv_header(out: &mut impl Write) -> std::io::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    writer
        .write_record(CSV_HEADER)
        .map_err(std::io::Error::other)?;
    writer.flush()
}
