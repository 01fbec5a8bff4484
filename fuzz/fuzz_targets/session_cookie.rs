//! The cargo-fuzz entry point of `session_cookie`. The checks live in `fuzz/checks/session_cookie.rs`, so that
//! `tests/all/fuzz_smoke.rs` runs them on every committed input without cargo-fuzz.
#![no_main]

#[path = "../checks/session_cookie.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::run(data));
