//! Property-based check of the REST API against its own OpenAPI document with an independent
//! tool: Schemathesis (pinned below) reads `/api/v1/openapi.json` from a running server (the
//! simulator as Dust, as in `demo`), generates requests for every operation with a valid bearer
//! token, and fails on any server error (5xx) or any response that its schema does not allow.
//!
//! The test builds a virtual environment under `target/schemathesis-venv` once (pip needs
//! PyPI). Without `python3` it is skipped, unless `CI` is set, where it fails.

use std::{path::PathBuf, process::Command, time::Duration};

use crate::common::http as http_harness;

/// The Schemathesis version this test pins.
const SCHEMATHESIS: &str = "schemathesis==4.32.5";

/// Examples per operation: enough to cover each route's refusals and happy paths, bounded.
const MAX_EXAMPLES: &str = "20";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The venv's `schemathesis` command, created on first use; `None` when python3 is missing.
fn schemathesis() -> Option<PathBuf> {
    let venv = root().join("target/schemathesis-venv");
    let st = venv.join("bin/schemathesis");
    let ready = venv.join(".ready-schemathesis-4.32.5");
    if ready.exists() && st.exists() {
        return Some(st);
    }
    if Command::new("python3").arg("--version").output().is_err() {
        return None;
    }
    let status = Command::new("python3")
        .args(["-m", "venv", "--clear"])
        .arg(&venv)
        .status()
        .expect("python3 -m venv");
    assert!(
        status.success(),
        "python3 -m venv failed (is python3-venv installed?)"
    );
    let status = Command::new(venv.join("bin/python"))
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            SCHEMATHESIS,
        ])
        .status()
        .expect("pip");
    assert!(status.success(), "pip install {SCHEMATHESIS} failed");
    std::fs::write(&ready, SCHEMATHESIS).unwrap();
    Some(st)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rest_api_keeps_to_its_openapi_document() {
    let Some(st) = tokio::task::spawn_blocking(schemathesis).await.unwrap() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "python3 is required in CI"
        );
        println!("skipped: python3 is not installed");
        return;
    };
    let server = http_harness::TestServer::start_with(&[(
        "PERMISSIONS_DEFAULT",
        "read:workspaces,read:agents,execute:agents,read:knowledge-bases,read:connectors,admin:audit",
    )])
    .await;
    let token = server.token(None).await;
    // A second token of the same caller, the only one `DELETE /auth/tokens/{tokenId}` may
    // revoke (the run's own token must stay valid to the end).
    server.token(None).await;
    let tokens: serde_json::Value = server
        .http
        .get(server.url("/api/v1/auth/tokens"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let revocable = tokens["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["current"] == false)
        .unwrap()["tokenId"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = server.sim.requests().len();
    let mut command = tokio::process::Command::new(st);
    command
        // Schemathesis keeps its cache (and replays earlier failures) in the working directory.
        .current_dir(root().join("target"))
        .arg("--config-file")
        .arg(root().join("tests/schemathesis/schemathesis.toml"))
        .arg("run")
        .arg(server.url("/api/v1/openapi.json"))
        .env("ST_TOKEN", &token)
        .env("ST_WORKSPACE_ID", server.sim.workspace_id())
        .env("ST_REVOCABLE_TOKEN_ID", &revocable)
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        .args(["--max-examples", MAX_EXAMPLES])
        // The stateful phase follows links from `GET /auth/tokens` to `DELETE` and would
        // revoke the test's own token halfway; the other phases cover every operation.
        .args(["--phases", "examples,coverage,fuzzing"])
        // Refresh and logout revoke the token they are called with: the run's own. Their
        // answers are checked in tests/all/http_auth.rs and tests/all/http_sessions.rs.
        .args(["--exclude-path", "/api/v1/auth/refresh"])
        .args(["--exclude-path", "/api/v1/auth/logout"])
        // One worker: with two, Python 3.11's `ast.parse` (which Hypothesis calls to describe
        // its filters) failed once in CI with "SystemError: AST constructor recursion depth
        // mismatch", a thread-safety fault of that interpreter when two threads parse at once.
        .args(["--workers", "1"])
        .args(["--request-timeout", "30"])
        .args(["--seed", "1"])
        // Keep the configured token: generated Authorization values would only test the 401
        // path, which tests/all/http_rest.rs covers for every route.
        .args(["--generation-with-security-parameters", "false"])
        .env("NO_COLOR", "1")
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(240), command.output())
        .await
        .expect("schemathesis took more than 4 minutes")
        .expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}\n{stderr}");
    assert!(
        output.status.success(),
        "schemathesis found problems (exit {:?}); see the output above",
        output.status.code()
    );
    // The generated requests did real work upstream, not only refusals.
    let upstream: Vec<String> = server.sim.requests()[before..]
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    println!(
        "{} requests reached the simulator: {upstream:?}",
        upstream.len()
    );
    assert!(
        upstream
            .iter()
            .any(|r| r.contains("/assistant/agent_configurations")),
        "no agent listing reached the simulator"
    );
    server.shutdown().await;
}
