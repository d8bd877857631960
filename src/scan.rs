//! The scan: every input read, every record parsed, classified, deduplicated,
//! filtered and accounted for, in parallel and in a deterministic order.
//!
//! Work is split two ways. Small files (OBS transfer files are kilobytes) are
//! read whole by a worker each, so decompression runs in parallel across
//! files. Large files and stdin are read by one thread in blocks of whole
//! records ([`crate::input::read_units`]) that the workers parse. Either way
//! results come back in input order, and one thread then deduplicates,
//! counts and hands the pre-rendered output to the [`Sink`]. Candidates for
//! the windowed rules are held (packed, and spilled to disk past
//! [`ScanOptions::held_memory`]) and judged in time order once every file is
//! read.
//!
//! ```
//! use cts_audit::scan::{scan, ScanOptions, CollectSink};
//! let dir = std::env::temp_dir().join(format!("cts-audit-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! std::fs::write(dir.join("t.json"), r#"[{"trace_id":"eb0472a4-5944-11ef-acce-294fee19871b","trace_name":"bindCard",
//!   "service_type":"CBC","resource_type":"order","time":1723533697290,"trace_rating":"normal"}]"#).unwrap();
//! let mut sink = CollectSink::default();
//! let stats = scan(&[dir.clone()], &ScanOptions::default(), &mut sink);
//! assert_eq!((stats.records, stats.emitted), (1, 1));
//! assert!(String::from_utf8(sink.output).unwrap().contains("\"severity\":\"high\""));
//! # std::fs::remove_dir_all(dir).unwrap();
//! ```

mod held;
mod judge;
mod ledger;
mod options;
mod seen;
mod sink;
mod stats;
mod stream;
mod verify;
mod worker;

use crate::catalog::Severity;
use crate::classify::{classify, Classification, Kind};
use crate::input::{self, Container, InputFile, Opened, ReadProblem, Unit, UnitReader};
use crate::records::{self, Location, Visitor};
use crate::report::{self, Format};
use crate::rules::{Facts, RuleSet, RuleState};
use crate::trace::{Trace, TraceFields, TraceHead};
use crate::verdict::Verdict;
use held::{Held, Packed};
use judge::*;
use ledger::*;
pub use options::{Filters, ScanOptions};
use rayon::prelude::*;
// The dedup set is the scan's own; public for its bench (benches/dedup.rs),
// not part of the API a plugin builds on (`analyze::AnalyzerState` is).
#[doc(hidden)]
pub use seen::{dedup_key, record_print, Seen, SeenIds};
use serde::Serialize;
use sink::*;
pub use sink::{CollectSink, Record, ScanError, Sink};
pub use stats::Stats;
use stats::*;
use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use stream::*;
use verify::FileCheck;
pub use verify::IntegrityReport;
use worker::*;

/// The most worker threads a scan starts: eight per core. More only
/// share the same cores (and `-j 100000` would take minutes to start).
///
/// ```
/// assert!(cts_audit::scan::max_threads() >= 8);
/// ```
pub fn max_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()) * 8
}

/// Files up to this size are read whole by one worker each.
const SMALL_FILE_BYTES: u64 = 2 << 20;

/// How many small files a batch holds at most.
const SMALL_BATCH_FILES: usize = 256;

/// Scans `paths` (files, directories, or `-` for stdin) and returns what it
/// counted. Problems go to the sink as they are met and into
/// [`Stats::error_list`]; the scan always goes on.
///
/// ```
/// use cts_audit::scan::{scan, CollectSink, ScanOptions};
/// // The samples shipped with the crate: every export form.
/// let samples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
/// let mut sink = CollectSink::default();
/// let stats = scan(&[samples], &ScanOptions::default(), &mut sink);
/// assert!(stats.files >= 5 && stats.digests_skipped >= 1);
/// assert_eq!(stats.emitted as usize, sink.output.iter().filter(|b| **b == b'\n').count());
/// ```
pub fn scan(paths: &[PathBuf], options: &ScanOptions, sink: &mut dyn Sink) -> Stats {
    let (mut files, walk_problems) = input::find(paths);
    skip_paths(&mut files, &options.skip_paths);
    let mut ledger = Ledger {
        stats: Stats::default(),
        actions: Vec::new(),
        action_bytes: 0,
        actions_not_joined: 0,
        held: Held::new(options.held_memory),
        seen: SeenIds::default(),
        keys: Vec::new(),
        found: Vec::new(),
        severities: [0; Severity::ALL.len()],
        found_files: files.len(),
        file_checks: Vec::new(),
        members: Vec::new(),
        max_errors: options.max_errors,
        stopped: false,
        sink,
        options,
    };
    for (path, message) in walk_problems {
        ledger.stats.files_skipped += 1;
        ledger.problem(ScanError {
            file: path,
            location: None,
            message: message.to_string(),
        });
    }
    let pool = match rayon::ThreadPoolBuilder::new()
        .num_threads(options.threads.unwrap_or(0).min(max_threads()))
        .build()
    {
        Ok(pool) => pool,
        Err(err) => {
            ledger.problem(ScanError {
                file: PathBuf::from("-"),
                location: None,
                message: format!("cannot start worker threads: {err}"),
            });
            return ledger.finish();
        }
    };
    scan_files(&pool, &files, options, &mut ledger);
    ledger.judge(&pool, options, &files);
    ledger.finish()
}

/// Drops the files under any of `skip` (compared as canonical paths, so
/// `./samples/bills` skips `samples/bills/a.json`).
fn skip_paths(files: &mut Vec<InputFile>, skip: &[PathBuf]) {
    if skip.is_empty() {
        return;
    }
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let skip: Vec<PathBuf> = skip.iter().map(|p| canonical(p)).collect();
    files.retain(|file| {
        file.is_stdin() || {
            let path = canonical(&file.path);
            !skip.iter().any(|s| path.starts_with(s))
        }
    });
}

fn scan_files(
    pool: &rayon::ThreadPool,
    files: &[InputFile],
    options: &ScanOptions,
    ledger: &mut Ledger<'_>,
) {
    let mut next = 0;
    while next < files.len() && !ledger.stopped {
        let file = &files[next];
        if file.is_digest {
            ledger.stats.digests_skipped += 1;
            ledger.sink.progress(file.size);
            next += 1;
        } else if file.is_stream || file.size > SMALL_FILE_BYTES {
            scan_large_file(pool, file, next, options, ledger);
            next += 1;
        } else {
            // A run of small files, each read whole by one worker.
            let end = (next..files.len())
                .take(SMALL_BATCH_FILES)
                .find(|&i| {
                    files[i].is_digest || files[i].is_stream || files[i].size > SMALL_FILE_BYTES
                })
                .unwrap_or_else(|| (next + SMALL_BATCH_FILES).min(files.len()));
            let results: Vec<UnitResult> = pool.install(|| {
                (next..end)
                    .into_par_iter()
                    .map(|i| process_file(&files[i], i, options))
                    .collect()
            });
            for (i, result) in (next..end).zip(results) {
                if result.is_archive {
                    scan_large_file(pool, &files[i], i, options, ledger);
                    continue;
                }
                ledger.take_file(result);
            }
            next = end;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_keep_their_start_and_end() {
        let long = format!(
            "invalid type: string \"{}\", expected a time at line 1 column 9",
            "é".repeat(10_000)
        );
        let cut = clip_message(long);
        assert!(cut.len() <= MAX_MESSAGE_BYTES + 40, "{}", cut.len());
        assert!(cut.starts_with("invalid type: string"));
        assert!(cut.ends_with("line 1 column 9"));
        assert!(cut.contains("bytes cut"));
        assert_eq!(clip_message("short".into()), "short");
    }

    #[test]
    fn problem_kinds_are_the_message_up_to_its_colon() {
        assert_eq!(
            problem_kind("invalid trace: EOF while parsing"),
            "invalid trace"
        );
        assert_eq!(problem_kind("x".repeat(100).as_str()).len(), 60);
    }
}
