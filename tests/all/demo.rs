//! `mcp-dust-server demo` starts the simulator and the server in one process, and the login
//! command it prints works: the answer is a token that lists tools on /mcp. It names the web
//! console, and keeps the audit trail in a file it names, not on the terminal.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The value after `label` on the line that starts with it.
fn field(output: &str, label: &str) -> String {
    output
        .lines()
        .find_map(|l| l.strip_prefix(label))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| panic!("{label} missing from:\n{output}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_prints_a_working_login_command() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    // By default the trail goes to a file in the temporary directory.
    let audit_file = dir.path().join("mcp-dust-server-demo-audit.jsonl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mcp-dust-server"))
        .arg("demo")
        .env("MCP_SERVER_PORT", port.to_string())
        .env("LOG_LEVEL", "info")
        .env("TMPDIR", dir.path())
        .env_remove("AUDIT_LOG_FILE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let output = tokio::task::spawn_blocking(move || {
        let mut text = String::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            text.push_str(&line);
            text.push('\n');
            if line.starts_with("Press Ctrl-C") || Instant::now() > deadline {
                break;
            }
        }
        text
    })
    .await
    .unwrap();

    let endpoint = field(&output, "MCP endpoint:");
    assert_eq!(endpoint, format!("http://127.0.0.1:{port}/mcp"));
    assert!(
        field(&output, "Web console:").starts_with(&format!("http://127.0.0.1:{port}/console")),
        "{output}"
    );
    assert!(
        field(&output, "Audit trail:").starts_with(&audit_file.display().to_string()),
        "{output}"
    );
    let key = field(&output, "Demo API key:");
    let workspace = field(&output, "Workspace id:");
    assert!(output.contains("curl -s -X POST"), "{output}");
    assert!(output.contains(&format!("\"apiKey\": \"{key}\"")));

    // What the printed curl command sends.
    mcp_dust_server::dust::install_crypto_provider();
    let http = reqwest::Client::new();
    let login: Value = http
        .post(format!("http://127.0.0.1:{port}/api/v1/auth/login"))
        .json(&json!({ "apiKey": key, "workspaceId": workspace }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["token"].as_str().expect("a token").to_owned();
    assert_eq!(login["tokenType"], "Bearer");
    assert_eq!(login["user"]["workspaceId"], workspace.as_str());
    // The printed client configuration carries a working token too.
    assert!(output.contains("\"Authorization\": \"Bearer eyJ"));

    let listed: Value = http
        .post(&endpoint)
        .bearer_auth(&token)
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2025-11-25")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tools = listed["result"]["tools"].as_array().expect("tools");
    assert!(tools.iter().any(|t| t["name"] == "ask_agent"));

    // The login was audited in the file, and the terminal shows no audit record as JSON.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let trail = std::fs::read_to_string(&audit_file).unwrap_or_default();
        if trail.contains("\"event_type\":\"authn_login_success\"") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no login in the audit file: {trail}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.kill().unwrap();
    let finished = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&finished.stderr);
    assert!(!stderr.contains("\"event_type\""), "{stderr}");
}
