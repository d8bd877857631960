//! The HTML report: what folding one verdict costs the scan's ordering
//! thread (`Fold::add`, the serial part), and what drawing the page costs
//! once at the end (`HtmlReport::render`, with its SVG timeline), on 50,000
//! judged verdicts of 40 actors, a minute apart, one in five failed (the
//! rules bench's candidates, `common/verdicts.rs`). The
//! cost inside a whole scan is measured side by side in
//! docs/BENCHMARKS.md ("The HTML report").

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use cts_audit::report::html::{HtmlReport, ReportSettings};
use cts_audit::rules::{RuleSet, RuleState};
use cts_audit::scan::Stats;
use cts_audit::verdict::Verdict;

#[path = "common/verdicts.rs"]
mod common;

const VERDICTS: usize = 50_000;

/// Sensitive billing operations, judged by the built-in rules.
fn verdicts() -> Vec<Verdict<'static>> {
    let rules = RuleSet::builtin();
    let mut state = RuleState::default();
    let mut verdicts = common::sensitive(VERDICTS);
    for verdict in &mut verdicts {
        rules.judge(verdict, &mut state);
    }
    verdicts
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
