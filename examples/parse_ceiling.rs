//! The scan's ceiling on one file: the file is cut into units in memory
//! first, then each unit is only walked, every record's head parsed (the
//! least the scan does with any record), on N threads. No reading, dedup,
//! rules or output. docs/BENCHMARKS.md compares the scan with it.
//!
//! ```sh
//! cargo run --release --example parse_ceiling -- corpus/big.jsonl 2
//! ```

use cts_audit::input::read_units;
use cts_audit::records::{visit_unit, Location, Visitor};
use cts_audit::trace::TraceHead;
use rayon::prelude::*;
use std::time::Instant;

/// Counts the records whose head parsed, and the ones that did not.
#[derive(Default)]
struct Count {
    heads: u64,
    problems: u64,
}

impl Visitor for Count {
    const FULL: bool = false;
    fn head(&mut self, _: &TraceHead<'_>, _: &str, _: Location) {
        self.heads += 1;
    }
    fn problem(&mut self, _: Location, _: String) {
        self.problems += 1;
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: parse_ceiling FILE [THREADS] [RUNS]")?;
    let threads: usize = args.next().map_or(Ok(2), |t| t.parse())?;
    let runs: usize = args.next().map_or(Ok(5), |r| r.parse())?;
    let mut units = Vec::new();
    let (_, problems) = read_units(0, &mut std::fs::File::open(&path)?, &mut |unit| {
        units.push(unit)
    });
    if let Some(problem) = problems.first() {
        return Err(format!("{path}: {}", problem.error).into());
    }
    let bytes: usize = units.iter().map(|unit| unit.bytes.len()).sum();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let mut seconds = Vec::new();
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        let count = pool.install(|| {
            units
                .par_iter()
                .map(|unit| {
                    let mut count = Count::default();
                    visit_unit(unit, &mut count);
                    count
                })
                .reduce(Count::default, |a, b| Count {
                    heads: a.heads + b.heads,
                    problems: a.problems + b.problems,
                })
        });
        let elapsed = start.elapsed().as_secs_f64();
        println!(
            "{} records, {} unreadable, {elapsed:.3} s, {:.0} MB/s",
            count.heads,
            count.problems,
            bytes as f64 / elapsed / 1e6
        );
        seconds.push(elapsed);
    }
    seconds.sort_by(f64::total_cmp);
    let median = seconds[seconds.len() / 2];
    println!(
        "median of {}: {median:.3} s, {:.0} MB/s on {threads} thread(s)",
        seconds.len(),
        bytes as f64 / median / 1e6
    );
    Ok(())
}
