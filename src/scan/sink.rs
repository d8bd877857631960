//! Where a scan's records and problems go: the [`Sink`] a caller provides, what it receives ([`Record`], [`ScanError`]), and the buffer workers fill for it.

use super::*;
use crate::verdict::PackedTexts;

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
pub(super) fn described<S: serde::Serializer>(
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

/// Receives the scan's output, in order.
///
/// ```
/// use cts_audit::{catalog::Severity, scan::{scan, Record, ScanError, ScanOptions, Sink}};
/// use std::ops::ControlFlow;
/// /// Counts the high and critical records, and keeps nothing else.
/// #[derive(Default)]
/// struct Alarms(u64);
/// impl Sink for Alarms {
///     fn record(&mut self, _record: Record<'_>, severity: Severity) -> ControlFlow<()> {
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
    /// The verdict itself ([`Format::Verdicts`]). It borrows the scan's
    /// buffers: [`Verdict::into_owned`] keeps it past the call.
    Verdict(&'r Verdict<'r>),
    /// Both, when [`ScanOptions::keep_verdicts`] asks for the verdict beside
    /// its rendering (a sink that writes records and folds a report).
    Both(&'r [u8], &'r Verdict<'r>),
}

impl<'r> Record<'r> {
    /// The rendered bytes, when there are some.
    ///
    /// ```
    /// use cts_audit::scan::Record;
    /// assert_eq!(Record::Rendered(b"{}\n").rendered(), Some(&b"{}\n"[..]));
    /// ```
    pub fn rendered(&self) -> Option<&'r [u8]> {
        match *self {
            Record::Rendered(bytes) | Record::Both(bytes, _) => Some(bytes),
            Record::Verdict(_) => None,
        }
    }

    /// The verdict, when the scan handed it over.
    ///
    /// ```
    /// use cts_audit::scan::Record;
    /// assert!(Record::Rendered(b"{}\n").verdict().is_none());
    /// ```
    pub fn verdict(&self) -> Option<&'r Verdict<'r>> {
        match *self {
            Record::Verdict(verdict) | Record::Both(_, verdict) => Some(verdict),
            Record::Rendered(_) => None,
        }
    }
}

/// Emitted records of one unit or batch, in the form the sink wants:
/// rendered bytes end to end, or verdicts, or both.
#[derive(Debug, Default)]
pub(super) struct Emitted {
    pub(super) bytes: Vec<u8>,
    /// Each verdict without its texts, and its texts in one allocation
    /// (not one a field): detached from the input at little cost.
    pub(super) verdicts: Vec<(Verdict<'static>, PackedTexts)>,
}

/// One emitted record, opened for the sink: its verdict borrows the texts
/// kept in the [`Emitted`].
pub(super) struct Opened<'e> {
    bytes: Option<&'e [u8]>,
    verdict: Option<Verdict<'e>>,
}

impl Opened<'_> {
    /// The record as the sink receives it.
    pub(super) fn record(&self) -> Option<Record<'_>> {
        match (self.bytes, &self.verdict) {
            (Some(bytes), Some(verdict)) => Some(Record::Both(bytes, verdict)),
            (Some(bytes), None) => Some(Record::Rendered(bytes)),
            (None, Some(verdict)) => Some(Record::Verdict(verdict)),
            (None, None) => None,
        }
    }
}

/// Where one emitted record is in an [`Emitted`]: its rendered bytes, its
/// verdict, or both.
#[derive(Debug, Clone, Copy)]
pub(super) struct Span {
    bytes: Option<(u32, u32)>,
    verdict: Option<u32>,
}

impl Emitted {
    /// Adds a verdict in the form `options` asks for.
    pub(super) fn push(&mut self, verdict: Verdict<'_>, options: &ScanOptions) -> Span {
        // Units and batches are far under 4 GiB, and hold far fewer than 4
        // billion records.
        let at = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let bytes = (options.format != Format::Verdicts).then(|| {
            let start = self.bytes.len();
            report::render(&verdict, options.format, &options.rules, &mut self.bytes);
            (at(start), at(self.bytes.len()))
        });
        let verdict = (bytes.is_none() || options.keep_verdicts).then(|| {
            self.keep(verdict);
            at(self.verdicts.len() - 1)
        });
        Span { bytes, verdict }
    }

    /// Keeps a verdict, detached from the input: its texts packed.
    fn keep(&mut self, mut verdict: Verdict<'_>) {
        let texts = PackedTexts::pack(&verdict.take_texts());
        // Without its texts, nothing is left to copy.
        self.verdicts.push((verdict.into_owned(), texts));
    }

    /// Opens the record at `span`, once: its verdict is taken out.
    pub(super) fn open(&mut self, span: Span) -> Opened<'_> {
        let verdict = span
            .verdict
            .and_then(|at| self.verdicts.get_mut(at as usize))
            .map(|(verdict, texts)| {
                let mut verdict: Verdict<'_> = std::mem::take(verdict);
                verdict.put_texts(texts.unpack());
                verdict
            });
        Opened {
            bytes: span
                .bytes
                .and_then(|(start, end)| self.bytes.get(start as usize..end as usize)),
            verdict,
        }
    }

    /// Appends `other`, and gives the function that moves its spans.
    pub(super) fn append(&mut self, other: Emitted) -> impl Fn(Span) -> Span {
        let bytes = u32::try_from(self.bytes.len()).unwrap_or(u32::MAX);
        let verdicts = u32::try_from(self.verdicts.len()).unwrap_or(u32::MAX);
        self.bytes.extend_from_slice(&other.bytes);
        self.verdicts.extend(other.verdicts);
        move |span| Span {
            bytes: span.bytes.map(|(start, end)| (start + bytes, end + bytes)),
            verdict: span.verdict.map(|at| at + verdicts),
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
        if let Some(rendered) = record.rendered() {
            self.output.extend_from_slice(rendered);
        }
        ControlFlow::Continue(())
    }
    fn problem(&mut self, problem: &ScanError) {
        self.problems.push(problem.clone());
    }
}
