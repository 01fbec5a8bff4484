//! `mcp-dust-server stdio` refuses to start without working credentials: a clear message on
//! standard error, nothing on standard output (it belongs to the protocol), a non-zero exit,
//! and never the key itself.

use std::process::Command;

use mcp_dust_server::sim::{self, SimConfig};

fn stdio(env: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mcp-dust-server"));
    command
        .arg("stdio")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap()
}

fn assert_refused(output: &std::process::Output, expected: &str, secret: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "started: {stderr}");
    assert!(output.stdout.is_empty(), "wrote to stdout");
    assert!(stderr.contains(expected), "{stderr}");
    assert!(!stderr.contains(secret), "the key leaked: {stderr}");
}

#[test]
fn missing_key_or_workspace() {
    let out = stdio(&[("DUST_WORKSPACE_ID", "w")]);
    assert_refused(&out, "DUST_API_KEY is not set", "sk-");
    let key = "sk-0123456789abcdef0123456789abcdef";
    let out = stdio(&[("DUST_API_KEY", key)]);
    assert_refused(&out, "DUST_WORKSPACE_ID is not set", key);
    let out = stdio(&[("DUST_API_KEY", "short"), ("DUST_WORKSPACE_ID", "w")]);
    assert_refused(&out, "32 to 64 characters", "short");
}

#[tokio::test(flavor = "multi_thread")]
async fn rejected_key_or_workspace() {
    let sim = sim::spawn(SimConfig::default()).await.unwrap();
    let base = sim.base_url();
    let wrong = "sk-ffffffffffffffffffffffffffffffff";
    let out = tokio::task::spawn_blocking({
        let (base, ws) = (base.clone(), sim.workspace_id().to_owned());
        move || {
            stdio(&[
                ("DUST_BASE_URL", &base),
                ("DUST_WORKSPACE_ID", &ws),
                ("DUST_API_KEY", wrong),
            ])
        }
    })
    .await
    .unwrap();
    assert_refused(&out, "Dust rejected DUST_API_KEY", wrong);

    let key = sim.api_key().to_owned();
    let other_ws = sim.other_workspace_id().to_owned();
    let out = tokio::task::spawn_blocking({
        let (base, key) = (base.clone(), key.clone());
        move || {
            stdio(&[
                ("DUST_BASE_URL", &base),
                ("DUST_WORKSPACE_ID", &other_ws),
                ("DUST_API_KEY", &key),
            ])
        }
    })
    .await
    .unwrap();
    assert_refused(&out, "Dust rejected DUST_API_KEY", &key);

    let out = tokio::task::spawn_blocking(move || {
        stdio(&[
            ("DUST_BASE_URL", "http://127.0.0.1:9"),
            ("DUST_WORKSPACE_ID", "w"),
            ("DUST_API_KEY", &key),
        ])
    })
    .await
    .unwrap();
    assert_refused(&out, "cannot check DUST_API_KEY", "sk-");
}

/// How a client ends a session while an `ask_agent` call is running.
#[derive(Clone, Copy, Debug)]
enum Ending {
    /// `notifications/cancelled`, then standard input closed at once (the TypeScript SDK's
    /// `abort()` then `close()`).
    CancelThenClose,
    /// SIGTERM with the call still running past `SHUTDOWN_GRACE_PERIOD` (clients send SIGTERM
    /// when closing the input did not end the process quickly enough).
    Terminate,
    /// Standard input closed without a cancellation, then SIGTERM (the MCP stdio shutdown; the
    /// TypeScript SDK's `close()` waits 2 s between the two, then 2 s more before SIGKILL): the
    /// process must not wait out its grace period but cancel and exit before the SIGKILL.
    CloseThenTerminate,
}

/// Sends SIGTERM to `child`.
fn sigterm(child: &tokio::process::Child) {
    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
}

/// However the session ends, the agent's run is cancelled in Dust before the process exits 0.
async fn ending_cancels_the_dust_run(ending: Ending) {
    use std::process::Stdio;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    let sim = sim::spawn(SimConfig::default()).await.unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcp-dust-server"))
        .arg("stdio")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DUST_BASE_URL", sim.base_url())
        .env("DUST_WORKSPACE_ID", sim.workspace_id())
        .env("DUST_API_KEY", sim.api_key())
        .env("LOG_LEVEL", "warn")
        .env(
            "SHUTDOWN_GRACE_PERIOD",
            match ending {
                Ending::CloseThenTerminate => "60",
                _ => "1",
            },
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let messages = [
        serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "stdio-test", "version": "1"}}}),
        serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "ask_agent", "_meta": {"progressToken": "p"},
            "arguments": {"agentId": sim::SLOW_AGENT_ID, "message": "hi"}}}),
    ];
    for message in messages {
        stdin
            .write_all(format!("{message}\n").as_bytes())
            .await
            .unwrap();
    }
    // The first progress notification: the run is under way in Dust.
    loop {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("a progress notification");
        if line.contains("notifications/progress") {
            break;
        }
    }
    match ending {
        Ending::CancelThenClose => {
            let cancel = serde_json::json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                "params": {"requestId": 2, "reason": "seen enough"}});
            stdin
                .write_all(format!("{cancel}\n").as_bytes())
                .await
                .unwrap();
            drop(stdin);
        }
        Ending::Terminate => {
            sigterm(&child);
        }
        Ending::CloseThenTerminate => {
            drop(stdin);
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            sigterm(&child);
            let status = tokio::time::timeout(std::time::Duration::from_secs(2), child.wait())
                .await
                .expect("the process did not exit within the 2 s a client waits before SIGKILL")
                .unwrap();
            assert!(status.success(), "{ending:?}: {status}");
        }
    }
    let status = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait())
        .await
        .expect("the process exits")
        .unwrap();
    assert!(status.success(), "{ending:?}: {status}");
    // No waiting here: the cancellation reached Dust before the process exited.
    assert!(
        sim.requests()
            .iter()
            .any(|r| r.method == "POST" && r.path.ends_with("/cancel")),
        "{ending:?}: the run was not cancelled in Dust before the process exited"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_then_close_still_cancels_the_dust_run() {
    ending_cancels_the_dust_run(Ending::CancelThenClose).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn close_then_sigterm_cancels_the_dust_run_without_waiting_out_the_grace_period() {
    ending_cancels_the_dust_run(Ending::CloseThenTerminate).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_past_the_grace_period_cancels_the_dust_run_before_exit() {
    ending_cancels_the_dust_run(Ending::Terminate).await;
}
