//! Catalog lookups: a hit, a miss, and a lookup with resource type.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use cts_audit::catalog;

fn lookups(c: &mut Criterion) {
    c.bench_function("catalog/lookup hit", |b| {
        b.iter(|| catalog::lookup(black_box("unsubscribeResource")))
    });
    c.bench_function("catalog/lookup miss", |b| {
        b.iter(|| catalog::lookup(black_box("createServer")))
    });
    c.bench_function("catalog/lookup_for with resource type", |b| {
        b.iter(|| catalog::lookup_for(black_box("unsubscribeResource"), black_box("subscription")))
    });
}

criterion_group!(benches, lookups);
criterion_main!(benches);
