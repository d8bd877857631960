//! Argument parsing and dispatch for the `cts-audit` binary.

mod bills_cmd;
mod catalog_cmd;
mod rules_cmd;
mod scan_cmd;
mod table;
mod verify_cmd;

use clap::{Parser, Subcommand, ValueEnum};
use std::process::ExitCode;

/// Exit status for a run that found nothing wrong.
pub const EXIT_OK: u8 = 0;
/// Exit status for "found": `--fail-on` matched, or a looked-up name is unknown.
pub const EXIT_FOUND: u8 = 1;
/// Exit status for usage errors and input that could not be read at all.
pub const EXIT_USAGE: u8 = 2;

/// Audit Huawei Cloud CTS trace exports for sensitive Billing Center operations.
#[derive(Parser, Debug)]
#[command(name = "cts-audit", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Read exported traces, classify every record, report the sensitive ones.
    Scan(Box<scan_cmd::ScanArgs>),
    /// List the catalog of known operations.
    Catalog(catalog_cmd::CatalogArgs),
    /// List the rules, or check a rules file.
    Rules(rules_cmd::RulesArgs),
    /// Check a downloaded trail's signed digests: is it complete and unaltered?
    Verify(verify_cmd::VerifyArgs),
    /// Read bill records (Huawei, UCloud) and write them as FinOps FOCUS 1.2 rows.
    Bills(bills_cmd::BillsArgs),
}

/// Output formats shared by the subcommands.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListFormat {
    /// An aligned table for people.
    Table,
    /// A JSON array.
    Json,
    /// CSV with a header row.
    Csv,
}

/// Parses the command line and runs the chosen subcommand.
pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() {
                EXIT_USAGE
            } else {
                EXIT_OK
            });
        }
    };
    let result = match cli.command {
        Command::Scan(args) => scan_cmd::run(&args),
        Command::Catalog(args) => catalog_cmd::run(&args),
        Command::Rules(args) => rules_cmd::run(&args),
        Command::Verify(args) => verify_cmd::run(&args),
        Command::Bills(args) => bills_cmd::run(&args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::from(EXIT_OK);
            }
            eprintln!("cts-audit: error: {err:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// `cts-audit … | head` closes stdout early; that is not an error.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain()
        .filter_map(|cause| cause.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}
