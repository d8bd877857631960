//! One digest file: its fields, read strictly, and the message CTS signs.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use std::io::Read;

/// A digest's content bigger than this is refused: real digests list an
/// hour's trace files of one service, a few KB to a few MB.
pub const MAX_DIGEST_BYTES: u64 = 64 << 20;

/// A CTS integrity digest: the hour it covers, where it was written, the
/// previous digest it chains to, and the trace files delivered in the hour
/// (../shared/reference/digest-integrity.md).
///
/// ```
/// use cts_audit::integrity::Digest;
/// let json = r#"{"project_id":"p","digest_start_time":"2024-06-19T05-09-17Z",
///   "digest_end_time":"2024-06-19T06-09-17Z","digest_bucket":"b",
///   "digest_object":"CloudTraces/r/2024/6/19/t/Digest/CBC/x_CloudTrace-Digest_r_2024-06-19T06-09-17Z.json.gz",
///   "digest_signature_algorithm":"SHA256withRSA","digest_end":false,
///   "previous_digest_end":false,"log_files":[]}"#;
/// let digest = Digest::parse(json.as_bytes()).unwrap();
/// assert!(digest.previous.is_none()); // a starting digest
/// assert_eq!(digest.end.to_rfc3339(), "2024-06-19T06:09:17+00:00");
/// // The signed message: end time as written, object, the file's MD5, previous signature.
/// assert!(digest.signed_message("00ff").starts_with("2024-06-19T06-09-17ZCloudTraces/r/"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    /// The account the covered trace files belong to.
    pub project_id: String,
    /// Start of the covered range.
    pub start: DateTime<Utc>,
    /// End of the covered range.
    pub end: DateTime<Utc>,
    /// `digest_end_time` exactly as written: it is part of the signed message.
    pub end_time_text: String,
    /// The bucket it was written to.
    pub bucket: String,
    /// The object key it was written to.
    pub object: String,
    /// `digest_signature_algorithm`, normally `SHA256withRSA`.
    pub signature_algorithm: String,
    /// This digest ends a chain: integrity verification was switched off.
    pub is_chain_end: bool,
    /// The previous digest, absent for a chain's starting digest.
    pub previous: Option<PreviousDigest>,
    /// The previous digest ended a chain.
    pub previous_is_chain_end: bool,
    /// The trace files delivered in the hour (empty: none were).
    pub log_files: Vec<ListedFile>,
}

/// Where the previous digest is, and what the later one vouches of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviousDigest {
    /// Its bucket.
    pub bucket: String,
    /// Its object key.
    pub object: String,
    /// Lowercase hex hash of its file as stored.
    pub hash: String,
    /// The hash algorithm, normally `MD5`.
    pub hash_algorithm: String,
    /// Its signature (hex), empty when the digest gives none.
    pub signature: String,
}

/// One trace file a digest lists.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ListedFile {
    /// Its bucket.
    pub bucket: String,
    /// Its object key.
    pub object: String,
    /// Lowercase hex hash of the file as stored (its ETag).
    #[serde(rename = "log_hash_value")]
    pub hash: String,
    /// The hash algorithm, normally `MD5`.
    #[serde(rename = "log_hash_algorithm")]
    pub hash_algorithm: String,
}

/// Why a digest could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DigestError {
    /// Its gzip or JSON is damaged, or a required field is missing.
    #[error("not a readable digest: {0}")]
    Damaged(String),
    /// A time field is not a UTC time.
    #[error("{field} is not a time: {value:?}")]
    BadTime {
        /// The field.
        field: &'static str,
        /// What it holds.
        value: String,
    },
    /// Bigger than [`MAX_DIGEST_BYTES`] once gunzipped.
    #[error("bigger than {} MB, far beyond any real digest", MAX_DIGEST_BYTES >> 20)]
    TooLarge,
}

/// The fields as written; [`Digest::parse`] checks and converts them.
#[derive(Deserialize)]
struct Written {
    project_id: String,
    digest_start_time: String,
    digest_end_time: String,
    digest_bucket: String,
    digest_object: String,
    digest_signature_algorithm: String,
    digest_end: Flag,
    #[serde(default)]
    previous_digest_bucket: Option<String>,
    #[serde(default)]
    previous_digest_object: Option<String>,
    #[serde(default)]
    previous_digest_hash_value: Option<String>,
    #[serde(default)]
    previous_digest_hash_algorithm: Option<String>,
    #[serde(default)]
    previous_digest_signature: Option<String>,
    #[serde(default)]
    previous_digest_end: Option<Flag>,
    #[serde(default)]
    log_files: Option<Vec<ListedFile>>,
}

/// A boolean, as JSON writes it or as a string (`"true"`): the reference
/// documents a bool, and other fields of CTS come in both types.
#[derive(Deserialize)]
#[serde(untagged)]
enum Flag {
    Bool(bool),
    Text(String),
}

impl Flag {
    fn get(&self, field: &str) -> Result<bool, DigestError> {
        match self {
            Flag::Bool(b) => Ok(*b),
            Flag::Text(t) if t.eq_ignore_ascii_case("true") => Ok(true),
            Flag::Text(t) if t.eq_ignore_ascii_case("false") => Ok(false),
            Flag::Text(t) => Err(DigestError::Damaged(format!(
                "{field} is neither true nor false: {t:?}"
            ))),
        }
    }
}

impl Digest {
    /// Reads a digest from its JSON text.
    pub fn parse(json: &[u8]) -> Result<Digest, DigestError> {
        let written: Written =
            serde_json::from_slice(json).map_err(|e| DigestError::Damaged(e.to_string()))?;
        let previous = match written.previous_digest_object {
            Some(object) if !object.is_empty() => Some(PreviousDigest {
                bucket: written.previous_digest_bucket.unwrap_or_default(),
                object,
                hash: written
                    .previous_digest_hash_value
                    .unwrap_or_default()
                    .to_ascii_lowercase(),
                hash_algorithm: written.previous_digest_hash_algorithm.unwrap_or_default(),
                signature: written
                    .previous_digest_signature
                    .unwrap_or_default()
                    .to_ascii_lowercase(),
            }),
            _ => None,
        };
        let mut log_files = written.log_files.unwrap_or_default();
        for file in &mut log_files {
            file.hash.make_ascii_lowercase();
        }
        Ok(Digest {
            project_id: written.project_id,
            start: parse_time("digest_start_time", &written.digest_start_time)?,
            end: parse_time("digest_end_time", &written.digest_end_time)?,
            end_time_text: written.digest_end_time,
            bucket: written.digest_bucket,
            object: written.digest_object,
            signature_algorithm: written.digest_signature_algorithm,
            is_chain_end: written.digest_end.get("digest_end")?,
            previous,
            previous_is_chain_end: match &written.previous_digest_end {
                Some(flag) => flag.get("previous_digest_end")?,
                None => false,
            },
            log_files,
        })
    }

    /// Reads a digest file as stored: gzip (by its magic bytes) or plain
    /// JSON, at most [`MAX_DIGEST_BYTES`] of it.
    ///
    /// ```
    /// use cts_audit::integrity::{Digest, DigestError};
    /// let cut = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xab]; // gzip cut short
    /// assert!(matches!(Digest::read(&cut), Err(DigestError::Damaged(_))));
    /// ```
    pub fn read(stored: &[u8]) -> Result<Digest, DigestError> {
        let mut json = Vec::new();
        let content =
            crate::input::decompress(stored).map_err(|e| DigestError::Damaged(e.to_string()))?;
        content
            .take(MAX_DIGEST_BYTES + 1)
            .read_to_end(&mut json)
            .map_err(|e| DigestError::Damaged(e.to_string()))?;
        if json.len() as u64 > MAX_DIGEST_BYTES {
            return Err(DigestError::TooLarge);
        }
        Digest::parse(&json)
    }

    /// The message CTS signs for this digest, given the lowercase hex MD5 of
    /// its file as stored: end time (as written), object key, that hash and
    /// the previous digest's signature, with no separators.
    pub fn signed_message(&self, file_md5_hex: &str) -> String {
        let previous = self.previous.as_ref().map_or("", |p| p.signature.as_str());
        format!(
            "{}{}{}{}",
            self.end_time_text, self.object, file_md5_hex, previous
        )
    }
}

/// Reads a digest time, written `2017-03-28T02-09-17Z` (dashes in the time);
/// RFC 3339 is accepted too.
///
/// ```
/// use cts_audit::integrity::parse_time;
/// assert_eq!(parse_time("t", "2017-03-28T02-09-17Z").unwrap().to_rfc3339(), "2017-03-28T02:09:17+00:00");
/// assert_eq!(parse_time("t", "2017-03-28T02:09:17Z").unwrap().to_rfc3339(), "2017-03-28T02:09:17+00:00");
/// assert!(parse_time("t", "yesterday").is_err());
/// ```
pub fn parse_time(field: &'static str, value: &str) -> Result<DateTime<Utc>, DigestError> {
    NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H-%M-%SZ")
        .map(|t| t.and_utc())
        .or_else(|_| DateTime::parse_from_rfc3339(value).map(|t| t.with_timezone(&Utc)))
        .map_err(|_| DigestError::BadTime {
            field,
            value: value.chars().take(64).collect(),
        })
}
