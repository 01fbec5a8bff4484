//! The cargo-fuzz entry point of `tool_arguments`. The checks live in `fuzz/checks/tool_arguments.rs`, so that
//! `tests/all/fuzz_smoke.rs` runs them on every committed input without cargo-fuzz.
#![no_main]

#[path = "../checks/tool_arguments.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::run(data));
