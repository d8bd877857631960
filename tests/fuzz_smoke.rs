//! The fuzz targets' smoke pass, on the stable toolchain (CI runs this;
//! the coverage-guided runs are in docs/FUZZING.md): every target over its
//! seed corpus and every input a fuzzer ever crashed on
//! (`tests/fuzz/regressions/TARGET/`), then over a few thousand seeded
//! random mutations of the seeds. A panic anywhere fails the test.

#[path = "fuzz/targets.rs"]
mod targets;

use rand::{Rng, SeedableRng};
use std::path::Path;

fn inputs(folder: &Path) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// One of libFuzzer's simpler mutations: flip, insert, erase, repeat or
/// splice bytes, including the JSON and CSV bytes that matter.
fn mutate(rng: &mut impl Rng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    const INTERESTING: &[u8] = b"{}[]\",:\\\n\r\x00\xff0e-";
    let mut bytes = seed.to_vec();
    for _ in 0..rng.random_range(1..8) {
        let at = rng.random_range(0..=bytes.len());
        match rng.random_range(0..6) {
            0 if at < bytes.len() => bytes[at] ^= 1 << rng.random_range(0..8),
            1 => bytes.insert(at, INTERESTING[rng.random_range(0..INTERESTING.len())]),
            2 if at < bytes.len() => {
                let end = rng.random_range(at..=bytes.len().min(at + 64));
                bytes.drain(at..end);
            }
            3 if at < bytes.len() => {
                let end = rng.random_range(at..=bytes.len().min(at + 64));
                let piece = bytes[at..end].to_vec();
                for _ in 0..rng.random_range(1..50) {
                    bytes.splice(at..at, piece.iter().copied());
                }
            }
            4 if !other.is_empty() => {
                let from = rng.random_range(0..other.len());
                let end = rng.random_range(from..=other.len().min(from + 256));
                bytes.splice(at..at, other[from..end].iter().copied());
            }
            _ => bytes.truncate(at),
        }
    }
    bytes
}

#[test]
fn every_fuzz_target_survives_its_corpus_its_crashes_and_random_mutations() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz");
    for (name, target) in targets::TARGETS {
        let seeds = inputs(&root.join("corpus").join(name));
        assert!(!seeds.is_empty(), "no seed corpus for {name}");
        for input in seeds
            .iter()
            .chain(&inputs(&root.join("regressions").join(name)))
        {
            target(input);
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed_f022);
        for round in 0..2000 {
            let seed = &seeds[round % seeds.len()];
            let other = &seeds[rng.random_range(0..seeds.len())];
            target(&mutate(&mut rng, seed, other));
        }
    }
}
