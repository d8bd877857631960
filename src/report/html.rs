//! The HTML report (`scan --report FILE.html`): one self-contained page a
//! finance lead can read: what was read, the flagged records at a glance, a
//! timeline, the actors, integrity, and the most severe records.
//!
//! Verdicts are folded as the scan hands them over ([`HtmlReport::add`]),
//! into aggregates with caps ([`super::fold`]), so memory stays flat
//! however much is read. The page is written with maud, which escapes
//! every value it is given; the timeline is drawn by plotters as SVG, which
//! escapes its texts. The page loads nothing: a Content-Security-Policy
//! forbids it, and styles and the chart are inline.
//!
//! Built behind the `html` feature.
//!
//! ```
//! use cts_audit::{analyze::Analyzer, report::html::{HtmlReport, ReportSettings}, scan::Stats};
//! let verdict = Analyzer::default()
//!     .analyze_str(r#"{"trace_name":"deleteResource","service_type":"CBC","resource_type":"cloudresouce",
//!        "user":{"name":"<b>mallory</b>"},"time":1718777931170}"#)
//!     .unwrap();
//! let mut report = HtmlReport::new(ReportSettings::default());
//! report.add(&verdict);
//! let page = report.render(&Stats::default());
//! assert!(page.contains("Content-Security-Policy"));
//! assert!(page.contains("&lt;b&gt;mallory&lt;/b&gt;") && !page.contains("<b>mallory"));
//! ```

use super::fold::{Actor, Fold, Listed, Timeline};
use crate::catalog::Severity;
use crate::scan::Stats;
use crate::verdict::Verdict;
use chrono::{DateTime, FixedOffset};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use std::collections::BTreeMap;

/// The page may load nothing: no script, no font, no image from anywhere;
/// only its own inline styles and `data:` images.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'";

/// Flagged records listed by default; the page says how many were left out.
pub const DEFAULT_MAX_LISTED: usize = 2_000;
/// Actor rows shown.
const MAX_ACTOR_ROWS: usize = 500;
/// Problems of a kind shown one by one.
const MAX_PROBLEM_ROWS: usize = 200;

/// What the report needs besides the verdicts.
///
/// ```
/// let settings = cts_audit::report::html::ReportSettings::default();
/// assert_eq!((settings.utc_offset_minutes, settings.lanes), (0, 8));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReportSettings {
    /// The paths scanned, as given.
    pub inputs: Vec<String>,
    /// Times are shown at this offset from UTC (`--tz`).
    pub utc_offset_minutes: i32,
    /// Flagged records listed at most.
    pub max_listed: usize,
    /// Timeline lanes for the top actors (the rest share one more).
    pub lanes: usize,
    /// Bills were given (`--bills`): money is shown.
    pub bills: bool,
    /// Digests were checked (`--verify`): integrity is shown.
    pub verify: bool,
}

impl Default for ReportSettings {
    fn default() -> Self {
        ReportSettings {
            inputs: Vec::new(),
            utc_offset_minutes: 0,
            max_listed: DEFAULT_MAX_LISTED,
            lanes: 8,
            bills: false,
            verify: false,
        }
    }
}

/// The report being folded: add verdicts as they come, render at the end.
#[derive(Debug, Clone)]
pub struct HtmlReport {
    settings: ReportSettings,
    fold: Fold,
}

impl HtmlReport {
    /// An empty report.
    pub fn new(settings: ReportSettings) -> HtmlReport {
        let fold = Fold::new(settings.max_listed);
        HtmlReport { settings, fold }
    }

    /// Folds in one reported verdict.
    ///
    /// ```
    /// use cts_audit::{analyze::Analyzer, report::html::{HtmlReport, ReportSettings}};
    /// let mut report = HtmlReport::new(ReportSettings::default());
    /// report.add(&Analyzer::default().analyze_str(r#"{"trace_name":"payOrder","service_type":"CBC"}"#).unwrap());
    /// assert_eq!(report.fold().records, 1);
    /// ```
    pub fn add(&mut self, verdict: &Verdict<'_>) {
        self.fold.add(verdict);
    }

    /// What has been folded so far.
    pub fn fold(&self) -> &Fold {
        &self.fold
    }

    /// The page, with the scan's `stats`.
    pub fn render(&self, stats: &Stats) -> String {
        let page = Page {
            fold: &self.fold,
            settings: &self.settings,
            stats,
            offset: FixedOffset::east_opt(self.settings.utc_offset_minutes * 60)
                .unwrap_or_else(utc),
        };
        page.markup().into_string()
    }
}

fn utc() -> FixedOffset {
    // Zero is always a valid offset.
    FixedOffset::east_opt(0).expect("UTC")
}

/// The colour of each severity, everywhere it is shown: badges, table
/// cells and the timeline.
pub fn severity_colour(severity: Severity) -> (u8, u8, u8) {
    match severity {
        Severity::Critical => (0x9b, 0x1c, 0x31),
        Severity::High => (0xd1, 0x49, 0x5b),
        Severity::Medium => (0xb8, 0x6e, 0x00),
        Severity::Low => (0x2e, 0x6f, 0x95),
        Severity::Info => (0x5f, 0x6b, 0x73),
        Severity::None => (0x8a, 0x8f, 0x94),
    }
}

/// The page's styles: light and dark, screen and print. The severity
/// colours come from [`severity_colour`].
fn styles() -> String {
    let mut css = String::from(STYLES);
    for &severity in Severity::ALL {
        let (r, g, b) = severity_colour(severity);
        css.push_str(&format!(
            ".sev-{}{{--sev:#{r:02x}{g:02x}{b:02x}}}\n",
            severity.as_str()
        ));
    }
    css
}

const STYLES: &str = r#"
:root{color-scheme:light dark;--bg:#fff;--fg:#1d2329;--muted:#5b6670;--line:#d8dde2;--panel:#f5f7f9;--ok:#1b7f3b;--bad:#b3261e}
@media (prefers-color-scheme:dark){:root{--bg:#15181c;--fg:#e3e7eb;--muted:#9aa5af;--line:#343b43;--panel:#1e2328;--ok:#5cc27e;--bad:#ff7b72}}
*{box-sizing:border-box}
body{margin:0 auto;max-width:1320px;padding:1.5rem;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
h1{font-size:1.6rem;margin:.2rem 0}h2{font-size:1.25rem;margin:2rem 0 .6rem;border-bottom:2px solid var(--line);padding-bottom:.2rem}
.muted{color:var(--muted)}
table{border-collapse:collapse;width:100%;margin:.4rem 0}
th,td{border-bottom:1px solid var(--line);padding:.3rem .45rem;text-align:left;vertical-align:top;overflow-wrap:break-word}
.path{overflow-wrap:anywhere;font-size:.85em}
table.kv{width:auto;min-width:24rem}
table.fixed{table-layout:fixed}table.fixed td{overflow-wrap:anywhere}
.w-time{width:9%}.w-sev{width:7%}.w-actor{width:11%}.w-op{width:12.5%}.w-res{width:9%}.w-out{width:8.5%}.w-cost{width:8.5%}.w-int{width:7.5%}
th{background:var(--panel);font-weight:600}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.cards{display:flex;flex-wrap:wrap;gap:.6rem}
.card{background:var(--panel);border:1px solid var(--line);border-left:6px solid var(--sev,var(--line));border-radius:6px;padding:.5rem .8rem;min-width:8.5rem}
.card .v{font-size:1.5rem;font-weight:700}
.nowrap{white-space:nowrap}
.sev{display:inline-block;white-space:nowrap;background:var(--sev);color:#fff;border-radius:4px;padding:0 .45em;font-weight:600;font-size:.85em;-webkit-print-color-adjust:exact;print-color-adjust:exact}
.ok{color:var(--ok);font-weight:600}.bad{color:var(--bad);font-weight:700}
.cols{display:grid;grid-template-columns:repeat(auto-fit,minmax(22rem,1fr));gap:1rem}
.timeline svg{width:100%;height:auto;background:var(--bg)}
.timeline svg text{fill:currentColor}
.legend span{margin-right:1rem;white-space:nowrap}
.dot{display:inline-block;width:.8em;height:.8em;border-radius:50%;background:var(--sev);vertical-align:middle}
.ring{display:inline-block;width:.8em;height:.8em;border-radius:50%;border:2px solid var(--sev);vertical-align:middle}
ul.reasons{margin:0;padding-left:1.1rem}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.92em}
@page{size:A4 landscape;margin:10mm}
@media print{:root{--bg:#fff;--fg:#000;--muted:#444;--line:#bbb;--panel:#f0f0f0}body{max-width:none;padding:0;font-size:9pt}h2{break-after:avoid}thead{display:table-header-group}tr,.card{break-inside:avoid}section{break-before:auto}}
"#;

/// Everything one rendering reads.
struct Page<'p> {
    fold: &'p Fold,
    settings: &'p ReportSettings,
    stats: &'p Stats,
    offset: FixedOffset,
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    use num_format::{Locale, ToFormattedString};
    n.to_formatted_string(&Locale::en)
}

impl Page<'_> {
    /// A time at the report's offset, with the offset written.
    fn time(&self, ms: Option<i64>) -> String {
        match ms.and_then(DateTime::from_timestamp_millis) {
            Some(t) => t
                .with_timezone(&self.offset)
                .format("%Y-%m-%d %H:%M:%S %:z")
                .to_string(),
            None => "—".to_owned(),
        }
    }

    /// A time as its date and its time of day with the offset.
    fn day_and_time(&self, ms: Option<i64>) -> (String, String) {
        let text = self.time(ms);
        match text.split_once(' ') {
            Some((day, time)) => (day.to_owned(), time.to_owned()),
            None => (text, String::new()),
        }
    }

    fn zone(&self) -> String {
        let offset = self.offset.local_minus_utc();
        if offset == 0 {
            "UTC".to_owned()
        } else {
            format!("UTC{}", self.offset)
        }
    }

    fn markup(&self) -> Markup {
        let fold = self.fold;
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta http-equiv="Content-Security-Policy" content=(CONTENT_SECURITY_POLICY);
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    meta name="color-scheme" content="light dark";
                    // No favicon request either: the icon is empty and inline.
                    link rel="icon" href="data:,";
                    meta name="generator" content={"cts-audit " (env!("CARGO_PKG_VERSION"))};
                    title { "cts-audit report: Billing Center operations" }
                    style { (PreEscaped(styles())) }
                }
                body {
                    header {
                        h1 { "Billing Center audit" }
                        p.muted {
                            "Huawei Cloud CTS traces read by cts-audit " (env!("CARGO_PKG_VERSION"))
                            ". Times are " (self.zone()) ". "
                            (thousands(fold.flagged)) " flagged records of "
                            (thousands(self.stats.unique)) " unique records read."
                        }
                    }
                    (self.what_was_read())
                    (self.at_a_glance())
                    (self.timeline())
                    (self.actors())
                    (self.integrity())
                    (self.flagged_records())
                }
            }
        }
    }

    fn what_was_read(&self) -> Markup {
        let s = self.stats;
        let rows: [(&str, &str, u64); 14] = [
            ("files", "Files read", s.files),
            (
                "files_skipped",
                "Files skipped (not traces, unreadable, empty)",
                s.files_skipped,
            ),
            ("digests_skipped", "Integrity digests", s.digests_skipped),
            (
                "bill_pages_skipped",
                "Bill pages (not traces)",
                s.bill_pages_skipped,
            ),
            ("records", "Records read", s.records),
            (
                "duplicates",
                "Duplicates dropped (re-delivered)",
                s.duplicates,
            ),
            ("conflicts", "Kept under a reused trace id", s.conflicts),
            ("unique", "Unique records", s.unique),
            ("billing", "Billing Center records", s.billing),
            ("emitted", "Written out (and reported here)", s.emitted),
            ("filtered_out", "Filtered out", s.filtered_out),
            ("unwritten", "Not written (output closed)", s.unwritten),
            ("record_errors", "Damaged records or lines", s.record_errors),
            ("errors", "Problems in all", s.errors),
        ];
        let checks = [
            (
                "unique = records − duplicates",
                format!("{} = {} − {}", s.unique, s.records, s.duplicates),
                s.unique == s.records.wrapping_sub(s.duplicates),
            ),
            (
                "unique = billing + audit trail + other services",
                format!(
                    "{} = {} + {} + {}",
                    s.unique, s.billing, s.audit_trail, s.other_service
                ),
                s.unique == s.billing + s.audit_trail + s.other_service,
            ),
            (
                "unique = written + filtered out + not written",
                format!(
                    "{} = {} + {} + {}",
                    s.unique, s.emitted, s.filtered_out, s.unwritten
                ),
                s.unique == s.emitted + s.filtered_out + s.unwritten,
            ),
            (
                "reported here = written",
                format!("{} = {}", self.fold.records, s.emitted),
                self.fold.records == s.emitted,
            ),
        ];
        let problems_listed = s.error_list.len().min(MAX_PROBLEM_ROWS);
        html! {
            section #read {
                h2 { "1. What was read" }
                div.cols {
                    div {
                        table {
                            tbody {
                                tr { th { "Inputs" } td { @for input in &self.settings.inputs { code { (input) } " " } } }
                                tr { th { "Time covered" } td data-field="time-range" {
                                    (self.time(s.first_time_ms)) " to " (self.time(s.last_time_ms))
                                } }
                                tr { th { "Bytes read" } td.n { (thousands(s.bytes)) } }
                            }
                        }
                        table #counts {
                            tbody {
                                @for (key, label, value) in rows {
                                    tr { th { (label) } td.n data-count=(key) { (thousands(value)) } }
                                }
                            }
                        }
                    }
                    div {
                        h3 { "Every record accounted for" }
                        table #invariants {
                            thead { tr { th { "Check" } th { "Counts" } th { "" } } }
                            tbody {
                                @for (rule, numbers, holds) in &checks {
                                    tr {
                                        td { (rule) }
                                        td.n { (numbers) }
                                        @if *holds { td.ok data-holds="true" { "holds" } }
                                        @else { td.bad data-holds="false" { "does not hold" } }
                                    }
                                }
                            }
                        }
                        @if s.stopped {
                            p.bad { "The scan stopped before every input was read: its output was closed." }
                        }
                        @if s.errors > 0 {
                            h3 { "Problems (" (thousands(s.errors)) ")" }
                            table #problems {
                                tbody {
                                    @for problem in s.error_list.iter().take(problems_listed) {
                                        tr {
                                            td { code { (super::fold::clip(&problem.file.display().to_string())) } }
                                            td { (problem.location.as_ref().map(|l| l.describe()).unwrap_or_default()) }
                                            td { (super::fold::clip(&problem.message)) }
                                        }
                                    }
                                }
                            }
                            @let more = s.errors.saturating_sub(problems_listed as u64);
                            @if more > 0 {
                                p.muted { (thousands(more)) " more problems are counted in --stats." }
                            }
                        }
                    }
                }
            }
        }
    }

    fn at_a_glance(&self) -> Markup {
        let fold = self.fold;
        let top_rules = fold.rules.top(10);
        let top_operations = fold.operations.top(10);
        html! {
            section #glance {
                h2 { "2. At a glance" }
                div.cards #severities {
                    @for &severity in Severity::ALL.iter().rev().filter(|s| **s >= Severity::Low) {
                        div class={"card sev-" (severity.as_str())} data-severity=(severity.as_str()) {
                            div { span class={"sev sev-" (severity.as_str())} { (severity.as_str()) } }
                            div.v { (thousands(fold.by_severity[severity as usize])) }
                        }
                    }
                    div.card data-severity="below" {
                        div.muted { "below low" }
                        div.v { (thousands(fold.records - fold.flagged)) }
                    }
                }
                div.cols {
                    div {
                        h3 { "Rules that fired most" }
                        @if top_rules.is_empty() { p.muted { "No rule fired." } }
                        @else {
                            table #top-rules {
                                thead { tr { th { "Rule" } th.n { "Records" } } }
                                tbody { @for (rule, count) in &top_rules {
                                    tr { td { code { (rule) } } td.n { (thousands(*count)) } }
                                } }
                            }
                        }
                    }
                    div {
                        h3 { "Operations flagged most" }
                        @if top_operations.is_empty() { p.muted { "Nothing was flagged." } }
                        @else {
                            table #top-operations {
                                thead { tr { th { "Operation" } th.n { "Records" } } }
                                tbody { @for (operation, count) in &top_operations {
                                    tr { td { (operation) } td.n { (thousands(*count)) } }
                                } }
                            }
                        }
                    }
                }
            }
        }
    }

    fn timeline(&self) -> Markup {
        let chart = timeline_svg(self.fold, self.settings.lanes, self.offset, &self.zone());
        html! {
            section #timeline {
                h2 { "3. Timeline" }
                @match chart {
                    Some(chart) => {
                        p.muted {
                            "Flagged records over time (" (self.zone()) "). Above: how many, by severity. "
                            "Below: one lane for each of the top actors; a circle's area grows with the records it stands for."
                        }
                        // plotters' SVG, its texts escaped by plotters.
                        div.timeline { (PreEscaped(chart.svg)) }
                        p.legend {
                            @for &severity in Severity::ALL.iter().rev().filter(|s| **s >= Severity::Low) {
                                span { span class={"dot sev-" (severity.as_str())} {} " " (severity.as_str()) }
                            }
                            span { span class="ring sev-high" {} " failed attempt (a ring)" }
                            span.muted { "one column = " (chart.column) }
                        }
                    }
                    None => p.muted { "No flagged record has a time." },
                }
            }
        }
    }

    fn actors(&self) -> Markup {
        let fold = self.fold;
        let mut actors: Vec<&Actor> = fold.actors.iter().collect();
        actors.sort_by(|a, b| {
            b.highest
                .cmp(&a.highest)
                .then(b.flagged.cmp(&a.flagged))
                .then(b.records.cmp(&a.records))
                .then(a.name().cmp(&b.name()))
        });
        let hidden = actors.len().saturating_sub(MAX_ACTOR_ROWS);
        actors.truncate(MAX_ACTOR_ROWS);
        html! {
            section #actors {
                h2 { "4. Actors" }
                @if actors.is_empty() { p.muted { "No records were reported." } }
                @else {
                    @if !self.settings.bills {
                        p.muted { "Money moved is shown when bills are given: " code { "scan --bills PATH" } "." }
                    }
                    table #actor-table {
                        thead { tr {
                            th { "Actor" } th { "First seen" } th { "Last seen" }
                            th.n { "Records" } th.n { "Flagged" }
                            th { "Sensitive operations" } th { "Failures" } th { "Source IPs" }
                            th { "Highest" }
                            @if self.settings.bills { th.n { "Money moved" } }
                        } }
                        tbody {
                            @for actor in &actors {
                                tr.actor data-actor=(actor.name()) {
                                    td { (actor.name()) }
                                    td { (self.time(actor.first_ms)) }
                                    td { (self.time(actor.last_ms)) }
                                    td.n { (thousands(actor.records)) }
                                    td.n data-field="flagged" { (thousands(actor.flagged)) }
                                    td { @for (category, count) in &actor.categories {
                                        span.nowrap { (category.as_str()) " " (count) } br;
                                    } }
                                    td data-field="failures" {
                                        @if actor.failures > 0 {
                                            strong { (thousands(actor.failures)) } br;
                                            @for (code, count) in actor.codes.top(6) {
                                                code { (code) }
                                                @if let Some(known) = crate::catalog::error_code(code) {
                                                    " " (known.meaning)
                                                }
                                                " ×" (count) br;
                                            }
                                            @if actor.codes.len() > 6 || actor.codes.other > 0 { span.muted { "and more" } }
                                        }
                                    }
                                    td.nowrap {
                                        @for (ip, _) in actor.source_ips.top(5) { code { (ip) } br; }
                                        @let more = actor.source_ips.len().saturating_sub(5) as u64 + actor.source_ips.other;
                                        @if more > 0 { span.muted { "and " (more) " more" } }
                                    }
                                    td { span class={"sev sev-" (actor.highest.as_str())} { (actor.highest.as_str()) } }
                                    @if self.settings.bills {
                                        td.n data-field="money" {
                                            @if actor.money.is_empty() { span.muted { "—" } }
                                            @for (currency, amount) in &actor.money {
                                                (super::fold::money(*amount)) " " (currency) br;
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    @if hidden > 0 { p.muted { (thousands(hidden as u64)) " more actors are not shown." } }
                }
            }
        }
    }

    fn integrity(&self) -> Markup {
        html! {
            section #integrity {
                h2 { "5. Integrity" }
                @match (&self.stats.integrity, self.settings.verify) {
                    (Some(report), _) => {
                        @let c = &report.counts;
                        @if c.problems == 0 {
                            p.ok data-chain="intact" { "Every check passed: the digests' chain is intact and every file read matches its digest." }
                        } @else {
                            p.bad data-chain="broken" { (thousands(c.problems)) " findings point to tampering or loss." }
                        }
                        table.kv #integrity-counts { tbody {
                            @for (label, value) in [("Digests", c.digests), ("Digests with every check passed", c.digests_ok),
                                ("Trace files judged", c.trace_files), ("Verified", c.verified), ("Modified", c.modified),
                                ("Missing", c.missing), ("Unlisted", c.unlisted), ("Unverified (no digest vouches)", c.unverified),
                                ("Signatures not given", c.signatures_unknown), ("Unreadable", c.unreadable)] {
                                tr { th { (label) } td.n { (thousands(value)) } }
                            }
                        } }
                        @if !report.problems.is_empty() {
                            table #integrity-problems {
                                thead { tr { th { "Check" } th { "Object" } th { "What was found" } } }
                                tbody { @for finding in report.problems.iter().take(MAX_PROBLEM_ROWS) {
                                    tr { td { code { (finding.check.name()) } } td { code { (super::fold::clip(&finding.object)) } } td { (super::fold::clip(&finding.message)) } }
                                } }
                            }
                            @if report.problems.len() > MAX_PROBLEM_ROWS {
                                p.muted { (report.problems.len() - MAX_PROBLEM_ROWS) " more findings: run " code { "cts-audit verify" } "." }
                            }
                        }
                    }
                    _ => p.muted { "Not checked. " code { "scan --verify" } " checks each file against the download's signed digests." },
                }
            }
        }
    }

    fn flagged_records(&self) -> Markup {
        let fold = self.fold;
        let listed = fold.listed();
        let bills = self.settings.bills;
        let verify = self.settings.verify;
        html! {
            section #records {
                h2 { "6. Flagged records" }
                p data-field="listed" {
                    (thousands(listed.len() as u64)) " of " (thousands(fold.flagged)) " flagged records, most severe first."
                    @if fold.left_out > 0 {
                        strong { " " (thousands(fold.left_out)) " were left out" }
                        " (the least severe, then the latest); the scan's output has them all."
                    }
                }
                @if !listed.is_empty() {
                    table.fixed #record-table {
                        // Fixed widths: the page fits the screen and the
                        // paper however long a field is.
                        colgroup {
                            col.w-time; col.w-sev; col.w-actor; col.w-op; col.w-res; col.w-out; col;
                            @if bills { col.w-cost; }
                            @if verify { col.w-int; }
                        }
                        thead { tr {
                            th { "Time" } th { "Severity" } th { "Actor, from" } th { "Operation" } th { "Resource" }
                            th { "Outcome" } th { "Why, and where it was read" }
                            @if bills { th { "Cost" } }
                            @if verify { th { "Integrity" } }
                        } }
                        tbody { @for record in &listed { (self.record_row(record, bills, verify)) } }
                    }
                }
            }
        }
    }

    fn record_row(&self, r: &Listed, bills: bool, verify: bool) -> Markup {
        html! {
            tr.record data-severity=(r.severity.as_str()) {
                td { @let (day, time) = self.day_and_time(r.time_ms); span.nowrap { (day) } " " span.nowrap { (time) } }
                td { span class={"sev sev-" (r.severity.as_str())} { (r.severity.as_str()) } }
                td { (r.actor) @if let Some(ip) = &r.source_ip { br; code { (ip) } } }
                td {
                    (r.operation)
                    @if let Some(name) = &r.trace_name { br; code { (name) } }
                    @if let Some(category) = r.category { br; span.muted { (category.as_str()) } }
                }
                td { (r.resource.as_deref().unwrap_or("")) }
                td { @match &r.outcome { Some(failed) => span.bad { (failed) }, None => "done" } }
                td.why {
                    ul.reasons { @for reason in &r.reasons { li { (reason) } } }
                    div.path.muted { code { (r.source) } }
                }
                @if bills { td.n.nowrap { (r.cost.as_deref().unwrap_or("")) } }
                @if verify { td { (r.integrity.unwrap_or("")) } }
            }
        }
    }
}

/// The drawn timeline and the span one of its columns stands for.
struct Chart {
    svg: String,
    column: String,
}

/// Column widths the timeline picks from: readable units.
const COLUMN_WIDTHS: [(i64, &str); 16] = [
    (60_000, "1 minute"),
    (120_000, "2 minutes"),
    (300_000, "5 minutes"),
    (600_000, "10 minutes"),
    (900_000, "15 minutes"),
    (1_800_000, "30 minutes"),
    (3_600_000, "1 hour"),
    (7_200_000, "2 hours"),
    (10_800_000, "3 hours"),
    (21_600_000, "6 hours"),
    (43_200_000, "12 hours"),
    (86_400_000, "1 day"),
    (172_800_000, "2 days"),
    (604_800_000, "7 days"),
    (1_209_600_000, "14 days"),
    (2_592_000_000, "30 days"),
];
/// Columns across the chart at most.
const MAX_COLUMNS: i64 = 240;

/// The flagged records' timeline: counts by severity above, one lane per
/// top actor below. `None` when no flagged record has a time.
fn timeline_svg(fold: &Fold, lanes: usize, offset: FixedOffset, zone: &str) -> Option<Chart> {
    use plotters::prelude::*;
    let timeline: &Timeline = &fold.timeline;
    let (&first, &last) = (
        timeline.buckets.keys().map(|(t, ..)| t).min()?,
        timeline.buckets.keys().map(|(t, ..)| t).max()?,
    );
    let span = (last - first).max(1);
    let (width, column_label) = COLUMN_WIDTHS
        .iter()
        .find(|(w, _)| *w >= timeline.width_ms && span / w < MAX_COLUMNS)
        .map(|&(w, label)| (w, label.to_owned()))
        .unwrap_or_else(|| {
            let days = (span / MAX_COLUMNS / 86_400_000 + 1).max(timeline.width_ms / 86_400_000);
            (days * 86_400_000, format!("{days} days"))
        });
    // The top actors by flagged records take a lane each; the rest share one.
    let mut by_actor: BTreeMap<usize, u64> = BTreeMap::new();
    for (&(_, actor, _, _), &count) in &timeline.buckets {
        *by_actor.entry(actor).or_default() += count;
    }
    let mut ranked: Vec<(usize, u64)> = by_actor.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let top: Vec<usize> = ranked.iter().take(lanes.max(1)).map(|(a, _)| *a).collect();
    let others = ranked.len() > top.len();
    let lane_of = |actor: usize| top.iter().position(|&a| a == actor).unwrap_or(top.len());
    let mut names: Vec<String> = top
        .iter()
        .map(|&a| {
            super::fold::clip_to(&fold.actors.get(a).map(Actor::name).unwrap_or_default(), 26)
        })
        .collect();
    if others {
        names.push(format!("{} other actors", ranked.len() - top.len()));
    }
    // The x axis counts columns from the first: plotters' key points
    // overflow on epoch milliseconds.
    let start = first.div_euclid(width) * width;
    let end = last.div_euclid(width) - start.div_euclid(width) + 1;
    // Columns: counts by severity; marks: by lane, severity and failure.
    let mut columns: BTreeMap<(i64, Severity), u64> = BTreeMap::new();
    let mut marks: BTreeMap<(Severity, i64, usize, bool), u64> = BTreeMap::new();
    for (&(time, actor, severity, failed), &count) in &timeline.buckets {
        let column = time.div_euclid(width) - start.div_euclid(width);
        *columns.entry((column, severity)).or_default() += count;
        *marks
            .entry((severity, column, lane_of(actor), failed))
            .or_default() += count;
    }
    let mut totals: BTreeMap<i64, u64> = BTreeMap::new();
    for (&(column, _), &count) in &columns {
        *totals.entry(column).or_default() += count;
    }
    let peak = totals.values().copied().max().unwrap_or(1).max(1);
    let lane_count = names.len() as i32;
    let (w, lane_height, top_height) = (1100u32, 34u32, 170u32);
    let h = top_height + lane_height * lane_count as u32 + 70;
    let colour = |s: Severity| {
        let (r, g, b) = severity_colour(s);
        RGBColor(r, g, b)
    };
    let grey = RGBColor(128, 128, 128);
    let time_label = |column: &i64| match column
        .checked_mul(width)
        .and_then(|ms| ms.checked_add(start))
        .and_then(DateTime::from_timestamp_millis)
    {
        Some(t) => {
            let t = t.with_timezone(&offset);
            if width >= 86_400_000 {
                t.format("%Y-%m-%d").to_string()
            } else {
                t.format("%m-%d %H:%M").to_string()
            }
        }
        None => String::new(),
    };
    let lane_label = |v: &SegmentValue<i32>| match v {
        SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => usize::try_from(*i)
            .ok()
            .and_then(|i| names.get(i))
            .cloned()
            .unwrap_or_default(),
        SegmentValue::Last => String::new(),
    };
    let count_desc = format!("flagged per {column_label}");
    let time_desc = format!("time ({zone})");
    let mut svg = String::new();
    let drawn: Result<(), Box<dyn std::error::Error>> =
        (|| {
            let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
            let (upper, lower) = root.split_vertically(top_height);
            let mut counts = ChartBuilder::on(&upper)
                .margin_top(10)
                .margin_right(20)
                .y_label_area_size(190)
                .x_label_area_size(8)
                .build_cartesian_2d(0..end, 0u64..peak + peak / 10 + 1)?;
            counts
                .configure_mesh()
                .disable_x_mesh()
                // The lanes below carry the times (no labels here; plotters
                // cannot place zero key points).
                .x_labels(2)
                .x_label_formatter(&|_| String::new())
                .y_labels(4)
                .y_desc(count_desc.as_str())
                .axis_style(grey)
                .light_line_style(grey.mix(0.15))
                .bold_line_style(grey.mix(0.3))
                .label_style(("sans-serif", 13))
                .draw()?;
            // Stacked: each severity's bar sits on the less severe ones.
            let mut base: BTreeMap<i64, u64> = BTreeMap::new();
            for &severity in Severity::ALL {
                let bars: Vec<_> = columns
                    .iter()
                    .filter(|((_, s), _)| *s == severity)
                    .map(|(&(column, _), &count)| {
                        let below = base.entry(column).or_default();
                        let bar = Rectangle::new(
                            [(column, *below), (column + 1, *below + count)],
                            colour(severity).filled(),
                        );
                        *below += count;
                        bar
                    })
                    .collect();
                counts.draw_series(bars)?;
            }
            let mut lanes = ChartBuilder::on(&lower)
                .margin_right(20)
                .margin_bottom(6)
                .y_label_area_size(190)
                .x_label_area_size(46)
                // plotters' integer ranges are inclusive: lanes 0 to n - 1.
                .build_cartesian_2d(0..end, (0..lane_count - 1).into_segmented())?;
            lanes
                .configure_mesh()
                .x_labels(8)
                .x_label_formatter(&time_label)
                .y_label_formatter(&lane_label)
                .x_desc(time_desc.as_str())
                .axis_style(grey)
                .light_line_style(grey.mix(0.1))
                .bold_line_style(grey.mix(0.25))
                .label_style(("sans-serif", 13))
                .draw()?;
            // Less severe first, so the most severe are drawn on top.
            lanes.draw_series(marks.iter().map(
                |(&(severity, column, lane, failed), &count)| {
                    let radius = (3.0 + (count as f64).sqrt() * 2.0).min(15.0) as i32;
                    let style = if failed {
                        ShapeStyle {
                            color: colour(severity).to_rgba(),
                            filled: false,
                            stroke_width: 2,
                        }
                    } else {
                        colour(severity).mix(0.8).filled()
                    };
                    let lane = i32::try_from(lane).unwrap_or(i32::MAX);
                    Circle::new((column, SegmentValue::CenterOf(lane)), radius, style)
                },
            ))?;
            root.present()?;
            Ok(())
        })();
    drawn.ok()?;
    Some(Chart {
        svg,
        column: column_label,
    })
}
