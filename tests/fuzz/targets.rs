//! The fuzz targets' bodies, shared by the libFuzzer binaries in
//! `fuzz_targets/` (coverage-guided, nightly: docs/FUZZING.md) and by
//! `tests/fuzz_smoke.rs` (stable, in CI: the saved corpus and crashes, and
//! a short pass of random mutations). Each reads outside input the way the
//! scan does and checks what the readers promise; a panic is a finding.
#![allow(dead_code)]

use cts_audit::analyze::{Analyzer, AnalyzerState};
use cts_audit::input::{each_tar_member, open_member, Limits, UnitReader};
use cts_audit::records::{visit_unit, visit_value, Location, Visitor};
use cts_audit::rules::RuleSet;
use cts_audit::trace::{salvage, Timestamp, Trace, TraceFields, TraceHead};
use std::io::Read;
use std::ops::ControlFlow;
use std::path::Path;

/// A target: any bytes in, a panic on a finding.
pub type Target = fn(&[u8]);

/// The targets, by name: what the binaries and the smoke test run.
pub const TARGETS: [(&str, Target); 8] = [
    ("records", records),
    ("container", container),
    ("time", time),
    ("csv_rows", csv_rows),
    ("tar", tar),
    ("rules_file", rules_file),
    ("digests", digests),
    ("bills", bills),
];

/// Caps small enough that a run never allocates much: libFuzzer fails a
/// run that passes its -rss_limit_mb.
pub const LIMITS: Limits = Limits {
    max_file_bytes: 1 << 20,
    max_record_bytes: 256 << 10,
};

/// Counts what the walk hands over, and reads each record as the scan does.
#[derive(Default)]
pub struct Reader {
    pub records: u64,
    pub problems: u64,
}

impl Visitor for Reader {
    const FULL: bool = false;

    fn head(&mut self, head: &TraceHead<'_>, text: &str, location: Location) {
        self.records += 1;
        let _ = (
            head.time_ms(),
            head.unreadable_time(),
            head.rating(),
            location.describe(),
        );
        // A head that read must read whole too, or be salvaged.
        if let Ok(trace) = Trace::from_str(text) {
            let _ = (trace.user_checked(), trace.response_text(), trace.time_ms());
            let _ = cts_audit::classify::classify(&trace);
        }
    }

    fn problem(&mut self, location: Location, message: String) {
        self.problems += 1;
        assert!(
            !message.is_empty(),
            "an empty problem at {}",
            location.describe()
        );
    }
}

/// The same walk, parsing every record whole (the scan's `--all` path).
#[derive(Default)]
pub struct WholeReader {
    pub records: u64,
}

impl Visitor for WholeReader {
    const FULL: bool = true;

    fn trace(&mut self, trace: &Trace<'_>, text: &str, _: Location) {
        self.records += 1;
        let _ = (trace.user_checked(), trace.name(), text.len());
    }

    fn problem(&mut self, _: Location, _: String) {}
}

/// Cuts `bytes` (decompressed when gzip) into units with small blocks, so
/// records cross block edges, and walks each both ways.
pub fn read_all(bytes: &[u8]) {
    let Ok(content) = cts_audit::input::decompress(bytes) else {
        return;
    };
    let mut units = UnitReader::new(0, content)
        .with_limits(LIMITS)
        .with_block_bytes(4096);
    let (mut heads, mut wholes) = (Reader::default(), WholeReader::default());
    while let Some(unit) = units.next_unit(&mut Vec::new) {
        visit_unit(&unit, &mut heads);
        visit_unit(&unit, &mut wholes);
    }
    let _ = units.take_problems();
}

/// The record walk and parse: any bytes as one record, read as a head, as
/// a whole trace, and salvaged when serde_json refuses them.
pub fn records(bytes: &[u8]) {
    if let Some(salvaged) = salvage(bytes) {
        // What salvage gives back is JSON that reads.
        assert!(
            serde_json::from_str::<serde_json::Value>(&salvaged.text).is_ok(),
            "salvage gave unreadable JSON: {:?}",
            salvaged.text
        );
        let _ = TraceHead::from_str(&salvaged.text);
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        let _ = Trace::from_str(text);
        let mut reader = Reader::default();
        visit_value(text, Location::Line(1), &mut reader);
        let mut whole = WholeReader::default();
        visit_value(text, Location::Line(1), &mut whole);
    }
}

/// The container sniffer and cutter: any bytes (gzip or plain) as a whole
/// file, cut into units across small blocks and walked.
pub fn container(bytes: &[u8]) {
    read_all(bytes);
}

/// The plausible window the time parser promises epoch digits: 2000 to 2100.
const FROM_MS: i64 = 946_684_800_000;
const TO_MS: i64 = 4_102_444_800_000;

/// Time parsing: text read as a time, and any JSON value as `time`.
pub fn time(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    if let Some(ms) = Timestamp::parse_text(text) {
        // Console text and RFC 3339 may name any year; epoch digits only
        // the plausible window.
        if text.trim().bytes().all(|b| b.is_ascii_digit()) {
            assert!((FROM_MS..TO_MS).contains(&ms), "{text:?} read as {ms}");
        }
    }
    for record in [
        format!(r#"{{"time":{text}}}"#),
        format!(r#"{{"time":"{text}"}}"#),
        format!(r#"{{"record_time":{text},"time":null}}"#),
    ] {
        if let Ok(head) = TraceHead::from_str(&record) {
            let _ = (head.time_ms(), head.unreadable_time());
        }
    }
}

const CSV_HEADERS: [&[u8]; 2] = [
    b"Trace Name,Resource Type,Trace Source,Resource ID,Resource Name,Trace Status,Operator,Operation Time\r\n",
    b"time,severity,trace_name,service_type,resource_type,user,source_ip,rules,source\n",
];

/// CSV rows: a console export's header (or this tool's own; the first
/// byte picks), then any bytes.
pub fn csv_rows(bytes: &[u8]) {
    let Some((&pick, body)) = bytes.split_first() else {
        return;
    };
    let mut file = CSV_HEADERS[usize::from(pick) % CSV_HEADERS.len()].to_vec();
    file.extend_from_slice(body);
    read_all(&file);
}

/// Tar reading: any bytes as an archive; each member named, opened
/// (decompressed by magic bytes) and read as the scan reads it.
pub fn tar(bytes: &[u8]) {
    let archive = Path::new("bundle.tar");
    let content = Box::new(std::io::Cursor::new(bytes.to_vec()));
    let _ = each_tar_member(archive, content, &mut |member| {
        // Every member is named inside its archive.
        assert!(member.path.starts_with(archive), "{:?}", member.path);
        if let Ok(raw) = member.raw {
            if let Ok(content) = open_member(raw.take(LIMITS.max_file_bytes)) {
                let mut units = UnitReader::new(0, content)
                    .with_limits(LIMITS)
                    .with_block_bytes(4096);
                let mut reader = Reader::default();
                while let Some(unit) = units.next_unit(&mut Vec::new) {
                    visit_unit(&unit, &mut reader);
                }
            }
        }
        ControlFlow::Continue(())
    });
}

const RULE_RECORDS: [&str; 4] = [
    r#"{"trace_id":"cbdd4480-2e03-11ef-82de-cf140e2a70fb","trace_name":"bindCard","service_type":"CBC","resource_type":"order","time":1718777931170,"code":403,"user":{"name":"dev-bot","type":"User","domain":{"name":"acme"}},"source_ip":"203.0.113.7","response":"{\"error_code\":\"CBC.0151\"}"}"#,
    r#"{"trace_id":"cbdd4481-2e03-11ef-82de-cf140e2a70fb","trace_name":"payOrder","service_type":"CBC","resource_type":"cloudresouce","time":1718777932170,"code":200,"user":{"name":"root","type":"User","principal_is_root_user":"true"}}"#,
    r#"{"trace_id":"cbdd4482-2e03-11ef-82de-cf140e2a70fb","trace_name":"deleteTracker","service_type":"CTS","resource_type":"tracker","time":1718777933170,"trace_rating":"incident","user":{"name":"idp/carol","type":"ExternalUser"}}"#,
    r#"{"trace_id":"cbdd4483-2e03-11ef-82de-cf140e2a70fb","trace_name":"listBills","service_type":"CBC","resource_type":"bill","time":1718777934170}"#,
];

/// The rules file: any text loaded as TOML rules; when it loads, the rules
/// judge a few realistic records, alone and in a window.
pub fn rules_file(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let mut rules = RuleSet::builtin();
    if rules.load_str(text, Path::new("fuzz.toml")).is_err() {
        return;
    }
    let _ = rules.infos();
    let analyzer = Analyzer::new(rules);
    let mut state = AnalyzerState::default();
    for round in 0..3 {
        for record in RULE_RECORDS {
            let _ = analyzer.analyze_str(record);
            // Its own id each round, so the windows count it.
            let record = record.replace("-2e03-", &format!("-2e0{round}-"));
            let _ = analyzer.analyze_in(record.as_bytes(), &mut state);
        }
    }
}

/// Integrity digests: the bytes are up to eight digest files, split at NUL
/// bytes, each found under its own object key (the first two under one key,
/// as a copy would be); their chains, coverage and signatures are checked,
/// and a few trace files judged. A key and a signature are read from the
/// same bytes. Whatever the digests say (centuries-long hours, links in a
/// circle, a digest naming itself), the checks end without a panic.
pub fn digests(bytes: &[u8]) {
    use cts_audit::integrity::{Digest, Digests, PublicKey};
    let _ = PublicKey::parse(bytes);
    let key = PublicKey::cts();
    let _ = key.check(bytes, &String::from_utf8_lossy(bytes));
    let mut digests = Digests::new(key);
    let folder = "CloudTraces/r/2024/6/19/t/Digest/CBC";
    for (i, part) in bytes.split(|&b| b == 0).take(8).enumerate() {
        if let Ok(digest) = Digest::read(part) {
            let _ = digest.signed_message("00");
        }
        digests.add(
            format!("{folder}/x_CloudTrace-Digest_r_{}.json.gz", i.max(1)),
            part,
        );
    }
    digests.give_signature(&format!("{folder}/x_CloudTrace-Digest_r_1.json.gz"), "00ff");
    let mut coverage = digests.check();
    for object in [
        "CloudTraces/r/2024/6/19/t/CBC/x_CloudTrace_r_2024-06-19T01-20-00Z_1.json.gz",
        "CloudTraces/r/2024/6/19/t/CBC/no-time.json.gz",
        "notes/x.json",
    ] {
        let _ = coverage.judge(object, "d41d8cd98f00b204e9800998ecf8427e");
    }
    for finding in coverage.finish() {
        let _ = serde_json::to_string(&finding);
    }
}

/// Bill files of any form: every record read or counted, every row
/// rendered as FOCUS, and the join run against billing actions that name
/// the ids the bills give.
pub fn bills(bytes: &[u8]) {
    use cts_audit::bills::join::{assign, Action, ActionAt, BillAction};
    use cts_audit::bills::{read_bills_in, totals, write_focus_csv, FocusRow, ReadOptions};
    let bills = read_bills_in("fuzz.json".as_ref(), bytes, &ReadOptions::default());
    assert_eq!(bills.stats.read, bills.stats.records + bills.stats.errors);
    let mut csv = Vec::new();
    let _ = write_focus_csv(&bills.records, &mut csv);
    for record in &bills.records {
        let _ = serde_json::to_string(&FocusRow::from(record));
    }
    let _ = totals(&bills.records);
    let actions: Vec<ActionAt> = bills
        .records
        .iter()
        .take(16)
        .enumerate()
        .map(|(seq, r)| ActionAt {
            seq: seq as u64,
            time_ms: r.time.map(|t| t.start_ms.saturating_sub(1_000)),
            bill: BillAction {
                action: [Action::PayOrder, Action::Renew, Action::Unsubscribe][seq % 3],
                trace_name: "x".into(),
                trace_id: None,
                ids: r
                    .trade_id
                    .iter()
                    .map(|id| ("o".to_owned(), id.clone()))
                    .chain(r.resource_id.iter().map(|id| ("r".to_owned(), id.clone())))
                    .collect(),
            },
        })
        .collect();
    let joined = assign(&bills.records, &actions, 48 * 3_600_000);
    let s = &joined.stats;
    assert_eq!(
        s.charges,
        s.charges_by_order + s.charges_by_resource + s.charges_unmatched + s.charges_superseded
    );
    assert_eq!(
        s.actions,
        s.actions_with_charges + s.actions_without_charges
    );
}
