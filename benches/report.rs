//! The HTML report: what folding one verdict costs the scan's ordering
//! thread (`Fold::add`, the serial part), and what drawing the page costs
//! once at the end (`HtmlReport::render`, with its SVG timeline), on 50,000
//! judged verdicts of 40 actors, a minute apart, one in five failed. The
//! cost inside a whole scan is measured side by side in
//! docs/BENCHMARKS.md ("The HTML report").

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use cts_audit::classify::classify;
use cts_audit::report::html::{HtmlReport, ReportSettings};
use cts_audit::rules::{RuleSet, RuleState};
use cts_audit::scan::Stats;
use cts_audit::trace::Trace;
use cts_audit::verdict::Verdict;

const VERDICTS: usize = 50_000;

/// Sensitive billing operations, judged by the built-in rules.
fn verdicts() -> Vec<Verdict<'static>> {
    let names = [
        "payOrder",
        "bindCard",
        "unsubscribeResource",
        "exportBill",
        "setAutoRenew",
    ];
    let rules = RuleSet::builtin();
    let mut state = RuleState::default();
    (0..VERDICTS)
        .map(|i| {
            let failed = i % 5 == 0;
            let (code, response) = match failed {
                false => (200, r#"{\"status\":\"SUCCESS\"}"#),
                true => (403, r#"{\"error_code\":\"CBC.0151\",\"error_msg\":\"Access denied.\"}"#),
            };
            let text = format!(
                r#"{{"trace_id":"{i:08x}-2e03-11ef-82de-cf140e2a70fb","trace_name":"{}","service_type":"CBC","resource_type":"order","trace_rating":"{}","trace_type":"ConsoleAction","time":{},"code":{code},"source_ip":"10.0.{}.{}","user":{{"name":"user{}","id":"u{}","type":"User","domain":{{"name":"acme","id":"d1"}}}},"response":"{response}"}}"#,
                names[i % names.len()],
                if failed { "warning" } else { "normal" },
                1_718_777_931_170u64 + i as u64 * 60_000,
                i % 3,
                (i * 7) % 4,
                i % 40,
                i % 40,
            );
            let trace = Trace::from_str(&text).expect("generated traces are valid");
            let mut verdict = Verdict::new(&trace, trace.user(), &classify(&trace), String::new());
            rules.judge(&mut verdict, &mut state);
            verdict.into_owned()
        })
        .collect()
}

fn report(c: &mut Criterion) {
    let verdicts = verdicts();
    let mut group = c.benchmark_group("report");
    group.sample_size(20);
    group.throughput(Throughput::Elements(VERDICTS as u64));
    group.bench_function("HtmlReport::add, per verdict", |b| {
        b.iter(|| {
            let mut report = HtmlReport::new(ReportSettings::default());
            for verdict in &verdicts {
                report.add(verdict);
            }
            report
        })
    });
    let mut report = HtmlReport::new(ReportSettings::default());
    for verdict in &verdicts {
        report.add(verdict);
    }
    let stats = Stats::default();
    group.throughput(Throughput::Elements(1));
    group.bench_function("HtmlReport::render, the whole page", |b| {
        b.iter(|| report.render(&stats))
    });
    group.finish();
}

criterion_group!(benches, report);
criterion_main!(benches);
