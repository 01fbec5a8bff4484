//! The fuzz targets in `fuzz/`, run briefly: each for [`DEFAULT_SECS`] seconds (override with
//! `FUZZ_SMOKE_SECS`), starting from its committed seed corpus (`fuzz/corpus/<target>/`). A
//! crash, a failed invariant or a timeout fails the test and names the input libFuzzer saved.
//!
//! Opt-in for now (`FUZZ_SMOKE=1 cargo test --test fuzz_smoke`): the instrumented release build
//! of the fuzz crate has not yet been timed on a CI machine, so `.ci/run` does not run it yet.
//! Needs cargo-fuzz (`cargo install cargo-fuzz --version 0.13.2 --locked`): with `FUZZ_SMOKE`
//! set and cargo-fuzz missing, the test fails. The targets run on stable with `-s none` (no
//! sanitizer); the longer runs and their results are in docs/RELIABILITY.md ("Fuzzing and
//! properties").

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

/// Seconds per target in CI: 8 targets × 15 s, plus the build, stays within the CI budget.
const DEFAULT_SECS: u64 = 15;

/// The targets, as named in fuzz/Cargo.toml.
const TARGETS: &[&str] = &[
    "jsonrpc_envelope",
    "tool_arguments",
    "jwt_verify",
    "api_key_format",
    "session_cookie",
    "csrf_token",
    "resource_uri",
    "sse_parser",
];

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// `cargo fuzz` runs, or: a panic when `FUZZ_SMOKE` is set, a "skipped" line and `false`
/// elsewhere.
fn cargo_fuzz_available() -> bool {
    if std::env::var_os("FUZZ_SMOKE").is_none() {
        eprintln!("skipped: set FUZZ_SMOKE=1 to build and run the fuzz targets");
        return false;
    }
    let ok = Command::new(cargo())
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        panic!("cargo-fuzz is not installed: cargo install cargo-fuzz --version 0.13.2 --locked");
    }
    ok
}

/// A `cargo fuzz` command in `fuzz/`, building into `fuzz/target` whatever the caller's
/// environment says (the outer `cargo test` must not share its target directory).
fn cargo_fuzz(fuzz_dir: &Path) -> Command {
    let mut command = Command::new(cargo());
    command
        .current_dir(fuzz_dir)
        .env("CARGO_TARGET_DIR", fuzz_dir.join("target"))
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    command.arg("fuzz");
    command
}

#[test]
fn every_fuzz_target_runs_clean_on_its_seeds() {
    if !cargo_fuzz_available() {
        return;
    }
    let secs: u64 = std::env::var("FUZZ_SMOKE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SECS);
    let fuzz_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz");

    let started = Instant::now();
    let build = cargo_fuzz(&fuzz_dir)
        .args(["build", "-s", "none"])
        .status()
        .expect("cargo fuzz build starts");
    assert!(build.success(), "cargo fuzz build -s none failed");
    eprintln!("fuzz build: {:.0} s", started.elapsed().as_secs_f64());

    let scratch = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for target in TARGETS {
        let seeds = fuzz_dir.join("corpus").join(target);
        assert!(
            std::fs::read_dir(&seeds).is_ok_and(|mut d| d.next().is_some()),
            "no committed seeds in {}",
            seeds.display()
        );
        // New inputs go to a scratch corpus (the first directory); the seeds are only read.
        let work = scratch.path().join(target);
        std::fs::create_dir_all(&work).unwrap();
        // A crashing input is kept in fuzz/artifacts/<target>/ (ignored by git) for a rerun.
        let artifacts = fuzz_dir.join("artifacts").join(target);
        std::fs::create_dir_all(&artifacts).unwrap();
        let artifacts = format!("{}/", artifacts.display());
        let started = Instant::now();
        let output = cargo_fuzz(&fuzz_dir)
            .args(["run", target, "-s", "none"])
            .arg(&work)
            .arg(&seeds)
            .arg("--")
            .arg(format!("-max_total_time={secs}"))
            .arg("-timeout=10")
            .arg("-rss_limit_mb=2048")
            .arg(format!("-artifact_prefix={artifacts}"))
            .output()
            .expect("cargo fuzz run starts");
        let log = String::from_utf8_lossy(&output.stderr);
        let summary = log
            .lines()
            .rev()
            .find(|l| l.starts_with("Done ") || l.contains("stat::number_of_executed_units"))
            .unwrap_or("");
        eprintln!(
            "{target}: {:.0} s, {summary}",
            started.elapsed().as_secs_f64()
        );
        if !output.status.success() {
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            failures.push(format!(
                "{target} failed ({}); input saved under {artifacts}\n{}",
                output.status,
                tail.join("\n")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
