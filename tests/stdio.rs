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
