//! How to scan: which records to keep ([`Filters`]) and the options of a scan ([`ScanOptions`]).

use super::*;

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
    pub(super) fn bounds_time(&self) -> bool {
        self.since_ms.is_some() || self.until_ms.is_some()
    }
}

pub(super) fn same(filter: &Option<String>, value: Option<&str>) -> bool {
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
/// assert_eq!(options.held_memory, 8 << 20);
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
    /// `scan --verify`: the digests' checks, each file judged against them
    /// as it is read ([`crate::integrity::read_digests`]).
    pub integrity: Option<Arc<crate::integrity::Coverage>>,
    /// `scan --bills`: the bill records each billing action's charges are
    /// found in ([`crate::bills::join`]).
    pub bills: Option<Arc<crate::bills::join::CostBasis>>,
    /// Files under these paths are not read as traces: the bills of
    /// `scan --bills`, given beside the traces.
    pub skip_paths: Vec<PathBuf>,
    /// Hand the sink each emitted verdict beside its rendering
    /// ([`Record::Both`]): a sink that writes records and also folds them
    /// (`scan --report`). Made on the workers, in parallel.
    pub keep_verdicts: bool,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            filters: Filters::default(),
            min_severity: Severity::Low,
            format: Format::Jsonl,
            threads: None,
            rules: RuleSet::builtin(),
            held_memory: 8 << 20,
            max_errors: 1_000,
            limits: input::Limits::default(),
            integrity: None,
            bills: None,
            skip_paths: Vec::new(),
            keep_verdicts: false,
        }
    }
}
