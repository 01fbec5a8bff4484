//! The cargo-fuzz entry point of `resource_uri`. The checks live in `fuzz/checks/resource_uri.rs`, so that
//! `tests/all/fuzz_smoke.rs` runs them on every committed input without cargo-fuzz.
#![no_main]

#[path = "../checks/resource_uri.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::run(data));
