//! The scan: every input read, every record parsed, classified, deduplicated,
//! filtered and accounted for, in parallel and in a deterministic order.
//!
//! Work is split two ways. Small files (OBS transfer files are kilobytes) are
//! read whole by a worker each, so decompression runs in parallel across
//! files. Large files and stdin are read by one thread in blocks of whole
//! records ([`crate::input::read_units`]) that the workers parse. Either way
//! results come back in input order, and one thread then deduplicates,
//! counts and hands the pre-rendered output to the [`Sink`]. Candidates for
//! the windowed rules are held (packed, and spilled to disk past
//! [`ScanOptions::held_memory`]) and judged in time order once every file is
//! read.
//!
//! ```
//! use cts_audit::scan::{scan, ScanOptions, CollectSink};
//! let dir = std::env::temp_dir().join(format!("cts-audit-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! std::fs::write(dir.join("t.json"), r#"[{"trace_id":"eb0472a4-5944-11ef-acce-294fee19871b","trace_name":"bindCard",
//!   "service_type":"CBC","resource_type":"order","time":1723533697290,"trace_rating":"normal"}]"#).unwrap();
//! let mut sink = CollectSink::default();
//! let stats = scan(&[dir.clone()], &ScanOptions::default(), &mut sink);
//! assert_eq!((stats.records, stats.emitted), (1, 1));
//! assert!(String::from_utf8(sink.output).unwrap().contains("\"severity\":\"high\""));
//! # std::fs::remove_dir_all(dir).unwrap();
//! ```

mod held;
mod seen;

use crate::catalog::Severity;
use crate::classify::{classify, Classification, Kind};
use crate::input::{self, Container, InputFile, Opened, ReadProblem, Unit, UnitReader};
use crate::records::{self, Location, Visitor};
use crate::report::{self, Format};
use crate::rules::{Facts, RuleSet, RuleState};
use crate::trace::{Trace, TraceFields, TraceHead};
use crate::verdict::Verdict;
use held::{Held, Packed};
use rayon::prelude::*;
pub use seen::{record_print, Seen, SeenIds};
use serde::Serialize;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};

/// The most worker threads a scan starts: eight per core. More only
/// share the same cores (and `-j 100000` would take minutes to start).
///
/// ```
/// assert!(cts_audit::scan::max_threads() >= 8);
/// ```
pub fn max_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()) * 8
}

/// Files up to this size are read whole by one worker each.
const SMALL_FILE_BYTES: u64 = 2 << 20;
/// How many small files a batch holds at most.
const SMALL_BATCH_FILES: usize = 256;

/// Which records to keep: the CTS console's filters.
///
/// ```
/// use cts_audit::scan::{scan, CollectSink, Filters, ScanOptions};
/// let dir = std::env::temp_dir().join(format!("cts-audit-filters-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// std::fs::write(dir.join("t.jsonl"), concat!(
///     r#"{"trace_id":"a","trace_name":"deleteResource","service_type":"CBC","resource_type":"cloudresouce","user":{"name":"alice"}}"#, "\n",
///     r#"{"trace_id":"b","trace_name":"deleteResource","service_type":"CBC","resource_type":"cloudresouce","user":{"name":"bob"}}"#, "\n",
/// )).unwrap();
/// let mut options = ScanOptions::default();
/// options.filters.user = Some("BOB".into()); // ASCII case ignored
/// let stats = scan(&[dir.clone()], &options, &mut CollectSink::default());
/// assert_eq!((stats.emitted, stats.filtered_out), (1, 1));
/// # std::fs::remove_dir_all(dir).unwrap();
/// ```
#[derive(Debug, Default, Clone)]
#[non_exhaustive]
pub struct Filters {
    /// Keep records at or after this time (epoch ms).
    pub since_ms: Option<i64>,
    /// Keep records before this time (epoch ms).
    pub until_ms: Option<i64>,
    /// `trace_type`, ASCII case ignored.
    pub trace_type: Option<String>,
    /// `service_type`, ASCII case ignored.
    pub service: Option<String>,
    /// `resource_type`, ASCII case ignored.
    pub resource_type: Option<String>,
    /// User name or id, ASCII case ignored.
    pub user: Option<String>,
    /// `trace_rating`, ASCII case ignored.
    pub rating: Option<String>,
    /// `resource_id`, exactly.
    pub resource_id: Option<String>,
    /// `trace_name`, exactly.
    pub trace_name: Option<String>,
}

impl Filters {
    /// True when `--since` or `--until` bounds the time.
    fn bounds_time(&self) -> bool {
        self.since_ms.is_some() || self.until_ms.is_some()
    }
}

fn same(filter: &Option<String>, value: Option<&str>) -> bool {
    filter
        .as_deref()
        .is_none_or(|f| value.is_some_and(|v| v.eq_ignore_ascii_case(f)))
}

impl Filters {
    /// Does the record pass every filter given?
    ///
    /// ```
    /// use cts_audit::{analyze::Analyzer, scan::Filters};
    /// let verdict = Analyzer::default()
    ///     .analyze_str(r#"{"trace_name":"payOrder","service_type":"CBC","time":1718777931170}"#)
    ///     .unwrap();
    /// let mut june = Filters::default();
    /// (june.since_ms, june.service) = (Some(1_717_200_000_000), Some("cbc".into()));
    /// assert!(june.matches(&verdict));
    /// let mut july = Filters::default();
    /// july.since_ms = Some(1_719_792_000_000);
    /// assert!(!july.matches(&verdict));
    /// // Without a readable time, a record is kept by every time bound.
    /// let untimed = Analyzer::default().analyze_str(r#"{"trace_name":"payOrder","time":true}"#).unwrap();
    /// assert!(july.matches(&untimed));
    /// ```
    pub fn matches(&self, verdict: &Verdict<'_>) -> bool {
        // A record whose time cannot be read is kept, not dropped: damage
        // to its time must not hide it (the scan warns and counts it).
        let time_ok = verdict.time_ms.is_none_or(|t| {
            self.since_ms.is_none_or(|s| t >= s) && self.until_ms.is_none_or(|u| t < u)
        });
        time_ok
            && same(&self.trace_type, verdict.trace_type.as_deref())
            && same(&self.service, verdict.service_type.as_deref())
            && same(&self.resource_type, verdict.resource_type.as_deref())
            && same(&self.rating, verdict.rating.as_deref())
            && self
                .resource_id
                .as_deref()
                .is_none_or(|id| verdict.resource_id.as_deref() == Some(id))
            && self
                .trace_name
                .as_deref()
                .is_none_or(|name| verdict.trace_name.as_deref() == Some(name))
            && (same(&self.user, verdict.user.as_deref())
                || (self.user.is_some() && same(&self.user, verdict.user_id.as_deref())))
    }
}

/// How to scan.
///
/// ```
/// use cts_audit::{catalog::Severity, report::Format, scan::ScanOptions};
/// let mut options = ScanOptions::default();
/// options.min_severity = Severity::None; // every record, as `--all`
/// options.format = Format::Csv;
/// options.threads = Some(2);
/// assert_eq!(options.held_memory, 32 << 20);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ScanOptions {
    /// Which records to keep.
    pub filters: Filters,
    /// Emit records at or above this severity; `Severity::None` emits all.
    pub min_severity: Severity,
    /// How emitted records are rendered.
    pub format: Format,
    /// Worker threads; `None` uses every core. At most [`max_threads`].
    pub threads: Option<usize>,
    /// The rules that judge each record.
    pub rules: RuleSet,
    /// Bytes of rule candidates held in memory; past this they are sorted
    /// and spilled to a temporary file, so memory stays flat on any input.
    pub held_memory: usize,
    /// Problems listed one by one in [`Stats::error_list`]; past this they
    /// are counted by file and kind ([`Stats::unlisted_errors`]).
    pub max_errors: usize,
    /// Caps on what one input may make the scan read.
    pub limits: input::Limits,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            filters: Filters::default(),
            min_severity: Severity::Low,
            format: Format::Jsonl,
            threads: None,
            rules: RuleSet::builtin(),
            held_memory: 32 << 20,
            max_errors: 1_000,
            limits: input::Limits::default(),
        }
    }
}

/// A damaged file, record or line, and where it is.
///
/// ```
/// use cts_audit::scan::{scan, CollectSink, ScanOptions};
/// let dir = std::env::temp_dir().join(format!("cts-audit-errors-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// std::fs::write(dir.join("t.jsonl"), "{\"trace_id\":\"a\"}\n{\"trace_id\": \n").unwrap();
/// let mut sink = CollectSink::default();
/// let stats = scan(&[dir.clone()], &ScanOptions::default(), &mut sink);
/// let problem = &sink.problems[0];
/// assert_eq!(problem.location, Some(cts_audit::records::Location::Line(2)));
/// assert!(problem.to_string().contains("t.jsonl: line 2: invalid trace: EOF"), "{problem}");
/// assert_eq!(stats.error_list, sink.problems);
/// # std::fs::remove_dir_all(dir).unwrap();
/// ```
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScanError {
    /// The file (`-` for stdin).
    pub file: PathBuf,
    /// The record or line, when the problem is in one; written as
    /// [`Location::describe`] says it (`line 7`, `record 3`).
    #[serde(serialize_with = "described")]
    pub location: Option<Location>,
    /// What is wrong.
    pub message: String,
}

/// A location as its description, `null` when there is none.
fn described<S: serde::Serializer>(
    location: &Option<Location>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match location {
        Some(location) => serializer.serialize_str(&location.describe()),
        None => serializer.serialize_none(),
    }
}

impl std::fmt::Display for ScanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.location {
            Some(location) => write!(
                f,
                "{}: {}: {}",
                self.file.display(),
                location.describe(),
                self.message
            ),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

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
}

/// Receives the scan's output, in order.
///
/// ```
/// use cts_audit::{catalog::Severity, scan::{scan, ScanError, ScanOptions, Sink}};
/// use std::ops::ControlFlow;
/// /// Counts the high and critical records, and keeps nothing else.
/// #[derive(Default)]
/// struct Alarms(u64);
/// impl Sink for Alarms {
///     fn record(&mut self, _rendered: &[u8], severity: Severity) -> ControlFlow<()> {
///         self.0 += u64::from(severity >= Severity::High);
///         ControlFlow::Continue(())
///     }
///     fn problem(&mut self, _problem: &ScanError) {}
/// }
/// let dir = std::env::temp_dir().join(format!("cts-audit-sink-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// std::fs::write(dir.join("t.json"), r#"[{"trace_name":"deleteResource","service_type":"CBC","resource_type":"cloudresouce"}]"#).unwrap();
/// let mut alarms = Alarms::default();
/// scan(&[dir.clone()], &ScanOptions::default(), &mut alarms);
/// assert_eq!(alarms.0, 1);
/// # std::fs::remove_dir_all(dir).unwrap();
/// ```
pub trait Sink {
    /// One emitted record: rendered in [`ScanOptions::format`], or the
    /// verdict itself for [`Format::Verdicts`]. Return
    /// `ControlFlow::Break(())` to stop the scan: its output is gone (a
    /// closed pipe, a full disk) or it has seen enough. The scan then
    /// reads no more input, and counts what it read but did not hand over
    /// in [`Stats::unwritten`].
    fn record(&mut self, record: Record<'_>, severity: Severity) -> ControlFlow<()>;
    /// One problem, as soon as it is known.
    fn problem(&mut self, problem: &ScanError);
    /// `bytes` more of the input (on disk) have been read.
    fn progress(&mut self, _bytes: u64) {}
}

/// One emitted record as a [`Sink`] receives it.
///
/// ```
/// use cts_audit::catalog::Severity;
/// use cts_audit::report::Format;
/// use cts_audit::scan::{scan, Record, ScanError, ScanOptions, Sink};
/// use std::ops::ControlFlow;
/// /// Reads fields, not bytes: nothing is rendered to be parsed back.
/// #[derive(Default)]
/// struct Users(Vec<String>);
/// impl Sink for Users {
///     fn record(&mut self, record: Record<'_>, _: Severity) -> ControlFlow<()> {
///         if let Record::Verdict(verdict) = record {
///             self.0.extend(verdict.user.as_deref().map(str::to_owned));
///         }
///         ControlFlow::Continue(())
///     }
///     fn problem(&mut self, _: &ScanError) {}
/// }
/// let samples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
/// let mut options = ScanOptions::default();
/// options.format = Format::Verdicts;
/// let mut users = Users::default();
/// scan(&[samples], &options, &mut users);
/// assert!(!users.0.is_empty());
/// ```
#[derive(Debug, Clone, Copy)]
pub enum Record<'r> {
    /// Rendered in [`ScanOptions::format`]: one line, or one CSV row.
    Rendered(&'r [u8]),
    /// The verdict itself ([`Format::Verdicts`]).
    Verdict(&'r Verdict<'static>),
}

/// Emitted records of one unit or batch, in the form the sink wants:
/// rendered bytes end to end, or verdicts.
#[derive(Debug, Default)]
struct Emitted {
    bytes: Vec<u8>,
    verdicts: Vec<Verdict<'static>>,
}

/// Where one emitted record is in an [`Emitted`].
#[derive(Debug, Clone, Copy)]
enum Span {
    Bytes(u32, u32),
    Verdict(u32),
}

impl Emitted {
    /// Adds a verdict in the form `options` asks for.
    fn push(&mut self, verdict: Verdict<'_>, options: &ScanOptions) -> Span {
        if options.format == Format::Verdicts {
            self.verdicts.push(verdict.into_owned());
            // Units hold far fewer than 4 billion records.
            return Span::Verdict(u32::try_from(self.verdicts.len() - 1).unwrap_or(u32::MAX));
        }
        let start = self.bytes.len();
        report::render(&verdict, options.format, &options.rules, &mut self.bytes);
        // Units and batches are far under 4 GiB.
        let at = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Span::Bytes(at(start), at(self.bytes.len()))
    }

    fn get(&self, span: Span) -> Option<Record<'_>> {
        match span {
            Span::Bytes(start, end) => self
                .bytes
                .get(start as usize..end as usize)
                .map(Record::Rendered),
            Span::Verdict(at) => self.verdicts.get(at as usize).map(Record::Verdict),
        }
    }

    /// Appends `other`, and gives the function that moves its spans.
    fn append(&mut self, other: Emitted) -> impl Fn(Span) -> Span {
        let bytes = u32::try_from(self.bytes.len()).unwrap_or(u32::MAX);
        let verdicts = u32::try_from(self.verdicts.len()).unwrap_or(u32::MAX);
        self.bytes.extend_from_slice(&other.bytes);
        self.verdicts.extend(other.verdicts);
        move |span| match span {
            Span::Bytes(start, end) => Span::Bytes(start + bytes, end + bytes),
            Span::Verdict(at) => Span::Verdict(at + verdicts),
        }
    }
}

/// A [`Sink`] that keeps everything in memory; handy in tests and plugins.
///
/// ```
/// use cts_audit::scan::{scan, CollectSink, ScanOptions};
/// let mut sink = CollectSink::default();
/// let stats = scan(&["no/such/export".into()], &ScanOptions::default(), &mut sink);
/// assert_eq!(stats.files, 0);
/// assert!(sink.output.is_empty() && !sink.problems.is_empty());
/// ```
#[derive(Debug, Default)]
pub struct CollectSink {
    /// Rendered records, concatenated.
    pub output: Vec<u8>,
    /// Problems, in order.
    pub problems: Vec<ScanError>,
}

impl Sink for CollectSink {
    fn record(&mut self, record: Record<'_>, _severity: Severity) -> ControlFlow<()> {
        if let Record::Rendered(rendered) = record {
            self.output.extend_from_slice(rendered);
        }
        ControlFlow::Continue(())
    }
    fn problem(&mut self, problem: &ScanError) {
        self.problems.push(problem.clone());
    }
}

/// The compact result of one record, from a worker to the ordering thread.
struct Outcome {
    /// The dedup key of its trace id, and the print of what it is.
    key: Option<(u128, u32)>,
    /// Where its text is in [`UnitResult::texts`] (when it has a key): a
    /// conflict under a reused id is read again from it.
    text: Option<(usize, usize)>,
    /// Where it was read.
    location: Location,
    /// The key fields it gave twice, when it was read salvaged.
    malformed: Option<Box<str>>,
    kind: KindTag,
    severity: Severity,
    failed: bool,
    /// Where its emitted form is, when the record was selected.
    rendered: Option<Span>,
    /// `service/trace_name` of an uncatalogued billing record.
    uncatalogued_name: Option<String>,
    /// A candidate for the rules, kept until every file is read.
    held: Option<Box<Packed>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum KindTag {
    Catalogued,
    /// Catalogued, of scope `audit`: CTS's own tracker operations.
    AuditTrail,
    Uncatalogued,
    Other,
}

/// What a worker made of one unit (or one whole small file).
#[derive(Default)]
struct UnitResult {
    outcomes: Vec<Outcome>,
    output: Emitted,
    /// The text of the records with a trace id: the unit's own bytes, then
    /// the texts that are not in them (CSV rows, records read salvaged).
    texts: Vec<u8>,
    /// Index of the file in the scan's file list.
    file_index: u32,
    problems: Vec<ScanError>,
    record_errors: u64,
    digests: u64,
    bytes: u64,
    /// Whole-file results only: the file was empty or unreadable.
    skipped: bool,
    /// Whole-file results only: the size on disk, for progress.
    disk_bytes: u64,
    /// Whole-file results only: a tar archive, not read here.
    is_archive: bool,
    /// Records without a readable time that a time bound kept.
    untimed: u64,
    /// Warnings about records that were still read.
    record_warnings: u64,
    /// Problems past [`ScanOptions::max_errors`] in this unit, by kind:
    /// counted, not kept one by one.
    unlisted: BTreeMap<String, u64>,
    /// The file those problems are in.
    unlisted_file: Option<PathBuf>,
}

/// The dedup key: a UUID's 128 bits, or a 128-bit hash of any other id.
///
/// ```
/// use cts_audit::scan::dedup_key;
/// assert_eq!(dedup_key("cbdd4480-2e03-11ef-82de-cf140e2a70fb"), 0xcbdd44802e0311ef82decf140e2a70fb);
/// assert_ne!(dedup_key("trace-1"), dedup_key("trace-2"));
/// ```
pub fn dedup_key(trace_id: &str) -> u128 {
    if let Some(uuid) = uuid_bits(trace_id.as_bytes()) {
        return uuid;
    }
    let mut first = std::hash::DefaultHasher::new();
    (0u8, trace_id).hash(&mut first);
    let mut second = std::hash::DefaultHasher::new();
    (1u8, trace_id).hash(&mut second);
    (u128::from(first.finish()) << 64) | u128::from(second.finish())
}

/// Hex digit values, `INVALID` for anything else: a table, because the
/// digits of random ids defeat a branchy parse.
const HEX: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        table[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};
const INVALID: u8 = 0xff;

/// The 128 bits of a UUID written `8-4-4-4-12`.
fn uuid_bits(text: &[u8]) -> Option<u128> {
    /// Where the hex digits of each half are: fixed, so the loops unroll.
    const HIGH: [usize; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 14, 15, 16, 17];
    const LOW: [usize; 16] = [
        19, 20, 21, 22, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35,
    ];
    let text: &[u8; 36] = text.try_into().ok()?;
    if text[8] != b'-' || text[13] != b'-' || text[18] != b'-' || text[23] != b'-' {
        return None;
    }
    let mut invalid = 0u8;
    let mut half = |positions: [usize; 16]| {
        positions.iter().fold(0u64, |value, &i| {
            let digit = HEX[usize::from(text[i])];
            invalid |= digit;
            (value << 4) | u64::from(digit & 0x0f)
        })
    };
    let (high, low) = (half(HIGH), half(LOW));
    (invalid & 0xf0 == 0).then_some((u128::from(high) << 64) | u128::from(low))
}

/// Parses and judges the records of one unit. `WHOLE` parses every record
/// whole at once, for scans that emit every record (no severity floor),
/// where a head parse would only come before a full one.
struct Worker<'o, const WHOLE: bool> {
    options: &'o ScanOptions,
    file: &'o Path,
    /// The file's index in the scan's file list.
    file_index: u32,
    /// The unit's bytes, where most records' texts are.
    unit_bytes: &'o [u8],
    /// Texts of records that are not in `unit_bytes`, end to end.
    extra: Vec<u8>,
    result: UnitResult,
    /// The key fields the record being visited gave twice, when it was
    /// read salvaged.
    malformed: Option<String>,
}

impl<const WHOLE: bool> Visitor for Worker<'_, WHOLE> {
    const FULL: bool = WHOLE;

    fn trace(&mut self, trace: &Trace<'_>, text: &str, location: Location) {
        self.whole(trace, text, location);
    }

    fn digest(&mut self) {
        self.result.digests += 1;
    }

    fn repaired(&mut self, location: Location, warnings: &[String], duplicate_keys: &[String]) {
        for warning in warnings {
            self.record_warning(location, format!("damaged record read salvaged: {warning}"));
        }
        self.malformed = (!duplicate_keys.is_empty()).then(|| duplicate_keys.join(", "));
    }

    fn problem(&mut self, location: Location, message: String) {
        self.result.record_errors += 1;
        self.warning(location, message);
    }

    /// Most records are neither wanted in the output nor a rule's
    /// candidate: their head decides that, and only the rest are parsed
    /// whole and given a verdict (user, time text, source).
    fn head(&mut self, head: &TraceHead<'_>, text: &str, location: Location) {
        let class = classify(head);
        let options = self.options;
        let facts = Facts::of_class(&class, head.rating(), self.malformed.is_some());
        // Parsed whole: a possible candidate, or a record with a field to warn about.
        let maybe_candidate = options.rules.may_be_candidate(&facts)
            || options.rules.has_user_rules()
            || head.code.is_some_and(|c| c.1.is_some())
            || head.unreadable_time().is_some();
        if class.severity >= options.min_severity || maybe_candidate {
            match Trace::from_str(text) {
                Ok(trace) => self.whole(&trace, text, location),
                Err(err) => self.problem(location, format!("invalid trace: {err}")),
            }
        } else {
            self.count(head, text, location, &class, None, None);
        }
    }
}

impl<const WHOLE: bool> Worker<'_, WHOLE> {
    /// A warning about a record that is still read: a field nulled,
    /// repaired or read with a note. Counted in `record_warnings`.
    fn record_warning(&mut self, location: Location, message: String) {
        self.result.record_warnings += 1;
        self.warning(location, message);
    }

    /// A problem with a record that is still read: reported, but not
    /// counted as a record error.
    fn warning(&mut self, location: Location, message: String) {
        if self.result.problems.len() >= self.options.max_errors {
            *self
                .result
                .unlisted
                .entry(problem_kind(&message).to_owned())
                .or_default() += 1;
            self.result
                .unlisted_file
                .get_or_insert_with(|| self.file.to_path_buf());
            return;
        }
        self.result.problems.push(ScanError {
            file: self.file.to_path_buf(),
            location: Some(location),
            message: clip_message(message),
        });
    }

    /// A record parsed whole: held for the rules, or rendered.
    fn whole(&mut self, trace: &Trace<'_>, text: &str, location: Location) {
        let class = classify(trace);
        let options = self.options;
        // The source is written only when the record is rendered: a held
        // candidate keeps its file index and location instead.
        if let Some(field) = trace.unreadable_time() {
            let kept = match trace.time_ms() {
                Some(_) => "timed by the other time field",
                None => "without a time",
            };
            self.record_warning(
                location,
                format!("`{field}` is not a time (epoch digits from 2000 to 2100, console text or RFC 3339); the record is kept, {kept}"),
            );
        }
        if let Some(why) = trace.code.and_then(|c| c.1) {
            let read = match trace.code.and_then(|c| c.0) {
                Some(code) => format!("read as {code}"),
                None => "read as no status".to_owned(),
            };
            self.record_warning(location, format!("`code` is {why}: {read}"));
        }
        let (user, user_problem) = trace.user_checked();
        if let Some(why) = user_problem {
            self.record_warning(location, format!("`user` {why}"));
        }
        let mut verdict = Verdict::new(trace, user, &class, String::new());
        verdict.malformed = self.malformed.take();
        let malformed = verdict.malformed.as_deref().map(Box::from);
        if verdict.time_ms.is_none() && options.filters.bounds_time() {
            self.result.untimed += 1;
            if trace.unreadable_time().is_none() {
                self.warning(
                    location,
                    "no `time` or `record_time`: kept by --since/--until, which cannot place it"
                        .into(),
                );
            }
        }
        if options.rules.is_candidate(&verdict) {
            // The rules that need no other record judge it here, in
            // parallel; only the windowed rules wait for every file.
            let windowed = options.rules.judge_alone(&mut verdict);
            let held = Box::new(Packed::new(verdict, windowed, self.file_index, location));
            return self.count(trace, text, location, &class, None, Some((held, malformed)));
        }
        verdict.severity = class.severity;
        verdict.source = location.source(self.file);
        let rendered = (class.severity >= options.min_severity
            && options.filters.matches(&verdict))
        .then(|| self.result.output.push(verdict, options));
        self.count(trace, text, location, &class, rendered, None);
    }

    /// Records the outcome the ledger needs: dedup key, kind, severity,
    /// and where the record's text is, should its id turn out reused.
    /// A held candidate comes with the key fields it gave twice, if any.
    fn count<'a>(
        &mut self,
        fields: &impl TraceFields<'a>,
        text: &str,
        location: Location,
        class: &Classification,
        rendered: Option<Span>,
        held: Option<(Box<Packed>, Option<Box<str>>)>,
    ) {
        let kind = match class.kind {
            Kind::Catalogued(_) if !class.is_billing() => KindTag::AuditTrail,
            Kind::Catalogued(_) => KindTag::Catalogued,
            Kind::UncataloguedBilling => KindTag::Uncatalogued,
            Kind::OtherService => KindTag::Other,
        };
        let or_dash = |t: &str| {
            if t.is_empty() {
                "-".to_owned()
            } else {
                t.to_owned()
            }
        };
        let uncatalogued_name = (kind == KindTag::Uncatalogued)
            .then(|| format!("{}/{}", or_dash(fields.service()), or_dash(fields.name())));
        let key = fields
            .trace_id()
            .filter(|id| !id.is_empty())
            .map(|id| (dedup_key(id), record_print(fields)));
        let text = key.map(|_| self.text_at(text));
        let (held, malformed) = held.map_or((None, None), |(packed, keys)| (Some(packed), keys));
        self.result.outcomes.push(Outcome {
            key,
            text,
            location,
            malformed,
            kind,
            // A held record's severity is decided by the rules once every file is read.
            severity: if held.is_some() {
                Severity::None
            } else {
                class.severity
            },
            failed: class.failed,
            rendered,
            uncatalogued_name,
            held,
        });
    }

    /// Where `text` is: a range of the unit's bytes when it lies in them
    /// (no copy), else a range past them, in `extra` (copied).
    fn text_at(&mut self, text: &str) -> (usize, usize) {
        // Addresses compared, never dereferenced: safe.
        let base = self.unit_bytes.as_ptr() as usize;
        let start = text.as_ptr() as usize;
        if start >= base && start + text.len() <= base + self.unit_bytes.len() {
            return (start - base, start - base + text.len());
        }
        let at = self.unit_bytes.len() + self.extra.len();
        self.extra.extend_from_slice(text.as_bytes());
        (at, at + text.len())
    }
}

fn process_unit(unit: Unit, file: &Path, options: &ScanOptions) -> UnitResult {
    if options.min_severity == Severity::None {
        process_unit_as::<true>(unit, file, options)
    } else {
        process_unit_as::<false>(unit, file, options)
    }
}

fn process_unit_as<const WHOLE: bool>(
    unit: Unit,
    file: &Path,
    options: &ScanOptions,
) -> UnitResult {
    // File lists are far shorter than 4 billion.
    let file_index = u32::try_from(unit.file).unwrap_or(u32::MAX);
    let mut worker = Worker::<WHOLE> {
        options,
        file,
        file_index,
        unit_bytes: &unit.bytes,
        extra: Vec::new(),
        result: UnitResult {
            file_index,
            bytes: unit.bytes.len() as u64,
            ..UnitResult::default()
        },
        malformed: None,
    };
    records::visit_unit(&unit, &mut worker);
    let Worker {
        mut result, extra, ..
    } = worker;
    // The unit's bytes become the texts, with the copied ones after them.
    result.texts = unit.bytes;
    result.texts.extend_from_slice(&extra);
    result
}

/// Reads one whole file and processes all of it (the small-file path).
fn process_file(input: &InputFile, index: usize, options: &ScanOptions) -> UnitResult {
    let mut result = UnitResult {
        disk_bytes: input.size,
        ..UnitResult::default()
    };
    match input::open(input) {
        Ok(Opened::Content(mut reader)) => {
            process_content(&mut *reader, &input.path, index, options, result)
        }
        Ok(Opened::Tar(_)) => {
            // Its members are streamed in order by the ledger's thread.
            result.is_archive = true;
            result
        }
        Err(err) => refused(&input.path, format!("cannot open: {err}"), result),
    }
}

/// Processes a small member of a tar archive, read whole.
fn process_member(member: &SmallMember, options: &ScanOptions) -> UnitResult {
    let path = member.path.as_path();
    let mut result = match input::open_member(&member.bytes[..]) {
        Ok(mut reader) => process_content(
            &mut reader,
            path,
            member.index,
            options,
            UnitResult::default(),
        ),
        Err(message) => return refused(path, message, UnitResult::default()),
    };
    if let Some(err) = &member.cut {
        result.problems.push(ScanError {
            file: path.to_path_buf(),
            location: None,
            message: format!(
                "cut short inside the archive ({err}); the records before the cut are read"
            ),
        });
    }
    result
}

/// A file that is not read, and why.
fn refused(path: &Path, message: String, mut result: UnitResult) -> UnitResult {
    result.skipped = true;
    result.problems.push(ScanError {
        file: path.to_path_buf(),
        location: None,
        message,
    });
    result
}

/// Reads one whole file's content and processes all of it.
fn process_content(
    reader: &mut dyn std::io::Read,
    path: &Path,
    index: usize,
    options: &ScanOptions,
    mut result: UnitResult,
) -> UnitResult {
    result.file_index = u32::try_from(index).unwrap_or(u32::MAX);
    let mut units = UnitReader::new(index, reader).with_limits(options.limits);
    // Each unit is processed as it is cut: a small file that decompresses
    // to gigabytes never has more than one block in memory.
    while let Some(unit) = units.next_unit(&mut Vec::new) {
        let part = process_unit(unit, path, options);
        let moved = result.output.append(part.output);
        let text_offset = result.texts.len();
        result
            .outcomes
            .extend(part.outcomes.into_iter().map(|mut o| {
                o.rendered = o.rendered.map(&moved);
                o.text = o.text.map(|(s, e)| (s + text_offset, e + text_offset));
                o
            }));
        result.texts.extend_from_slice(&part.texts);
        result.problems.extend(part.problems);
        result.untimed += part.untimed;
        result.record_warnings += part.record_warnings;
        for (kind, count) in part.unlisted {
            *result.unlisted.entry(kind).or_default() += count;
        }
        result.unlisted_file = result.unlisted_file.or(part.unlisted_file);
        result.record_errors += part.record_errors;
        result.digests += part.digests;
        result.bytes += part.bytes;
    }
    let (container, mut problems) = (units.container(), units.take_problems());
    if units.refused() {
        let why = problems.pop().map_or_else(String::new, |p| p.message);
        return refused(path, why, result);
    }
    // A problem at a record (a truncated last element) loses that record.
    result.record_errors += problems.iter().filter(|p| p.location.is_some()).count() as u64;
    let read_problems = problems.into_iter().map(|p| ScanError {
        file: path.to_path_buf(),
        location: p.location,
        message: p.message,
    });
    result.problems.extend(read_problems);
    if container.is_none() && result.problems.is_empty() {
        result.skipped = true;
        result.problems.push(ScanError {
            file: path.to_path_buf(),
            location: None,
            message: "empty file: no traces".into(),
        });
    }
    result
}

/// The single thread that sees every result in input order.
struct Ledger<'s> {
    stats: Stats,
    /// Candidates for the rules, held until every file is read.
    held: Held,
    seen: SeenIds,
    /// One unit's keys, and what each was: reused buffers.
    keys: Vec<(u128, u32)>,
    found: Vec<Seen>,
    /// Unique records by severity, by [`Severity`]'s order: counted here,
    /// and named in [`Stats::by_severity`] when the scan ends.
    severities: [u64; Severity::ALL.len()],
    /// How many inputs were found: archive members are numbered after them.
    found_files: usize,
    /// The paths of archive members read so far, numbered from `found_files`.
    members: Vec<PathBuf>,
    /// Problems kept in [`Stats::error_list`] at most.
    max_errors: usize,
    /// The sink asked the scan to stop: nothing more is read or written.
    stopped: bool,
    sink: &'s mut dyn Sink,
    options: &'s ScanOptions,
}

impl Ledger<'_> {
    /// Judges the held candidates in time order (then input order) by the
    /// windowed rules, and emits the ones that reach the floor: a timeline.
    ///
    /// A merge thread reads the candidates back in order (from memory and
    /// any spilled runs) and hands them over in batches; this thread runs
    /// the windowed rules on each batch, in order; the workers write each
    /// batch as it is judged, and a reorder buffer hands the written
    /// batches back in order. None of them waits for another but to keep
    /// the batches in flight bounded.
    fn judge(&mut self, pool: &rayon::ThreadPool, options: &ScanOptions, files: &[InputFile]) {
        let members = std::mem::take(&mut self.members);
        /// Candidates per batch: small, so the workers start soon and the
        /// last batch ends soon after this thread's last.
        const BATCH: usize = 1024;
        let max_in_flight = pool.current_num_threads().max(1) * 4;
        if let Some(err) = self.held.finish() {
            self.spill_failed(err);
        }
        let held = std::mem::replace(&mut self.held, Held::new(0));
        let total = held.count();
        if self.stopped {
            // The output is gone: what is held is read, but never written.
            self.stats.unwritten += total;
            return;
        }
        let mut judged = 0u64;
        let mut state = RuleState::default();
        let judging = Judging {
            options,
            files,
            members: &members,
        };
        let merge_error = std::thread::scope(|threads| {
            let (batch_sender, batches) = mpsc::sync_channel::<Vec<Packed>>(2);
            let merger = threads.spawn(move || {
                let mut sorted = held.into_sorted();
                loop {
                    let batch: Vec<Packed> = sorted.by_ref().take(BATCH).collect();
                    // The receiver hangs up only when the judging ends early.
                    if batch.is_empty() || batch_sender.send(batch).is_err() {
                        return sorted.take_error();
                    }
                }
            });
            let (sender, receiver) = mpsc::channel::<(u64, Written)>();
            pool.in_place_scope(|workers| {
                let mut next_seq = 0u64;
                let mut written_batches = InOrder::new();
                let mut reading = true;
                while reading || written_batches.next < next_seq {
                    // Once the sink has stopped, no more batches are read;
                    // those in flight are counted as they come back.
                    reading &= !self.stopped;
                    if reading && next_seq - written_batches.next < max_in_flight as u64 {
                        let Ok(mut batch) = batches.recv() else {
                            reading = false;
                            continue;
                        };
                        judged += batch.len() as u64;
                        judging.in_window(&mut batch, &mut state);
                        let (sender, seq) = (sender.clone(), next_seq);
                        workers.spawn(move |_| {
                            let _ = sender.send((seq, judging.write(batch)));
                        });
                        next_seq += 1;
                        // Take what is written so far without waiting.
                        for (seq, written) in receiver.try_iter() {
                            written_batches.put(seq, written);
                        }
                    } else {
                        // Every task holds a sender clone until it sends.
                        let Ok((seq, written)) = receiver.recv() else {
                            break;
                        };
                        written_batches.put(seq, written);
                    }
                    while let Some(written) = written_batches.pop() {
                        self.emit(written);
                    }
                }
            });
            // A merge thread waiting to hand over a batch ends when the
            // batches are no longer received.
            drop(batches);
            merger
                .join()
                .unwrap_or_else(|_| Some(std::io::Error::other("the merge thread failed")))
        });
        if self.stopped {
            self.stats.unwritten += total - judged;
        } else if let Some(err) = merge_error {
            // Counted as filtered out so the counts still add up; the
            // error says how many were lost.
            let lost = total - judged;
            self.stats.filtered_out += lost;
            self.problem(ScanError {
                file: std::env::temp_dir(),
                location: None,
                message: format!(
                    "cannot read back rule candidates spilled to a temporary file \
                     ({err}): {lost} were not judged"
                ),
            });
        }
    }

    /// Counts and hands on one written batch, in order.
    fn emit(&mut self, written: Written) {
        for (severity, span) in written.records {
            self.output(severity, span.and_then(|span| written.out.get(span)));
        }
    }

    /// The stats, with the severities named.
    fn finish(mut self) -> Stats {
        for (severity, &count) in Severity::ALL.iter().zip(&self.severities) {
            if count > 0 {
                self.stats.by_severity.insert(severity.as_str(), count);
            }
        }
        self.stats
    }

    /// Counts one unique record's outcome: written out when rendered,
    /// filtered out when not.
    fn output(&mut self, severity: Severity, rendered: Option<Record<'_>>) {
        if self.stopped && rendered.is_some() {
            self.stats.unwritten += 1;
            return;
        }
        self.severities[severity as usize] += 1;
        match rendered {
            Some(record) => {
                self.stats.emitted += 1;
                if self.sink.record(record, severity).is_break() {
                    self.stopped = true;
                    self.stats.stopped = true;
                }
            }
            None => self.stats.filtered_out += 1,
        }
    }

    /// Takes the result of one whole file, and counts the file.
    fn take_file(&mut self, result: UnitResult) {
        let had_records = !result.outcomes.is_empty() || result.record_errors > 0;
        account_file(&mut self.stats, result.skipped, had_records, result.digests);
        self.sink.progress(result.disk_bytes);
        self.take(result);
    }

    /// Counts one file read to its end: skipped (refused, empty), a
    /// digest, or a trace file, with the problems reading it met.
    fn end_file(&mut self, end: FileEnd, any_records: bool, digests: u64) {
        self.sink.progress(end.disk_bytes);
        match end.not_read {
            Some(NotRead::Digest) => {
                self.stats.digests_skipped += 1;
                return;
            }
            Some(NotRead::Refused(message)) => {
                self.stats.files_skipped += 1;
                return self.problem(ScanError {
                    file: end.path,
                    location: None,
                    message,
                });
            }
            None => {}
        }
        for problem in end.problems {
            self.stats.record_errors += u64::from(problem.location.is_some());
            self.problem(ScanError {
                file: end.path.clone(),
                location: problem.location,
                message: problem.message,
            });
        }
        let empty = end.container.is_none() && !any_records;
        if empty {
            self.problem(ScanError {
                file: end.path,
                location: None,
                message: "empty input: no traces".into(),
            });
        }
        account_file(&mut self.stats, empty, any_records, digests);
    }

    /// Candidates could not be spilled: they stay in memory, none is lost.
    fn spill_failed(&mut self, err: std::io::Error) {
        self.problem(ScanError {
            file: std::env::temp_dir(),
            location: None,
            message: format!(
                "cannot spill rule candidates to a temporary file ({err}): \
                 holding them all in memory"
            ),
        });
    }

    /// One problem: handed to the sink, and listed in the stats up to
    /// [`ScanOptions::max_errors`]; past that only counted, by file and kind,
    /// so a file of a million damaged lines keeps memory flat.
    fn problem(&mut self, mut problem: ScanError) {
        problem.message = clip_message(problem.message);
        self.stats.errors += 1;
        self.sink.problem(&problem);
        if self.stats.error_list.len() < self.max_errors {
            self.stats.error_list.push(problem);
        } else {
            let kind = problem_kind(&problem.message);
            self.unlisted(&problem.file, kind, 1);
        }
    }

    /// Counts problems that are not listed one by one.
    fn unlisted(&mut self, file: &Path, kind: &str, count: u64) {
        self.stats.errors_unlisted += count;
        *self
            .stats
            .unlisted_errors
            .entry(file.display().to_string())
            .or_default()
            .entry(kind.to_owned())
            .or_default() += count;
    }

    /// Takes the result of one unit: dedups, counts and writes its
    /// records. Gives back its texts buffer, emptied, for reuse.
    fn take(&mut self, result: UnitResult) -> Vec<u8> {
        self.stats.bytes += result.bytes;
        self.stats.untimed_kept += result.untimed;
        self.stats.record_warnings += result.record_warnings;
        self.stats.record_errors += result.record_errors;
        self.stats.digests_skipped += result.digests;
        self.keys.clear();
        self.keys
            .extend(result.outcomes.iter().filter_map(|o| o.key));
        let mut found = std::mem::take(&mut self.found);
        found.clear();
        self.seen.insert_each(&self.keys, &mut found);
        let mut found_each = found.iter();
        for mut outcome in result.outcomes {
            let stats = &mut self.stats;
            stats.records += 1;
            let seen = match outcome.key {
                Some(_) => found_each.next().copied(),
                None => None,
            };
            if seen == Some(Seen::Repeat) {
                stats.duplicates += 1;
                continue;
            }
            stats.unique += 1;
            match outcome.kind {
                KindTag::Catalogued => {
                    stats.catalogued += 1;
                    stats.billing += 1;
                }
                KindTag::AuditTrail => {
                    stats.catalogued += 1;
                    stats.audit_trail += 1;
                }
                KindTag::Uncatalogued => {
                    stats.uncatalogued += 1;
                    stats.billing += 1;
                }
                KindTag::Other => stats.other_service += 1,
            }
            if let Some(name) = outcome.uncatalogued_name {
                *stats.uncatalogued_names.entry(name).or_default() += 1;
            }
            stats.failed += u64::from(outcome.failed);
            if seen == Some(Seen::Conflict) {
                stats.conflicts += 1;
                // Judged again, as a candidate, with `audit.conflict`.
                let malformed = outcome.malformed.take();
                let text = outcome
                    .text
                    .and_then(|(start, end)| result.texts.get(start..end));
                if let Some(packed) =
                    self.reread(text, outcome.location, malformed, result.file_index)
                {
                    outcome.held = Some(Box::new(packed));
                }
            }
            if let Some(held) = outcome.held {
                if self.stopped {
                    self.stats.unwritten += 1;
                } else if let Some(err) = self.held.push(*held) {
                    self.spill_failed(err);
                }
                continue;
            }
            let rendered = outcome.rendered.and_then(|span| result.output.get(span));
            self.output(outcome.severity, rendered);
        }
        self.found = found;
        for problem in result.problems {
            self.problem(problem);
        }
        if let Some(file) = &result.unlisted_file {
            for (kind, count) in &result.unlisted {
                self.stats.errors += count;
                self.unlisted(file, kind, *count);
            }
        }
        let mut texts = result.texts;
        texts.clear();
        texts
    }

    /// Reads again a record whose trace id an earlier, different record
    /// had, and judges it as a rules candidate with `audit.conflict`.
    /// `None` only if its text no longer reads, which cannot happen: a
    /// worker read the same text.
    fn reread(
        &self,
        text: Option<&[u8]>,
        location: Location,
        malformed: Option<Box<str>>,
        file: u32,
    ) -> Option<Packed> {
        let text = std::str::from_utf8(text?).ok()?;
        let trace = Trace::from_str(text).ok()?;
        let class = classify(&trace);
        let (user, _) = trace.user_checked();
        let mut verdict = Verdict::new(&trace, user, &class, String::new());
        verdict.malformed = malformed.map(String::from);
        verdict.conflict = true;
        let windowed = self.options.rules.judge_alone(&mut verdict);
        Some(Packed::new(verdict, windowed, file, location))
    }
}

/// Results that arrive out of order, numbered, handed back in their order:
/// the reorder buffer between the pool and the ordering thread.
struct InOrder<T> {
    /// The number of the next result to hand back.
    next: u64,
    waiting: BTreeMap<u64, T>,
}

impl<T> InOrder<T> {
    fn new() -> Self {
        InOrder {
            next: 0,
            waiting: BTreeMap::new(),
        }
    }

    /// Keeps result number `seq` until its turn.
    fn put(&mut self, seq: u64, item: T) {
        self.waiting.insert(seq, item);
    }

    /// The next result in order, once it has arrived.
    fn pop(&mut self) -> Option<T> {
        let item = self.waiting.remove(&self.next)?;
        self.next += 1;
        Some(item)
    }
}

/// A written batch: the output, and each record's severity and span in it
/// (`None` when filtered out).
struct Written {
    out: Emitted,
    records: Vec<(Severity, Option<Span>)>,
}

/// The steps candidates go through at the end of a scan.
#[derive(Clone, Copy)]
struct Judging<'s> {
    options: &'s ScanOptions,
    files: &'s [InputFile],
    /// Archive members, numbered after `files`.
    members: &'s [PathBuf],
}

impl<'s> Judging<'s> {
    /// The path of the file a candidate came from.
    fn path(&self, packed: &Packed) -> &'s Path {
        let index = packed.file() as usize;
        match self.files.get(index) {
            Some(file) => &file.path,
            None => self
                .members
                .get(index - self.files.len())
                .map_or(Path::new("-"), PathBuf::as_path),
        }
    }

    /// The windowed rules, in order, for the candidates that must see them.
    fn in_window(&self, batch: &mut [Packed], state: &mut RuleState) {
        let rules = &self.options.rules;
        for packed in batch.iter_mut().filter(|p| p.windowed()) {
            packed.rejudge(|verdict| rules.judge_in_window(verdict, state));
        }
    }

    /// Renders the judged candidates that pass the floor and the filters
    /// (and frees the batch on the worker).
    fn write(&self, mut batch: Vec<Packed>) -> Written {
        let options = self.options;
        let mut out = Emitted::default();
        let records = batch
            .iter_mut()
            .map(|packed| {
                let (path, location) = (self.path(packed), packed.location());
                let mut verdict = packed.open();
                let severity = verdict.severity;
                let wanted = severity >= options.min_severity && options.filters.matches(&verdict);
                let span = wanted.then(|| {
                    verdict.source = location.source(path);
                    out.push(verdict, options)
                });
                (severity, span)
            })
            .collect();
        Written { out, records }
    }
}

/// Scans `paths` (files, directories, or `-` for stdin) and returns what it
/// counted. Problems go to the sink as they are met and into
/// [`Stats::error_list`]; the scan always goes on.
///
/// ```
/// use cts_audit::scan::{scan, CollectSink, ScanOptions};
/// // The samples shipped with the crate: every export form.
/// let samples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
/// let mut sink = CollectSink::default();
/// let stats = scan(&[samples], &ScanOptions::default(), &mut sink);
/// assert!(stats.files >= 5 && stats.digests_skipped >= 1);
/// assert_eq!(stats.emitted as usize, sink.output.iter().filter(|b| **b == b'\n').count());
/// ```
pub fn scan(paths: &[PathBuf], options: &ScanOptions, sink: &mut dyn Sink) -> Stats {
    let (files, walk_problems) = input::find(paths);
    let mut ledger = Ledger {
        stats: Stats::default(),
        held: Held::new(options.held_memory),
        seen: SeenIds::default(),
        keys: Vec::new(),
        found: Vec::new(),
        severities: [0; Severity::ALL.len()],
        found_files: files.len(),
        members: Vec::new(),
        max_errors: options.max_errors,
        stopped: false,
        sink,
        options,
    };
    for (path, message) in walk_problems {
        ledger.stats.files_skipped += 1;
        ledger.problem(ScanError {
            file: path,
            location: None,
            message,
        });
    }
    let pool = match rayon::ThreadPoolBuilder::new()
        .num_threads(options.threads.unwrap_or(0).min(max_threads()))
        .build()
    {
        Ok(pool) => pool,
        Err(err) => {
            ledger.problem(ScanError {
                file: PathBuf::from("-"),
                location: None,
                message: format!("cannot start worker threads: {err}"),
            });
            return ledger.finish();
        }
    };
    scan_files(&pool, &files, options, &mut ledger);
    ledger.judge(&pool, options, &files);
    ledger.finish()
}

fn scan_files(
    pool: &rayon::ThreadPool,
    files: &[InputFile],
    options: &ScanOptions,
    ledger: &mut Ledger<'_>,
) {
    let mut next = 0;
    while next < files.len() && !ledger.stopped {
        let file = &files[next];
        if file.is_digest {
            ledger.stats.digests_skipped += 1;
            ledger.sink.progress(file.size);
            next += 1;
        } else if file.is_stream || file.size > SMALL_FILE_BYTES {
            scan_large_file(pool, file, next, options, ledger);
            next += 1;
        } else {
            // A run of small files, each read whole by one worker.
            let end = (next..files.len())
                .take(SMALL_BATCH_FILES)
                .find(|&i| {
                    files[i].is_digest || files[i].is_stream || files[i].size > SMALL_FILE_BYTES
                })
                .unwrap_or_else(|| (next + SMALL_BATCH_FILES).min(files.len()));
            let results: Vec<UnitResult> = pool.install(|| {
                (next..end)
                    .into_par_iter()
                    .map(|i| process_file(&files[i], i, options))
                    .collect()
            });
            for (i, result) in (next..end).zip(results) {
                if result.is_archive {
                    scan_large_file(pool, &files[i], i, options, ledger);
                    continue;
                }
                ledger.take_file(result);
            }
            next = end;
        }
    }
}

/// Counts a file once it is read: skipped (empty or unreadable), an
/// integrity digest recognised by content, or a trace file.
fn account_file(stats: &mut Stats, skipped: bool, had_records: bool, digests: u64) {
    if skipped {
        stats.files_skipped += 1;
    } else if !had_records && digests > 0 {
        // A digest, recognised by content: counted in digests_skipped.
    } else {
        stats.files += 1;
    }
}

/// The longest problem message kept whole. Messages may quote values from
/// the input (serde_json's do), and one 20 MB string must not make a 20 MB
/// line on stderr.
const MAX_MESSAGE_BYTES: usize = 400;

/// `message`, cut in its middle to [`MAX_MESSAGE_BYTES`] when it is longer:
/// its start (what is wrong) and its end (where) are kept.
fn clip_message(message: String) -> String {
    if message.len() <= MAX_MESSAGE_BYTES {
        return message;
    }
    let floor = |mut at: usize| {
        while !message.is_char_boundary(at) {
            at -= 1;
        }
        at
    };
    let head = floor(MAX_MESSAGE_BYTES * 2 / 3);
    let tail = floor(message.len() - MAX_MESSAGE_BYTES / 4);
    format!(
        "{} … [{} bytes cut] … {}",
        &message[..head],
        tail - head,
        &message[tail..]
    )
}

/// The kind of a problem, for counting those past the cap: its message up
/// to the first colon (`invalid trace`), at most 60 bytes.
fn problem_kind(message: &str) -> &str {
    let kind = message.split(':').next().unwrap_or(message).trim();
    let mut end = kind.len().min(60);
    while !kind.is_char_boundary(end) {
        end -= 1;
    }
    &kind[..end]
}

/// What a reader thread hands on, in input order.
enum Piece {
    /// Whole records of the file at the path.
    Unit(Unit, Arc<Path>),
    /// One file read to its end.
    End(FileEnd),
    /// A small archive member, read whole: a worker decompresses and
    /// processes it, as it does a small file.
    Member(SmallMember),
}

/// A small archive member's stored bytes, and where they come from.
struct SmallMember {
    bytes: Vec<u8>,
    path: PathBuf,
    /// Its number among the scan's files.
    index: usize,
    /// Why reading it stopped early, when it did: its bytes until then are
    /// still read.
    cut: Option<std::io::Error>,
}

/// What reading one file met, counted once its records are in.
struct FileEnd {
    path: PathBuf,
    /// Its size on disk, for progress (0 for an archive member).
    disk_bytes: u64,
    /// The layout found; `None` for empty content.
    container: Option<Container>,
    problems: Vec<ReadProblem>,
    /// Why it was not read, when it was not.
    not_read: Option<NotRead>,
}

enum NotRead {
    /// An integrity digest, by its name.
    Digest,
    /// Content that is not read, and why.
    Refused(String),
}

/// One step of a stream, ready for the ledger in its turn.
enum Step {
    Unit(UnitResult),
    End(FileEnd),
    /// A whole file's result (an archive member's).
    File(UnitResult),
}

/// Streams one large file, stdin, or a tar archive of any size: a reader
/// thread cuts blocks, the pool parses each as it comes, and a reorder
/// buffer hands the results to the ledger in input order.
fn scan_large_file(
    pool: &rayon::ThreadPool,
    input: &InputFile,
    index: usize,
    options: &ScanOptions,
    ledger: &mut Ledger<'_>,
) {
    let limits = options.limits;
    match input::open(input) {
        Err(err) => {
            ledger.stats.files_skipped += 1;
            ledger.problem(ScanError {
                file: input.path.clone(),
                location: None,
                message: format!("cannot open: {err}"),
            });
        }
        Ok(Opened::Content(mut reader)) => {
            let path: Arc<Path> = Arc::from(input.path.as_path());
            scan_stream(pool, &input.path, options, ledger, move |send, spare| {
                let _ = read_pieces(index, path, &mut *reader, input.size, limits, send, spare);
            });
        }
        Ok(Opened::Tar(content)) => {
            let first = ledger.found_files + ledger.members.len();
            let (members, damage) =
                scan_stream(pool, &input.path, options, ledger, move |send, spare| {
                    read_archive_pieces(&input.path, first, content, limits, send, spare)
                })
                .unwrap_or_default();
            ledger.sink.progress(input.size);
            let empty = members.is_empty();
            ledger.members.extend(members);
            // An archive with no member read is skipped, as an empty file
            // is; its members are counted as files of their own.
            if empty {
                ledger.stats.files_skipped += 1;
            }
            let message = match damage {
                Some(damage) => damage,
                None if empty => "empty tar archive: no files".into(),
                None => return,
            };
            ledger.problem(ScanError {
                file: input.path.clone(),
                location: None,
                message,
            });
        }
    }
}

/// Cuts one file's content into pieces: its units, then its end.
fn read_pieces(
    index: usize,
    path: Arc<Path>,
    reader: &mut dyn std::io::Read,
    disk_bytes: u64,
    limits: input::Limits,
    send: &mut dyn FnMut(Piece) -> ControlFlow<()>,
    spare: &mut dyn FnMut() -> Vec<u8>,
) -> ControlFlow<()> {
    let mut units = UnitReader::new(index, reader).with_limits(limits);
    while let Some(unit) = units.next_unit(spare) {
        send(Piece::Unit(unit, Arc::clone(&path)))?;
    }
    let mut problems = units.take_problems();
    let not_read = if units.refused() {
        let why = problems.pop().map_or_else(String::new, |p| p.message);
        Some(NotRead::Refused(why))
    } else {
        None
    };
    send(Piece::End(FileEnd {
        path: path.to_path_buf(),
        disk_bytes,
        container: units.container(),
        problems,
        not_read,
    }))
}

/// Cuts each member of a tar archive into pieces, numbering the members
/// from `first`. Returns their paths, and what ended the archive early.
fn read_archive_pieces(
    archive: &Path,
    first: usize,
    content: Box<dyn std::io::Read + Send>,
    limits: input::Limits,
    send: &mut dyn FnMut(Piece) -> ControlFlow<()>,
    spare: &mut dyn FnMut() -> Vec<u8>,
) -> (Vec<PathBuf>, Option<String>) {
    let mut members = Vec::new();
    let damage = input::each_tar_member(archive, content, &mut |member| {
        let index = first + members.len();
        members.push(member.path.clone());
        let not_read = |why| {
            Piece::End(FileEnd {
                path: member.path.clone(),
                disk_bytes: 0,
                container: None,
                problems: Vec::new(),
                not_read: Some(why),
            })
        };
        if input::is_digest_name(&member.path) {
            return send(not_read(NotRead::Digest));
        }
        let raw = match member.raw {
            Ok(raw) => raw,
            Err(why) => return send(not_read(NotRead::Refused(why))),
        };
        if member.size <= SMALL_FILE_BYTES {
            // Small members (an OBS download's transfer files) are read
            // whole and decompressed by the workers, side by side.
            use std::io::Read;
            let mut bytes = Vec::with_capacity(member.size as usize);
            let cut = raw.take(SMALL_FILE_BYTES).read_to_end(&mut bytes).err();
            return send(Piece::Member(SmallMember {
                bytes,
                path: member.path,
                index,
                cut,
            }));
        }
        match input::open_member(raw) {
            Ok(mut content) => read_pieces(
                index,
                Arc::from(member.path.as_path()),
                &mut content,
                0,
                limits,
                send,
                spare,
            ),
            Err(why) => send(not_read(NotRead::Refused(why))),
        }
    });
    (members, damage)
}

/// Runs `read` on a reader thread and the units it cuts on the pool,
/// handing results and file ends to the ledger in input order. Returns what
/// `read` returns; `None`, reported against `input`, when the reader thread
/// failed.
fn scan_stream<T: Send>(
    pool: &rayon::ThreadPool,
    input: &Path,
    options: &ScanOptions,
    ledger: &mut Ledger<'_>,
    read: impl FnOnce(&mut dyn FnMut(Piece) -> ControlFlow<()>, &mut dyn FnMut() -> Vec<u8>) -> T + Send,
) -> Option<T> {
    // Units in flight at once: enough to keep every worker busy while the
    // ledger catches up, few enough to bound memory (each is ~BLOCK_BYTES).
    let max_in_flight = pool.current_num_threads().max(1) * 2;
    let (sender, receiver) = mpsc::sync_channel::<Piece>(max_in_flight);
    // Records and digests of the file being read, since its last end.
    let mut any_records = false;
    let mut digests = 0;
    std::thread::scope(|scope| {
        // Processed units' buffers go back to the reader: no page faults
        // and no regrowth for each new block.
        let (recycle, recycled) = mpsc::channel::<Vec<u8>>();
        let reader_thread = scope.spawn(move || {
            let mut spare = || {
                recycled
                    .try_recv()
                    .unwrap_or_else(|_| Vec::with_capacity(input::BLOCK_BYTES + (64 << 10)))
            };
            read(
                &mut |piece| match sender.send(piece) {
                    Ok(()) => ControlFlow::Continue(()),
                    // The receiver hangs up when the sink stopped the scan.
                    Err(_) => ControlFlow::Break(()),
                },
                &mut spare,
            )
        });
        // Workers take units as they come; a small reorder buffer hands the
        // results to the ledger in input order while the next units parse.
        let (result_sender, results) = mpsc::channel::<(u64, Step)>();
        pool.in_place_scope(|workers| {
            let mut next_seq = 0u64;
            let mut steps = InOrder::new();
            // Only units count against the limit: a file's end holds no data.
            let mut units_in_flight = 0;
            let mut reader_done = false;
            loop {
                // Once the sink has stopped, no more pieces are taken; the
                // units in flight are still counted as they come back.
                while !reader_done && !ledger.stopped && units_in_flight < max_in_flight {
                    let piece = if next_seq == steps.next {
                        receiver.recv().ok()
                    } else {
                        match receiver.try_recv() {
                            Ok(piece) => Some(piece),
                            Err(mpsc::TryRecvError::Empty) => break,
                            Err(mpsc::TryRecvError::Disconnected) => None,
                        }
                    };
                    match piece {
                        None => reader_done = true,
                        Some(Piece::End(end)) => steps.put(next_seq, Step::End(end)),
                        Some(Piece::Unit(unit, path)) => {
                            units_in_flight += 1;
                            let result_sender = result_sender.clone();
                            let seq = next_seq;
                            workers.spawn(move |_| {
                                let result = process_unit(unit, &path, options);
                                let _ = result_sender.send((seq, Step::Unit(result)));
                            });
                        }
                        Some(Piece::Member(member)) => {
                            units_in_flight += 1;
                            let result_sender = result_sender.clone();
                            let seq = next_seq;
                            workers.spawn(move |_| {
                                let result = process_member(&member, options);
                                let _ = result_sender.send((seq, Step::File(result)));
                            });
                        }
                    }
                    if reader_done {
                        break;
                    }
                    next_seq += 1;
                }
                while let Some(step) = steps.pop() {
                    match step {
                        Step::Unit(result) => {
                            units_in_flight -= 1;
                            any_records |= !result.outcomes.is_empty() || result.record_errors > 0;
                            digests += result.digests;
                            let _ = recycle.send(ledger.take(result));
                        }
                        Step::End(end) => {
                            ledger.end_file(end, any_records, digests);
                            (any_records, digests) = (false, 0);
                        }
                        Step::File(result) => {
                            units_in_flight -= 1;
                            ledger.take_file(result);
                        }
                    }
                }
                if steps.next == next_seq {
                    if reader_done || ledger.stopped {
                        break;
                    }
                    continue;
                }
                let Ok((seq, step)) = results.recv() else {
                    break;
                };
                steps.put(seq, step);
            }
        });
        // A reader waiting to hand over a piece ends when pieces are no
        // longer received.
        drop(receiver);
        match reader_thread.join() {
            Ok(value) => Some(value),
            Err(_) => {
                ledger.problem(ScanError {
                    file: input.to_path_buf(),
                    location: None,
                    message: "the reader thread failed; the rest of this input is not read".into(),
                });
                None
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_keep_their_start_and_end() {
        let long = format!(
            "invalid type: string \"{}\", expected a time at line 1 column 9",
            "é".repeat(10_000)
        );
        let cut = clip_message(long);
        assert!(cut.len() <= MAX_MESSAGE_BYTES + 40, "{}", cut.len());
        assert!(cut.starts_with("invalid type: string"));
        assert!(cut.ends_with("line 1 column 9"));
        assert!(cut.contains("bytes cut"));
        assert_eq!(clip_message("short".into()), "short");
    }

    #[test]
    fn problem_kinds_are_the_message_up_to_its_colon() {
        assert_eq!(
            problem_kind("invalid trace: EOF while parsing"),
            "invalid trace"
        );
        assert_eq!(problem_kind("x".repeat(100).as_str()).len(), 60);
    }

    #[test]
    fn uuid_keys_are_exact_and_others_hashed() {
        assert_eq!(
            uuid_bits(b"CBDD4480-2E03-11EF-82DE-CF140E2A70FB"),
            Some(0xcbdd44802e0311ef82decf140e2a70fb)
        );
        assert_eq!(uuid_bits(b"cbdd4480-2e03-11ef-82de-cf140e2a70fg"), None);
        assert_eq!(uuid_bits(b"cbdd4480x2e03-11ef-82de-cf140e2a70fb"), None);
        assert_eq!(
            dedup_key("cbdd4480-2e03-11ef-82de-cf140e2a70fb"),
            0xcbdd44802e0311ef82decf140e2a70fb
        );
        assert_ne!(
            dedup_key("cccccccccccccccccccc"),
            dedup_key("cccccccccccccccccccd")
        );
        assert_eq!(dedup_key("abc"), dedup_key("abc"));
    }
}
