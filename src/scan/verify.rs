//! `scan --verify`: each file judged against the download's digests as it
//! is read, so its records carry what the check found.

use super::*;
use crate::integrity::{md5_hex, object_key, Check, Coverage, Finding, Integrity, VerifyStats};
use std::io::Read;

/// What the integrity check of one file found, for its records.
#[derive(Debug, Clone)]
pub(super) struct FileCheck {
    pub(super) integrity: Integrity,
    /// For a modified or unlisted file: the check, the file and why, the
    /// reason `audit.integrity` gives.
    pub(super) note: Option<Arc<str>>,
    pub(super) finding: Finding,
}

impl FileCheck {
    /// Judges the file at `path` whose stored bytes hash to `md5`, or that
    /// was not hashed, and why.
    pub(super) fn new(coverage: &Coverage, path: &Path, md5: Result<&str, &str>) -> FileCheck {
        let object = object_key(path).unwrap_or_else(|| path.display().to_string());
        let finding = match md5 {
            Ok(md5) => coverage.status(&object, md5),
            Err(why) => Finding::new(Check::TraceFileUnverified, object, why),
        };
        let integrity = Integrity::of(finding.check);
        let note = integrity.is_problem().then(|| {
            Arc::from(format!(
                "{} {}: {}",
                finding.check, finding.object, finding.message
            ))
        });
        FileCheck {
            integrity,
            note,
            finding,
        }
    }

    /// The check of a file whose stored bytes are all in `bytes`.
    pub(super) fn of_bytes(coverage: &Coverage, path: &Path, bytes: &[u8]) -> FileCheck {
        FileCheck::new(coverage, path, Ok(&md5_hex(bytes)))
    }

    /// The check of a large file or a stream, before it is read for its
    /// records. A large file is hashed in a first read of its own: one that
    /// does not fit a worker's memory cannot be held until its hash is
    /// known, and its records must carry the result.
    pub(super) fn of_large(coverage: &Coverage, input: &InputFile) -> FileCheck {
        if input.is_stream {
            return FileCheck::new(coverage, &input.path, Err("read from a stream: not hashed"));
        }
        if object_key(&input.path).is_none() {
            // No digest can list it: nothing to hash it for.
            return FileCheck::new(coverage, &input.path, Ok(""));
        }
        let hashed = std::fs::File::open(&input.path).and_then(|mut file| {
            let mut md5 = <md5::Md5 as md5::Digest>::new();
            crate::integrity::hash_into(&mut md5, &mut file)?;
            Ok(hex::encode(md5::Digest::finalize(md5)))
        });
        match hashed {
            Ok(md5) => FileCheck::new(coverage, &input.path, Ok(&md5)),
            Err(err) => FileCheck::new(
                coverage,
                &input.path,
                Err(&format!("could not be hashed: {err}")),
            ),
        }
    }
}

/// Reads a small file whole, to hash it and then read its records from
/// memory: one read. An error when it cannot be read, or grew past `cap`.
pub(super) fn read_small(path: &Path, cap: u64) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(cap + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(std::io::Error::other(format!(
            "grew past {} MB while the scan read it",
            cap >> 20
        )));
    }
    Ok(bytes)
}

/// What `scan --verify` found, in [`Stats::integrity`].
#[derive(Debug, Default, Clone, Serialize)]
#[non_exhaustive]
pub struct IntegrityReport {
    /// The counts, as `verify --stats` gives them.
    pub counts: VerifyStats,
    /// Every finding that points to tampering or loss (`ok: false`),
    /// including those no record shows: a missing trace file or digest, a
    /// bad signature.
    pub problems: Vec<Finding>,
}

impl IntegrityReport {
    /// Records the files' findings against the digests' checks and adds the
    /// listed files never read.
    pub(super) fn new(coverage: &Coverage, files: Vec<Finding>) -> IntegrityReport {
        let digests = coverage.digest_count() as u64;
        let files_read = files.len() as u64 + digests;
        let mut coverage = coverage.clone();
        for finding in files {
            coverage.record(finding);
        }
        let findings = coverage.finish();
        // Bytes are the scan's own count (`Stats::bytes`); not repeated here.
        let mut counts = VerifyStats {
            digests,
            files_read,
            ..VerifyStats::default()
        };
        counts.count(&findings);
        IntegrityReport {
            counts,
            problems: findings.into_iter().filter(Finding::is_problem).collect(),
        }
    }
}
