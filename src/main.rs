//! The `cts-audit` command line. All printing and exit codes live here; the
//! library only returns values.

mod cli;

use std::process::ExitCode;

/// See the `jemalloc` feature in Cargo.toml.
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    cli::run()
}
