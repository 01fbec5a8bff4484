//! The cargo-fuzz entry point of `jwt_verify`. The checks live in `fuzz/checks/jwt_verify.rs`, so that
//! `tests/all/fuzz_smoke.rs` runs them on every committed input without cargo-fuzz.
#![no_main]

#[path = "../checks/jwt_verify.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::run(data));
