//! The cargo-fuzz entry point of `sse_parser`. The checks live in `fuzz/checks/sse_parser.rs`, so that
//! `tests/all/fuzz_smoke.rs` runs them on every committed input without cargo-fuzz.
#![no_main]

#[path = "../checks/sse_parser.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::run(data));
