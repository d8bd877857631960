//! What a scan counts ([`Stats`]), and how a file's end is counted.

use super::*;

/// What a scan read and did. The counts add up:
/// `unique = records - duplicates = billing + audit_trail + other_service`,
/// `billing + audit_trail = catalogued + uncatalogued`,
/// `unique = emitted + filtered_out + unwritten`,
/// `errors = error_list.len() + errors_unlisted`.
///
/// ```
/// use cts_audit::scan::{scan, CollectSink, ScanOptions};
/// let dir = std::env::temp_dir().join(format!("cts-audit-stats-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let bind = r#"{"trace_id":"a","trace_name":"bindCard","service_type":"CBC","resource_type":"order"}"#;
/// let port = r#"{"trace_id":"b","trace_name":"updatePort","service_type":"VPC"}"#;
/// std::fs::write(dir.join("t.jsonl"), format!("{bind}\n{port}\n{bind}\nnot json\n")).unwrap();
/// let s = scan(&[dir.clone()], &ScanOptions::default(), &mut CollectSink::default());
/// assert_eq!((s.records, s.record_errors, s.duplicates), (3, 1, 1));
/// assert_eq!(s.unique, s.records - s.duplicates);
/// assert_eq!(s.unique, s.billing + s.audit_trail + s.other_service);
/// assert_eq!(s.unique, s.emitted + s.filtered_out + s.unwritten);
/// # std::fs::remove_dir_all(dir).unwrap();
/// ```
#[derive(Debug, Default, Clone, Serialize)]
#[non_exhaustive]
pub struct Stats {
    /// Files read (digests not included); each member of a tar archive is
    /// a file, and the archive itself is not counted.
    pub files: u64,
    /// Files not read as traces: unreadable, empty, compressed other than
    /// with gzip, UTF-16 text, a pipe, socket or device met inside a
    /// directory, a tar archive with no member read, or a member of one that
    /// is not read (a link, a nested archive).
    pub files_skipped: u64,
    /// Integrity digest files recognised and skipped.
    pub digests_skipped: u64,
    /// Pages of bill records recognised and skipped: not traces
    /// (`scan --bills` and `cts-audit bills` read them).
    pub bill_pages_skipped: u64,
    /// Bytes read after decompression.
    pub bytes: u64,
    /// Trace records parsed.
    pub records: u64,
    /// Records or lines that could not be parsed.
    pub record_errors: u64,
    /// Warnings about records that were still read: a damaged field read
    /// repaired or as null, a key given twice, a time or code that could
    /// not be read.
    pub record_warnings: u64,
    /// All problems: record errors, damaged or unreadable files, and records
    /// kept with an unreadable time.
    pub errors: u64,
    /// Records dropped because their `trace_id` was seen before on the
    /// same record (a re-delivery: same operation, service, resource type,
    /// rating and time to the second).
    pub duplicates: u64,
    /// Records kept though their `trace_id` was seen before, because an
    /// earlier record under it was a different one: each is counted in
    /// `unique` and flagged by `audit.conflict`. Counted against the first
    /// record seen under the id.
    pub conflicts: u64,
    /// Records counted once.
    pub unique: u64,
    /// Unique Billing Center records: billing-scope catalog entries and
    /// uncatalogued calls of billing services.
    pub billing: u64,
    /// Unique records of CTS's own tracker and notification operations
    /// (catalog scope `audit`): catalogued and judged, but not billing.
    pub audit_trail: u64,
    /// Records the catalog names (billing and audit scope).
    pub catalogued: u64,
    /// Billing records the catalog does not name.
    pub uncatalogued: u64,
    /// Unique records of other services.
    pub other_service: u64,
    /// Unique records written out.
    pub emitted: u64,
    /// Unique records not written (below the severity floor or filtered).
    pub filtered_out: u64,
    /// Unique records read but not written because the sink stopped the
    /// scan (its output was closed): `unique = emitted + filtered_out +
    /// unwritten`.
    pub unwritten: u64,
    /// The sink stopped the scan before every input was read.
    pub stopped: bool,
    /// Records read whole without a readable time while `--since` or
    /// `--until` bounded the time: kept (a time bound cannot place them),
    /// each with a warning.
    pub untimed_kept: u64,
    /// Unique records that failed (warning/incident, HTTP 4xx/5xx, error code).
    pub failed: u64,
    /// The earliest time of a unique record (epoch milliseconds): with
    /// [`Stats::last_time_ms`], the time the input covers.
    pub first_time_ms: Option<i64>,
    /// The latest time of a unique record (epoch milliseconds).
    pub last_time_ms: Option<i64>,
    /// Unique records by severity.
    pub by_severity: BTreeMap<&'static str, u64>,
    /// Uncatalogued billing operations by `service_type/trace_name`.
    pub uncatalogued_names: BTreeMap<String, u64>,
    /// One entry per problem, up to [`ScanOptions::max_errors`]:
    /// `errors = error_list.len() + errors_unlisted`.
    pub error_list: Vec<ScanError>,
    /// Problems past the cap on [`Stats::error_list`], counted only.
    pub errors_unlisted: u64,
    /// Those problems by file, then by kind (the message up to its first
    /// colon).
    pub unlisted_errors: BTreeMap<String, BTreeMap<String, u64>>,
    /// `scan --verify` only: what the integrity check found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub integrity: Option<IntegrityReport>,
    /// `scan --bills` only: what the join of bills and billing actions found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<crate::bills::join::Joined>,
}

/// What is said of a file with nothing in it.
pub(super) const EMPTY_FILE: &str = "empty file: no traces";

/// Whether a file read to its end was empty: its content was not
/// recognised, and nothing in it was read, neither a record nor a problem.
/// The one test, for files read whole and files streamed alike.
pub(super) fn is_empty_file(
    container: Option<crate::input::Container>,
    had_records: bool,
    had_problems: bool,
) -> bool {
    container.is_none() && !had_records && !had_problems
}

/// Counts a file once it is read: skipped (empty or unreadable), an
/// integrity digest recognised by content, or a trace file.
pub(super) fn account_file(stats: &mut Stats, skipped: bool, had_records: bool, digests: u64) {
    if skipped {
        stats.files_skipped += 1;
    } else if !had_records && digests > 0 {
        // A digest, recognised by content: counted in digests_skipped.
    } else {
        stats.files += 1;
    }
}
