//! The cargo-fuzz entry point of `jsonrpc_envelope`. The checks live in `fuzz/checks/jsonrpc_envelope.rs`, so that
//! `tests/all/fuzz_smoke.rs` runs them on every committed input without cargo-fuzz.
#![no_main]

#[path = "../checks/jsonrpc_envelope.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::run(data));
