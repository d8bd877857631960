//! The dedup set against a plain hash set of the same 128-bit keys: time to
//! insert a million unique ids (the scan's case: almost every id is new),
//! and the bytes each holds afterwards (printed once).

use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BatchSize, BenchmarkGroup, Criterion, Throughput,
};
use cts_audit::scan::SeenIds;
use std::collections::HashSet;
use std::hash::BuildHasher;

const KEYS: usize = 1_000_000;

/// xorshift: keys as random as UUIDv4s' bits.
fn keys() -> Vec<u128> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..KEYS)
        .map(|_| (u128::from(next()) << 64) | u128::from(next()))
        .collect()
}

fn dedup(c: &mut Criterion) {
    let keys = keys();
    let mut seen = SeenIds::default();
    keys.iter().for_each(|&k| {
        seen.insert(k, k as u32);
    });
    let table: HashSet<u128> = keys.iter().copied().collect();
    // hashbrown: a 16-byte slot and a control byte per bucket.
    let table_bytes = table.capacity().div_ceil(7).next_power_of_two() * 8 * 17;
    eprintln!(
        "{KEYS} keys: SeenIds {:.1} bytes each, HashSet<u128> {:.1}",
        seen.bytes() as f64 / KEYS as f64,
        table_bytes as f64 / KEYS as f64
    );

    // Each id with its record's print, as the scan gives them.
    let keyed: Vec<(u128, u32)> = keys.iter().map(|&k| (k, k as u32)).collect();
    let mut group = c.benchmark_group("dedup");
    group.sample_size(10);
    group.throughput(Throughput::Elements(KEYS as u64));
    group.bench_function("SeenIds::insert_each, blocks of 4096", |b| {
        b.iter_batched(
            SeenIds::default,
            |mut seen| {
                let mut new = Vec::with_capacity(4096);
                for block in keyed.chunks(4096) {
                    new.clear();
                    seen.insert_each(block, &mut new);
                }
                seen
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function("SeenIds::insert, one by one", |b| {
        b.iter_batched(
            SeenIds::default,
            |mut seen| {
                for &key in &keys {
                    seen.insert(key, key as u32);
                }
                seen
            },
            BatchSize::LargeInput,
        )
    });
    hash_set::<std::hash::RandomState>(&mut group, "HashSet<u128> (std, SipHash)", &keys);
    hash_set::<foldhash::fast::RandomState>(
        &mut group,
        "HashSet<u128> (foldhash, as the scan had)",
        &keys,
    );
    group.finish();
}

/// Inserting every key into a `HashSet` with hasher `S`.
fn hash_set<S: BuildHasher + Default>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    keys: &[u128],
) {
    group.bench_function(name, |b| {
        b.iter_batched(
            HashSet::<u128, S>::default,
            |mut set| {
                for &key in keys {
                    set.insert(key);
                }
                set
            },
            BatchSize::LargeInput,
        )
    });
}

criterion_group!(benches, dedup);
criterion_main!(benches);
