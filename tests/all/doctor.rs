//! `mcp-dust-server doctor` passes on the production settings the guide describes, fails on weak
//! ones naming the fix, and with `--url` probes a running server. In a Kubernetes pod it checks
//! what the cluster needs, and it checks the OpenTelemetry export the `OTEL_*` variables set up.

use std::process::{Command, Output};

use crate::common::http::TestServer;

/// Settings the guide's deployment section describes (the secret comes from `gen-secret`).
fn production_env(audit_file: &str) -> Vec<(&'static str, String)> {
    let secret = Command::new(env!("CARGO_BIN_EXE_mcp-dust-server"))
        .arg("gen-secret")
        .output()
        .unwrap();
    let secret = String::from_utf8(secret.stdout).unwrap().trim().to_owned();
    vec![
        ("NODE_ENV", "production".into()),
        ("SECURITY_SECRET_KEY", secret),
        ("MCP_PUBLIC_URL", "https://mcp.example.com".into()),
        ("ALLOWED_HOSTS", "mcp.example.com".into()),
        ("MCP_SERVER_HOST", "0.0.0.0".into()),
        ("TRUSTED_PROXIES", "10.0.0.5/32".into()),
        ("DUST_BASE_URL", "https://dust.tt".into()),
        ("AUDIT_LOG_FILE", audit_file.into()),
        ("LOG_LEVEL", "info".into()),
    ]
}

fn doctor(env: &[(&str, String)], args: &[&str]) -> (Output, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mcp-dust-server"));
    command.arg("doctor").args(args).env_clear();
    if let Ok(path) = std::env::var("PATH") {
        command.env("PATH", path);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    (output, stdout)
}

#[test]
fn production_settings_pass_every_item() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let env = production_env(audit.to_str().unwrap());
    let (output, stdout) = doctor(&env, &[]);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains(" 0 failed"), "{stdout}");
    // Every checklist line of the guide is reported, the people-only ones as reminders.
    for line in mcp_dust_server::doctor::CHECKLIST {
        assert!(stdout.contains(line), "{line} missing:\n{stdout}");
    }
    assert!(stdout.contains("TODO  incident response"), "{stdout}");
    assert!(stdout.contains("PASS  advisories"), "{stdout}");
    // The secret is judged, never shown.
    let secret = &env
        .iter()
        .find(|(n, _)| *n == "SECURITY_SECRET_KEY")
        .unwrap()
        .1;
    assert!(!stdout.contains(secret.as_str()));
}

#[test]
fn weak_settings_fail_and_name_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let mut env = production_env(audit.to_str().unwrap());
    for (name, value) in &mut env {
        match *name {
            "SECURITY_SECRET_KEY" => *value = "changeme-changeme-changeme-changeme".into(),
            "MCP_PUBLIC_URL" => *value = "http://mcp.example.com".into(),
            "TRUSTED_PROXIES" => *value = "0.0.0.0/0".into(),
            _ => {}
        }
    }
    env.push(("RATE_LIMIT_MAX", "1000000".into()));
    env.push(("LOG_REQUEST_BODY", "true".into()));
    let (output, stdout) = doctor(&env, &[]);
    assert!(!output.status.success(), "{stdout}");
    for expected in [
        "FAIL  SECURITY_SECRET_KEY",
        "fix: generate one with `mcp-dust-server gen-secret`",
        "FAIL  MCP_PUBLIC_URL",
        "FAIL  TRUSTED_PROXIES",
        "FAIL  RATE_LIMIT_MAX",
        "FAIL  body logging",
    ] {
        assert!(stdout.contains(expected), "{expected} missing:\n{stdout}");
    }
    assert!(
        !stdout.contains("changeme-changeme"),
        "the secret is never printed"
    );
}

#[test]
fn development_defaults_fail_on_environment() {
    let (output, stdout) = doctor(&[], &[]);
    assert!(!output.status.success());
    assert!(stdout.contains("FAIL  NODE_ENV"), "{stdout}");
    assert!(stdout.contains("fix: set NODE_ENV=production"), "{stdout}");
}

#[test]
fn a_configuration_that_does_not_load_is_a_failure_not_a_crash() {
    let (output, stdout) = doctor(&[("NODE_ENV", "staging".into())], &[]);
    assert!(!output.status.success());
    assert!(stdout.contains("FAIL  configuration: NODE_ENV"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn url_probes_a_running_server() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let env = production_env(audit.to_str().unwrap());
    let base = server.url("");
    let base = base.trim_end_matches('/').to_owned();
    let (output, stdout) = tokio::task::spawn_blocking(move || doctor(&env, &["--url", &base]))
        .await
        .unwrap();
    // The server under test is plain HTTP on loopback, which a deployment must not be.
    assert!(!output.status.success(), "{stdout}");
    for expected in [
        "PASS  live headers",
        "PASS  live banners",
        "FAIL  live HTTPS",
        "PASS  live /mcp without a token: 401 with a Bearer challenge",
        "PASS  live /metrics without a token",
        "PASS  live login CSRF",
        "PASS  live rate-limit headers",
    ] {
        assert!(stdout.contains(expected), "{expected} missing:\n{stdout}");
    }
}

/// With `REDIS_URL`, doctor pings Redis: a live one passes, a stopped one fails with the fix,
/// and the URL's password is never printed.
#[tokio::test]
async fn redis_url_is_checked_by_pinging_redis() {
    let Some(redis) = crate::common::redis_server::RedisServer::start("doctor_redis").await else {
        return;
    };
    let audit = tempfile::NamedTempFile::new().unwrap();
    let mut env = production_env(audit.path().to_str().unwrap());
    env.push(("REDIS_URL", redis.url()));
    let (_, stdout) = doctor(&env, &[]);
    let line = stdout.lines().find(|l| l.contains("REDIS_URL")).unwrap();
    assert!(line.contains("it answers"), "{stdout}");

    // Nothing listens on port 1: a failure naming the fix, without the password.
    env.pop();
    env.push(("REDIS_URL", "redis://:hunter2-canary@127.0.0.1:1/0".into()));
    let (output, stdout) = doctor(&env, &[]);
    assert!(!output.status.success(), "{stdout}");
    assert!(stdout.contains("Redis does not answer"), "{stdout}");
    assert!(
        stdout.contains("start Redis or correct REDIS_URL"),
        "{stdout}"
    );
    assert!(!stdout.contains("hunter2-canary"), "{stdout}");
}

/// A `rediss://` Redis with an ACL user: `REDIS_TLS_CA_FILE` set to its CA passes; another CA
/// fails naming the CA setting, without the password.
#[tokio::test]
async fn a_tls_redis_is_checked_with_its_ca() {
    use crate::common::redis_server::{PASSWORD, RedisServer, TestPki};
    let Some(redis) = RedisServer::start_tls("doctor_redis_tls").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let mut env = production_env(audit.to_str().unwrap());
    env.push(("REDIS_URL", redis.url()));
    env.push((
        "REDIS_TLS_CA_FILE",
        redis.ca_file().to_str().unwrap().into(),
    ));
    let (_, stdout) = doctor(&env, &[]);
    let line = stdout.lines().find(|l| l.contains("REDIS_URL")).unwrap();
    assert!(line.contains("it answers"), "{stdout}");

    let wrong = dir.path().join("wrong-ca.pem");
    std::fs::write(&wrong, TestPki::new("some other CA").ca_pem).unwrap();
    env.pop();
    env.push(("REDIS_TLS_CA_FILE", wrong.to_str().unwrap().into()));
    let (output, stdout) = doctor(&env, &[]);
    assert!(!output.status.success(), "{stdout}");
    assert!(
        stdout.contains("Redis refuses the TLS connection"),
        "{stdout}"
    );
    assert!(stdout.contains("set REDIS_TLS_CA_FILE"), "{stdout}");
    assert!(!stdout.contains(PASSWORD), "{stdout}");
}

/// M5: a policy file with a `[usernames]` section (grants by an unverified name) fails the
/// check, naming the entries and the `[users]` fix; one by fingerprint only passes.
#[test]
fn a_policy_file_granting_by_username_fails() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[usernames]\nalice = [\"write:knowledge-bases\"]\n",
    )
    .unwrap();
    let mut env = production_env(audit.to_str().unwrap());
    env.push(("PERMISSIONS_POLICY_FILE", policy.to_str().unwrap().into()));
    let (output, stdout) = doctor(&env, &[]);
    assert!(!output.status.success(), "{stdout}");
    assert!(stdout.contains("FAIL  PERMISSIONS_POLICY_FILE"), "{stdout}");
    assert!(
        stdout.contains("\"alice\"") && stdout.contains("[users]"),
        "{stdout}"
    );

    std::fs::write(
        &policy,
        "[users]\n\"usr_0123456789abcdef01234567\" = [\"read:agents\"]\n",
    )
    .unwrap();
    let (output, stdout) = doctor(&env, &[]);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("PASS  PERMISSIONS_POLICY_FILE"), "{stdout}");
}

/// In a pod (`KUBERNETES_SERVICE_HOST` set), doctor says so and checks what the cluster needs:
/// the manifests' settings pass (advising Redis before scaling), a loopback listen address fails
/// (the kubelet's probes could not reach it) and names the fix.
#[test]
fn in_kubernetes_the_pods_settings_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let mut env = production_env(audit.to_str().unwrap());
    for (name, value) in &mut env {
        match *name {
            "MCP_PUBLIC_URL" => *value = "https://mcp.corp.test".into(),
            "ALLOWED_HOSTS" => *value = "mcp.corp.test".into(),
            "TRUSTED_PROXIES" => *value = "10.244.0.0/16".into(),
            _ => {}
        }
    }
    let (_, outside) = doctor(&env, &[]);
    assert!(
        outside.contains("N/A   Kubernetes: not in a pod"),
        "{outside}"
    );

    env.push(("KUBERNETES_SERVICE_HOST", "10.96.0.1".into()));
    let (output, stdout) = doctor(&env, &[]);
    assert!(output.status.success(), "{stdout}");
    for expected in [
        "PASS  Kubernetes: in a pod",
        "PASS  Kubernetes listen address: 0.0.0.0:5001",
        "PASS  Kubernetes public host",
        "PASS  Kubernetes ingress: X-Forwarded-For believed from 10.244.0.0/16",
        "TODO  Kubernetes replicas: state is in memory",
        "TODO  Kubernetes shutdown: keep terminationGracePeriodSeconds above",
    ] {
        assert!(stdout.contains(expected), "{expected} missing:\n{stdout}");
    }

    for (name, value) in &mut env {
        if *name == "MCP_SERVER_HOST" {
            *value = "127.0.0.1".into();
        }
    }
    let (output, stdout) = doctor(&env, &[]);
    assert!(!output.status.success(), "{stdout}");
    assert!(
        stdout.contains("FAIL  Kubernetes listen address: MCP_SERVER_HOST=127.0.0.1 is loopback"),
        "{stdout}"
    );
    assert!(
        stdout.contains("fix: set MCP_SERVER_HOST=0.0.0.0"),
        "{stdout}"
    );
}

/// OpenTelemetry export: none configured passes ("no traces exported"); a valid OTLP/HTTP setup
/// passes without ever printing a header; another protocol fails and names the one supported.
#[test]
fn opentelemetry_export_is_checked_and_its_headers_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let mut env = production_env(audit.to_str().unwrap());
    let (_, stdout) = doctor(&env, &[]);
    assert!(
        stdout.contains("PASS  OpenTelemetry: no OTEL_EXPORTER_OTLP_ENDPOINT: no traces exported"),
        "{stdout}"
    );

    env.push((
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "https://otel.example.com:4318".into(),
    ));
    env.push(("OTEL_TRACES_SAMPLER", "parentbased_traceidratio".into()));
    env.push(("OTEL_TRACES_SAMPLER_ARG", "0.1".into()));
    env.push((
        "OTEL_EXPORTER_OTLP_HEADERS",
        "authorization=Bearer%20otel-canary-key".into(),
    ));
    let (output, stdout) = doctor(&env, &[]);
    assert!(output.status.success(), "{stdout}");
    for expected in [
        "PASS  OTEL_EXPORTER_OTLP_ENDPOINT: traces exported over OTLP/HTTP to https://otel.example.com:4318/",
        "PASS  OTEL_EXPORTER_OTLP_PROTOCOL: unset: http/protobuf",
        "PASS  OTEL_TRACES_SAMPLER: parentbased_traceidratio with ratio 0.1",
        "PASS  OTEL_EXPORTER_OTLP_HEADERS: set, 1 header(s)",
    ] {
        assert!(stdout.contains(expected), "{expected} missing:\n{stdout}");
    }
    assert!(!stdout.contains("otel-canary-key"), "{stdout}");

    env.push(("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".into()));
    let (output, stdout) = doctor(&env, &[]);
    assert!(!output.status.success(), "{stdout}");
    assert!(
        stdout.contains("FAIL  OTEL_EXPORTER_OTLP_PROTOCOL: OTEL_EXPORTER_OTLP_PROTOCOL=grpc"),
        "{stdout}"
    );
    assert!(
        stdout.contains("fix: set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"),
        "{stdout}"
    );
    assert!(!stdout.contains("otel-canary-key"), "{stdout}");
}
