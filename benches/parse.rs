//! Per-record parsing throughput on generated JSON lines, against the two
//! floors: splitting lines only, and serde_json skipping every value. Then
//! the whole scan of a file, next to its ceiling: the same lines, already in
//! memory, only parsed into `TraceHead` on as many threads.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use cts_audit::input::read_units;
use cts_audit::records::{visit_unit, Location, Visitor};
use cts_audit::scan::{scan, CollectSink, ScanOptions};
use cts_audit::trace::{Trace, TraceHead};
use rayon::prelude::*;

/// Realistic lines: the shape of ../shared/reference §5.1, user as object or string.
fn corpus(lines: usize) -> String {
    corpus_of(lines, Mix::Mixed)
}

/// What the records of a corpus are.
#[derive(Clone, Copy, Debug)]
enum Mix {
    /// Other services' traffic with some billing operations.
    Mixed,
    /// A CBC folder: every record billing, 95 % reads, the rest sensitive.
    Billing,
}

fn corpus_of(lines: usize, mix: Mix) -> String {
    const READS: [&str; 4] = [
        "queryCustomerBill",
        "queryPaymentRecords",
        "orderAvailBalance",
        "querySubscription",
    ];
    let mut text = String::new();
    for i in 0..lines {
        let (name, service) = match mix {
            Mix::Mixed => (
                [
                    "createServer",
                    "payOrder",
                    "deleteVolume",
                    "listAllMyBucket",
                    "bindCard",
                ][i % 5],
                "ECS",
            ),
            Mix::Billing if i % 20 == 0 => (["payOrder", "bindCard"][i / 20 % 2], "CBC"),
            Mix::Billing => (READS[i % READS.len()], "CBC"),
        };
        let user = if i % 2 == 0 {
            r#"{"name":"alice","id":"f36972ced2d619f1214","type":"User","domain":{"name":"acme","id":"7e0d78c85c0d4b9b"}}"#.to_owned()
        } else {
            r#""{\"name\":\"bob\",\"id\":\"5f2cd06722f24250976264ebe7753a08\",\"domain\":{\"name\":\"acme\",\"id\":\"25fe\"}}""#.to_owned()
        };
        text.push_str(&format!(
            r#"{{"trace_id":"{i:08x}-2e03-11ef-82de-cf140e2a70fb","trace_name":"{name}","resource_type":"ecs","trace_rating":"normal","api_version":"1.0","source_ip":"124.71.93.243","domain_id":"7e0d78c85c0d4b9b","trace_type":"ConsoleAction","service_type":"{service}","event_type":"system","project_id":"07066c6fc90025a02f6dc01e105b286e","read_only":false,"tracker_name":"system","time":{},"resource_name":"ecs-test","user":{user},"record_time":1718777931170,"request":"{{\"server\":{{\"adminPass\":\"********\",\"extendparam\":{{\"chargingMode\":\"0\",\"regionID\":\"cn-north-4\"}},\"count\":1,\"availability_zone\":\"cn-north-4c\",\"name\":\"ecs-test\",\"flavorRef\":\"sn3.small.1\"}}}}","message":"success","response":"{{\"job_id\":\"ff8080828fe9028a01902f2542df1b10\",\"status\":\"SUCCESS\",\"error_code\":null}}","resource_id":"7285ea5d-f15c-4d9c-9e4e-37d37023f2f4","request_id":"null","code":200}}"#,
            1_718_777_931_170u64 + i as u64
        ));
        text.push('\n');
    }
    text
}

fn parsing(c: &mut Criterion) {
    let text = corpus(20_000);
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("split lines only", |b| {
        b.iter(|| memchr::memchr_iter(b'\n', text.as_bytes()).count())
    });
    group.bench_function("serde_json IgnoredAny", |b| {
        b.iter(|| {
            text.lines()
                .filter(|l| serde_json::from_str::<serde::de::IgnoredAny>(l).is_ok())
                .count()
        })
    });
    // The member walk (src/trace/members.rs) against serde_json alone.
    group.bench_function("TraceHead::from_str", |b| {
        b.iter(|| {
            text.lines()
                .filter_map(|l| TraceHead::from_str(black_box(l)).ok())
                .count()
        })
    });
    group.bench_function("serde_json::from_str::<TraceHead>", |b| {
        b.iter(|| {
            text.lines()
                .filter_map(|l| serde_json::from_str::<TraceHead>(black_box(l)).ok())
                .count()
        })
    });
    // The same seven fields from simd-json's tape (its input is mutable,
    // so each line is copied first; buffers and tape are reused).
    group.bench_function("simd-json tape, head fields", |b| {
        let mut buffers = simd_json::Buffers::default();
        let mut line = Vec::new();
        let mut spare = Some(simd_json::tape::Tape::null());
        b.iter(|| {
            let mut heads = 0;
            for text in text.lines() {
                line.clear();
                line.extend_from_slice(text.as_bytes());
                let mut tape = spare
                    .take()
                    .unwrap_or_else(simd_json::tape::Tape::null)
                    .reset();
                if simd_json::fill_tape(&mut line, &mut buffers, &mut tape).is_ok() {
                    heads += usize::from(tape_head(&tape.0).is_some());
                }
                spare = Some(tape.reset());
            }
            heads
        })
    });
    group.bench_function("Trace::from_str", |b| {
        b.iter(|| {
            text.lines()
                .filter_map(|l| Trace::from_str(black_box(l)).ok())
                .count()
        })
    });
    group.finish();

    // The ceiling: the scan's own units, cut in memory first, only walked,
    // each record's head parsed. No reading, dedup, rules or output.
    let big = corpus(200_000);
    let mut units = Vec::new();
    read_units(0, &mut big.as_bytes(), &mut |unit| units.push(unit));
    let mut group = c.benchmark_group("ceiling");
    group.throughput(Throughput::Bytes(big.len() as u64));
    group.sample_size(10);
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        group.bench_function(format!("TraceHead in memory, {threads} thread(s)"), |b| {
            b.iter(|| {
                pool.install(|| {
                    units
                        .par_iter()
                        .map(|unit| {
                            let mut heads = Heads(0);
                            visit_unit(unit, &mut heads);
                            heads.0
                        })
                        .sum::<u64>()
                })
            })
        });
    }
    group.finish();
    drop((big, units));

    let dir = std::env::temp_dir().join(format!("cts-audit-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut group = c.benchmark_group("scan");
    group.sample_size(10);
    // Mixed and billing-only corpora of the same record shape: a CBC folder
    // must scan as fast per byte as a mixed export (docs/BENCHMARKS.md).
    for mix in [Mix::Mixed, Mix::Billing] {
        let file = dir.join(format!("{mix:?}.jsonl"));
        std::fs::write(&file, corpus_of(200_000, mix)).unwrap();
        let bytes = std::fs::metadata(&file).unwrap().len();
        group.throughput(Throughput::Bytes(bytes));
        for threads in [1, 2] {
            let mut options = ScanOptions::default();
            options.threads = Some(threads);
            let name = match mix {
                Mix::Mixed => format!("jsonl file, {threads} thread(s)"),
                Mix::Billing => format!("billing-only jsonl file, {threads} thread(s)"),
            };
            group.bench_function(name, |b| {
                b.iter(|| {
                    scan(
                        std::slice::from_ref(&file),
                        &options,
                        &mut CollectSink::default(),
                    )
                    .records
                })
            });
        }
    }
    group.finish();
    let _ = std::fs::remove_dir_all(dir);
}

/// The text fields of a [`TraceHead`] (trace_id, trace_name, trace_rating,
/// trace_status, service_type, resource_type) and the HTTP code, from the
/// top-level object of a tape.
type TapeHead<'a> = ([Option<&'a str>; 6], Option<u64>);

fn tape_head<'a>(nodes: &[simd_json::tape::Node<'a>]) -> Option<TapeHead<'a>> {
    use simd_json::tape::Node;
    use simd_json::StaticNode;
    const FIELDS: [&str; 6] = [
        "trace_id",
        "trace_name",
        "trace_rating",
        "trace_status",
        "service_type",
        "resource_type",
    ];
    let Some(Node::Object { len, .. }) = nodes.first() else {
        return None;
    };
    let mut head = ([None; 6], None);
    let mut at = 1;
    for _ in 0..*len {
        let Some(Node::String(key)) = nodes.get(at) else {
            return None;
        };
        let value = nodes.get(at + 1)?;
        match value {
            Node::String(text) => {
                if let Some(slot) = FIELDS.iter().position(|f| f == key) {
                    head.0[slot] = Some(*text);
                }
            }
            Node::Static(StaticNode::U64(code)) if *key == "code" => head.1 = Some(*code),
            _ => {}
        }
        at += 1 + match value {
            Node::Object { count, .. } | Node::Array { count, .. } => count + 1,
            _ => 1,
        };
    }
    Some(head)
}

/// Counts the records whose head parsed.
struct Heads(u64);

impl Visitor for Heads {
    const FULL: bool = false;
    fn head(&mut self, _: &TraceHead<'_>, _: &str, _: Location) {
        self.0 += 1;
    }
    fn problem(&mut self, _: Location, _: String) {}
}

criterion_group!(benches, parsing);
criterion_main!(benches);
