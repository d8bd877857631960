//! The workers: each parses, classifies and judges one unit (or one whole small file) and returns what the ledger needs, in a compact form.

use super::*;

/// The compact result of one record, from a worker to the ordering thread.
pub(super) struct Outcome {
    /// The dedup key of its trace id, and the print of what it is.
    pub(super) key: Option<(u128, u32)>,
    /// Where its text is in [`UnitResult::texts`] (when it has a key): a
    /// conflict under a reused id is read again from it.
    pub(super) text: Option<(usize, usize)>,
    /// Where it was read.
    pub(super) location: Location,
    /// The key fields it gave twice, when it was read salvaged.
    pub(super) malformed: Option<Box<str>>,
    pub(super) kind: KindTag,
    pub(super) severity: Severity,
    pub(super) failed: bool,
    /// When it happened (epoch milliseconds), for [`Stats::first_time_ms`].
    pub(super) time_ms: Option<i64>,
    /// Where its emitted form is, when the record was selected.
    pub(super) rendered: Option<Span>,
    /// `service/trace_name` of an uncatalogued billing record.
    pub(super) uncatalogued_name: Option<String>,
    /// A candidate for the rules, kept until every file is read.
    pub(super) held: Option<Box<Packed>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum KindTag {
    Catalogued,
    /// Catalogued, of scope `audit`: CTS's own tracker operations.
    AuditTrail,
    Uncatalogued,
    Other,
}

/// What a worker made of one unit (or one whole small file).
#[derive(Default)]
pub(super) struct UnitResult {
    pub(super) outcomes: Vec<Outcome>,
    pub(super) output: Emitted,
    /// The text of the records with a trace id: the unit's own bytes, then
    /// the texts that are not in them (CSV rows, records read salvaged).
    pub(super) texts: Vec<u8>,
    /// Index of the file in the scan's file list.
    pub(super) file_index: u32,
    pub(super) problems: Vec<ScanError>,
    pub(super) record_errors: u64,
    pub(super) digests: u64,
    /// Pages of bill records found instead of traces.
    pub(super) bill_pages: u64,
    pub(super) bytes: u64,
    /// Whole-file results only: the file was empty or unreadable.
    pub(super) skipped: bool,
    /// Whole-file results only: the size on disk, for progress.
    pub(super) disk_bytes: u64,
    /// Whole-file results only: a tar archive, not read here.
    pub(super) is_archive: bool,
    /// Whole-file results only, `scan --verify`: what the check of the
    /// file found.
    pub(super) integrity: Option<crate::integrity::Finding>,
    /// Records without a readable time that a time bound kept.
    pub(super) untimed: u64,
    /// Warnings about records that were still read.
    pub(super) record_warnings: u64,
    /// Problems past [`ScanOptions::max_errors`] in this unit, by kind:
    /// counted, not kept one by one.
    pub(super) unlisted: BTreeMap<String, u64>,
    /// The file those problems are in.
    pub(super) unlisted_file: Option<PathBuf>,
}

/// Parses and judges the records of one unit. `WHOLE` parses every record
/// whole at once, for scans that emit every record (no severity floor),
/// where a head parse would only come before a full one.
pub(super) struct Worker<'o, const WHOLE: bool> {
    pub(super) options: &'o ScanOptions,
    pub(super) file: &'o Path,
    /// The file's index in the scan's file list.
    pub(super) file_index: u32,
    /// The unit's bytes, where most records' texts are.
    pub(super) unit_bytes: &'o [u8],
    /// Texts of records that are not in `unit_bytes`, end to end.
    pub(super) extra: Vec<u8>,
    pub(super) result: UnitResult,
    /// The key fields the record being visited gave twice, when it was
    /// read salvaged.
    pub(super) malformed: Option<String>,
    /// `scan --verify`: what the check of the unit's file found.
    pub(super) check: Option<&'o FileCheck>,
}

impl<const WHOLE: bool> Visitor for Worker<'_, WHOLE> {
    const FULL: bool = WHOLE;

    fn trace(&mut self, trace: &Trace<'_>, text: &str, location: Location) {
        self.whole(trace, text, location);
    }

    fn digest(&mut self) {
        self.result.digests += 1;
    }

    fn bill_page(&mut self) {
        self.result.bill_pages += 1;
    }

    fn repaired(&mut self, location: Location, warnings: &[String], duplicate_keys: &[String]) {
        for warning in warnings {
            self.record_warning(location, format!("damaged record read salvaged: {warning}"));
        }
        self.malformed = (!duplicate_keys.is_empty()).then(|| duplicate_keys.join(", "));
    }

    fn problem(&mut self, location: Location, message: String) {
        self.result.record_errors += 1;
        self.warning(location, message);
    }

    /// Most records are neither wanted in the output nor a rule's
    /// candidate: their head decides that, and only the rest are parsed
    /// whole and given a verdict (user, time text, source).
    fn head(&mut self, head: &TraceHead<'_>, text: &str, location: Location) {
        let class = classify(head);
        let options = self.options;
        let mut facts = Facts::of_class(&class, head.rating(), self.malformed.is_some());
        facts.tampered = self.check.is_some_and(|c| c.integrity.is_problem());
        // Parsed whole: a possible candidate, or a record with a field to warn about.
        let maybe_candidate = options.rules.may_be_candidate(&facts)
            || options.rules.has_user_rules()
            || head.code.is_some_and(|c| c.1.is_some())
            || head.unreadable_time().is_some();
        if class.severity >= options.min_severity || maybe_candidate {
            match Trace::from_str(text) {
                Ok(trace) => self.whole(&trace, text, location),
                Err(err) => self.problem(location, format!("invalid trace: {err}")),
            }
        } else {
            self.count(head, text, location, &class, None, None);
        }
    }
}

impl<const WHOLE: bool> Worker<'_, WHOLE> {
    /// A warning about a record that is still read: a field nulled,
    /// repaired or read with a note. Counted in `record_warnings`.
    pub(super) fn record_warning(&mut self, location: Location, message: String) {
        self.result.record_warnings += 1;
        self.warning(location, message);
    }

    /// A problem with a record that is still read: reported, but not
    /// counted as a record error.
    pub(super) fn warning(&mut self, location: Location, message: String) {
        if self.result.problems.len() >= self.options.max_errors {
            *self
                .result
                .unlisted
                .entry(problem_kind(&message).to_owned())
                .or_default() += 1;
            self.result
                .unlisted_file
                .get_or_insert_with(|| self.file.to_path_buf());
            return;
        }
        self.result.problems.push(ScanError {
            file: self.file.to_path_buf(),
            location: Some(location),
            message: clip_message(message),
        });
    }

    /// A record parsed whole: held for the rules, or rendered.
    pub(super) fn whole(&mut self, trace: &Trace<'_>, text: &str, location: Location) {
        let class = classify(trace);
        let options = self.options;
        // The source is written only when the record is rendered: a held
        // candidate keeps its file index and location instead.
        if let Some(field) = trace.unreadable_time() {
            let kept = match trace.time_ms() {
                Some(_) => "timed by the other time field",
                None => "without a time",
            };
            self.record_warning(
                location,
                format!("`{field}` is not a time (epoch digits from 2000 to 2100, console text or RFC 3339); the record is kept, {kept}"),
            );
        }
        if let Some(why) = trace.code.and_then(|c| c.1) {
            let read = match trace.code.and_then(|c| c.0) {
                Some(code) => format!("read as {code}"),
                None => "read as no status".to_owned(),
            };
            self.record_warning(location, format!("`code` is {why}: {read}"));
        }
        let (user, user_problem) = trace.user_checked();
        if let Some(why) = user_problem {
            self.record_warning(location, format!("`user` {why}"));
        }
        let mut verdict = Verdict::new(trace, user, &class, String::new());
        verdict.malformed = self.malformed.take();
        if let Some(check) = self.check {
            verdict.integrity = Some(check.integrity);
            verdict.integrity_note = check.note.clone();
        }
        verdict.bill_action = bill_action(trace, &verdict, options);
        let malformed = verdict.malformed.as_deref().map(Box::from);
        if verdict.time_ms.is_none() && options.filters.bounds_time() {
            self.result.untimed += 1;
            if trace.unreadable_time().is_none() {
                self.warning(
                    location,
                    "no `time` or `record_time`: kept by --since/--until, which cannot place it"
                        .into(),
                );
            }
        }
        if options.rules.is_candidate(&verdict) {
            // The rules that need no other record judge it here, in
            // parallel; only the windowed rules wait for every file.
            let windowed = options.rules.judge_alone(&mut verdict);
            let held = Box::new(Packed::new(verdict, windowed, self.file_index, location));
            return self.count(trace, text, location, &class, None, Some((held, malformed)));
        }
        verdict.severity = class.severity;
        verdict.source = location.source(self.file);
        let rendered = (class.severity >= options.min_severity
            && options.filters.matches(&verdict))
        .then(|| self.result.output.push(verdict, options));
        self.count(trace, text, location, &class, rendered, None);
    }

    /// Records the outcome the ledger needs: dedup key, kind, severity,
    /// and where the record's text is, should its id turn out reused.
    /// A held candidate comes with the key fields it gave twice, if any.
    pub(super) fn count<'a>(
        &mut self,
        fields: &impl TraceFields<'a>,
        text: &str,
        location: Location,
        class: &Classification,
        rendered: Option<Span>,
        held: Option<(Box<Packed>, Option<Box<str>>)>,
    ) {
        let kind = match class.kind {
            Kind::Catalogued(_) if !class.is_billing() => KindTag::AuditTrail,
            Kind::Catalogued(_) => KindTag::Catalogued,
            Kind::UncataloguedBilling => KindTag::Uncatalogued,
            Kind::OtherService => KindTag::Other,
        };
        let or_dash = |t: &str| {
            if t.is_empty() {
                "-".to_owned()
            } else {
                t.to_owned()
            }
        };
        let uncatalogued_name = (kind == KindTag::Uncatalogued)
            .then(|| format!("{}/{}", or_dash(fields.service()), or_dash(fields.name())));
        let key = fields
            .trace_id()
            .filter(|id| !id.is_empty())
            .map(|id| (dedup_key(id), record_print(fields)));
        let text = key.map(|_| self.text_at(text));
        let (held, malformed) = held.map_or((None, None), |(packed, keys)| (Some(packed), keys));
        self.result.outcomes.push(Outcome {
            key,
            text,
            location,
            malformed,
            kind,
            // A held record's severity is decided by the rules once every file is read.
            severity: if held.is_some() {
                Severity::None
            } else {
                class.severity
            },
            failed: class.failed,
            time_ms: fields.time_ms(),
            rendered,
            uncatalogued_name,
            held,
        });
    }

    /// Where `text` is: a range of the unit's bytes when it lies in them
    /// (no copy), else a range past them, in `extra` (copied).
    pub(super) fn text_at(&mut self, text: &str) -> (usize, usize) {
        // Addresses compared, never dereferenced: safe.
        let base = self.unit_bytes.as_ptr() as usize;
        let start = text.as_ptr() as usize;
        if start >= base && start + text.len() <= base + self.unit_bytes.len() {
            return (start - base, start - base + text.len());
        }
        let at = self.unit_bytes.len() + self.extra.len();
        self.extra.extend_from_slice(text.as_bytes());
        (at, at + text.len())
    }
}

/// `scan --bills`: the billing action a catalogued trace records, with the
/// ids it carries, for the join. A failed attempt moved no money.
pub(super) fn bill_action(
    trace: &Trace<'_>,
    verdict: &Verdict<'_>,
    options: &ScanOptions,
) -> Option<String> {
    if options.bills.is_none() || !verdict.catalogued || verdict.failed {
        return None;
    }
    crate::bills::join::BillAction::of(trace).map(|action| action.encode())
}

pub(super) fn process_unit(
    unit: Unit,
    file: &Path,
    options: &ScanOptions,
    check: Option<&FileCheck>,
) -> UnitResult {
    if options.min_severity == Severity::None {
        process_unit_as::<true>(unit, file, options, check)
    } else {
        process_unit_as::<false>(unit, file, options, check)
    }
}

pub(super) fn process_unit_as<const WHOLE: bool>(
    unit: Unit,
    file: &Path,
    options: &ScanOptions,
    check: Option<&FileCheck>,
) -> UnitResult {
    // File lists are far shorter than 4 billion.
    let file_index = u32::try_from(unit.file).unwrap_or(u32::MAX);
    let mut worker = Worker::<WHOLE> {
        options,
        file,
        file_index,
        unit_bytes: &unit.bytes,
        extra: Vec::new(),
        result: UnitResult {
            file_index,
            bytes: unit.bytes.len() as u64,
            ..UnitResult::default()
        },
        malformed: None,
        check,
    };
    records::visit_unit(&unit, &mut worker);
    let Worker {
        mut result, extra, ..
    } = worker;
    // The unit's bytes become the texts, with the copied ones after them.
    result.texts = unit.bytes;
    result.texts.extend_from_slice(&extra);
    result
}

/// Reads one whole file and processes all of it (the small-file path).
pub(super) fn process_file(input: &InputFile, index: usize, options: &ScanOptions) -> UnitResult {
    let mut result = UnitResult {
        disk_bytes: input.size,
        ..UnitResult::default()
    };
    if let Some(coverage) = options
        .integrity
        .as_ref()
        .filter(|_| crate::integrity::object_key(&input.path).is_some())
    {
        // Read whole, hashed, then read for records from memory: one read.
        let bytes = match verify::read_small(&input.path, SMALL_FILE_BYTES * 4) {
            Ok(bytes) => bytes,
            Err(err) => return refused(&input.path, format!("cannot open: {err}"), result),
        };
        return match input::open_member(&bytes[..]) {
            Ok(mut reader) => {
                let check = FileCheck::of_bytes(coverage, &input.path, &bytes);
                let mut result = process_content(
                    &mut reader,
                    &input.path,
                    index,
                    options,
                    Some(&check),
                    result,
                );
                result.integrity = Some(check.finding);
                result
            }
            Err(input::InputError::TarInTar) => {
                result.is_archive = true;
                result
            }
            Err(err) => refused(&input.path, format!("cannot open: {err}"), result),
        };
    }
    // Outside `CloudTraces/` no digest can list a file: it is judged
    // unverified without being hashed.
    let check = options
        .integrity
        .as_ref()
        .map(|coverage| FileCheck::new(coverage, &input.path, Ok("")));
    match input::open(input) {
        Ok(Opened::Content(mut reader)) => {
            let mut result = process_content(
                &mut *reader,
                &input.path,
                index,
                options,
                check.as_ref(),
                result,
            );
            result.integrity = check.map(|c| c.finding);
            result
        }
        Ok(Opened::Tar(_)) => {
            // Its members are streamed in order by the ledger's thread.
            result.is_archive = true;
            result
        }
        Err(err) => refused(&input.path, format!("cannot open: {err}"), result),
    }
}

/// Processes a small member of a tar archive, read whole.
pub(super) fn process_member(member: &SmallMember, options: &ScanOptions) -> UnitResult {
    let path = member.path.as_path();
    let check = options
        .integrity
        .as_ref()
        .map(|coverage| match &member.cut {
            None => FileCheck::of_bytes(coverage, path, &member.bytes),
            Some(_) => FileCheck::new(
                coverage,
                path,
                Err("cut short inside the archive: not hashed whole"),
            ),
        });
    let mut result = match input::open_member(&member.bytes[..]) {
        Ok(mut reader) => process_content(
            &mut reader,
            path,
            member.index,
            options,
            check.as_ref(),
            UnitResult::default(),
        ),
        Err(message) => return refused(path, message.to_string(), UnitResult::default()),
    };
    result.integrity = check.map(|c| c.finding);
    if let Some(err) = &member.cut {
        result.problems.push(ScanError {
            file: path.to_path_buf(),
            location: None,
            message: format!(
                "cut short inside the archive ({err}); the records before the cut are read"
            ),
        });
    }
    result
}

/// A file that is not read, and why.
pub(super) fn refused(path: &Path, message: String, mut result: UnitResult) -> UnitResult {
    result.skipped = true;
    result.problems.push(ScanError {
        file: path.to_path_buf(),
        location: None,
        message,
    });
    result
}

/// Reads one whole file's content and processes all of it.
pub(super) fn process_content(
    reader: &mut dyn std::io::Read,
    path: &Path,
    index: usize,
    options: &ScanOptions,
    check: Option<&FileCheck>,
    mut result: UnitResult,
) -> UnitResult {
    result.file_index = u32::try_from(index).unwrap_or(u32::MAX);
    let mut units = UnitReader::new(index, reader).with_limits(options.limits);
    // Each unit is processed as it is cut: a small file that decompresses
    // to gigabytes never has more than one block in memory.
    while let Some(unit) = units.next_unit(&mut Vec::new) {
        let part = process_unit(unit, path, options, check);
        let moved = result.output.append(part.output);
        let text_offset = result.texts.len();
        result
            .outcomes
            .extend(part.outcomes.into_iter().map(|mut o| {
                o.rendered = o.rendered.map(&moved);
                o.text = o.text.map(|(s, e)| (s + text_offset, e + text_offset));
                o
            }));
        result.texts.extend_from_slice(&part.texts);
        result.problems.extend(part.problems);
        result.untimed += part.untimed;
        result.record_warnings += part.record_warnings;
        for (kind, count) in part.unlisted {
            *result.unlisted.entry(kind).or_default() += count;
        }
        result.unlisted_file = result.unlisted_file.or(part.unlisted_file);
        result.record_errors += part.record_errors;
        result.digests += part.digests;
        result.bill_pages += part.bill_pages;
        result.bytes += part.bytes;
    }
    let (container, mut problems) = (units.container(), units.take_problems());
    if units.refused() {
        let why = problems
            .pop()
            .map_or_else(String::new, |p| p.error.to_string());
        return refused(path, why, result);
    }
    // A problem at a record (a truncated last element) loses that record.
    result.record_errors += problems.iter().filter(|p| p.location.is_some()).count() as u64;
    let read_problems = problems.into_iter().map(|p| ScanError {
        file: path.to_path_buf(),
        location: p.location,
        message: p.error.to_string(),
    });
    result.problems.extend(read_problems);
    let had_records = !result.outcomes.is_empty() || result.record_errors > 0;
    if is_empty_file(container, had_records, !result.problems.is_empty()) {
        result.skipped = true;
        result.problems.push(ScanError {
            file: path.to_path_buf(),
            location: None,
            message: EMPTY_FILE.into(),
        });
    }
    result
}

/// The longest problem message kept whole. Messages may quote values from
/// the input (serde_json's do), and one 20 MB string must not make a 20 MB
/// line on stderr.
pub(super) const MAX_MESSAGE_BYTES: usize = 400;

/// `message`, cut in its middle to [`MAX_MESSAGE_BYTES`] when it is longer:
/// its start (what is wrong) and its end (where) are kept.
pub(super) fn clip_message(message: String) -> String {
    if message.len() <= MAX_MESSAGE_BYTES {
        return message;
    }
    let floor = |mut at: usize| {
        while !message.is_char_boundary(at) {
            at -= 1;
        }
        at
    };
    let head = floor(MAX_MESSAGE_BYTES * 2 / 3);
    let tail = floor(message.len() - MAX_MESSAGE_BYTES / 4);
    format!(
        "{} … [{} bytes cut] … {}",
        &message[..head],
        tail - head,
        &message[tail..]
    )
}

/// The kind of a problem, for counting those past the cap: its message up
/// to the first colon (`invalid trace`), at most 60 bytes.
pub(super) fn problem_kind(message: &str) -> &str {
    let kind = message.split(':').next().unwrap_or(message).trim();
    let mut end = kind.len().min(60);
    while !kind.is_char_boundary(end) {
        end -= 1;
    }
    &kind[..end]
}
