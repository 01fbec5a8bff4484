//! The cargo-fuzz entry point of `csrf_token`. The checks live in `fuzz/checks/csrf_token.rs`, so that
//! `tests/all/fuzz_smoke.rs` runs them on every committed input without cargo-fuzz.
#![no_main]

#[path = "../checks/csrf_token.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::run(data));
