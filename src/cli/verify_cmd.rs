//! `cts-audit verify`: check a download's signed, chained digests.

use super::{table, EXIT_FOUND, EXIT_OK, EXIT_USAGE};
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use cts_audit::integrity::{self, Finding, PublicKey, VerifyStats};
use cts_audit::report::escape_control;
use std::io::{self, Write};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Folders, files or tar archives of an OBS download (`-`: a tar on stdin).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    #[command(flatten)]
    keys: KeyArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = VerifyFormat::Table)]
    format: VerifyFormat,
    /// Show only findings that are not `ok`: problems, unknowns, information.
    #[arg(long)]
    problems_only: bool,
    /// Write the counts as JSON to this file.
    #[arg(long, value_name = "FILE")]
    stats: Option<PathBuf>,
}

/// How findings are written.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerifyFormat {
    /// An aligned table for people.
    Table,
    /// One JSON object a line.
    Jsonl,
    /// One JSON array.
    Json,
}

/// Rows of a table held to lay out its columns before it streams.
const TABLE_HOLD: usize = 2000;

/// The key digests are checked with, and the signatures of the newest
/// digests: `verify`'s and `scan --verify`'s.
#[derive(Args, Debug, Default)]
pub struct KeyArgs {
    /// The public key: PEM, DER or base64 DER. CTS's published key by default.
    #[arg(long, value_name = "FILE")]
    public_key: Option<PathBuf>,
    /// The newest digests' signatures (their OBS meta-signature), one
    /// `OBJECT HEX` a line.
    #[arg(long, value_name = "FILE")]
    signatures: Option<PathBuf>,
    /// One newest digest's signature; repeatable.
    #[arg(long, value_name = "OBJECT=HEX")]
    signature: Vec<String>,
}

impl KeyArgs {
    /// Whether any was given.
    pub fn given(&self) -> bool {
        self.public_key.is_some() || self.signatures.is_some() || !self.signature.is_empty()
    }

    /// The key and the signatures; a usage error says what is wrong.
    pub fn load(&self) -> std::result::Result<(PublicKey, Vec<(String, String)>), String> {
        let key = match &self.public_key {
            Some(path) => std::fs::read(path)
                .map_err(|e| e.to_string())
                .and_then(|bytes| PublicKey::parse(&bytes).map_err(|e| e.to_string()))
                .map_err(|e| format!("--public-key {}: {e}", path.display()))?,
            None => PublicKey::cts(),
        };
        let mut signatures = Vec::new();
        if let Some(path) = &self.signatures {
            let pairs = std::fs::read_to_string(path)
                .map_err(|e| e.to_string())
                .and_then(|text| integrity::parse_signatures(&text))
                .map_err(|e| format!("--signatures {}: {e}", path.display()))?;
            signatures.extend(pairs);
        }
        for given in &self.signature {
            match given.rsplit_once('=') {
                Some((object, hex)) if !object.is_empty() && !hex.is_empty() => {
                    signatures.push(integrity::signature_pair(object, hex))
                }
                _ => return Err(format!("--signature {given:?}: expected OBJECT=HEX")),
            }
        }
        Ok((key, signatures))
    }
}

pub fn run(args: &VerifyArgs) -> Result<u8> {
    let (key, signatures) = match args.keys.load() {
        Ok(loaded) => loaded,
        Err(err) => {
            eprintln!("cts-audit: error: {err}");
            return Ok(EXIT_USAGE);
        }
    };
    let report = integrity::verify(&args.paths, &key, &signatures);
    let stats = &report.stats;
    let shown: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| !args.problems_only || f.ok != Some(true))
        .collect();
    let written = write_findings(&shown, args.format);
    if let Some(path) = &args.stats {
        super::scan_cmd::write_stats(path, stats)?;
    }
    eprintln!("verify: {}", summary_line(stats));
    match written {
        // `| head` read what it wanted; the status still tells the truth.
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => {}
        other => other.context("writing to stdout")?,
    }
    Ok(if stats.files_read == 0 {
        EXIT_USAGE
    } else if stats.problems > 0 {
        EXIT_FOUND
    } else {
        EXIT_OK
    })
}

fn write_findings(findings: &[&Finding], format: VerifyFormat) -> io::Result<()> {
    let mut out = io::BufWriter::new(io::stdout().lock());
    match format {
        VerifyFormat::Jsonl => {
            for finding in findings {
                serde_json::to_writer(&mut out, finding)?;
                out.write_all(b"\n")?;
            }
        }
        VerifyFormat::Json => {
            out.write_all(b"[")?;
            for (i, finding) in findings.iter().enumerate() {
                out.write_all(if i == 0 { b"\n" } else { b",\n" })?;
                serde_json::to_writer(&mut out, finding)?;
            }
            out.write_all(b"\n]\n")?;
        }
        VerifyFormat::Table => {
            let mut rows =
                table::RowsTable::new(&["check", "ok", "hours", "object", "message"], TABLE_HOLD);
            for f in findings {
                let ok = match f.ok {
                    Some(true) => "ok",
                    Some(false) => "FAIL",
                    None => "-",
                };
                let hours = f.time_range.map(|r| r.to_string()).unwrap_or_default();
                rows.push(
                    &mut out,
                    vec![
                        f.check.name().to_owned(),
                        ok.to_owned(),
                        hours,
                        escape_control(&f.object).into_owned(),
                        escape_control(&f.message).into_owned(),
                    ],
                )?;
            }
            rows.finish(&mut out)?;
        }
    }
    out.flush()
}

/// The one line on stderr: what was read, and what it came to.
pub fn summary_line(s: &VerifyStats) -> String {
    format!(
        "{} digests ({} ok, {} signature unknown), {} trace files ({} verified, {} modified, {} unlisted, {} unverified), {} missing, {} unreadable: {}",
        s.digests,
        s.digests_ok,
        s.signatures_unknown,
        s.trace_files,
        s.verified,
        s.modified,
        s.unlisted,
        s.unverified,
        s.missing,
        s.unreadable,
        match s.problems {
            0 => "nothing points to tampering or loss".to_owned(),
            1 => "1 problem".to_owned(),
            n => format!("{n} problems"),
        }
    )
}
