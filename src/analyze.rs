//! One record or one stream at a time: the API for SIEM plugins.
//!
//! An [`Analyzer`] (catalog, rules, configuration) is built once and shared
//! between threads. [`Analyzer::analyze`] judges one raw record as a plugin
//! receives it; [`Analyzer::stream`] judges every record of a reader (plain or
//! gzip, any container the scan reads), in order. Windowed rules and
//! deduplication keep their state in an [`AnalyzerState`] the caller owns, so
//! a plugin can keep it across batches.
//!
//! ```
//! use cts_audit::analyze::{Analyzer, AnalyzerState};
//! let analyzer = Analyzer::default();
//! let record = br#"{"trace_id":"4f1d7a2c-2e03-11ef-82de-cf140e2a70fb","trace_name":"bindCard",
//!   "service_type":"CBC","resource_type":"order","time":1718777931170,
//!   "user":{"name":"idp1/carol","type":"ExternalUser"},"source_ip":"203.0.113.50"}"#;
//! let verdict = analyzer.analyze(record).unwrap();
//! assert_eq!(verdict.severity.as_str(), "high");
//! assert!(verdict.rules.iter().any(|r| r == "actor.federated_finance"));
//!
//! // A stream keeps dedup and window state in a value the caller owns.
//! let mut state = AnalyzerState::default();
//! let lines = [&record[..], b"\n", &record[..], b"\n"].concat();
//! let verdicts: Vec<_> = analyzer.stream(&lines[..], &mut state).collect();
//! assert_eq!(verdicts.len(), 1);
//! assert_eq!(state.duplicates, 1);
//! ```

use crate::classify::classify;
use crate::input::{self, Unit, UnitReader};
use crate::records::{self, Location, Visitor};
use crate::rules::{RuleSet, RuleState};
use crate::scan::{dedup_key, record_print, Seen, SeenIds};
use crate::trace::Trace;
use crate::verdict::Verdict;
use std::collections::VecDeque;
use std::io::Read;
use std::path::Path;

/// What can go wrong with one record.
///
/// ```
/// use cts_audit::analyze::{AnalyzeError, Analyzer};
/// let err = Analyzer::default().analyze(b"{\"trace_id\": ").unwrap_err();
/// assert!(matches!(err, AnalyzeError::InvalidTrace(_)));
/// assert!(err.to_string().starts_with("invalid trace: EOF"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnalyzeError {
    /// Not JSON, or not an object of the trace's shape.
    #[error("invalid trace: {0}")]
    InvalidTrace(String),
    /// Valid JSON, but not one trace (a page of several, a digest).
    #[error("not a single trace: {0}")]
    NotATrace(&'static str),
    /// A record of a stream that could not be read, with where it was.
    #[error("{location}: {message}")]
    Record {
        /// `line 7`, `record 3`.
        location: String,
        /// What is wrong.
        message: String,
    },
    /// The stream itself failed (a truncated gzip, say).
    #[error("{0}")]
    Read(String),
}

/// Judges records with the catalog and a rule set. Build once; `Send + Sync`.
///
/// ```
/// use cts_audit::analyze::Analyzer;
/// // One analyzer, shared by every thread of a plugin.
/// let analyzer = std::sync::Arc::new(Analyzer::default());
/// let worker = std::sync::Arc::clone(&analyzer);
/// let severity = std::thread::spawn(move || {
///     let record = r#"{"trace_name":"deleteResource","service_type":"CBC","resource_type":"cloudresouce"}"#;
///     worker.analyze_str(record).unwrap().severity
/// })
/// .join()
/// .unwrap();
/// assert_eq!(severity.as_str(), "high");
/// ```
#[derive(Debug, Clone, Default)]
pub struct Analyzer {
    rules: RuleSet,
}

/// State a caller keeps across records and batches: the trace ids seen (a
/// 96-bit fingerprint each, under 16 bytes with its table) and the windows
/// of the windowed rules.
///
/// ```
/// use cts_audit::analyze::{Analyzer, AnalyzerState};
/// let analyzer = Analyzer::default();
/// let mut state = AnalyzerState::default(); // kept across a plugin's batches
/// let record = br#"{"trace_id":"a1","trace_name":"payOrder","service_type":"CBC","resource_type":"cloudresouce"}"#;
/// for _batch in 0..2 {
///     let _ = analyzer.analyze_in(record, &mut state);
/// }
/// assert_eq!(state.duplicates, 1);
/// ```
#[derive(Debug, Default, Clone)]
pub struct AnalyzerState {
    seen: SeenIds,
    rules: RuleState,
    /// Records dropped because their `trace_id` was seen before on the
    /// same record (a re-delivery).
    pub duplicates: u64,
    /// Records kept though their `trace_id` was seen before on a different
    /// record; `audit.conflict` flags each.
    pub conflicts: u64,
}

impl AnalyzerState {
    /// Whether a record is new, a re-delivery to drop (`None`), or a
    /// different record under a reused id (`Some(true)`).
    fn admit(&mut self, trace: &Trace<'_>) -> Option<bool> {
        let Some(id) = trace.trace_id.as_deref().filter(|id| !id.is_empty()) else {
            return Some(false);
        };
        match self.seen.insert(dedup_key(id), record_print(trace)) {
            Seen::New => Some(false),
            Seen::Repeat => {
                self.duplicates += 1;
                None
            }
            Seen::Conflict => {
                self.conflicts += 1;
                Some(true)
            }
        }
    }
}

impl Analyzer {
    /// An analyzer with these rules.
    ///
    /// ```
    /// use cts_audit::{analyze::Analyzer, rules::RuleSet};
    /// let mut rules = RuleSet::builtin();
    /// assert!(rules.exclude("actor.federated_finance"));
    /// let analyzer = Analyzer::new(rules);
    /// let record = r#"{"trace_name":"bindCard","service_type":"CBC","resource_type":"order",
    ///   "user":{"name":"idp1/carol","type":"ExternalUser"}}"#;
    /// let verdict = analyzer.analyze_str(record).unwrap();
    /// assert!(!verdict.rules.iter().any(|r| r == "actor.federated_finance"));
    /// ```
    pub fn new(rules: RuleSet) -> Analyzer {
        Analyzer { rules }
    }

    /// The rules it applies.
    ///
    /// ```
    /// let analyzer = cts_audit::analyze::Analyzer::default();
    /// assert!(analyzer.rules().infos().iter().any(|r| r.id == "failed.repeated"));
    /// ```
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// Judges one raw record: a trace object, or a FunctionGraph `{"cts":…}`
    /// event. Stateless: windowed rules need [`Analyzer::analyze_in`].
    ///
    /// ```
    /// use cts_audit::analyze::{AnalyzeError, Analyzer};
    /// let analyzer = Analyzer::default();
    /// // A FunctionGraph event is unwrapped; a page of traces is not one record.
    /// let event = br#"{"cts":{"trace_name":"payOrder","service_type":"CBC","resource_type":"cloudresouce"}}"#;
    /// assert_eq!(analyzer.analyze(event).unwrap().trace_name.as_deref(), Some("payOrder"));
    /// let page = br#"{"traces":[],"meta_data":{"count":0}}"#;
    /// assert!(matches!(analyzer.analyze(page), Err(AnalyzeError::NotATrace(_))));
    /// ```
    pub fn analyze<'a>(&self, record: &'a [u8]) -> Result<Verdict<'a>, AnalyzeError> {
        let text =
            std::str::from_utf8(record).map_err(|e| AnalyzeError::InvalidTrace(e.to_string()))?;
        self.judge_text(text, &mut RuleState::default())
    }

    /// [`Analyzer::analyze`] on text.
    ///
    /// ```
    /// let verdict = cts_audit::analyze::Analyzer::default()
    ///     .analyze_str(r#"{"trace_name":"queryBalanceAlert","service_type":"CBC","resource_type":"balance"}"#)
    ///     .unwrap();
    /// assert!(verdict.rules.is_empty());
    /// ```
    pub fn analyze_str<'a>(&self, record: &'a str) -> Result<Verdict<'a>, AnalyzeError> {
        self.judge_text(record, &mut RuleState::default())
    }

    /// Judges one raw record with state kept by the caller: re-deliveries
    /// (the same record under a `trace_id` seen before) give `Ok(None)`; a
    /// different record under a seen id is kept and flagged
    /// `audit.conflict`; windowed rules count the record. Feed records in
    /// time order.
    ///
    /// ```
    /// use cts_audit::analyze::{Analyzer, AnalyzerState};
    /// let analyzer = Analyzer::default();
    /// let mut state = AnalyzerState::default();
    /// let record = br#"{"trace_id":"a1","trace_name":"payOrder","service_type":"CBC","resource_type":"cloudresouce"}"#;
    /// assert!(analyzer.analyze_in(record, &mut state).unwrap().is_some());
    /// assert!(analyzer.analyze_in(record, &mut state).unwrap().is_none()); // a re-delivery
    /// assert_eq!(state.duplicates, 1);
    /// // Another operation under the same id hides nothing.
    /// let reuse = br#"{"trace_id":"a1","trace_name":"deleteTracker","service_type":"CTS","resource_type":"tracker"}"#;
    /// let verdict = analyzer.analyze_in(reuse, &mut state).unwrap().unwrap();
    /// assert!(verdict.rules.iter().any(|r| r == "audit.conflict"));
    /// assert_eq!(state.conflicts, 1);
    /// ```
    pub fn analyze_in<'a>(
        &self,
        record: &'a [u8],
        state: &mut AnalyzerState,
    ) -> Result<Option<Verdict<'a>>, AnalyzeError> {
        let text =
            std::str::from_utf8(record).map_err(|e| AnalyzeError::InvalidTrace(e.to_string()))?;
        let trace = Self::single_trace(text)?;
        let Some(conflict) = state.admit(&trace) else {
            return Ok(None);
        };
        Ok(Some(self.verdict(
            &trace,
            "-".to_owned(),
            conflict,
            &mut state.rules,
        )))
    }

    fn single_trace(text: &str) -> Result<Trace<'_>, AnalyzeError> {
        let trace = Trace::from_str(text).map_err(|e| AnalyzeError::InvalidTrace(e.to_string()))?;
        if let Some(inner) = trace.cts {
            return Self::single_trace(inner.get());
        }
        if trace.traces.is_some() {
            return Err(AnalyzeError::NotATrace(
                "a ListTraces page holds several traces; use Analyzer::stream",
            ));
        }
        if trace.digest_object.is_some() {
            return Err(AnalyzeError::NotATrace("an integrity digest file"));
        }
        if trace.bill_page.is_some() {
            return Err(AnalyzeError::NotATrace(
                "a page of bill records; use cts_audit::bills",
            ));
        }
        Ok(trace)
    }

    fn judge_text<'a>(
        &self,
        text: &'a str,
        state: &mut RuleState,
    ) -> Result<Verdict<'a>, AnalyzeError> {
        let trace = Self::single_trace(text)?;
        Ok(self.verdict(&trace, "-".to_owned(), false, state))
    }

    /// The verdict of one trace: rules for candidates, the catalog's
    /// severity (at most `info`) for the rest. `conflict`: an earlier,
    /// different record had its trace id.
    fn verdict<'a>(
        &self,
        trace: &Trace<'a>,
        source: String,
        conflict: bool,
        state: &mut RuleState,
    ) -> Verdict<'a> {
        let class = classify(trace);
        let mut verdict = Verdict::new(trace, trace.user(), &class, source);
        verdict.conflict = conflict;
        if self.rules.is_candidate(&verdict) {
            self.rules.judge(&mut verdict, state);
        } else {
            verdict.severity = class.severity;
        }
        verdict
    }

    /// Judges every record a reader holds (plain or gzip; array, JSON lines,
    /// pages, events), in order. Errors come in line with the verdicts, each
    /// naming its record; duplicates are dropped and counted in `state`.
    ///
    /// ```
    /// use cts_audit::analyze::{AnalyzeError, Analyzer, AnalyzerState};
    /// let analyzer = Analyzer::default();
    /// let mut state = AnalyzerState::default();
    /// let lines = b"{\"trace_name\":\"payOrder\",\"service_type\":\"CBC\"}\nnot json\n";
    /// let results: Vec<_> = analyzer.stream(&lines[..], &mut state).collect();
    /// assert!(results[0].is_ok());
    /// assert!(matches!(&results[1], Err(AnalyzeError::Record { location, .. }) if location == "line 2"));
    /// ```
    pub fn stream<'s, R: Read + 's>(
        &'s self,
        reader: R,
        state: &'s mut AnalyzerState,
    ) -> VerdictStream<'s> {
        let reader: Box<dyn Read + 's> = match input::decompress(reader) {
            Ok(reader) => Box::new(reader),
            Err(err) => {
                let mut pending = VecDeque::new();
                pending.push_back(Err(AnalyzeError::Read(err.to_string())));
                return VerdictStream {
                    analyzer: self,
                    units: None,
                    pending,
                    state,
                };
            }
        };
        VerdictStream {
            analyzer: self,
            units: Some(UnitReader::new(0, reader)),
            pending: VecDeque::new(),
            state,
        }
    }
}

/// The verdicts of a stream, in input order; see [`Analyzer::stream`].
///
/// ```
/// use cts_audit::analyze::{Analyzer, AnalyzerState};
/// let analyzer = Analyzer::default();
/// let mut state = AnalyzerState::default();
/// let page = br#"{"traces":[{"trace_name":"payOrder","service_type":"CBC"},
///   {"trace_name":"updatePort","service_type":"VPC"}],"meta_data":{"count":2}}"#;
/// let names: Vec<String> = analyzer
///     .stream(&page[..], &mut state)
///     .filter_map(Result::ok)
///     .filter_map(|v| v.trace_name.map(|n| n.into_owned()))
///     .collect();
/// assert_eq!(names, ["payOrder", "updatePort"]);
/// ```
pub struct VerdictStream<'s> {
    analyzer: &'s Analyzer,
    units: Option<UnitReader<Box<dyn Read + 's>>>,
    pending: VecDeque<Result<Verdict<'static>, AnalyzeError>>,
    state: &'s mut AnalyzerState,
}

/// Turns the records of one unit into owned verdicts.
struct StreamVisitor<'v> {
    analyzer: &'v Analyzer,
    state: &'v mut AnalyzerState,
    out: &'v mut VecDeque<Result<Verdict<'static>, AnalyzeError>>,
}

impl Visitor for StreamVisitor<'_> {
    const FULL: bool = true;

    fn trace(&mut self, trace: &Trace<'_>, _: &str, location: Location) {
        let Some(conflict) = self.state.admit(trace) else {
            return;
        };
        let verdict = self.analyzer.verdict(
            trace,
            location.source(Path::new("-")),
            conflict,
            &mut self.state.rules,
        );
        self.out.push_back(Ok(verdict.into_owned()));
    }

    fn problem(&mut self, location: Location, message: String) {
        self.out.push_back(Err(AnalyzeError::Record {
            location: location.describe(),
            message,
        }));
    }
}

impl VerdictStream<'_> {
    fn fill(&mut self, unit: &Unit) {
        let mut visitor = StreamVisitor {
            analyzer: self.analyzer,
            state: self.state,
            out: &mut self.pending,
        };
        records::visit_unit(unit, &mut visitor);
    }
}

impl Iterator for VerdictStream<'_> {
    type Item = Result<Verdict<'static>, AnalyzeError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(next) = self.pending.pop_front() {
                return Some(next);
            }
            let units = self.units.as_mut()?;
            match units.next_unit(&mut Vec::new) {
                Some(unit) => self.fill(&unit),
                None => {
                    for problem in units.take_problems() {
                        let error = match problem.location {
                            Some(location) => AnalyzeError::Record {
                                location: location.describe(),
                                message: problem.error.to_string(),
                            },
                            None => AnalyzeError::Read(problem.error.to_string()),
                        };
                        self.pending.push_back(Err(error));
                    }
                    self.units = None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn the_analyzer_is_shared_between_threads() {
        assert_send_sync::<Analyzer>();
        assert_send_sync::<AnalyzerState>();
    }

    #[test]
    fn one_record_errors_name_the_problem() {
        let analyzer = Analyzer::default();
        assert!(matches!(
            analyzer.analyze(b"{\"trace_name\":"),
            Err(AnalyzeError::InvalidTrace(_))
        ));
        assert!(matches!(
            analyzer.analyze(b"{\"traces\":[]}"),
            Err(AnalyzeError::NotATrace(_))
        ));
        assert!(matches!(
            analyzer.analyze(b"\xff"),
            Err(AnalyzeError::InvalidTrace(_))
        ));
        let event = br#"{"cts":{"trace_name":"deleteTracker","service_type":"CTS","resource_type":"tracker","user":{"name":"m"}}}"#;
        assert_eq!(
            analyzer.analyze(event).unwrap().severity.as_str(),
            "critical"
        );
    }

    #[test]
    fn windowed_rules_keep_state_across_batches() {
        let analyzer = Analyzer::default();
        let mut state = AnalyzerState::default();
        let failure = |n: u32| {
            format!(
                r#"{{"trace_id":"{n:08x}-2e03-11ef-82de-cf140e2a70fb","trace_name":"bindCard","service_type":"CBC","resource_type":"order","trace_rating":"warning","code":403,"time":{},"user":{{"name":"dev-bot"}},"response":"{{\"error_code\":\"CBC.0151\"}}"}}"#,
                1_718_777_931_170u64 + u64::from(n) * 1000
            )
        };
        // Three batches of one record each: the third crosses the threshold.
        let mut fired = Vec::new();
        for n in 0..3 {
            let line = failure(n);
            let verdict: Vec<_> = analyzer.stream(line.as_bytes(), &mut state).collect();
            fired.push(
                verdict[0]
                    .as_ref()
                    .unwrap()
                    .rules
                    .iter()
                    .any(|r| r == "failed.repeated"),
            );
        }
        assert_eq!(fired, [false, false, true]);
    }

    #[test]
    fn streams_read_gzip_and_report_damage_in_order() {
        use std::io::Write;
        let text = b"{\"trace_id\":\"a\",\"trace_name\":\"payOrder\",\"service_type\":\"CBC\",\"resource_type\":\"cloudresouce\"}\nnot json\n";
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(text).unwrap();
        let packed = gz.finish().unwrap();
        let mut state = AnalyzerState::default();
        let items: Vec<_> = Analyzer::default()
            .stream(&packed[..], &mut state)
            .collect();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].as_ref().unwrap().severity.as_str(), "medium");
        assert!(
            matches!(&items[1], Err(AnalyzeError::Record { location, .. }) if location == "line 2")
        );
    }
}
