//! What `verify` reports: one finding per trace file, per digest and per problem.

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use std::fmt;

/// Which check a [`Finding`] reports (docs/INTEGRITY.md gives the threat
/// each one answers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Check {
    /// A listed trace file is present and its MD5 matches.
    TraceFileOk,
    /// A listed trace file's MD5 differs from the digest's.
    TraceFileModified,
    /// A digest lists a trace file that is not in the download.
    TraceFileMissing,
    /// A trace file no digest lists, in an hour digests cover.
    TraceFileUnlisted,
    /// A trace file outside every chain's hours: nothing vouches for it.
    TraceFileUnverified,
    /// A digest whose every check passed.
    DigestOk,
    /// A digest whose signature does not verify.
    DigestSignatureInvalid,
    /// A digest whose signature was not given (the newest of a chain).
    DigestSignatureUnknown,
    /// A digest whose MD5 differs from what the next digest recorded.
    DigestHashMismatch,
    /// A digest the next one names, absent from the download.
    DigestMissing,
    /// A digest found somewhere other than where it says it was written.
    DigestMoved,
    /// Hours of a chain that no digest covers.
    HoursUncovered,
    /// A chain starts (verification switched on).
    ChainStart,
    /// A chain ends (verification switched off).
    ChainEnd,
    /// An input that could not be read, or a digest that could not be parsed.
    Unreadable,
}

impl Check {
    /// Its name in JSON, as `snake_case`.
    ///
    /// ```
    /// assert_eq!(cts_audit::integrity::Check::TraceFileOk.name(), "trace_file_ok");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Check::TraceFileOk => "trace_file_ok",
            Check::TraceFileModified => "trace_file_modified",
            Check::TraceFileMissing => "trace_file_missing",
            Check::TraceFileUnlisted => "trace_file_unlisted",
            Check::TraceFileUnverified => "trace_file_unverified",
            Check::DigestOk => "digest_ok",
            Check::DigestSignatureInvalid => "digest_signature_invalid",
            Check::DigestSignatureUnknown => "digest_signature_unknown",
            Check::DigestHashMismatch => "digest_hash_mismatch",
            Check::DigestMissing => "digest_missing",
            Check::DigestMoved => "digest_moved",
            Check::HoursUncovered => "hours_uncovered",
            Check::ChainStart => "chain_start",
            Check::ChainEnd => "chain_end",
            Check::Unreadable => "unreadable",
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A span of time; either end may be unknown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TimeRange {
    /// Its start.
    #[serde(serialize_with = "rfc3339")]
    pub start: Option<DateTime<Utc>>,
    /// Its end.
    #[serde(serialize_with = "rfc3339")]
    pub end: Option<DateTime<Utc>>,
}

impl TimeRange {
    /// A range with both ends known.
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> TimeRange {
        TimeRange {
            start: Some(start),
            end: Some(end),
        }
    }
}

impl fmt::Display for TimeRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let end = |t: Option<DateTime<Utc>>| {
            t.map_or("?".to_owned(), |t| {
                t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
            })
        };
        write!(f, "{} .. {}", end(self.start), end(self.end))
    }
}

fn rfc3339<S: Serializer>(time: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match time {
        Some(t) => s.serialize_str(&t.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
        None => s.serialize_none(),
    }
}

/// One result of `verify`.
///
/// ```
/// use cts_audit::integrity::{Check, Finding};
/// let finding = Finding::new(Check::DigestMissing, "CloudTraces/r/x.json.gz", "deleted?");
/// assert_eq!(finding.ok, Some(false));
/// let json = serde_json::to_string(&finding).unwrap();
/// assert!(json.starts_with(r#"{"check":"digest_missing","ok":false,"object":"CloudTraces/r/x.json.gz""#));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The check.
    pub check: Check,
    /// `true` passed, `false` points to tampering or loss, `None` is
    /// information or an unknown.
    pub ok: Option<bool>,
    /// The trace file or digest it is about, by object key (or by path,
    /// outside any `CloudTraces/` folder).
    pub object: String,
    /// The digest that vouches for the object or refers to it.
    pub digest: Option<String>,
    /// The hours concerned.
    pub time_range: Option<TimeRange>,
    /// What was found, for people.
    pub message: String,
}

impl Finding {
    /// A finding with the usual `ok` of its check, and no digest or time.
    pub fn new(check: Check, object: impl Into<String>, message: impl Into<String>) -> Finding {
        let ok = match check {
            Check::TraceFileOk | Check::DigestOk => Some(true),
            Check::TraceFileUnverified
            | Check::DigestSignatureUnknown
            | Check::ChainStart
            | Check::ChainEnd => None,
            _ => Some(false),
        };
        Finding {
            check,
            ok,
            object: object.into(),
            digest: None,
            time_range: None,
            message: message.into(),
        }
    }

    /// With the digest that vouches for or names the object.
    pub fn digest(mut self, digest: impl Into<String>) -> Finding {
        self.digest = Some(digest.into());
        self
    }

    /// With the hours concerned.
    pub fn during(mut self, range: TimeRange) -> Finding {
        self.time_range = Some(range);
        self
    }

    /// Whether it points to tampering or loss.
    pub fn is_problem(&self) -> bool {
        self.ok == Some(false)
    }
}

/// What `scan --verify` says of each record, from the check of its file.
///
/// ```
/// use cts_audit::integrity::{Check, Integrity};
/// assert_eq!(Integrity::of(Check::TraceFileModified), Integrity::Modified);
/// assert_eq!(Integrity::Verified.name(), "verified");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Integrity {
    /// Its file is listed, with a matching MD5, by a digest.
    Verified,
    /// Its file's MD5 differs from the digest's.
    Modified,
    /// No digest lists its file, in hours digests cover.
    Unlisted,
    /// Nothing vouches for its file either way.
    #[default]
    Unverified,
}

impl Integrity {
    /// The status a trace file's check gives its records.
    pub fn of(check: Check) -> Integrity {
        match check {
            Check::TraceFileOk => Integrity::Verified,
            Check::TraceFileModified => Integrity::Modified,
            Check::TraceFileUnlisted => Integrity::Unlisted,
            _ => Integrity::Unverified,
        }
    }

    /// Its name in output.
    pub fn name(self) -> &'static str {
        match self {
            Integrity::Verified => "verified",
            Integrity::Modified => "modified",
            Integrity::Unlisted => "unlisted",
            Integrity::Unverified => "unverified",
        }
    }

    /// Whether it points to tampering (modified or unlisted).
    pub fn is_problem(self) -> bool {
        matches!(self, Integrity::Modified | Integrity::Unlisted)
    }
}
