//! The ledger: the one thread that takes the workers' results in input order, deduplicates, counts, holds rule candidates and hands records to the sink.

use super::*;

/// The single thread that sees every result in input order.
pub(super) struct Ledger<'s> {
    pub(super) stats: Stats,
    /// `scan --bills`: the billing actions held, for the join.
    pub(super) actions: Vec<crate::bills::join::ActionAt>,
    /// The bytes of their ids, and the actions past [`crate::bills::join::MAX_ACTION_BYTES`].
    pub(super) action_bytes: usize,
    pub(super) actions_not_joined: u64,
    /// Candidates for the rules, held until every file is read.
    pub(super) held: Held,
    pub(super) seen: SeenIds,
    /// One unit's keys, and what each was: reused buffers.
    pub(super) keys: Vec<(u128, u32)>,
    pub(super) found: Vec<Seen>,
    /// Unique records by severity, by [`Severity`]'s order: counted here,
    /// and named in [`Stats::by_severity`] when the scan ends.
    pub(super) severities: [u64; Severity::ALL.len()],
    /// How many inputs were found: archive members are numbered after them.
    pub(super) found_files: usize,
    /// `scan --verify`: what the check of each file read found.
    pub(super) file_checks: Vec<crate::integrity::Finding>,
    /// The paths of archive members read so far, numbered from `found_files`.
    pub(super) members: Vec<PathBuf>,
    /// Problems kept in [`Stats::error_list`] at most.
    pub(super) max_errors: usize,
    /// The sink asked the scan to stop: nothing more is read or written.
    pub(super) stopped: bool,
    pub(super) sink: &'s mut dyn Sink,
    pub(super) options: &'s ScanOptions,
}

impl Ledger<'_> {
    /// Counts and hands on one written batch, in order.
    pub(super) fn emit(&mut self, written: Written) {
        let Written { mut out, records } = written;
        for (severity, span) in records {
            let opened = span.map(|span| out.open(span));
            self.output(severity, opened.as_ref().and_then(|o| o.record()));
        }
    }

    /// The stats, with the severities named.
    pub(super) fn finish(mut self) -> Stats {
        if let Some(coverage) = &self.options.integrity {
            let files = std::mem::take(&mut self.file_checks);
            self.stats.integrity = Some(IntegrityReport::new(coverage, files));
        }
        for (severity, &count) in Severity::ALL.iter().zip(&self.severities) {
            if count > 0 {
                self.stats.by_severity.insert(severity.as_str(), count);
            }
        }
        self.stats
    }

    /// Counts one unique record's outcome: written out when rendered,
    /// filtered out when not.
    pub(super) fn output(&mut self, severity: Severity, rendered: Option<Record<'_>>) {
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
    pub(super) fn take_file(&mut self, mut result: UnitResult) {
        self.file_checks.extend(result.integrity.take());
        let had_records = !result.outcomes.is_empty() || result.record_errors > 0;
        let not_traces = result.digests + result.bill_pages;
        account_file(&mut self.stats, result.skipped, had_records, not_traces);
        self.sink.progress(result.disk_bytes);
        self.take(result);
    }

    /// Counts one file read to its end: skipped (refused, empty), a
    /// digest, or a trace file, with the problems reading it met.
    pub(super) fn end_file(&mut self, mut end: FileEnd, any_records: bool, digests: u64) {
        self.sink.progress(end.disk_bytes);
        self.file_checks.extend(end.integrity.take());
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
        let had_problems = !end.problems.is_empty();
        for problem in end.problems {
            self.stats.record_errors += u64::from(problem.location.is_some());
            self.problem(ScanError {
                file: end.path.clone(),
                location: problem.location,
                message: problem.error.to_string(),
            });
        }
        let empty = is_empty_file(end.container, any_records, had_problems);
        if empty {
            self.problem(ScanError {
                file: end.path,
                location: None,
                message: EMPTY_FILE.into(),
            });
        }
        account_file(&mut self.stats, empty, any_records, digests);
    }

    /// Candidates could not be spilled: they stay in memory, none is lost.
    pub(super) fn spill_failed(&mut self, err: std::io::Error) {
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
    pub(super) fn problem(&mut self, mut problem: ScanError) {
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
    pub(super) fn unlisted(&mut self, file: &Path, kind: &str, count: u64) {
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
    pub(super) fn take(&mut self, mut result: UnitResult) -> Vec<u8> {
        self.stats.bytes += result.bytes;
        self.stats.untimed_kept += result.untimed;
        self.stats.record_warnings += result.record_warnings;
        self.stats.record_errors += result.record_errors;
        self.stats.digests_skipped += result.digests;
        self.stats.bill_pages_skipped += result.bill_pages;
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
            if let Some(time) = outcome.time_ms {
                crate::trace::widen_time_range(
                    &mut stats.first_time_ms,
                    &mut stats.last_time_ms,
                    time,
                );
            }
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
                    continue;
                }
                self.note_action(&held);
                if let Some(err) = self.held.push(*held) {
                    self.spill_failed(err);
                }
                continue;
            }
            let opened = outcome.rendered.map(|span| result.output.open(span));
            self.output(outcome.severity, opened.as_ref().and_then(|o| o.record()));
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
    /// `scan --bills`: keeps a held billing action for the join, under the
    /// number the held candidates will give it.
    fn note_action(&mut self, held: &Packed) {
        let Some(encoded) = held.bill_action() else {
            return;
        };
        if self.action_bytes + encoded.len() > crate::bills::join::MAX_ACTION_BYTES {
            if self.actions_not_joined == 0 {
                self.problem(ScanError {
                    file: PathBuf::from("-"),
                    location: None,
                    message: format!(
                        "--bills: the billing actions' ids passed {} MiB; later actions get no cost",
                        crate::bills::join::MAX_ACTION_BYTES >> 20
                    ),
                });
            }
            self.actions_not_joined += 1;
            return;
        }
        let Some(bill) = crate::bills::join::BillAction::decode(encoded) else {
            return;
        };
        self.action_bytes += encoded.len();
        self.actions.push(crate::bills::join::ActionAt {
            seq: self.held.count(),
            time_ms: held.time_ms(),
            bill,
        });
    }

    pub(super) fn reread(
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
        verdict.bill_action = bill_action(&trace, &verdict, self.options);
        let windowed = self.options.rules.judge_alone(&mut verdict);
        Some(Packed::new(verdict, windowed, file, location))
    }
}

/// Results that arrive out of order, numbered, handed back in their order:
/// the reorder buffer between the pool and the ordering thread.
pub(super) struct InOrder<T> {
    /// The number of the next result to hand back.
    pub(super) next: u64,
    pub(super) waiting: BTreeMap<u64, T>,
}

impl<T> InOrder<T> {
    pub(super) fn new() -> Self {
        InOrder {
            next: 0,
            waiting: BTreeMap::new(),
        }
    }

    /// Keeps result number `seq` until its turn.
    pub(super) fn put(&mut self, seq: u64, item: T) {
        self.waiting.insert(seq, item);
    }

    /// The next result in order, once it has arrived.
    pub(super) fn pop(&mut self) -> Option<T> {
        let item = self.waiting.remove(&self.next)?;
        self.next += 1;
        Some(item)
    }
}
