#!/usr/bin/env bash
# cargo-fuzz for the fuzz smoke test (tests/fuzz_smoke.rs builds fuzz/ and runs each target for
# a few seconds). Installed pinned and --locked when missing; it runs on stable with `-s none`
# (no sanitizer, so no nightly toolchain is needed).
set -euo pipefail
if command -v cargo-fuzz >/dev/null 2>&1; then
  exit 0
fi
cargo install cargo-fuzz --version 0.13.2 --locked --quiet
cargo fuzz --version >/dev/null
