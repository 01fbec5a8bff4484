//! The fuzz targets in `fuzz/`, run briefly: each for [`DEFAULT_SECS`] seconds (override with
//! `FUZZ_SMOKE_SECS`), starting from its committed seed corpus (`fuzz/corpus/<target>/`). A
//! crash, a failed invariant or a timeout fails the test and names the input libFuzzer saved
//! (`fuzz/artifacts/<target>/…`, rerun it with `cargo fuzz run <target> -s none <file>`).
//!
//! Runs in CI (`CI` set; cargo-fuzz comes from `.ci/setup.d/50-cargo-fuzz.sh`) and wherever
//! `FUZZ_SMOKE=1` is set; elsewhere it prints "skipped" (the instrumented build of the fuzz
//! crate takes minutes, too long for every `cargo test` on a laptop). Where it runs, a missing
//! cargo-fuzz fails the test. The targets run on stable with `-s none` (no sanitizer); the
//! build flags and their cost are in docs/RELIABILITY.md ("Fuzzing and properties"), as are the
//! longer runs.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

/// Seconds per target: 8 targets × 15 s, plus the build, stays within the CI budget.
const DEFAULT_SECS: u64 = 15;

/// The `cargo fuzz build`/`run` flags: stable, no sanitizer, release (the same binaries as the
/// longer runs in docs/RELIABILITY.md). A clean-clone CI run built them cold and ran all eight
/// targets in 14.3 min; `--dev` would build in about half the CPU but run 18-44x fewer inputs.
/// The same flags for both, or `run` rebuilds.
const BUILD_FLAGS: &[&str] = &["-s", "none"];

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

/// Whether the smoke test runs here: in CI or with `FUZZ_SMOKE` set. Where it runs, a missing
/// cargo-fuzz is a failure; elsewhere a "skipped" line.
fn should_run() -> bool {
    if std::env::var_os("CI").is_none() && std::env::var_os("FUZZ_SMOKE").is_none() {
        eprintln!("skipped: set FUZZ_SMOKE=1 (or CI) to build and run the fuzz targets");
        return false;
    }
    let ok = Command::new(cargo())
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "cargo-fuzz is not installed: cargo install cargo-fuzz --version 0.13.2 --locked"
    );
    true
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
    if !should_run() {
        return;
    }
    let secs: u64 = std::env::var("FUZZ_SMOKE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SECS);
    let fuzz_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz");

    let started = Instant::now();
    let build = cargo_fuzz(&fuzz_dir)
        .arg("build")
        .args(BUILD_FLAGS)
        .status()
        .expect("cargo fuzz build starts");
    assert!(
        build.success(),
        "cargo fuzz build {} failed",
        BUILD_FLAGS.join(" ")
    );
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
            .args(["run", target])
            .args(BUILD_FLAGS)
            .arg(&work)
            .arg(&seeds)
            .arg("--")
            .arg(format!("-max_total_time={secs}"))
            .arg("-timeout=10")
            .arg("-rss_limit_mb=2048")
            .arg(format!("-artifact_prefix={artifacts}"))
            .arg("-print_final_stats=1")
            .output()
            .expect("cargo fuzz run starts");
        let log = String::from_utf8_lossy(&output.stderr);
        let executed: u64 = log
            .lines()
            .find_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0);
        eprintln!(
            "{target}: {:.0} s, {executed} executions",
            started.elapsed().as_secs_f64()
        );
        if output.status.success() && executed == 0 {
            failures.push(format!("{target} ran no input:\n{log}"));
        } else if !output.status.success() {
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            // libFuzzer names the file it saved ("Test unit written to <path>").
            let reproducer = log
                .lines()
                .find_map(|l| l.split_once("Test unit written to ").map(|(_, p)| p.trim()))
                .map_or_else(
                    || format!("no input saved; see {artifacts}"),
                    |p| {
                        let flags = BUILD_FLAGS.join(" ");
                        format!("reproduce: cd fuzz && cargo fuzz run {target} {flags} {p}")
                    },
                );
            failures.push(format!(
                "{target} failed ({}); {reproducer}\n{}",
                output.status,
                tail.join("\n")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
