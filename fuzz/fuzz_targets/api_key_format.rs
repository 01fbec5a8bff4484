//! The cargo-fuzz entry point of `api_key_format`. The checks live in `fuzz/checks/api_key_format.rs`, so that
//! `tests/all/fuzz_smoke.rs` runs them on every committed input without cargo-fuzz.
#![no_main]

#[path = "../checks/api_key_format.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::run(data));
