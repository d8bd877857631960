//! Trail integrity: CTS's signed, chained digests checked offline over a
//! download, as `cts-audit verify` and `scan --verify` do.
//!
//! The path a download takes: [`read_inputs`] walks it (folders, tar
//! archives), hashes every file as stored and reads the digests;
//! [`Digests::check`] checks each digest's location, hash link and
//! signature and follows the chains; [`Coverage::judge`] judges each trace
//! file; [`Coverage::finish`] adds the listed files never seen. [`verify`]
//! does all of it in one call. The facts come from
//! ../shared/reference/digest-integrity.md; docs/INTEGRITY.md lists the
//! checks and the threat each answers.
//!
//! ```
//! use cts_audit::integrity::{parse_signatures, verify, Check, PublicKey};
//! // The samples are signed with the tests' key; their newest digests'
//! // signatures (OBS metadata, lost by a download) are in signatures.txt.
//! let key = PublicKey::parse(&std::fs::read("tests/keys/test-public-key.pem").unwrap()).unwrap();
//! let signatures = parse_signatures(&std::fs::read_to_string("tests/keys/samples-signatures.txt").unwrap()).unwrap();
//! let report = verify(&["samples/CloudTraces".into()], &key, &signatures);
//! assert_eq!(report.stats.problems, 0);
//! assert_eq!(report.stats.verified, 4);
//! // With CTS's own key, nothing these samples say is vouched for.
//! let report = verify(&["samples/CloudTraces".into()], &PublicKey::cts(), &signatures);
//! assert!(report.findings.iter().any(|f| f.check == Check::DigestSignatureInvalid));
//! ```

mod chain;
mod digest;
mod finding;
mod key;
mod read;

pub use chain::{Coverage, Digests};
pub use digest::{parse_time, Digest, DigestError, ListedFile, PreviousDigest, MAX_DIGEST_BYTES};
pub use finding::{Check, Finding, Integrity, TimeRange};
pub use key::{
    parse_signatures, signature_pair, KeyError, PublicKey, SignatureCheck, CTS_PUBLIC_KEY,
};
pub(crate) use read::hash_into;
pub use read::{looks_like_digest, read_digests, read_inputs, Hashed, Stored};

use chrono::{DateTime, NaiveDateTime, Utc};
use md5::{Digest as _, Md5};
use serde::Serialize;
use std::path::{Component, Path, PathBuf};

/// The lowercase hex MD5 of `bytes`.
///
/// ```
/// assert_eq!(cts_audit::integrity::md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
/// ```
pub fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

/// The object key of a file in a download: its path from the `CloudTraces`
/// folder down, `/`-separated. The bucket's name is not part of a
/// download's path, and what lies above `CloudTraces` is wherever the user
/// put it. `None` outside any `CloudTraces` folder.
///
/// ```
/// use cts_audit::integrity::object_key;
/// let path = std::path::Path::new("/dl/my-bucket/CloudTraces/r/2024/6/19/t/CBC/x.json.gz");
/// assert_eq!(object_key(path).as_deref(), Some("CloudTraces/r/2024/6/19/t/CBC/x.json.gz"));
/// assert_eq!(object_key("notes/x.json".as_ref()), None);
/// ```
pub fn object_key(path: &Path) -> Option<String> {
    let parts: Vec<String> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(part.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    let from = parts.iter().rposition(|p| p == "CloudTraces")?;
    Some(parts[from..].join("/"))
}

/// The stream an object belongs to: its service folder, the same for a
/// trace file (`…/<tracker>/CBC/…`) and the digests that list it
/// (`…/<tracker>/Digest/CBC/…`), across days. `None` outside `CloudTraces/`.
///
/// ```
/// use cts_audit::integrity::stream_key;
/// let trace = stream_key("CloudTraces/r/2024/6/19/system/CBC/cts_CloudTrace_r_2024-06-19T06-25-00Z_1.json.gz");
/// let digest = stream_key("CloudTraces/r/2024/6/20/system/Digest/CBC/cts_CloudTrace-Digest_r_2024-06-20T01-09-17Z.json.gz");
/// assert_eq!(trace.as_deref(), Some("r/system/CBC"));
/// assert_eq!(trace, digest);
/// ```
pub fn stream_key(object: &str) -> Option<String> {
    let rest = object.strip_prefix("CloudTraces/")?;
    let mut parts: Vec<&str> = rest.split('/').collect();
    parts.pop(); // the file name
                 // <region>/<yyyy>/<m>/<d>/…: the date changes daily, the stream does not.
    if parts.len() >= 4
        && parts[1..4]
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_digit()))
    {
        parts.drain(1..4);
    }
    let key: Vec<String> = parts
        .into_iter()
        .filter(|p| *p != "Digest")
        .map(|p| p.replace("CloudTrace-Digest", "CloudTrace"))
        .collect();
    Some(key.join("/"))
}

/// The delivery time in a trace file's name (`…_2024-06-19T06-25-00Z_….json.gz`).
///
/// ```
/// use cts_audit::integrity::file_time;
/// let t = file_time("CloudTraces/r/2024/6/19/t/CBC/cts_CloudTrace_r_2024-06-19T06-25-00Z_47b9.json.gz");
/// assert_eq!(t.unwrap().to_rfc3339(), "2024-06-19T06:25:00+00:00");
/// assert_eq!(file_time("CloudTraces/r/x.json"), None);
/// ```
pub fn file_time(object: &str) -> Option<DateTime<Utc>> {
    let name = object.rsplit('/').next()?;
    let bytes = name.as_bytes();
    // The shape YYYY-MM-DDTHH-MM-SSZ: 20 bytes, digits but for - T and Z.
    const SHAPE: &[u8; 20] = b"0000-00-00T00-00-00Z";
    (0..bytes.len().saturating_sub(SHAPE.len() - 1)).find_map(|at| {
        let window = &bytes[at..at + SHAPE.len()];
        let fits = window.iter().zip(SHAPE).all(|(b, s)| match s {
            b'0' => b.is_ascii_digit(),
            s => b == s,
        });
        let text = std::str::from_utf8(window).ok().filter(|_| fits)?;
        NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H-%M-%SZ")
            .ok()
            .map(|t| t.and_utc())
    })
}

/// Counts of a `verify` run, as `--stats` writes them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct VerifyStats {
    /// Files (and tar members) read.
    pub files_read: u64,
    /// Their bytes, as stored.
    pub bytes_read: u64,
    /// Digests read whole.
    pub digests: u64,
    /// Of them, every check passed.
    pub digests_ok: u64,
    /// Trace files judged.
    pub trace_files: u64,
    /// Listed with a matching MD5.
    pub verified: u64,
    /// Listed with another MD5.
    pub modified: u64,
    /// Listed but absent.
    pub missing: u64,
    /// Present but listed by no digest of its hours.
    pub unlisted: u64,
    /// Nothing vouches for them.
    pub unverified: u64,
    /// Findings that point to tampering or loss (`ok: false`).
    pub problems: u64,
    /// Signatures not given.
    pub signatures_unknown: u64,
    /// Inputs that could not be read.
    pub unreadable: u64,
}

impl VerifyStats {
    /// Counts `findings`, beside what reading counted.
    pub fn count(&mut self, findings: &[Finding]) {
        for f in findings {
            let slot = match f.check {
                Check::DigestOk => &mut self.digests_ok,
                Check::TraceFileOk => &mut self.verified,
                Check::TraceFileModified => &mut self.modified,
                Check::TraceFileMissing => &mut self.missing,
                Check::TraceFileUnlisted => &mut self.unlisted,
                Check::TraceFileUnverified => &mut self.unverified,
                Check::DigestSignatureUnknown => &mut self.signatures_unknown,
                Check::Unreadable => &mut self.unreadable,
                _ => continue,
            };
            *slot += 1;
        }
        self.problems = findings.iter().filter(|f| f.is_problem()).count() as u64;
        self.trace_files = self.verified + self.modified + self.unlisted + self.unverified;
    }
}

/// What [`verify`] found.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Verification {
    /// One a trace file, a digest and a problem.
    pub findings: Vec<Finding>,
    /// Their counts.
    pub stats: VerifyStats,
}

/// Verifies the download at `paths` with `key`, the newest digests' own
/// signatures given as `(object, hex)` pairs.
pub fn verify(paths: &[PathBuf], key: &PublicKey, signatures: &[(String, String)]) -> Verification {
    let mut stats = VerifyStats::default();
    let hashed = read_inputs(paths);
    let mut digests = Digests::new(key.clone());
    for (object, hex) in signatures {
        digests.give_signature(object, hex);
    }
    let mut traces = Vec::new();
    let mut unreadable = Vec::new();
    for item in hashed {
        stats.files_read += u64::from(!matches!(item.stored, Stored::Unreadable(_)));
        stats.bytes_read += item.size;
        match item.stored {
            Stored::Digest { md5, digest } => {
                stats.digests += u64::from(digest.is_ok());
                match digest {
                    Ok(digest) => digests.add_read(item.object, md5, *digest),
                    Err(err) => digests.add_damaged(item.object, md5, &err.to_string()),
                }
            }
            Stored::Trace { md5 } => traces.push((item.object, md5)),
            Stored::Unreadable(why) => unreadable.push((item.object, why)),
        }
    }
    let mut coverage = digests.check();
    for (object, md5) in &traces {
        coverage.judge(object, md5);
    }
    for (object, why) in &unreadable {
        coverage.unreadable(object, why);
    }
    let findings = coverage.finish();
    stats.count(&findings);
    Verification { findings, stats }
}
