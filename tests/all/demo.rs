//! `mcp-dust-server demo` starts the simulator and the server in one process, and the login
//! command it prints works: the answer is a token that lists tools on /mcp.

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
    let mut child = Command::new(env!("CARGO_BIN_EXE_mcp-dust-server"))
        .arg("demo")
        .env("MCP_SERVER_PORT", port.to_string())
        .env("LOG_LEVEL", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
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

    child.kill().unwrap();
    child.wait().unwrap();
}
