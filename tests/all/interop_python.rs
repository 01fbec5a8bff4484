//! Interoperability with an independent client: the official MCP Python SDK (`mcp==2.3.0`)
//! drives `mcp-dust-server stdio` against a running simulator, and the HTTP server (logging in
//! through the REST endpoint, then using the bearer token), in the three client modes (`auto`,
//! `legacy`, `2026-07-28`) over each transport: tools, structured output, progress, cancelling
//! a running `ask_agent` (the Dust run is cancelled too), resources, prompts, permissions.
//!
//! The test builds a virtual environment under `target/interop-venv` once (pip needs PyPI).

use std::{path::PathBuf, process::Command, sync::OnceLock};

use mcp_dust_server::sim::{self, ECHO_AGENT_ID, HANDBOOK_DS_ID, SLOW_AGENT_ID, SimConfig};

use crate::common::http as http_harness;

/// The Python SDK version the interoperability tests pin.
const PYTHON_SDK: &str = "mcp==2.3.0";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The venv's python, created on first use (one test binary, guarded by a `OnceLock`).
fn python() -> &'static PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let venv = root().join("target/interop-venv");
        let python = venv.join("bin/python");
        let ready = venv.join(".ready-mcp-2.3.0");
        if !ready.exists() {
            let status = Command::new("python3")
                .args(["-m", "venv", "--clear"])
                .arg(&venv)
                .status()
                .expect("python3 is needed for the interoperability tests");
            assert!(status.success(), "python3 -m venv failed");
            let status = Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    PYTHON_SDK,
                ])
                .status()
                .expect("pip");
            assert!(status.success(), "pip install {PYTHON_SDK} failed");
            std::fs::write(&ready, PYTHON_SDK).unwrap();
        }
        python
    })
}

/// Runs the Python client script in `mode` against `stdio`, with extra environment.
async fn run_python(mode: &str, extra_env: &[(&str, &str)]) {
    let sim = sim::spawn(SimConfig {
        token_delay_ms: 1,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    run_script(&sim, mode, "stdio", extra_env).await;
}

/// Runs the Python client script in `mode` against a real HTTP server whose environment is
/// `server_env`; the script logs in with the simulator's key.
async fn run_python_http(mode: &str, server_env: &[(&str, &str)], extra_env: &[(&str, &str)]) {
    let server = http_harness::TestServer::start_with(server_env).await;
    let url = server.url("/mcp");
    run_script(&server.sim, mode, &url, extra_env).await;
    server.shutdown().await;
}

async fn run_script(sim: &sim::SimHandle, mode: &str, target: &str, extra_env: &[(&str, &str)]) {
    let python = tokio::task::spawn_blocking(python).await.unwrap();
    let mut command = tokio::process::Command::new(python);
    command
        .arg(root().join("tests/interop/python_client.py"))
        .args([mode, target])
        .env("MCP_DUST_SERVER_BIN", env!("CARGO_BIN_EXE_mcp-dust-server"))
        .env("DUST_BASE_URL", sim.base_url())
        .env("DUST_WORKSPACE_ID", sim.workspace_id())
        .env("DUST_API_KEY", sim.api_key())
        .env("LOG_LEVEL", "warn")
        .env("EXPECT_AGENT_ID", ECHO_AGENT_ID)
        .env("SLOW_AGENT_ID", SLOW_AGENT_ID)
        .env("EXPECT_KB_ID", HANDBOOK_DS_ID)
        .env("EXPECT_SEARCH_QUERY", "paid time off")
        .env("EXPECT_WORKSPACE_ID", sim.workspace_id())
        .kill_on_drop(true);
    for (name, value) in extra_env {
        command.env(name, value);
    }
    let output = tokio::time::timeout(std::time::Duration::from_secs(120), command.output())
        .await
        .expect("the Python client took more than 2 minutes")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "python client ({mode}, {target}) failed\nstdout: {stdout}\nstderr: {stderr}"
    );
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert!(seen["progress_notifications"].as_u64().unwrap() > 0);
    assert!(seen["search_hits"].as_u64().unwrap() > 0);
    assert_eq!(seen["attachments_read"], 2);
    // The PDF went through Dust's two-step upload.
    assert!(
        sim.requests()
            .iter()
            .any(|r| r.method == "POST" && r.path.ends_with("/files")),
        "no file was created in Dust ({mode}, {target})"
    );
    // The client gave up on the slow agent: its run in Dust was cancelled too.
    assert_eq!(seen["cancelled_after_progress"], 3);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !sim
        .requests()
        .iter()
        .any(|r| r.method == "POST" && r.path.ends_with("/cancel"))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slow agent's run was not cancelled in Dust ({mode}, {target})"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // The key never shows in what the client saw or what the server logged.
    assert!(!stdout.contains(sim.api_key()) && !stderr.contains(sim.api_key()));
}

#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_legacy_era_over_stdio() {
    run_python("legacy", &[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_2026_era_over_stdio() {
    run_python("2026-07-28", &[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_auto_mode_with_write_permission() {
    run_python(
        "auto",
        &[("PERMISSIONS_DEFAULT", WRITER), ("EXPECT_WRITE", "1")],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_legacy_era_over_http_with_a_bearer_token() {
    run_python_http("legacy", &[], &[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_2026_era_over_http_with_a_read_only_token() {
    // The policy grants writes; the token asks for reads only, and must be refused a write.
    run_python_http(
        "2026-07-28",
        &[("PERMISSIONS_DEFAULT", WRITER)],
        &[(
            "LOGIN_PERMISSIONS",
            r#"["read:workspaces","read:agents","execute:agents","read:knowledge-bases","read:connectors"]"#,
        )],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_auto_mode_over_http_with_write_permission() {
    run_python_http(
        "auto",
        &[("PERMISSIONS_DEFAULT", WRITER)],
        &[("EXPECT_WRITE", "1")],
    )
    .await;
}

/// Reads plus writing documents.
const WRITER: &str = "read:workspaces,read:agents,execute:agents,read:knowledge-bases,write:knowledge-bases,read:connectors";

/// The MCP authorization flow (issue 10) as claude.ai or ChatGPT run it, headless: the SDK's
/// `OAuthClientProvider` discovers our metadata from the 401, registers, sends the "person" to
/// the consent page (filled by tests/interop/python_oauth.py), exchanges the code with PKCE,
/// and then lists tools and asks an agent with the token it was issued.
#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_connects_through_the_oauth_flow() {
    let server = http_harness::TestServer::start().await;
    let python = tokio::task::spawn_blocking(python).await.unwrap();
    let output = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        tokio::process::Command::new(python)
            .arg(root().join("tests/interop/python_oauth.py"))
            .arg(server.url("/mcp"))
            .env("DUST_API_KEY", server.sim.api_key())
            .env("DUST_WORKSPACE_ID", server.sim.workspace_id())
            .env("EXPECT_AGENT_ID", ECHO_AGENT_ID)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the Python OAuth client took more than 2 minutes")
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "python OAuth client failed\nstdout: {stdout}\nstderr: {stderr}"
    );
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(seen["agent_answered"], true);
    assert_eq!(seen["client_id_registered"], true);
    assert_eq!(seen["resource"], server.url("/mcp"));
    assert!(seen["tools"].as_array().unwrap().len() > 5);
    // Step-up: the first grant lacked execute:agents; the 403 scope challenge sent the person
    // back to the consent page for it (on top of what was asked before), once.
    assert_eq!(seen["consent_rounds"], 2, "{seen}");
    let second: Vec<&str> = seen["requested_scopes"][1]
        .as_str()
        .unwrap()
        .split(' ')
        .collect();
    assert!(second.contains(&"execute:agents"), "{seen}");
    assert!(second.contains(&"read:agents"), "{seen}");
    let granted = seen["granted_scope"].as_str().unwrap();
    assert!(granted.split(' ').any(|s| s == "execute:agents"), "{seen}");
    // The key never reaches the client's output; the server audited each step.
    assert!(!stdout.contains(server.sim.api_key()) && !stderr.contains(server.sim.api_key()));
    server.state.auditor.flush().await;
    use mcp_dust_server::audit::AuditEventType;
    for (event, count) in [
        (AuditEventType::OauthClientRegistered, 1),
        (AuditEventType::OauthConsentGranted, 2),
        (AuditEventType::OauthTokenIssued, 2),
        (AuditEventType::AuthzFail, 1),
    ] {
        assert_eq!(server.audit.of_type(event).len(), count, "{event:?}");
    }
    server.shutdown().await;
}

/// Issue 17: the Python SDK's elicitation callback is asked to approve the Mailer's
/// `send_email` (approve, decline, allow for good; then Dust no longer asks), in the legacy era
/// over stdio (an `elicitation/create` request in the middle of the call) and in the 2026-07-28
/// era over stdio and HTTP (an `input_required` round the SDK answers and retries); each
/// decision reaches Dust.
#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_approves_declines_and_always_allows_an_agents_tool_in_both_eras() {
    for (mode, over_http) in [
        ("legacy", false),
        ("2026-07-28", false),
        ("2026-07-28", true),
    ] {
        let server = http_harness::TestServer::start().await;
        let target = if over_http {
            server.url("/mcp")
        } else {
            "stdio".to_owned()
        };
        let sim = &server.sim;
        let python = tokio::task::spawn_blocking(python).await.unwrap();
        let output = tokio::time::timeout(
            std::time::Duration::from_secs(120),
            tokio::process::Command::new(python)
                .arg(root().join("tests/interop/python_approvals.py"))
                .args([mode, &target])
                .env("MCP_DUST_SERVER_BIN", env!("CARGO_BIN_EXE_mcp-dust-server"))
                .env("DUST_BASE_URL", sim.base_url())
                .env("DUST_WORKSPACE_ID", sim.workspace_id())
                .env("DUST_API_KEY", sim.api_key())
                .env("LOG_LEVEL", "warn")
                .env("APPROVAL_AGENT_ID", mcp_dust_server::sim::APPROVAL_AGENT_ID)
                .kill_on_drop(true)
                .output(),
        )
        .await
        .expect("the Python client took more than 2 minutes")
        .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "python approvals ({mode}, {target}) failed\nstdout: {stdout}\nstderr: {stderr}"
        );
        let seen: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
        let sent = "I sent your message to ceo@example.com.";
        let refused = "I did not send the email: the action was rejected.";
        assert_eq!(
            seen["answers"],
            serde_json::json!([sent, refused, sent, sent]),
            "{mode} {target}"
        );
        let decisions: Vec<serde_json::Value> = sim
            .requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/validate-action"))
            .map(|r| {
                serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["approved"].clone()
            })
            .collect();
        assert_eq!(
            decisions,
            ["approved", "rejected", "always_approved"],
            "{mode} {target}"
        );
        server.shutdown().await;
    }
}
