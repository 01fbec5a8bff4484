#!/usr/bin/env bash
# cargo-fuzz for tests/all/fuzz_smoke.rs: every fuzz target in fuzz/ built and run briefly from its
# seeds (docs/RELIABILITY.md, "Fuzzing and properties"). Stable toolchain, `-s none`: no
# nightly needed. Pinned: the smoke test relies on its command line.
set -euo pipefail
if cargo fuzz --version 2>/dev/null | grep -q '^cargo-fuzz 0\.13\.2$'; then
  exit 0
fi
cargo install cargo-fuzz --version 0.13.2 --locked --quiet
cargo fuzz --version >/dev/null
