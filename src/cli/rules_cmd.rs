//! `cts-audit rules`: list the rules, or check a rules file.

use super::{table, ListFormat, EXIT_OK, EXIT_USAGE};
use anyhow::{Context, Result};
use clap::Args;
use cts_audit::rules::RuleSet;
use std::io::{self, Write};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct RulesArgs {
    /// Also list the rules of this file (repeatable).
    #[arg(long = "rules", value_name = "FILE")]
    rule_files: Vec<PathBuf>,
    /// Validate a rules file and exit: status 0 when it is valid, 2 when not.
    #[arg(long, value_name = "FILE")]
    check: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    format: ListFormat,
}

pub fn run(args: &RulesArgs) -> Result<u8> {
    let mut rules = RuleSet::builtin();
    if let Some(file) = &args.check {
        return Ok(match rules.load_file(file) {
            Ok(()) => {
                let loaded = rules
                    .infos()
                    .iter()
                    .filter(|r| r.origin != "built-in")
                    .count();
                println!("{}: {loaded} rules, valid", file.display());
                EXIT_OK
            }
            Err(err) => {
                eprintln!("cts-audit: error: {err}");
                EXIT_USAGE
            }
        });
    }
    for file in &args.rule_files {
        if let Err(err) = rules.load_file(file) {
            eprintln!("cts-audit: error: {err}");
            return Ok(EXIT_USAGE);
        }
    }
    let infos = rules.infos();
    let mut out = io::BufWriter::new(io::stdout().lock());
    match args.format {
        ListFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &infos)?;
            writeln!(out)?;
        }
        ListFormat::Csv => {
            let mut writer = csv::Writer::from_writer(&mut out);
            for info in &infos {
                writer.serialize(info)?;
            }
            writer.flush()?;
        }
        ListFormat::Table => {
            let mut t = table::new(&["id", "severity", "origin", "title"]);
            for info in &infos {
                // A policy rule fires at its catalog entries' severities.
                let severity = if info.lowest == info.severity {
                    info.severity.as_str().to_owned()
                } else {
                    format!("{}-{}", info.lowest, info.severity)
                };
                t.add_row([
                    info.id.as_str(),
                    severity.as_str(),
                    info.origin.as_str(),
                    info.title.as_str(),
                ]);
            }
            table::write(&mut out, &t)?;
        }
    }
    out.flush().context("writing to stdout")?;
    Ok(EXIT_OK)
}
