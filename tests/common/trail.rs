//! Signs a downloaded CTS tree as CTS would: one digest an hour for each
//! service folder, chained, each signed with SHA256withRSA over
//! `digest_end_time + digest_object + md5(digest file) + previous signature`
//! (../shared/reference/digest-integrity.md).
//!
//! Shared by the integration tests and `examples/sign_trail.rs` (which
//! signs the samples and the benchmark corpus), so both sign alike.
#![allow(dead_code)] // each includer uses a part

use chrono::{DateTime, Duration, Timelike, Utc};
use cts_audit::integrity::{file_time, md5_hex, object_key, stream_key};
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer as _};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where in the hour a digest's range starts (CTS's sample: 01-09-17 to 02-09-17).
pub const DIGEST_OFFSET: Duration = Duration::seconds(9 * 60 + 17);

/// A private key that signs digests.
pub struct Signer(SigningKey<Sha256>);

impl Signer {
    /// Reads a PKCS#8 PEM private key.
    pub fn from_pem(pem: &str) -> Signer {
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(pem).expect("a PKCS#8 PEM RSA private key");
        Signer(SigningKey::new(key))
    }

    /// The key the tests sign with (tests/keys/README.md says how it was made).
    pub fn test_key() -> Signer {
        Signer::from_pem(include_str!("../keys/test-signing-key.pem"))
    }

    /// The hex signature of `message`.
    pub fn sign(&self, message: &str) -> String {
        hex::encode(self.0.sign(message.as_bytes()).to_bytes())
    }
}

/// A digest written by [`sign_tree`].
#[derive(Clone, Debug)]
pub struct Written {
    /// Its object key.
    pub object: String,
    /// Its path.
    pub path: PathBuf,
    /// Its signature (its OBS `meta-signature`).
    pub signature: String,
    /// The hour it covers starts here.
    pub start: DateTime<Utc>,
    /// A later digest carries its signature (as `previous_digest_signature`).
    pub carried: bool,
}

/// The start of the digest hour that holds `time`.
pub fn digest_hour(time: DateTime<Utc>) -> DateTime<Utc> {
    let shifted = time - DIGEST_OFFSET;
    let hour = shifted
        .with_minute(0)
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_nanosecond(0))
        .expect("an hour of a valid time");
    hour + DIGEST_OFFSET
}

fn digest_object(folder: &str, service: &str, region: &str, end: DateTime<Utc>) -> String {
    // folder: CloudTraces/<region>/<y>/<m>/<d>/<tracker>; the digest goes
    // under the day of its end time.
    let parts: Vec<&str> = folder.split('/').collect();
    let tracker = parts[5..].join("/");
    // Months and days written as the trace folders write them (`6` or `06`).
    let padded = parts[3].len() == 2;
    let (month, day) = if padded { ("%m", "%d") } else { ("%-m", "%-d") };
    format!(
        "CloudTraces/{region}/{}/{}/{}/{tracker}/Digest/{service}/cts_CloudTrace-Digest_{region}_{}.json.gz",
        end.format("%Y"),
        end.format(month),
        end.format(day),
        end.format("%Y-%m-%dT%H-%M-%SZ"),
    )
}

/// Gzips bytes.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).expect("writing to memory");
    gz.finish().expect("writing to memory")
}

/// One service folder of a tree: where its digests go, and its trace
/// files (object key, MD5) by digest hour.
struct Folder {
    folder: String,
    service: String,
    region: String,
    hours: BTreeMap<DateTime<Utc>, Vec<(String, String)>>,
}

/// Signs every service folder of the tree at `root` (which holds
/// `CloudTraces/`): from the hour of its first trace file to the hour of its
/// last, one digest an hour, empty hours included. `enabled(hour)` says
/// whether integrity verification was on in an hour: switching it off
/// writes an end digest, switching it on starts a new chain. Returns the
/// digests written, oldest first in each folder.
pub fn sign_tree(
    root: &Path,
    signer: &Signer,
    enabled: &dyn Fn(DateTime<Utc>) -> bool,
) -> Vec<Written> {
    let mut streams: BTreeMap<String, Folder> = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root).sort_by_file_name() {
        let entry = entry.expect("walking the tree");
        if !entry.file_type().is_file() {
            continue;
        }
        let Some(object) = object_key(entry.path()) else {
            continue;
        };
        if object.contains("/Digest/") {
            continue;
        }
        let (Some(stream), Some(time)) = (stream_key(&object), file_time(&object)) else {
            continue;
        };
        let parts: Vec<&str> = object.split('/').collect();
        let service = parts[parts.len() - 2].to_owned();
        let region = parts[1].to_owned();
        let folder = parts[..parts.len() - 2].join("/");
        let md5 = md5_hex(&std::fs::read(entry.path()).expect("reading a trace file"));
        streams
            .entry(stream)
            .or_insert_with(|| Folder {
                folder,
                service,
                region,
                hours: BTreeMap::new(),
            })
            .hours
            .entry(digest_hour(time))
            .or_default()
            .push((object, md5));
    }
    let mut written: Vec<Written> = Vec::new();
    for Folder {
        folder,
        service,
        region,
        hours,
    } in streams.values()
    {
        let (Some(first), Some(last)) = (hours.keys().next(), hours.keys().last()) else {
            continue;
        };
        let mut previous: Option<(String, String, String, bool)> = None; // object, md5, signature, was end
        let mut hour = *first;
        while hour <= *last {
            let next_on = enabled(hour + Duration::hours(1)) || hour + Duration::hours(1) > *last;
            if enabled(hour) {
                let end = hour + Duration::hours(1);
                let object = digest_object(folder, service, region, end);
                let is_end = !next_on;
                let files: Vec<serde_json::Value> = hours
                    .get(&hour)
                    .map(|files| {
                        files
                            .iter()
                            .map(|(object, md5)| {
                                serde_json::json!({"bucket": "acme-cts", "object": object,
                                    "log_hash_value": md5, "log_hash_algorithm": "MD5"})
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let (p_object, p_md5, p_signature, p_end) = previous.clone().unwrap_or_default();
                if previous.is_some() {
                    if let Some(last) = written.last_mut() {
                        last.carried = true;
                    }
                }
                let time = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H-%M-%SZ").to_string();
                let digest = serde_json::json!({
                    "project_id": "4008a952b3f44b5a919c9a48d90811f3",
                    "digest_start_time": time(hour),
                    "digest_end_time": time(end),
                    "digest_bucket": "acme-cts",
                    "digest_object": object,
                    "digest_signature_algorithm": "SHA256withRSA",
                    "digest_end": is_end,
                    "previous_digest_bucket": if previous.is_some() { "acme-cts" } else { "" },
                    "previous_digest_object": p_object,
                    "previous_digest_hash_value": p_md5,
                    "previous_digest_hash_algorithm": if previous.is_some() { "MD5" } else { "" },
                    "previous_digest_signature": p_signature,
                    "previous_digest_end": p_end,
                    "log_files": files,
                });
                let stored = gzip(
                    serde_json::to_string_pretty(&digest)
                        .expect("JSON")
                        .as_bytes(),
                );
                let md5 = md5_hex(&stored);
                let signature = signer.sign(&format!("{}{object}{md5}{p_signature}", time(end)));
                let path = root.join(&object);
                std::fs::create_dir_all(path.parent().expect("a digest has a folder"))
                    .expect("mkdir");
                std::fs::write(&path, &stored).expect("writing a digest");
                written.push(Written {
                    object: object.clone(),
                    path,
                    signature: signature.clone(),
                    start: hour,
                    carried: false,
                });
                previous = if is_end {
                    None
                } else {
                    Some((object, md5, signature, is_end))
                };
            }
            hour += Duration::hours(1);
        }
    }
    written
}

/// The digests whose signature no later digest carries (the newest of
/// each chain), as `OBJECT HEX` lines for `--signatures`: what a user reads
/// from OBS metadata.
pub fn newest_signatures(written: &[Written]) -> String {
    written
        .iter()
        .filter(|w| !w.carried)
        .map(|w| format!("{} {}\n", w.object, w.signature))
        .collect()
}
