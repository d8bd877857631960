//! The rules' candidates, held until every file is read.
//!
//! Windowed rules must see candidates in time order across all files, so the
//! scan holds them and judges them at the end. Each is packed into one
//! allocation ([`Packed`]): its texts end to end, its source as a file index
//! and a location instead of a path. When the packed candidates pass a
//! memory budget they are sorted and spilled to an unnamed temporary file as
//! a run, and the end of the scan merges the runs: memory stays within the
//! budget however large the input.

use crate::catalog::{self, Severity};
use crate::records::Location;
use crate::verdict::{PackedTexts, Verdict};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, Write};

/// One candidate: a [`Verdict`] that the rules needing no other record have
/// judged ([`RuleSet::judge_alone`](crate::rules::RuleSet)), waiting for the
/// windowed rules. Its texts share one allocation.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Packed {
    /// Input order, which breaks ties between equal times.
    seq: u64,
    time_ms: Option<i64>,
    /// The texts, in one allocation.
    texts: PackedTexts,
    code: Option<u16>,
    root_user: Option<bool>,
    failed: bool,
    billing: bool,
    catalogued: bool,
    /// [`catalog::Entry::id`] of the catalog entry.
    entry: Option<u16>,
    /// Index of the file in the scan's file list.
    file: u32,
    location: Location,
    /// The judgment so far: the severity (its index in [`Severity::ALL`]),
    /// the rules that fired and why.
    severity: u8,
    rules: Vec<Cow<'static, str>>,
    reasons: Vec<String>,
    /// The windowed rules must still see it: it is not allow-listed.
    windowed: bool,
    /// `scan --verify`: what the check of its file found.
    integrity: Option<crate::integrity::Integrity>,
    /// `scan --bills`: the billing action it is, with its ids.
    bill_action: Option<Box<str>>,
    /// `scan --bills`: what the join found it cost; set when it is judged,
    /// after any spill.
    #[serde(skip)]
    cost: Option<Box<crate::bills::join::Cost>>,
}

impl Packed {
    /// Packs a verdict and its judgment so far; `windowed` says whether the
    /// windowed rules must still see it. Its source is not kept: it is
    /// rebuilt from `file` and `location`.
    pub(crate) fn new(
        verdict: Verdict<'_>,
        windowed: bool,
        file: u32,
        location: Location,
    ) -> Packed {
        let mut verdict = verdict;
        let texts = PackedTexts::pack(&verdict.take_texts());
        Packed {
            seq: 0,
            time_ms: verdict.time_ms,
            texts,
            code: verdict.code,
            root_user: verdict.root_user,
            failed: verdict.failed,
            billing: verdict.billing,
            catalogued: verdict.catalogued,
            entry: verdict.entry.map(|e| e.id),
            file,
            location,
            severity: verdict.severity as u8,
            rules: verdict.rules,
            reasons: verdict.reasons,
            windowed,
            integrity: verdict.integrity,
            bill_action: verdict.bill_action.map(String::into_boxed_str),
            cost: None,
        }
    }

    /// Its number in input order.
    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }

    /// When it happened.
    pub(crate) fn time_ms(&self) -> Option<i64> {
        self.time_ms
    }

    /// `scan --bills`: the billing action it is ([`BillAction::encode`](crate::bills::join::BillAction::encode)).
    pub(crate) fn bill_action(&self) -> Option<&str> {
        self.bill_action.as_deref()
    }

    /// `scan --bills`: gives it what the join found it cost.
    pub(crate) fn set_cost(&mut self, cost: crate::bills::join::Cost) {
        self.cost = Some(Box::new(cost));
    }

    /// Index of the file in the scan's file list.
    pub(crate) fn file(&self) -> u32 {
        self.file
    }

    /// Whether the windowed rules must still see it.
    pub(crate) fn windowed(&self) -> bool {
        self.windowed
    }

    /// Where in its file it was read.
    pub(crate) fn location(&self) -> Location {
        self.location
    }

    /// Heap and inline bytes, for the memory budget.
    fn size(&self) -> usize {
        std::mem::size_of::<Packed>()
            + self.texts.len()
            + self.rules.iter().map(|r| r.len()).sum::<usize>()
            + self.reasons.iter().map(|r| r.len()).sum::<usize>()
            + self.bill_action.as_deref().map_or(0, str::len)
    }

    /// The order candidates are judged in: time, then input order.
    fn order(&self) -> (i64, u64) {
        (self.time_ms.unwrap_or(i64::MIN), self.seq)
    }

    /// Lets `judge` see and add to the verdict, then keeps its judgment.
    pub(crate) fn rejudge(&mut self, judge: impl FnOnce(&mut Verdict<'_>)) {
        let mut verdict = self.open();
        judge(&mut verdict);
        let (severity, rules, reasons) = (verdict.severity, verdict.rules, verdict.reasons);
        self.severity = severity as u8;
        self.rules = rules;
        self.reasons = reasons;
    }

    /// The verdict again, borrowing its texts and taking its judgment. Its
    /// `source` is left empty: no rule reads it, and only records written
    /// out need it ([`Packed::source`]).
    pub(crate) fn open(&mut self) -> Verdict<'_> {
        let texts = self.texts.unpack();
        let entry = self.entry.and_then(catalog::by_id);
        // The texts are put back below; `source` stays empty.
        let mut verdict = Verdict {
            root_user: self.root_user,
            code: self.code,
            failed: self.failed,
            billing: self.billing,
            catalogued: self.catalogued,
            operation: entry.map(|e| e.operation),
            category: entry.map(|e| e.category),
            severity: Severity::ALL
                .get(usize::from(self.severity))
                .copied()
                .unwrap_or(Severity::None),
            rules: std::mem::take(&mut self.rules),
            reasons: std::mem::take(&mut self.reasons),
            time_ms: self.time_ms,
            entry,
            integrity: self.integrity,
            cost: self.cost.clone(),
            // Judged already: `audit.malformed`, `audit.conflict` and
            // `audit.integrity` fired before it was held.
            ..Verdict::default()
        };
        verdict.put_texts(texts);
        verdict
    }
}

/// Runs spilled before the budget doubles.
const MAX_RUNS: usize = 128;

/// Candidates held in memory up to a budget, the rest in sorted runs on disk.
pub(crate) struct Held {
    budget: usize,
    in_memory: Vec<Packed>,
    in_memory_bytes: usize,
    runs: Vec<File>,
    count: u64,
    /// The run being written on a thread of its own, so the scan goes on
    /// meanwhile; a run that cannot be written gives its candidates back.
    spilling: Option<std::thread::JoinHandle<Spilled>>,
}

impl Held {
    /// Holds up to about `budget` bytes in memory.
    pub(crate) fn new(budget: usize) -> Held {
        Held {
            budget,
            in_memory: Vec::new(),
            in_memory_bytes: 0,
            runs: Vec::new(),
            count: 0,
            spilling: None,
        }
    }

    /// How many candidates were pushed.
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// Keeps one candidate (numbering it in input order), spilling a sorted
    /// run when over budget. A spill that fails leaves the candidates in
    /// memory, so nothing is lost, and is returned by the next push over
    /// budget or by [`Held::finish`]: from then on every candidate stays in
    /// memory.
    pub(crate) fn push(&mut self, mut packed: Packed) -> Option<io::Error> {
        packed.seq = self.count;
        self.count += 1;
        self.in_memory_bytes += packed.size();
        self.in_memory.push(packed);
        if self.in_memory_bytes <= self.budget {
            return None;
        }
        // One run is written at a time: at most twice the budget is held.
        if let Some(err) = self.finish() {
            return Some(err);
        }
        let batch = std::mem::take(&mut self.in_memory);
        self.in_memory_bytes = 0;
        if (self.runs.len() + 1).is_multiple_of(MAX_RUNS) {
            // Each run is an open file until the merge: every MAX_RUNS
            // runs, hold twice as much in memory instead.
            self.budget = self.budget.saturating_mul(2).max(1 << 20);
        }
        // The batch goes over a channel, so it is still here if no thread
        // can be started: then it is spilled on this one.
        let (sender, receiver) = std::sync::mpsc::channel::<Vec<Packed>>();
        let spawned =
            std::thread::Builder::new()
                .name("spill".into())
                .spawn(move || match receiver.recv() {
                    Ok(batch) => spill(batch),
                    Err(_) => Err((io::Error::other("no candidates came to spill"), Vec::new())),
                });
        match spawned {
            Ok(handle) => match sender.send(batch) {
                Ok(()) => {
                    self.spilling = Some(handle);
                    None
                }
                Err(std::sync::mpsc::SendError(batch)) => self.settle(spill(batch)),
            },
            Err(_) => self.settle(spill(batch)),
        }
    }

    /// Waits for the run being written, if any. Returns why it could not be
    /// written; its candidates are then back in memory.
    pub(crate) fn finish(&mut self) -> Option<io::Error> {
        let handle = self.spilling.take()?;
        match handle.join() {
            Ok(result) => self.settle(result),
            // Nothing in a spill panics on what the scan read: a bug.
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// Keeps a written run, or takes a failed run's candidates back, from
    /// then on holding every candidate in memory.
    fn settle(&mut self, spilled: Spilled) -> Option<io::Error> {
        match spilled {
            Ok(file) => {
                self.runs.push(file);
                None
            }
            Err((err, batch)) => {
                self.in_memory_bytes += batch.iter().map(Packed::size).sum::<usize>();
                self.in_memory.extend(batch);
                self.budget = usize::MAX;
                Some(err)
            }
        }
    }

    /// Every candidate in judging order: time, then input order. A run that
    /// cannot be read back ends with one error. Call [`Held::finish`] first
    /// to hear whether the last spill failed (its candidates are judged
    /// either way).
    pub(crate) fn into_sorted(mut self) -> Sorted {
        let _ = self.finish();
        self.in_memory.sort_unstable_by_key(Packed::order);
        let mut sources: Vec<Source> = vec![Source::Memory(self.in_memory.into_iter())];
        sources.extend(
            self.runs
                .into_iter()
                .map(|file| Source::Run(BufReader::with_capacity(64 << 10, file), Vec::new())),
        );
        let mut sorted = Sorted {
            sources,
            heads: BinaryHeap::new(),
            failed: None,
        };
        for index in 0..sorted.sources.len() {
            sorted.advance(index);
        }
        sorted
    }
}

/// A written run, or why a run could not be written and its candidates.
type Spilled = Result<File, (io::Error, Vec<Packed>)>;

/// Sorts candidates and writes them to an unnamed temporary file, as a run;
/// gives them back with the error when it cannot.
fn spill(mut batch: Vec<Packed>) -> Spilled {
    batch.sort_unstable_by_key(Packed::order);
    let write = |batch: &[Packed]| -> io::Result<File> {
        let mut run = BufWriter::new(tempfile::tempfile()?);
        let mut frame = Vec::new();
        for packed in batch {
            frame = write_frame(packed, frame)?;
            run.write_all(&frame)?;
        }
        let mut file = run.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.rewind()?;
        Ok(file)
    };
    match write(&batch) {
        Ok(file) => Ok(file),
        Err(err) => Err((err, batch)),
    }
}

enum Source {
    Memory(std::vec::IntoIter<Packed>),
    /// A spilled run, and a buffer for one frame.
    Run(BufReader<File>, Vec<u8>),
}

impl Source {
    fn next(&mut self) -> io::Result<Option<Packed>> {
        match self {
            Source::Memory(items) => Ok(items.next()),
            Source::Run(reader, frame) => read_frame(reader, frame),
        }
    }
}

/// A spilled candidate: its length (four bytes, little-endian), then its
/// postcard form. Returns `frame`, cleared and refilled.
fn write_frame(packed: &Packed, mut frame: Vec<u8>) -> io::Result<Vec<u8>> {
    frame.clear();
    frame.extend_from_slice(&[0; 4]);
    let mut frame = postcard::to_extend(packed, frame).map_err(io::Error::other)?;
    let len = u32::try_from(frame.len() - 4).map_err(io::Error::other)?;
    frame[..4].copy_from_slice(&len.to_le_bytes());
    Ok(frame)
}

/// The next candidate of a run, or `None` at its end. A run cut inside a
/// frame, or a frame that does not decode, is an error.
fn read_frame(reader: &mut BufReader<File>, frame: &mut Vec<u8>) -> io::Result<Option<Packed>> {
    if reader.fill_buf()?.is_empty() {
        return Ok(None);
    }
    let mut len = [0; 4];
    reader.read_exact(&mut len)?;
    let len = u64::from(u32::from_le_bytes(len));
    frame.clear();
    // Grows only as far as the run has bytes, whatever the length says.
    reader.by_ref().take(len).read_to_end(frame)?;
    if frame.len() as u64 != len {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    postcard::from_bytes(frame)
        .map(Some)
        .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))
}

/// A merge of sorted sources (see [`Held::into_sorted`]).
pub(crate) struct Sorted {
    sources: Vec<Source>,
    /// The next candidate of each source, smallest order first.
    heads: BinaryHeap<Reverse<Head>>,
    /// A run that could not be read back, and why.
    failed: Option<io::Error>,
}

struct Head {
    order: (i64, u64),
    packed: Packed,
    source: usize,
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.order == other.order
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.order.cmp(&other.order)
    }
}

impl Sorted {
    fn advance(&mut self, source: usize) {
        match self.sources[source].next() {
            Ok(Some(packed)) => self.heads.push(Reverse(Head {
                order: packed.order(),
                packed,
                source,
            })),
            Ok(None) => {}
            Err(err) => {
                self.failed.get_or_insert(err);
            }
        }
    }

    /// A read-back failure met so far, once.
    pub(crate) fn take_error(&mut self) -> Option<io::Error> {
        self.failed.take()
    }
}

impl Iterator for Sorted {
    type Item = Packed;

    fn next(&mut self) -> Option<Packed> {
        let Reverse(head) = self.heads.pop()?;
        self.advance(head.source);
        Some(head.packed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::classify;
    use crate::trace::Trace;
    use std::path::Path;

    fn verdict_of(text: &str) -> Verdict<'static> {
        let trace = Trace::from_str(text).unwrap();
        let class = classify(&trace);
        Verdict::new(&trace, trace.user(), &class, String::new()).into_owned()
    }

    #[test]
    fn packing_keeps_every_field() {
        let verdict = verdict_of(
            r#"{"trace_id":"a1","trace_name":"bindCard","service_type":"CBC","resource_type":"order",
            "resource_name":"","time":1723533697290,"trace_rating":"warning","code":403,
            "user":{"name":"alice","id":"u1","type":"User","domain":{"name":"acme","id":"d1"},"principal_is_root_user":"true"},
            "source_ip":"10.0.0.1","trace_type":"ConsoleAction",
            "response":"{\"error_code\":\"CBC.0151\"}"}"#,
        );
        let mut judged = verdict.clone();
        judged.fire(
            "policy.payment_method",
            Severity::High,
            "bound a card".into(),
        );
        let packed = Packed::new(judged.clone(), true, 3, Location::Line(9));
        // As a spilled run keeps it.
        let spilled = write_frame(&packed, Vec::new()).unwrap();
        let mut packed: Packed = postcard::from_bytes(&spilled[4..]).unwrap();
        assert!(packed.windowed());
        let source = packed.location().source(Path::new("f.jsonl"));
        let mut back = packed.open();
        back.source = source;
        let json = |v: &Verdict<'_>| serde_json::to_value(v).unwrap();
        let mut expected = judged;
        expected.source = "f.jsonl:9".into();
        assert_eq!(json(&back), json(&expected));
        assert_eq!(back.entry.map(|e| e.id), verdict.entry.map(|e| e.id));
        assert_eq!(back.user_id.as_deref(), Some("u1"));
        assert_eq!(back.time_ms, Some(1723533697290));
    }

    #[test]
    fn a_run_cut_short_or_damaged_is_an_error_and_its_end_is_not() {
        let verdict = verdict_of(
            r#"{"trace_id":"t1","trace_name":"payOrder","service_type":"CBC","time":1718777931170}"#,
        );
        let frame = write_frame(
            &Packed::new(verdict, true, 0, Location::Line(1)),
            Vec::new(),
        )
        .unwrap();
        let read_all = |bytes: &[u8]| -> Vec<io::Result<Option<Packed>>> {
            let mut file = tempfile::tempfile().unwrap();
            file.write_all(bytes).unwrap();
            file.rewind().unwrap();
            let mut reader = BufReader::new(file);
            let mut buffer = Vec::new();
            let mut read = Vec::new();
            loop {
                let next = read_frame(&mut reader, &mut buffer);
                let go_on = matches!(next, Ok(Some(_)));
                read.push(next);
                if !go_on {
                    return read;
                }
            }
        };
        let whole = read_all(&[frame.clone(), frame.clone()].concat());
        assert_eq!(whole.len(), 3);
        assert!(matches!(whole[2], Ok(None)));
        let cut = read_all(&[frame.clone(), frame[..frame.len() - 3].to_vec()].concat());
        assert_eq!(cut.len(), 2);
        assert_eq!(
            cut[1].as_ref().unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        // A length far past the run's end reads what there is, then fails.
        let mut huge = frame.clone();
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            read_all(&huge)[0].as_ref().unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        let mut garbage = frame.clone();
        garbage[4..].fill(0xff);
        assert_eq!(
            read_all(&garbage)[0].as_ref().unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }

    #[test]
    fn runs_stay_few_however_small_the_budget() {
        let mut held = Held::new(0);
        for seq in 0..300u64 {
            let time = 1_718_777_931_000 + (seq * 7919) % 1000; // out of order
            let verdict = verdict_of(&format!(
                r#"{{"trace_id":"t{seq}","trace_name":"payOrder","service_type":"CBC","time":{time}}}"#
            ));
            assert!(held
                .push(Packed::new(verdict, true, 0, Location::Line(seq + 1)))
                .is_none());
        }
        assert!(held.finish().is_none()); // the last run is written
        assert_eq!(held.runs.len(), MAX_RUNS);
        let order: Vec<(i64, u64)> = held.into_sorted().map(|p| p.order()).collect();
        assert_eq!(order.len(), 300);
        assert!(order.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn spilled_runs_merge_in_time_then_input_order() {
        let mut held = Held::new(1); // every push spills a run of one
        let times = [5, 3, 9, 3, 1].map(|t: i64| 1_718_777_931_000 + t);
        for (seq, time) in times.iter().enumerate() {
            let verdict = verdict_of(&format!(
                r#"{{"trace_id":"t{seq}","trace_name":"payOrder","service_type":"CBC","time":{time}}}"#
            ));
            assert!(held
                .push(Packed::new(
                    verdict,
                    true,
                    0,
                    Location::Record(seq as u64 + 1)
                ))
                .is_none());
        }
        let mut bigger = Held::new(usize::MAX); // the same, all in memory
        let mut sorted = held.into_sorted();
        let order: Vec<String> = sorted
            .by_ref()
            .map(|mut p| p.open().trace_id.unwrap().into_owned())
            .collect();
        assert!(sorted.take_error().is_none());
        assert_eq!(order, ["t4", "t1", "t3", "t0", "t2"]);
        for (seq, time) in times.iter().enumerate() {
            let verdict = verdict_of(&format!(
                r#"{{"trace_id":"t{seq}","trace_name":"payOrder","service_type":"CBC","time":{time}}}"#
            ));
            assert!(bigger
                .push(Packed::new(verdict, true, 0, Location::Line(1)))
                .is_none());
        }
        let in_memory: Vec<u64> = bigger.into_sorted().map(|p| p.seq).collect();
        assert_eq!(in_memory, [4, 1, 3, 0, 2]);
    }
}
