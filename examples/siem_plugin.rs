//! A SIEM pipe stage: JSON lines of CTS traces on stdin, each record out on
//! stdout as one ECS document enriched with its verdict. This is what a
//! Vector `exec` source, a Fluent Bit `exec` filter or a Logstash `pipe`
//! input would call:
//!
//! ```sh
//! cargo build --release --example siem_plugin
//! tail -F /var/log/cts/system-trace.jsonl | ./target/release/examples/siem_plugin --rules examples/rules.toml
//! ```
//!
//! Nothing is dropped silently: a line that is not a trace comes out as an
//! ECS `pipeline_error` event carrying the original line; a duplicate
//! (`trace_id` seen before) is counted on stderr at the end. Windowed rules
//! keep their state across the whole stream.

use cts_audit::analyze::{Analyzer, AnalyzerState};
use cts_audit::rules::RuleSet;
use serde_json::json;
use std::io::{self, BufRead, BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut rules = RuleSet::builtin();
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        match pair {
            [flag, file] if flag == "--rules" => {
                if let Err(err) = rules.load_file(Path::new(file)) {
                    eprintln!("siem_plugin: {err}");
                    return ExitCode::from(2);
                }
            }
            _ => {
                eprintln!("siem_plugin: usage: siem_plugin [--rules FILE]...");
                return ExitCode::from(2);
            }
        }
    }
    let analyzer = Analyzer::new(rules);
    let mut state = AnalyzerState::default();
    let stdin = io::stdin();
    let mut out = BufWriter::new(io::stdout().lock());
    let mut line = Vec::new();
    let mut reader = stdin.lock();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(err) => {
                eprintln!("siem_plugin: reading stdin: {err}");
                return ExitCode::from(1);
            }
        }
        let record = line.trim_ascii();
        if record.is_empty() {
            continue;
        }
        let document = match analyzer.analyze_in(record, &mut state) {
            Ok(Some(verdict)) => {
                cts_audit::siem::ecs(&verdict, std::str::from_utf8(record).ok(), analyzer.rules())
            }
            Ok(None) => continue, // a duplicate delivery, counted below
            Err(err) => json!({
                "@timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "ecs": {"version": cts_audit::siem::ECS_VERSION},
                "event": {"kind": "pipeline_error", "original": String::from_utf8_lossy(record), "module": "huaweicloud", "dataset": "huaweicloud.cts"},
                "error": {"message": err.to_string()},
            }),
        };
        let written = serde_json::to_writer(&mut out, &document)
            .map_err(io::Error::from)
            .and_then(|()| out.write_all(b"\n"));
        if let Err(err) = written {
            if err.kind() == io::ErrorKind::BrokenPipe {
                return ExitCode::SUCCESS;
            }
            eprintln!("siem_plugin: writing stdout: {err}");
            return ExitCode::from(1);
        }
    }
    if let Err(err) = out.flush() {
        eprintln!("siem_plugin: writing stdout: {err}");
        return ExitCode::from(1);
    }
    if state.duplicates > 0 {
        eprintln!(
            "siem_plugin: {} duplicate deliveries dropped",
            state.duplicates
        );
    }
    ExitCode::SUCCESS
}
