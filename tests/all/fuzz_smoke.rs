//! The fuzz targets' checks, in two ways.
//!
//! - **Every committed input, on every `cargo test`** (no cargo-fuzz, no instrumented build):
//!   each seed in `fuzz/corpus/<target>/` and each past failure in `fuzz/regressions/<target>/`
//!   goes through the target's checks (`fuzz/checks/<target>.rs`, the very code the fuzz binary
//!   runs), and a failing file is named.
//! - **A deterministic fuzz run** (in CI, where `CI` is set, and wherever `FUZZ_SMOKE=1` is set;
//!   elsewhere "skipped"): the fuzz crate built with cargo-fuzz, then each target for a fixed
//!   number of inputs (per target in [`TARGETS`]) from a fixed seed ([`SEED`]) over the committed corpus and
//!   regressions: short runs that explore the same neighbourhood of the committed corpus on
//!   every run (libFuzzer's feedback still varies a little between processes; the measurements
//!   are in docs/RELIABILITY.md), so CI's verdict depends on the change, not on a random seed; a
//!   crash names the input libFuzzer saved and the command that replays it. Open-ended random runs are for people (docs/RELIABILITY.md,
//!   "Fuzzing and properties"): what they find becomes a file in `fuzz/regressions/`.
//!
//! Where the fuzz run runs, a missing cargo-fuzz fails the test.

#[path = "../../fuzz/checks/api_key_format.rs"]
mod api_key_format;
#[path = "../../fuzz/checks/csrf_token.rs"]
mod csrf_token;
#[path = "../../fuzz/checks/jsonrpc_envelope.rs"]
mod jsonrpc_envelope;
#[path = "../../fuzz/checks/jwt_verify.rs"]
mod jwt_verify;
#[path = "../../fuzz/checks/resource_uri.rs"]
mod resource_uri;
#[path = "../../fuzz/checks/session_cookie.rs"]
mod session_cookie;
#[path = "../../fuzz/checks/sse_parser.rs"]
mod sse_parser;
#[path = "../../fuzz/checks/tool_arguments.rs"]
mod tool_arguments;

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

/// libFuzzer's seed in CI: fixed, so that every run of a commit starts the same exploration.
const SEED: u64 = 20_261_206;

/// A fuzz target: its name, its checks, and how many inputs the CI run tries.
type Target = (&'static str, fn(&[u8]), u64);

/// The targets, as named in fuzz/Cargo.toml, with their checks and the inputs the CI run tries
/// for each: 0.6-3.3 s each on the 2-core CI machine at the release build's rates, 13 s in all
/// (docs/RELIABILITY.md, "Fuzzing and properties"). `FUZZ_SMOKE_RUNS` sets one count for all.
const TARGETS: &[Target] = &[
    ("jsonrpc_envelope", jsonrpc_envelope::run, 200_000),
    ("tool_arguments", tool_arguments::run, 200_000),
    ("jwt_verify", jwt_verify::run, 100_000),
    ("api_key_format", api_key_format::run, 1_000_000),
    ("session_cookie", session_cookie::run, 50_000),
    ("csrf_token", csrf_token::run, 500_000),
    ("resource_uri", resource_uri::run, 300_000),
    ("sse_parser", sse_parser::run, 100_000),
];

/// The `cargo fuzz build`/`run` flags: stable, no sanitizer, release (the same binaries as the
/// longer runs in docs/RELIABILITY.md). The same flags for both, or `run` rebuilds.
const BUILD_FLAGS: &[&str] = &["-s", "none"];

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The committed inputs of `target`: its seeds (`fuzz/corpus/<target>/seed-*`; what libFuzzer
/// adds beside them is ignored by git and here) and its past failures (`fuzz/regressions/`).
fn committed_inputs(target: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for (dir, prefix) in [("corpus", "seed-"), ("regressions", "")] {
        let Ok(entries) = std::fs::read_dir(fuzz_dir().join(dir).join(target)) else {
            continue;
        };
        files.extend(entries.map(|e| e.unwrap().path()).filter(|p| {
            p.is_file() && p.file_name().unwrap().to_string_lossy().starts_with(prefix)
        }));
    }
    files.sort();
    files
}

#[test]
fn every_committed_input_passes_its_fuzz_checks() {
    let mut failures = Vec::new();
    for &(target, check, _) in TARGETS {
        let inputs = committed_inputs(target);
        assert!(
            inputs
                .iter()
                .any(|p| p.parent().unwrap().ends_with(format!("corpus/{target}"))),
            "no committed seeds for {target}"
        );
        for input in inputs {
            let data = std::fs::read(&input).unwrap();
            if std::panic::catch_unwind(|| check(&data)).is_err() {
                failures.push(format!(
                    "{} fails the {target} checks; reproduce: cd fuzz && cargo fuzz run {target} {} {}",
                    input.display(),
                    BUILD_FLAGS.join(" "),
                    input.display()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The input of issue 22 (a 1,050-byte username of control characters made a token that
/// `verify` refused) is among the regressions, and passes.
#[test]
fn the_issue_22_token_is_a_regression_input() {
    let file =
        fuzz_dir().join("regressions/jwt_verify/crash-dc9f2006326e1be59a852410efd899ea76eb095e");
    let data = std::fs::read(&file).unwrap();
    assert_eq!(data.len(), 691);
    jwt_verify::run(&data);
}

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
fn every_fuzz_target_runs_clean_from_a_fixed_seed() {
    if !should_run() {
        return;
    }
    let runs_override: Option<u64> = std::env::var("FUZZ_SMOKE_RUNS")
        .ok()
        .and_then(|s| s.parse().ok());
    let fuzz_dir = fuzz_dir();

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
    for &(target, _, runs) in TARGETS {
        let runs = runs_override.unwrap_or(runs);
        // Only the committed seeds and regressions, copied, so that an input libFuzzer added to
        // `fuzz/corpus` on this machine (ignored by git) cannot change what CI explores.
        let seeds = scratch.path().join(format!("{target}-seeds"));
        std::fs::create_dir_all(&seeds).unwrap();
        for input in committed_inputs(target) {
            std::fs::copy(&input, seeds.join(input.file_name().unwrap())).unwrap();
        }
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
            .arg(format!("-seed={SEED}"))
            .arg(format!("-runs={runs}"))
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
