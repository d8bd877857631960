//! The flat, stable output record ([`Verdict`]) and its writers.
//!
//! Field meanings are documented in `docs/OUTPUT.md`.

use crate::catalog::{Category, Entry, Severity};
use crate::classify::{Classification, Kind};
use crate::rules::RuleSet;
use crate::trace::{Trace, User};
use serde::Serialize;
use std::borrow::Cow;
use std::io::Write;

/// One classified trace, flat and ready to serialise. Borrows from the
/// input where it can; [`Verdict::into_owned`] detaches it.
///
/// ```
/// use cts_audit::analyze::Analyzer;
/// let verdict = Analyzer::default()
///     .analyze_str(r#"{"trace_id":"t1","trace_name":"payOrder","service_type":"CBC","resource_type":"cloudresouce",
///       "time":1718777931170,"user":{"name":"alice","domain":{"name":"acme"}},"source_ip":"203.0.113.7"}"#)
///     .unwrap();
/// assert_eq!(verdict.time.as_deref(), Some("2024-06-19T06:18:51.170Z"));
/// assert_eq!((verdict.user.as_deref(), verdict.domain.as_deref()), (Some("alice"), Some("acme")));
/// assert_eq!(verdict.category.map(|c| c.as_str()), Some("payment"));
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct Verdict<'a> {
    /// CTS trace id.
    pub trace_id: Option<Cow<'a, str>>,
    /// When the operation happened, RFC 3339 UTC with milliseconds.
    pub time: Option<Cow<'a, str>>,
    /// Operation name.
    pub trace_name: Option<Cow<'a, str>>,
    /// Service abbreviation.
    pub service_type: Option<Cow<'a, str>>,
    /// Resource type.
    pub resource_type: Option<Cow<'a, str>>,
    /// Resource id.
    pub resource_id: Option<Cow<'a, str>>,
    /// Resource name.
    pub resource_name: Option<Cow<'a, str>>,
    /// Who acted: the user name.
    pub user: Option<Cow<'a, str>>,
    /// `User`, `AssumedAgency`, `ExternalUser`.
    pub user_type: Option<Cow<'a, str>>,
    /// The account (domain) name.
    pub domain: Option<Cow<'a, str>>,
    /// The root (domain) account itself acted (`principal_is_root_user`).
    pub root_user: Option<bool>,
    /// Caller IP.
    pub source_ip: Option<Cow<'a, str>>,
    /// `ConsoleAction`, `ApiCall`, `SystemAction`, ...
    pub trace_type: Option<Cow<'a, str>>,
    /// `normal`, `warning` or `incident`.
    pub rating: Option<Cow<'a, str>>,
    /// HTTP status.
    pub code: Option<u16>,
    /// Service error code of a failed attempt, e.g. `CBC.0151`.
    pub error_code: Option<Cow<'a, str>>,
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
    /// The severity: the highest of the rules that fired.
    pub severity: Severity,
    /// Ids of the rules that fired.
    pub rules: Vec<Cow<'static, str>>,
    /// Why each rule fired, naming its evidence.
    pub reasons: Vec<String>,
    /// Where the record was read: `FILE:LINE` for JSON lines, `FILE#N` for
    /// the N-th record of an array or document (`FILE#N.M` for the M-th trace
    /// of an API page).
    pub source: String,
    /// `time` as epoch milliseconds, for rules and filters.
    #[serde(skip)]
    pub time_ms: Option<i64>,
    /// The catalog entry, when there is one.
    #[serde(skip)]
    pub entry: Option<&'static Entry>,
    /// The user id, for filters.
    #[serde(skip)]
    pub user_id: Option<Cow<'a, str>>,
    /// Key fields the record gave more than once (it was read salvaged,
    /// the last value of each): `audit.malformed` fires on it.
    #[serde(skip)]
    pub malformed: Option<String>,
    /// Set when another record came first under this record's `trace_id`
    /// (a different operation, resource type, rating or time): it is kept,
    /// and `audit.conflict` fires on it.
    #[serde(skip)]
    pub conflict: bool,
}

fn text<'a>(value: &Option<Cow<'a, str>>) -> Option<Cow<'a, str>> {
    value.as_ref().filter(|t| !t.is_empty()).cloned()
}

fn owned(value: Option<Cow<'_, str>>) -> Option<Cow<'static, str>> {
    value.map(|t| Cow::Owned(t.into_owned()))
}

impl<'a> Verdict<'a> {
    /// Builds the verdict of a trace from its classification, before any
    /// rule has fired (severity `none`).
    ///
    /// ```
    /// use cts_audit::{catalog::Severity, classify::classify, report::Verdict, trace::Trace};
    /// let trace = Trace::from_str(r#"{"trace_name":"payOrder","service_type":"CBC","resource_type":"cloudresouce"}"#).unwrap();
    /// let verdict = Verdict::new(&trace, trace.user(), &classify(&trace), "exports/a.json#1".into());
    /// assert_eq!(verdict.severity, Severity::None); // no rule has judged it yet
    /// assert!(verdict.catalogued && verdict.billing);
    /// ```
    pub fn new(
        trace: &Trace<'a>,
        user: Option<User<'a>>,
        class: &Classification,
        source: String,
    ) -> Verdict<'a> {
        let entry = class.entry();
        let (user_name, user_type, domain, root_user, user_id) = match user {
            Some(user) => {
                let name = user
                    .name
                    .clone()
                    .filter(|n| !n.is_empty())
                    .or(user.user_name.clone());
                (
                    text(&name),
                    text(&user.user_type),
                    user.domain.as_ref().and_then(|d| text(&d.name)),
                    user.principal_is_root_user.map(|f| f.0),
                    text(&user.id),
                )
            }
            None => (None, None, None, None, None),
        };
        let time_ms = trace.time_ms();
        Verdict {
            trace_id: text(&trace.trace_id),
            time: time_ms.and_then(rfc3339).map(Cow::Owned),
            trace_name: text(&trace.trace_name),
            service_type: text(&trace.service_type),
            resource_type: text(&trace.resource_type),
            resource_id: text(&trace.resource_id),
            resource_name: text(&trace.resource_name),
            user: user_name,
            user_type,
            domain,
            root_user,
            source_ip: text(&trace.source_ip),
            trace_type: text(&trace.trace_type),
            rating: trace.rating().map(|r| Cow::Owned(r.to_owned())),
            code: trace.code.and_then(|c| c.0),
            error_code: class.error_code.clone().map(Cow::Owned),
            failed: class.failed,
            billing: class.is_billing(),
            catalogued: matches!(class.kind, Kind::Catalogued(_)),
            operation: entry.map(|e| e.operation),
            category: entry.map(|e| e.category),
            severity: Severity::None,
            rules: Vec::new(),
            reasons: Vec::new(),
            source,
            time_ms,
            entry,
            user_id,
            malformed: None,
            conflict: false,
        }
    }

    /// Records that a rule fired: raises the severity to the rule's and
    /// keeps its id and reason.
    ///
    /// ```
    /// use cts_audit::{catalog::Severity, classify::classify, report::Verdict, trace::Trace};
    /// let trace = Trace::from_str(r#"{"trace_name":"payOrder","service_type":"CBC"}"#).unwrap();
    /// let mut verdict = Verdict::new(&trace, None, &classify(&trace), String::new());
    /// verdict.fire("acme.watch", Severity::High, "paid from the watch list".into());
    /// verdict.fire("acme.watch", Severity::High, "again".into()); // once per rule
    /// assert_eq!((verdict.severity, verdict.rules.len()), (Severity::High, 1));
    /// ```
    pub fn fire(
        &mut self,
        rule_id: impl Into<Cow<'static, str>>,
        severity: Severity,
        reason: String,
    ) {
        let rule_id = rule_id.into();
        if self.rules.contains(&rule_id) {
            return;
        }
        self.severity = self.severity.max(severity);
        self.rules.push(rule_id);
        self.reasons.push(reason);
    }

    /// Detaches the verdict from the input it borrows.
    ///
    /// ```
    /// use cts_audit::analyze::Analyzer;
    /// let owned = {
    ///     let text = String::from(r#"{"trace_name":"payOrder","service_type":"CBC"}"#);
    ///     Analyzer::default().analyze_str(&text).unwrap().into_owned()
    /// }; // outlives the text it was read from
    /// assert_eq!(owned.trace_name.as_deref(), Some("payOrder"));
    /// ```
    pub fn into_owned(self) -> Verdict<'static> {
        Verdict {
            trace_id: owned(self.trace_id),
            time: owned(self.time),
            trace_name: owned(self.trace_name),
            service_type: owned(self.service_type),
            resource_type: owned(self.resource_type),
            resource_id: owned(self.resource_id),
            resource_name: owned(self.resource_name),
            user: owned(self.user),
            user_type: owned(self.user_type),
            domain: owned(self.domain),
            root_user: self.root_user,
            source_ip: owned(self.source_ip),
            trace_type: owned(self.trace_type),
            rating: owned(self.rating),
            code: self.code,
            error_code: owned(self.error_code),
            failed: self.failed,
            billing: self.billing,
            catalogued: self.catalogued,
            operation: self.operation,
            category: self.category,
            severity: self.severity,
            rules: self.rules,
            reasons: self.reasons,
            source: self.source,
            time_ms: self.time_ms,
            entry: self.entry,
            user_id: owned(self.user_id),
            malformed: self.malformed,
            conflict: self.conflict,
        }
    }

    /// A field by its output name, as text, for rule conditions and filters.
    ///
    /// ```
    /// use cts_audit::analyze::Analyzer;
    /// let verdict = Analyzer::default()
    ///     .analyze_str(r#"{"trace_name":"payOrder","service_type":"CBC","code":"403"}"#)
    ///     .unwrap();
    /// assert_eq!(verdict.field("code").as_deref(), Some("403"));
    /// assert_eq!(verdict.field("failed").as_deref(), Some("true"));
    /// assert_eq!(verdict.field("colour"), None);
    /// ```
    pub fn field(&self, name: &str) -> Option<Cow<'_, str>> {
        fn borrowed<'b>(v: &'b Option<Cow<'_, str>>) -> Option<Cow<'b, str>> {
            v.as_deref().map(Cow::Borrowed)
        }
        match name {
            "trace_id" => borrowed(&self.trace_id),
            "time" => borrowed(&self.time),
            "trace_name" => borrowed(&self.trace_name),
            "service_type" => borrowed(&self.service_type),
            "resource_type" => borrowed(&self.resource_type),
            "resource_id" => borrowed(&self.resource_id),
            "resource_name" => borrowed(&self.resource_name),
            "user" => borrowed(&self.user),
            "user_id" => borrowed(&self.user_id),
            "user_type" => borrowed(&self.user_type),
            "domain" => borrowed(&self.domain),
            "root_user" => self
                .root_user
                .map(|b| Cow::Borrowed(if b { "true" } else { "false" })),
            "source_ip" => borrowed(&self.source_ip),
            "trace_type" => borrowed(&self.trace_type),
            "rating" => borrowed(&self.rating),
            "code" => self.code.map(|c| Cow::Owned(c.to_string())),
            "error_code" => borrowed(&self.error_code),
            "failed" => Some(Cow::Borrowed(if self.failed { "true" } else { "false" })),
            "billing" => Some(Cow::Borrowed(if self.billing { "true" } else { "false" })),
            "catalogued" => Some(Cow::Borrowed(if self.catalogued {
                "true"
            } else {
                "false"
            })),
            "operation" => self.operation.map(Cow::Borrowed),
            "category" => self.category.map(|c| Cow::Borrowed(c.as_str())),
            "catalog_severity" => self.entry.map(|e| Cow::Borrowed(e.severity.as_str())),
            "severity" => Some(Cow::Borrowed(self.severity.as_str())),
            "rules" => Some(Cow::Owned(self.rules.join("; "))),
            "reasons" => Some(Cow::Owned(self.reasons.join("; "))),
            "source" => Some(Cow::Borrowed(self.source.as_str())),
            _ => None,
        }
    }
}

/// Output columns that are the verdict's own judgment, not facts of the
/// record: rule conditions cannot test them.
const JUDGMENT: &[&str] = &["severity", "rules", "reasons", "source"];

/// Fields rule conditions can test: the record's columns of [`CSV_HEADER`],
/// plus `user_id` and the entry's `catalog_severity`.
///
/// ```
/// assert!(cts_audit::report::is_condition_field("trace_name"));
/// assert!(!cts_audit::report::is_condition_field("severity"));
/// ```
pub fn is_condition_field(name: &str) -> bool {
    condition_fields().any(|f| f == name)
}

/// Every field [`is_condition_field`] accepts, in output order.
///
/// ```
/// let fields: Vec<&str> = cts_audit::report::condition_fields().collect();
/// assert!(fields.contains(&"user_id") && !fields.contains(&"rules"));
/// ```
pub fn condition_fields() -> impl Iterator<Item = &'static str> {
    CSV_HEADER
        .iter()
        .copied()
        .filter(|f| !JUDGMENT.contains(f))
        .chain(["user_id", "catalog_severity"])
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
///
/// ```
/// use cts_audit::{analyze::Analyzer, report::{render, Format}, rules::RuleSet};
/// let verdict = Analyzer::default().analyze_str(r#"{"trace_name":"payOrder","service_type":"CBC"}"#).unwrap();
/// for format in [Format::Jsonl, Format::Csv, Format::Ocsf, Format::Ecs] {
///     let mut out = Vec::new();
///     render(&verdict, format, &RuleSet::builtin(), &mut out);
///     assert!(out.ends_with(b"\n"), "one line per record in {format:?}");
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line.
    Jsonl,
    /// CSV rows (see [`CSV_HEADER`]); lists are joined with `; `.
    Csv,
    /// One OCSF API Activity (class 6003) object per line; see docs/SIEM.md.
    Ocsf,
    /// One Elastic Common Schema object per line; see docs/SIEM.md.
    Ecs,
}

/// The CSV columns, in order.
///
/// ```
/// use cts_audit::report::CSV_HEADER;
/// assert_eq!((CSV_HEADER[0], CSV_HEADER[CSV_HEADER.len() - 1]), ("trace_id", "source"));
/// ```
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
    "root_user",
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
///
/// ```
/// use cts_audit::{analyze::Analyzer, report::{render, Format}, rules::RuleSet};
/// let verdict = Analyzer::default()
///     .analyze_str(r#"{"trace_id":"t1","trace_name":"deleteResource","service_type":"CBC","resource_type":"cloudresouce"}"#)
///     .unwrap();
/// let mut out = Vec::new();
/// render(&verdict, Format::Jsonl, &RuleSet::builtin(), &mut out);
/// let record: serde_json::Value = serde_json::from_slice(&out).unwrap();
/// assert_eq!((record["trace_id"].as_str(), record["severity"].as_str()), (Some("t1"), Some("high")));
/// ```
pub fn render(verdict: &Verdict<'_>, format: Format, rules: &RuleSet, out: &mut Vec<u8>) {
    match format {
        Format::Ocsf | Format::Ecs => {
            let value = if format == Format::Ocsf {
                crate::siem::ocsf(verdict)
            } else {
                crate::siem::ecs(verdict, None, rules)
            };
            // Serialising a Value into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, &value);
            out.push(b'\n');
        }
        Format::Jsonl => {
            // Serialising plain strings and numbers into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, verdict);
            out.push(b'\n');
        }
        Format::Csv => {
            // One column per CSV_HEADER name, read through `field`.
            let row = CSV_HEADER
                .iter()
                .map(|name| verdict.field(name).unwrap_or_default());
            // A small buffer: the default 8 KiB would be zeroed per row.
            let mut writer = csv::WriterBuilder::new()
                .has_headers(false)
                .buffer_capacity(512)
                .from_writer(&mut *out);
            let _ = writer.write_record(row.map(|cell| escape_cell(&cell).into_owned()));
            let _ = writer.flush();
        }
    }
}

/// Text for a terminal: control characters (C0, DEL, C1) and the
/// invisible bidirectional overrides shown as visible escapes (`\n`, `\r`,
/// `\t`, `\x1b`, `\u{202e}`), so that no field read from a trace can move
/// the cursor, recolour the screen, forge a line or reorder what is shown.
///
/// ```
/// use cts_audit::report::escape_control;
/// assert_eq!(escape_control("alice\nFAKE ROW critical"), "alice\\nFAKE ROW critical");
/// assert_eq!(escape_control("\u{1b}[31mred"), "\\x1b[31mred");
/// assert_eq!(escape_control("payOrder"), "payOrder"); // borrowed, unchanged
/// ```
pub fn escape_control(text: &str) -> Cow<'_, str> {
    fn unsafe_char(c: char) -> bool {
        c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    }
    if !text.contains(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x100 && unsafe_char(c) => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if unsafe_char(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A spreadsheet cell holds at most this many characters (Excel's limit).
pub const MAX_CELL_CHARS: usize = 32_767;

/// A cell safe to open in a spreadsheet: one that starts with `=`, `+`,
/// `-`, `@`, a tab or a carriage return would be read as a formula, so it
/// gets a leading `'`, as OWASP advises (and so does one that starts with
/// `'` and then one of those, so that [`unescape_cell`] gives it back
/// exactly). Cut to [`MAX_CELL_CHARS`].
///
/// ```
/// use cts_audit::report::{escape_cell, unescape_cell};
/// assert_eq!(escape_cell("=HYPERLINK(\"http://x\")"), "'=HYPERLINK(\"http://x\")");
/// assert_eq!(escape_cell("alice"), "alice");
/// for cell in ["=1+1", "'=1+1", "-", "plain", "'quoted"] {
///     assert_eq!(unescape_cell(&escape_cell(cell)), cell);
/// }
/// ```
pub fn escape_cell(cell: &str) -> Cow<'_, str> {
    let formula = |text: &str| text.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let prefixed = formula(cell) || cell.strip_prefix('\'').is_some_and(formula);
    let cut = cell
        .char_indices()
        .nth(MAX_CELL_CHARS - usize::from(prefixed))
        .map(|(at, _)| at);
    if !prefixed && cut.is_none() {
        return Cow::Borrowed(cell);
    }
    let kept = &cell[..cut.unwrap_or(cell.len())];
    Cow::Owned(if prefixed {
        format!("'{kept}")
    } else {
        kept.to_owned()
    })
}

/// The cell [`escape_cell`] was given (but for a cut): one leading `'`
/// before a formula character is dropped.
///
/// ```
/// assert_eq!(cts_audit::report::unescape_cell("'@SUM(A1)"), "@SUM(A1)");
/// assert_eq!(cts_audit::report::unescape_cell("'plain"), "'plain");
/// ```
pub fn unescape_cell(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r', '\'']) => {
            if rest.starts_with('\'') && !rest[1..].starts_with(['=', '+', '-', '@', '\t', '\r']) {
                cell
            } else {
                rest
            }
        }
        _ => cell,
    }
}

/// Writes the CSV header row.
///
/// ```
/// let mut out = Vec::new();
/// cts_audit::report::write_csv_header(&mut out).unwrap();
/// assert!(out.starts_with(b"trace_id,time,trace_name,"));
/// ```
pub fn write_csv_header(out: &mut impl Write) -> std::io::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    writer
        .write_record(CSV_HEADER)
        .map_err(std::io::Error::other)?;
    writer.flush()
}
