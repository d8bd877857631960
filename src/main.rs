//! The `cts-audit` command line. All printing and exit codes live here; the
//! library only returns values.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::run()
}
