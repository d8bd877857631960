//! libFuzzer entry for [`targets::bills`]; see docs/FUZZING.md.
#![no_main]

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| targets::bills(bytes));
