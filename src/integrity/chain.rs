//! The checks over a set of digests (location, hash links, signatures,
//! coverage), and the judgement of each trace file against them.

use super::*;
use chrono::{DateTime, Duration, Utc};
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};

/// A gap between two digests shorter than this is delivery jitter, not an
/// uncovered hour: a deleted digest takes a whole hour with it.
const JITTER: Duration = Duration::minutes(5);

/// A digest as found: where, the MD5 of its file, and what it says.
#[derive(Clone, Debug)]
struct Found {
    object: String,
    md5: String,
    digest: Digest,
}

/// The digests of a download, gathered before the checks run.
///
/// ```
/// use cts_audit::integrity::{Digests, PublicKey};
/// let digests = Digests::new(PublicKey::cts());
/// let mut coverage = digests.check();
/// // With no digest at all, nothing vouches for a trace file, and nothing accuses it.
/// let check = coverage.judge("CloudTraces/r/2024/6/19/t/CBC/x_2024-06-19T06-20-00Z.json.gz", "00");
/// assert_eq!(check.name(), "trace_file_unverified");
/// ```
#[derive(Clone, Debug)]
pub struct Digests {
    key: PublicKey,
    given: HashMap<String, String>,
    found: Vec<Found>,
    /// Digest files that could not be read: their object key and MD5, so a
    /// later digest's link to one still resolves and its hash is compared.
    damaged: HashMap<String, String>,
    findings: Vec<Finding>,
}

impl Digests {
    /// No digests yet; signatures are checked with `key`.
    pub fn new(key: PublicKey) -> Digests {
        Digests {
            key,
            given: HashMap::new(),
            found: Vec::new(),
            damaged: HashMap::new(),
            findings: Vec::new(),
        }
    }

    /// A signature the user gives for a digest (its `meta-signature`), named
    /// by object key.
    pub fn give_signature(&mut self, object: &str, hex: &str) {
        let (object, hex) = signature_pair(object, hex);
        self.given.insert(object, hex);
    }

    /// A digest file found at object key `object`, as stored (gzip or
    /// JSON). A damaged one is reported as `unreadable`; its hash still
    /// answers the link from the next digest.
    pub fn add(&mut self, object: String, stored: &[u8]) {
        let md5 = md5_hex(stored);
        match Digest::read(stored) {
            Ok(digest) => self.add_read(object, md5, digest),
            Err(err) => self.add_damaged(object, md5, &err.to_string()),
        }
    }

    /// A digest already read, with the MD5 of its file.
    pub fn add_read(&mut self, object: String, md5: String, digest: Digest) {
        self.found.push(Found {
            object,
            md5,
            digest,
        });
    }

    /// A digest file that could not be read, with the MD5 of its bytes.
    pub fn add_damaged(&mut self, object: String, md5: String, why: &str) {
        self.findings.push(Finding::new(
            Check::Unreadable,
            object.clone(),
            format!("digest file: {why}"),
        ));
        self.damaged.insert(object, md5);
    }

    /// How many digests were read whole.
    pub fn len(&self) -> usize {
        self.found.len()
    }

    /// Whether none was.
    pub fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    /// Runs every check between digests, and returns what trace files are
    /// judged against.
    pub fn check(self) -> Coverage {
        let Digests {
            key,
            given,
            mut found,
            damaged,
            mut findings,
        } = self;
        // Sorted by time, then place, so that output and the choice between
        // two digests naming one predecessor are deterministic.
        found.sort_by(|a, b| {
            (a.digest.start, a.digest.end, &a.object).cmp(&(
                b.digest.start,
                b.digest.end,
                &b.object,
            ))
        });
        let n = found.len();
        let mut by_object: HashMap<&str, usize> = HashMap::new();
        for (i, f) in found.iter().enumerate() {
            by_object.entry(f.object.as_str()).or_insert(i);
        }
        for (i, f) in found.iter().enumerate() {
            by_object.entry(f.digest.object.as_str()).or_insert(i);
        }

        let mut failed = vec![false; n];
        let mut next: Vec<Option<usize>> = vec![None; n];
        let mut head = vec![Head::Start; n];
        for (d, f) in found.iter().enumerate() {
            let range = TimeRange::new(f.digest.start, f.digest.end);
            if f.digest.object != f.object {
                failed[d] = true;
                findings.push(
                    Finding::new(
                        Check::DigestMoved,
                        &f.object,
                        format!("found here, but it was written to {}", f.digest.object),
                    )
                    .digest(&f.digest.object)
                    .during(range),
                );
            }
            let Some(previous) = &f.digest.previous else {
                continue;
            };
            let link = match by_object.get(previous.object.as_str()) {
                Some(&p) if p != d => {
                    if next[p].is_none() {
                        next[p] = Some(d);
                    }
                    head[d] = Head::Linked;
                    Some((found[p].object.as_str(), found[p].md5.as_str(), Some(p)))
                }
                _ => match damaged.get_key_value(previous.object.as_str()) {
                    Some((object, md5)) => {
                        head[d] = Head::AfterUnreadable;
                        Some((object.as_str(), md5.as_str(), None))
                    }
                    None => {
                        head[d] = Head::AfterMissing;
                        findings.push(
                            Finding::new(
                                Check::DigestMissing,
                                &previous.object,
                                format!(
                                    "{} names it as the previous digest, but it is not in the download",
                                    f.object
                                ),
                            )
                            .digest(&f.object)
                            .during(TimeRange {
                                start: None,
                                end: Some(f.digest.start),
                            }),
                        );
                        None
                    }
                },
            };
            if let Some((object, md5, p)) = link {
                let problem = if !previous.hash_algorithm.eq_ignore_ascii_case("MD5") {
                    Some(format!(
                        "the hash algorithm {:?} is not MD5, so the link cannot be checked",
                        previous.hash_algorithm
                    ))
                } else if previous.hash != md5 {
                    Some(format!(
                        "its MD5 is {md5}, but {} recorded {}",
                        f.object, previous.hash
                    ))
                } else {
                    None
                };
                if let Some(message) = problem {
                    if let Some(p) = p {
                        failed[p] = true;
                    }
                    let mut finding =
                        Finding::new(Check::DigestHashMismatch, object, message).digest(&f.object);
                    if let Some(p) = p {
                        finding = finding
                            .during(TimeRange::new(found[p].digest.start, found[p].digest.end));
                    }
                    findings.push(finding);
                }
            }
        }

        // Signatures: each digest's comes from the next one, or the user.
        let mut newest: HashMap<String, usize> = HashMap::new();
        for (d, f) in found.iter().enumerate() {
            // `found` is sorted by time: the last of a stream is its newest.
            newest.insert(stream_of(&f.object), d);
        }
        // RSA checks are the costly part here: one per digest, in parallel.
        let verdicts: Vec<Option<Result<(), String>>> = found
            .par_iter()
            .enumerate()
            .map(|(p, f)| {
                let from_next = next[p]
                    .and_then(|d| found[d].digest.previous.as_ref())
                    .map(|prev| prev.signature.as_str())
                    .filter(|s| !s.is_empty());
                signature_verdict(&key, f, from_next, &given)
            })
            .collect();
        for ((p, f), verdict) in found.iter().enumerate().zip(verdicts) {
            let range = TimeRange::new(f.digest.start, f.digest.end);
            match verdict {
                Some(Err(message)) => {
                    failed[p] = true;
                    findings.push(
                        Finding::new(Check::DigestSignatureInvalid, &f.object, message)
                            .digest(&f.object)
                            .during(range),
                    );
                }
                None => findings.push(
                    Finding::new(
                        Check::DigestSignatureUnknown,
                        &f.object,
                        if newest.get(&stream_of(&f.object)) == Some(&p) {
                            "the newest digest of its folder: give its meta-signature (--signature or --signatures) to verify it"
                        } else {
                            "no later digest in the download carries its signature: give its meta-signature to verify it"
                        },
                    )
                    .digest(&f.object)
                    .during(range),
                ),
                Some(Ok(())) if !failed[p] => findings.push(
                    Finding::new(
                        Check::DigestOk,
                        &f.object,
                        format!("signature verified; lists {} trace files", f.digest.log_files.len()),
                    )
                    .digest(&f.object)
                    .during(range),
                ),
                Some(Ok(())) => {}
            }
        }

        let mut coverage = Coverage {
            listed: HashMap::new(),
            spans: HashMap::new(),
            judged: HashSet::new(),
            findings,
            digests: found
                .iter()
                .map(|f| {
                    (
                        f.object.clone(),
                        TimeRange::new(f.digest.start, f.digest.end),
                    )
                })
                .collect(),
        };
        for (d, f) in found.iter().enumerate() {
            for file in &f.digest.log_files {
                coverage
                    .listed
                    .entry(file.object.clone())
                    .or_default()
                    .push(Listing {
                        digest: d,
                        hash: file.hash.clone(),
                        algorithm: file.hash_algorithm.clone(),
                    });
            }
        }
        coverage.chains(&found, &next, &head);
        coverage
    }
}

/// A digest's signature check: `None` when there is no signature to check,
/// else whether it verified, and why not. `from_next` is the signature the
/// next digest carries; else the user's, if given.
fn signature_verdict(
    key: &PublicKey,
    f: &Found,
    from_next: Option<&str>,
    given: &HashMap<String, String>,
) -> Option<Result<(), String>> {
    if !f
        .digest
        .signature_algorithm
        .eq_ignore_ascii_case("SHA256withRSA")
    {
        return Some(Err(format!(
            "the signature algorithm {:?} is not SHA256withRSA",
            f.digest.signature_algorithm
        )));
    }
    let signature = from_next.or_else(|| {
        given
            .get(&f.object)
            .or_else(|| given.get(&f.digest.object))
            .map(String::as_str)
    })?;
    let message = f.digest.signed_message(&f.md5);
    Some(match key.check(message.as_bytes(), signature) {
        SignatureCheck::Valid => Ok(()),
        SignatureCheck::Invalid => Err(format!(
            "the signature {} does not verify with the {}-bit key over this file",
            if from_next.is_some() {
                "the next digest carries"
            } else {
                "given"
            },
            key.bits()
        )),
        SignatureCheck::Malformed(why) => Err(format!("the signature is malformed: {why}")),
    })
}

/// How a digest's chain reaches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Head {
    /// It names no previous digest: a chain starts.
    Start,
    /// Its previous digest is present.
    Linked,
    /// Its previous digest is absent.
    AfterMissing,
    /// Its previous digest is present but unreadable.
    AfterUnreadable,
}

/// What an unlisted trace file in a stretch of hours is.
#[derive(Clone, Debug)]
enum Span {
    /// A digest covers the hours: a file it does not list was inserted.
    Digest(usize),
    /// The digests of these hours are gone: no file can be vouched for, and
    /// a file here is unlisted.
    Lost(String),
    /// Verification was off, or CTS wrote no digest: nothing vouches.
    Unguarded(String),
}

/// A digest's listing of a trace file.
#[derive(Clone, Debug)]
struct Listing {
    /// The digest, by index.
    digest: usize,
    /// The hash it gives.
    hash: String,
    /// Its algorithm.
    algorithm: String,
}

/// Hours of a stream, and what they are.
type Stretch = (DateTime<Utc>, DateTime<Utc>, Span);

/// The checks' results so far, and the coverage trace files are judged by.
#[derive(Clone, Debug)]
pub struct Coverage {
    /// Object key → the digests that list it.
    listed: HashMap<String, Vec<Listing>>,
    /// Stream (service folder) → its stretches of hours, sorted.
    spans: HashMap<String, Vec<Stretch>>,
    judged: HashSet<String>,
    findings: Vec<Finding>,
    digests: Vec<(String, TimeRange)>,
}

impl Coverage {
    /// Groups digests by stream, follows each chain, and reports starts,
    /// ends and gaps between chains or fragments of one.
    fn chains(&mut self, found: &[Found], next: &[Option<usize>], head: &[Head]) {
        let mut streams: HashMap<String, Vec<usize>> = HashMap::new();
        for (d, f) in found.iter().enumerate() {
            streams.entry(stream_of(&f.object)).or_default().push(d);
        }
        let mut streams: Vec<(String, Vec<usize>)> = streams.into_iter().collect();
        streams.sort();
        for (stream, members) in streams {
            let mut lengths: Vec<Duration> = members
                .iter()
                .map(|&d| found[d].digest.end - found[d].digest.start)
                .filter(|l| *l > Duration::zero())
                .collect();
            lengths.sort();
            // Clamped: a hostile digest may claim a range of centuries.
            let period = lengths
                .get(lengths.len() / 2)
                .copied()
                .unwrap_or(Duration::hours(1))
                .clamp(Duration::minutes(1), Duration::days(1));
            // Fragments: from each digest no present digest links to, along
            // the links. A cycle (hostile digests naming each other) has no
            // such head; its members start fragments of their own.
            let mut visited = HashSet::new();
            let mut fragments: Vec<Vec<usize>> = Vec::new();
            let heads = members
                .iter()
                .copied()
                .filter(|&d| head[d] != Head::Linked)
                .chain(members.iter().copied());
            for start in heads {
                let mut fragment = Vec::new();
                let mut at = Some(start);
                while let Some(d) = at {
                    if !visited.insert(d) {
                        break;
                    }
                    fragment.push(d);
                    at = next[d];
                }
                if !fragment.is_empty() {
                    fragments.push(fragment);
                }
            }
            fragments.sort_by_key(|f| (found[f[0]].digest.start, f[0]));
            let mut spans = Vec::new();
            let mut tail: Option<usize> = None;
            for fragment in &fragments {
                let first = fragment[0];
                self.boundary(found, tail, first, head[first], period, &mut spans);
                for pair in fragment.windows(2) {
                    self.boundary(
                        found,
                        Some(pair[0]),
                        pair[1],
                        Head::Linked,
                        period,
                        &mut spans,
                    );
                }
                for &d in fragment {
                    spans.push((found[d].digest.start, found[d].digest.end, Span::Digest(d)));
                }
                tail = fragment.last().copied();
            }
            if let Some(t) = tail.filter(|&t| found[t].digest.is_chain_end) {
                self.chain_end(&found[t]);
            }
            spans.sort_by_key(|s| (s.0, s.1));
            self.spans.insert(stream, spans);
        }
    }

    /// What lies between digest `before` (the end of what came earlier in
    /// the stream, if anything) and digest `after`, reached as `how`.
    fn boundary(
        &mut self,
        found: &[Found],
        before: Option<usize>,
        after: usize,
        how: Head,
        period: Duration,
        spans: &mut Vec<Stretch>,
    ) {
        let a = &found[after];
        let chain_ended =
            before.is_some_and(|b| found[b].digest.is_chain_end) || a.digest.previous_is_chain_end;
        if let Some(b) = before.filter(|&b| found[b].digest.is_chain_end) {
            self.chain_end(&found[b]);
        }
        let restart = chain_ended && matches!(how, Head::Start | Head::Linked);
        if how == Head::Start || restart {
            let since = before.map(|b| found[b].digest.end);
            let message = match since {
                Some(since) if a.digest.start - since > JITTER => {
                    format!(
                        "a chain starts; no digest covers the {} before it",
                        hours(a.digest.start - since)
                    )
                }
                _ => "a chain starts".to_owned(),
            };
            self.findings.push(
                Finding::new(Check::ChainStart, &a.object, message)
                    .digest(&a.object)
                    .during(TimeRange {
                        start: since,
                        end: Some(a.digest.start),
                    }),
            );
        }
        // The hours the missing or unreadable previous digest covered.
        let mut uncovered_until = a.digest.start;
        if matches!(how, Head::AfterMissing | Head::AfterUnreadable) {
            uncovered_until = a
                .digest
                .start
                .checked_sub_signed(period)
                .unwrap_or(a.digest.start);
            let named = a.digest.previous.as_ref().map_or("", |p| p.object.as_str());
            let why = if how == Head::AfterMissing {
                format!("the digest of these hours, {named}, is missing")
            } else {
                format!("the digest of these hours, {named}, is unreadable")
            };
            spans.push((uncovered_until, a.digest.start, Span::Lost(why)));
        }
        let Some(b) = before else { return };
        let since = found[b].digest.end;
        if uncovered_until - since <= JITTER {
            return;
        }
        let range = TimeRange::new(since, uncovered_until);
        let length = hours(uncovered_until - since);
        if restart {
            spans.push((
                since,
                uncovered_until,
                Span::Unguarded(
                    "written while integrity verification was off, between two chains".to_owned(),
                ),
            ));
        } else if how == Head::Linked {
            // Linked across the gap: nothing was deleted, CTS wrote none.
            let mut finding = Finding::new(
                Check::HoursUncovered,
                &a.object,
                format!("CTS wrote no digest for {length}; the chain links across them, so none was deleted"),
            )
            .digest(&a.object)
            .during(range);
            finding.ok = None;
            self.findings.push(finding);
            spans.push((
                since,
                uncovered_until,
                Span::Unguarded("CTS wrote no digest for its hour".to_owned()),
            ));
        } else {
            let message = match how {
                Head::Start => format!(
                    "no digest covers {length}: the chain of {} stops without an end digest, and a new chain starts here",
                    found[b].object
                ),
                _ => format!(
                    "no digest covers {length} between {} and {}: more digests are missing than the one named",
                    found[b].object, a.object
                ),
            };
            self.findings.push(
                Finding::new(Check::HoursUncovered, &a.object, message)
                    .digest(&a.object)
                    .during(range),
            );
            spans.push((
                since,
                uncovered_until,
                Span::Lost(format!("no digest covers its hour ({length} uncovered)")),
            ));
        }
    }

    fn chain_end(&mut self, f: &Found) {
        self.findings.push(
            Finding::new(
                Check::ChainEnd,
                &f.object,
                "a chain ends: integrity verification was switched off",
            )
            .digest(&f.object)
            .during(TimeRange::new(f.digest.start, f.digest.end)),
        );
    }

    /// Judges a trace file at object key `object` whose stored bytes have
    /// the MD5 `md5_hex`, records the finding, and returns its check.
    pub fn judge(&mut self, object: &str, md5_hex: &str) -> Check {
        let finding = self.status(object, md5_hex);
        let check = finding.check;
        self.record(finding);
        check
    }

    /// Records a finding [`Coverage::status`] gave (as [`Coverage::judge`]
    /// does): the scan judges files on many threads against one shared
    /// coverage, and records their findings after.
    pub fn record(&mut self, finding: Finding) {
        if self.listed.contains_key(&finding.object) {
            self.judged.insert(finding.object.clone());
        }
        self.findings.push(finding);
    }

    /// What a trace file at object key `object`, whose stored bytes have the
    /// MD5 `md5`, is found to be; nothing is recorded.
    ///
    /// ```
    /// use cts_audit::integrity::{Check, Digests, PublicKey};
    /// let coverage = Digests::new(PublicKey::cts()).check();
    /// let finding = coverage.status("notes/x.json", "00");
    /// assert_eq!(finding.check, Check::TraceFileUnverified);
    /// assert!(finding.message.contains("not under a CloudTraces/ folder"));
    /// ```
    pub fn status(&self, object: &str, md5: &str) -> Finding {
        if let Some(listings) = self.listed.get(object) {
            // Never empty: an entry is made by its first listing.
            let listing = listings
                .iter()
                .find(|l| l.hash == md5)
                .unwrap_or(&listings[0]);
            let (expected, algorithm) = (&listing.hash, &listing.algorithm);
            let (digest, range) = &self.digests[listing.digest];
            return if expected == md5 {
                Finding::new(Check::TraceFileOk, object, "listed, with a matching MD5")
            } else if !algorithm.eq_ignore_ascii_case("MD5") {
                Finding::new(
                    Check::TraceFileModified,
                    object,
                    format!("the digest's hash algorithm {algorithm:?} is not MD5, so the file cannot be checked"),
                )
            } else {
                Finding::new(
                    Check::TraceFileModified,
                    object,
                    format!("its MD5 is {md5}, but the digest lists {expected}"),
                )
            }
            .digest(digest)
            .during(*range);
        }
        let time = file_time(object);
        let Some(spans) = self.spans.get(&stream_of(object)) else {
            return Finding::new(
                Check::TraceFileUnverified,
                object,
                if object.starts_with("CloudTraces/") {
                    "no digest of its service folder was found"
                } else {
                    "not under a CloudTraces/ folder, so no digest can list it"
                },
            );
        };
        let Some(time) = time else {
            return Finding::new(
                Check::TraceFileUnlisted,
                object,
                "no digest lists it, and its name carries no delivery time",
            );
        };
        let during = TimeRange::new(time, time);
        let span = spans
            .iter()
            .find(|(start, end, _)| *start <= time && time < *end);
        match span {
            Some((_, _, Span::Digest(d))) => {
                let (digest, range) = &self.digests[*d];
                Finding::new(
                    Check::TraceFileUnlisted,
                    object,
                    "the digest of its hour does not list it: inserted or renamed",
                )
                .digest(digest)
                .during(*range)
            }
            Some((start, end, Span::Lost(why))) => Finding::new(
                Check::TraceFileUnlisted,
                object,
                format!("no digest lists it: {why}"),
            )
            .during(TimeRange::new(*start, *end)),
            Some((start, end, Span::Unguarded(why))) => {
                Finding::new(Check::TraceFileUnverified, object, why.clone())
                    .during(TimeRange::new(*start, *end))
            }
            None => {
                let before_all = spans.first().is_some_and(|s| time < s.0);
                Finding::new(
                    Check::TraceFileUnverified,
                    object,
                    if before_all {
                        "delivered before the oldest digest of its service folder"
                    } else {
                        "delivered after the newest digest of its service folder"
                    },
                )
                .during(during)
            }
        }
    }

    /// How many digests were read whole and checked.
    pub fn digest_count(&self) -> usize {
        self.digests.len()
    }

    /// Reports an input that could not be read.
    pub fn unreadable(&mut self, object: &str, why: &str) {
        self.findings
            .push(Finding::new(Check::Unreadable, object, why));
    }

    /// Reports every listed trace file that was never judged as missing,
    /// and returns all findings, by time, then object, then check.
    pub fn finish(mut self) -> Vec<Finding> {
        let mut missing: Vec<(&String, usize)> = self
            .listed
            .iter()
            .filter(|(object, _)| !self.judged.contains(*object))
            .map(|(object, listings)| (object, listings[0].digest))
            .collect();
        missing.sort();
        let mut findings = std::mem::take(&mut self.findings);
        for (object, d) in missing {
            let (digest, range) = &self.digests[d];
            findings.push(
                Finding::new(
                    Check::TraceFileMissing,
                    object,
                    "listed by a digest, but not in the download",
                )
                .digest(digest)
                .during(*range),
            );
        }
        findings.sort_by(|a, b| {
            let at = |f: &Finding| f.time_range.and_then(|r| r.end.or(r.start));
            (at(a), &a.object, a.check).cmp(&(at(b), &b.object, b.check))
        });
        findings
    }
}

/// The stream of an object ([`stream_key`]); outside `CloudTraces/`, its folder.
fn stream_of(object: &str) -> String {
    stream_key(object).unwrap_or_else(|| {
        object
            .rsplit_once('/')
            .map_or("", |(folder, _)| folder)
            .to_owned()
    })
}

/// A duration for people: `2 hours`, `35 minutes`.
fn hours(d: Duration) -> String {
    match d.num_minutes() {
        m if m % 60 == 0 && m >= 120 => format!("{} hours", m / 60),
        60 => "1 hour".to_owned(),
        m => format!("{m} minutes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(name: &str, hour: u32, previous: Option<&str>) -> Digest {
        let time = |h: u32| format!("2024-06-19T{h:02}-09-17Z");
        let object = format!("CloudTraces/r/2024/6/19/t/Digest/CBC/{name}.json.gz");
        let json = serde_json::json!({
            "project_id": "p", "digest_start_time": time(hour), "digest_end_time": time(hour + 1),
            "digest_bucket": "b", "digest_object": object,
            "digest_signature_algorithm": "SHA256withRSA", "digest_end": false,
            "previous_digest_object": previous.map(|p| format!("CloudTraces/r/2024/6/19/t/Digest/CBC/{p}.json.gz")),
            "previous_digest_hash_value": "00", "previous_digest_hash_algorithm": "MD5",
            "previous_digest_signature": "00", "previous_digest_end": false, "log_files": [],
        });
        Digest::parse(json.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn digests_naming_each_other_in_a_cycle_end_the_walk() {
        // Hostile digests whose links go round: every one has a present
        // predecessor, so no chain has a head; the walk must still end.
        let mut digests = Digests::new(PublicKey::cts());
        for (name, hour, previous) in [("a", 1, "c"), ("b", 2, "a"), ("c", 3, "b")] {
            let d = digest(name, hour, Some(previous));
            digests.add_read(d.object.clone(), "11".into(), d);
        }
        let findings = digests.check().finish();
        let hash_mismatches = findings
            .iter()
            .filter(|f| f.check == Check::DigestHashMismatch)
            .count();
        assert_eq!(hash_mismatches, 3, "{findings:#?}");
        assert!(findings.iter().all(|f| f.check != Check::DigestOk));
    }

    #[test]
    fn a_digest_naming_itself_is_its_own_missing_predecessor() {
        let mut digests = Digests::new(PublicKey::cts());
        let d = digest("a", 1, Some("a"));
        digests.add_read(d.object.clone(), "11".into(), d);
        let findings = digests.check().finish();
        assert!(findings.iter().any(|f| f.check == Check::DigestMissing));
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(hours(Duration::hours(1)), "1 hour");
        assert_eq!(hours(Duration::hours(3)), "3 hours");
        assert_eq!(hours(Duration::minutes(35)), "35 minutes");
    }
}
