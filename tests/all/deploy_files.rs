//! The deployment files in `deploy/` are checked statically (there is no Docker engine on these
//! machines), and the container health check (`mcp-dust-server probe`) is run for real.
//!
//! What a reviewer would check by eye is checked here, so a change that breaks it fails CI: the
//! runtime image has no toolchain and runs as a non-root user with a health check; compose runs
//! the instances read-only; the systemd unit keeps its hardening; the nginx template replaces
//! (never appends) `X-Forwarded-For` and only redirects on plain HTTP; every metric an alert
//! rule names exists in the code.

use std::{collections::BTreeSet, path::Path, process::Command};

use crate::common::http::TestServer;

fn read(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// The instructions of the last stage of a Dockerfile (continuation lines joined).
fn final_stage(dockerfile: &str) -> Vec<String> {
    let joined = dockerfile.replace("\\\n", " ");
    let lines: Vec<String> = joined
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    let start = lines
        .iter()
        .rposition(|l| l.to_ascii_uppercase().starts_with("FROM "))
        .expect("a FROM line");
    lines[start..].to_vec()
}

#[test]
fn dockerfile_runtime_stage_is_minimal_non_root_and_health_checked() {
    let dockerfile = read("deploy/Dockerfile");
    let from_count = dockerfile
        .lines()
        .filter(|l| l.trim_start().to_ascii_uppercase().starts_with("FROM "))
        .count();
    assert!(from_count >= 2, "multi-stage build expected");

    let stage = final_stage(&dockerfile);
    let from = &stage[0];
    assert!(
        !from.contains("rust:") && !from.contains("cargo"),
        "the runtime stage must not start from a toolchain image: {from}"
    );
    for line in &stage {
        let upper = line.to_ascii_uppercase();
        assert!(
            !(upper.starts_with("RUN ") && (line.contains("cargo") || line.contains("rustup"))),
            "no toolchain in the runtime stage: {line}"
        );
        assert!(
            !(upper.starts_with("RUN ") && (line.contains("apt-get") || line.contains("apk "))),
            "no package installs in the runtime stage: {line}"
        );
    }
    let user = stage
        .iter()
        .rfind(|l| l.to_ascii_uppercase().starts_with("USER "))
        .expect("a USER instruction in the runtime stage");
    let who = user[5..].trim().split(':').next().unwrap().to_owned();
    assert!(
        who != "root" && who != "0",
        "the runtime stage must not run as root: {user}"
    );
    let health = stage
        .iter()
        .find(|l| l.to_ascii_uppercase().starts_with("HEALTHCHECK "))
        .expect("a HEALTHCHECK in the runtime stage");
    assert!(health.contains("probe"), "{health}");
    assert!(
        stage.iter().any(|l| l.contains("COPY --from=")),
        "the runtime stage copies only the built binary"
    );
}

#[test]
fn compose_runs_instances_read_only_behind_nginx_with_redis() {
    let compose = read("deploy/docker-compose.yml");
    for needle in [
        "read_only: true",
        "cap_drop: [ALL]",
        "no-new-privileges:true",
        "REDIS_URL: redis://redis:6379/0",
        "TRUSTED_PROXIES:",
        "NODE_ENV: production",
        "mcp-a: *instance",
        "mcp-b: *instance",
        "nginx/mcp-dust-server.conf.template",
    ] {
        assert!(
            compose.contains(needle),
            "docker-compose.yml lacks {needle:?}"
        );
    }
}

#[test]
fn systemd_unit_keeps_its_hardening() {
    let unit = read("deploy/systemd/mcp-dust-server.service");
    for needle in [
        "NoNewPrivileges=yes",
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=\n",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "MemoryDenyWriteExecute=yes",
        "SystemCallFilter=@system-service",
        "KillSignal=SIGTERM",
        "EnvironmentFile=",
    ] {
        assert!(unit.contains(needle), "systemd unit lacks {needle:?}");
    }
}

#[test]
fn nginx_template_replaces_forwarded_for_and_redirects_plain_http() {
    let conf = read("deploy/nginx/mcp-dust-server.conf.template");
    assert!(conf.contains("proxy_set_header X-Forwarded-For $remote_addr;"));
    assert!(
        !conf.contains("$proxy_add_x_forwarded_for"),
        "appending keeps a client-supplied X-Forwarded-For"
    );
    assert!(conf.contains("return 301 https://"));
    assert!(conf.contains("ssl http2;"), "TLS with HTTP/2");
    assert!(
        conf.contains("proxy_buffering off;"),
        "SSE answers must stream"
    );
    assert!(conf.contains("server_tokens off;"));
    // Every ${PLACEHOLDER} is one the compose file and the cluster test fill in.
    let known: BTreeSet<&str> = [
        "UPSTREAM_A",
        "UPSTREAM_B",
        "HTTP_PORT",
        "HTTPS_PORT",
        "SERVER_NAME",
        "TLS_CERT",
        "TLS_KEY",
    ]
    .into();
    let placeholder = regex::Regex::new(r"\$\{([A-Z_]+)\}").unwrap();
    for capture in placeholder.captures_iter(&conf) {
        assert!(
            known.contains(&capture[1]),
            "unknown placeholder {}",
            &capture[1]
        );
    }
    let compose = read("deploy/docker-compose.yml");
    for name in known {
        assert!(
            compose.contains(&format!("{name}:")),
            "compose does not set {name}"
        );
    }
}

/// Checks that every `mcp_dust_server_*` metric `text` (a file of `deploy/`) names is one a
/// `counter!`/`histogram!`/`gauge!` in `src` records; returns how many it names.
fn metrics_named_are_recorded(file: &str, text: &str) -> usize {
    let metric = regex::Regex::new(r"mcp_dust_server_([a-z_]+)").unwrap();
    let mut sources = String::new();
    for entry in walk(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src"))) {
        sources.push_str(&std::fs::read_to_string(entry).unwrap());
    }
    let mut seen = 0;
    for capture in metric.captures_iter(text) {
        let name = capture[1]
            .trim_end_matches("_bucket")
            .trim_end_matches("_count")
            .trim_end_matches("_sum");
        assert!(
            sources.contains(&format!("!(\"{name}\"")),
            "{file} uses {name}, which no counter!/histogram!/gauge! in src records"
        );
        seen += 1;
    }
    seen
}

#[test]
fn every_metric_an_alert_names_exists_in_the_code() {
    let rules = read("deploy/prometheus/alerts.yml");
    let seen = metrics_named_are_recorded("alerts.yml", &rules);
    assert!(seen >= 5, "the rules name the server's metrics");
}

/// The Grafana dashboard (issue 21): valid JSON Grafana imports (a Prometheus datasource
/// variable, panels with queries), and every query names metrics the server records, covering
/// requests, latency, tool calls, Dust calls, the breaker, rate limiting and auth failures.
#[test]
fn the_dashboard_queries_the_metrics_the_server_records() {
    let text = read("deploy/grafana/mcp-dust-server.json");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(dashboard["uid"], "mcp-dust-server");
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    assert!(
        variables
            .iter()
            .any(|v| v["type"] == "datasource" && v["query"] == "prometheus")
    );
    let panels = dashboard["panels"].as_array().unwrap();
    let mut exprs = String::new();
    for panel in panels {
        let targets = panel["targets"].as_array().expect("every panel queries");
        assert!(!targets.is_empty(), "{}", panel["title"]);
        for target in targets {
            let expr = target["expr"].as_str().expect("a PromQL expression");
            assert!(expr.contains("mcp_dust_server_"), "{expr}");
            assert_eq!(target["datasource"]["uid"], "${datasource}");
            exprs.push_str(expr);
            exprs.push('\n');
        }
    }
    let seen = metrics_named_are_recorded("the dashboard", &exprs);
    assert!(seen >= 12, "{seen}");
    for family in [
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "tool_calls_total",
        "dust_requests_total",
        "dust_breaker_open_circuits",
        "rate_limited_total",
        "auth_failures_total",
    ] {
        assert!(exprs.contains(family), "no panel shows {family}");
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

#[tokio::test(flavor = "multi_thread")]
async fn probe_passes_on_a_ready_server_and_fails_on_a_closed_port() {
    let server = TestServer::start().await;
    let ok = Command::new(env!("CARGO_BIN_EXE_mcp-dust-server"))
        .args(["probe", "--url", &server.url("/ready")])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let down = Command::new(env!("CARGO_BIN_EXE_mcp-dust-server"))
        .args(["probe", "--port", &port.to_string()])
        .output()
        .unwrap();
    assert!(!down.status.success());
    assert!(
        String::from_utf8_lossy(&down.stderr).contains("no answer"),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );

    let missing = Command::new(env!("CARGO_BIN_EXE_mcp-dust-server"))
        .args(["probe", "--url", &server.url("/no-such-route")])
        .output()
        .unwrap();
    assert!(!missing.status.success(), "a 404 is not healthy");
}
