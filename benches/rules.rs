//! The rules on rule candidates: what the scan's ordering thread pays per
//! candidate for the windowed rules (the only serial step at the end of a
//! scan), and what the workers pay for the rest.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use cts_audit::rules::{RuleSet, RuleState};

#[path = "common/verdicts.rs"]
mod verdicts;

const CANDIDATES: usize = 50_000;

fn rules(c: &mut Criterion) {
    let rules = RuleSet::builtin();
    let candidates = verdicts::sensitive(CANDIDATES);
    let mut group = c.benchmark_group("rules");
    group.sample_size(20);
    group.throughput(Throughput::Elements(CANDIDATES as u64));
    group.bench_function("RuleSet::judge, every rule, in time order", |b| {
        b.iter_batched(
            || candidates.clone(),
            |mut verdicts| {
                let mut state = RuleState::default();
                for verdict in &mut verdicts {
                    rules.judge(verdict, &mut state);
                }
                verdicts
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, rules);
criterion_main!(benches);
