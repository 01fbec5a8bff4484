//! The web console in a real browser (issue 5): Debian's Chromium, headless with a fresh
//! profile, driven by `tests/browser/console.mjs` (playwright-core) against the real server
//! in front of the simulator. The script clicks through every view and asserts what the user
//! sees; this test then checks what only the server knows: the old session cookie is refused
//! after logout, the token revoked in "my tokens" no longer works, the cross-site posts
//! changed nothing, and the audit trail has the login.
//!
//! Needs Chromium, Node and `tests/browser/node_modules` (`.ci/setup.d/40-chromium.sh`):
//! without them the browser test fails under `CI` and is skipped (with a message) elsewhere.
//! The console's files and headers are also checked without a browser.

use crate::common::http as server;

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use mcp_dust_server::{audit::AuditEventType, http::headers::CONSOLE_CONTENT_SECURITY_POLICY};
use serde_json::{Value, json};
use server::TestServer;

/// How long the whole browser run may take (the slow agent alone streams for ~15 s).
const BROWSER_RUN_LIMIT: Duration = Duration::from_secs(240);

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The Chromium binary itself (Debian's `/usr/bin/chromium` is a wrapper script that adds
/// flags from /etc/chromium.d; the test chooses its flags itself).
fn chromium() -> Option<PathBuf> {
    [
        "/usr/lib/chromium/chromium",
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
}

fn node_available() -> bool {
    std::process::Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Chromium, or `None` with a "skipped" line; under CI a missing tool is a failure.
fn browser_tools() -> Option<PathBuf> {
    let playwright = manifest_dir().join("tests/browser/node_modules/playwright-core");
    let missing = match chromium() {
        None => Some("chromium"),
        Some(_) if !node_available() => Some("node"),
        Some(_) if !playwright.is_dir() => Some("tests/browser/node_modules (npm ci)"),
        Some(_) => None,
    };
    match missing {
        None => chromium(),
        Some(what) if std::env::var_os("CI").is_some() => {
            panic!("{what} is missing: run .ci/setup.d/40-chromium.sh")
        }
        Some(what) => {
            eprintln!("skipped: {what} is missing (run .ci/setup.d/40-chromium.sh)");
            None
        }
    }
}

/// Runs `script` in `tests/browser` with Node against Chromium (fresh profile, screenshots in
/// `target/browser-artifacts`) and `env`; its last stdout line is the JSON report. Returns the
/// report, the process output and the artifacts directory.
async fn run_browser_script(
    script: &str,
    chromium: &Path,
    env: &[(&str, &str)],
) -> (Value, std::process::Output, PathBuf) {
    let artifacts = manifest_dir().join("target/browser-artifacts");
    let profile = tempfile::tempdir().unwrap();
    let run = tokio::process::Command::new("node")
        .arg(script)
        .current_dir(manifest_dir().join("tests/browser"))
        .envs(env.iter().copied())
        .env("CHROMIUM", chromium)
        .env("USER_DATA_DIR", profile.path())
        .env("ARTIFACTS", &artifacts)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(BROWSER_RUN_LIMIT, run)
        .await
        .expect("the browser run took too long")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = stdout
        .lines()
        .next_back()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| {
            let stderr = String::from_utf8_lossy(&output.stderr);
            panic!("no report from {script}:\n{stdout}\n{stderr}")
        });
    (report, output, artifacts)
}

#[tokio::test(flavor = "multi_thread")]
async fn console_files_are_served_with_the_page_policy() {
    let server = TestServer::start().await;
    let page = server
        .http
        .get(server.url("/console"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let h = page.headers().clone();
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    assert_eq!(
        h["content-security-policy"],
        CONSOLE_CONTENT_SECURITY_POLICY
    );
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["cross-origin-opener-policy"], "same-origin");
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"<script type="module" src="/console/app.js"></script>"#));

    for (name, content_type) in [
        ("app.js", "text/javascript; charset=utf-8"),
        ("api.js", "text/javascript; charset=utf-8"),
        ("sse.js", "text/javascript; charset=utf-8"),
        ("markdown.js", "text/javascript; charset=utf-8"),
        ("markdown-it.js", "text/javascript; charset=utf-8"),
        ("console.css", "text/css; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
    ] {
        let url = server.url(&format!("/console/{name}"));
        let asset = server.http.get(&url).send().await.unwrap();
        assert_eq!(asset.status(), 200, "{name}");
        let h = asset.headers().clone();
        assert_eq!(h["content-type"], content_type, "{name}");
        assert_eq!(h["cache-control"], "public, max-age=300", "{name}");
        assert_eq!(
            h["content-security-policy"],
            CONSOLE_CONTENT_SECURITY_POLICY
        );
        assert_eq!(h["x-content-type-options"], "nosniff");
        let etag = h["etag"].to_str().unwrap().to_owned();
        assert!(!asset.bytes().await.unwrap().is_empty());
        // Revalidation: same ETag, no body.
        let again = server
            .http
            .get(&url)
            .header("If-None-Match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{name}");
        assert_eq!(again.headers()["etag"], etag.as_str());
        assert!(again.bytes().await.unwrap().is_empty());
    }

    // An unknown file is the usual 404 envelope under the API's own policy.
    let missing = server
        .http
        .get(server.url("/console/secrets.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.headers()["content-security-policy"],
        mcp_dust_server::http::headers::API_CONTENT_SECURITY_POLICY
    );
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");

    // The page policy is not for the API: its answers keep `default-src 'none'`.
    let status = server
        .http
        .get(server.url("/api/v1/status"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        status.headers()["content-security-policy"],
        mcp_dust_server::http::headers::API_CONTENT_SECURITY_POLICY
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_works_end_to_end_in_chromium() {
    let Some(chromium) = browser_tools() else {
        return;
    };
    let server = TestServer::start().await;
    // A second token of the same user: "my tokens" lists it and the browser revokes it.
    let other_token = server.token(None).await;

    let (mut report, output, artifacts) = run_browser_script(
        "console.mjs",
        &chromium,
        &[
            ("CONSOLE_URL", &server.url("/console")),
            ("API_KEY", server.sim.api_key()),
            ("WORKSPACE_ID", server.sim.workspace_id()),
        ],
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The session cookie is dead by now (checked below), but keep it out of failure output.
    let cookie = report["sessionCookie"].take();
    assert_eq!(
        report["ok"], true,
        "browser run failed: {report:#}\n{stderr}"
    );
    assert!(output.status.success());

    // What the user saw.
    assert_eq!(report["echoAnswer"], "You said: hello from the browser");
    assert_eq!(
        report["approvalAnswer"],
        "I sent your message to ceo@example.com."
    );
    // The question card's option reached Dust as the option's index, and the run finished.
    assert_eq!(
        report["questionAnswer"],
        "I booked a meeting room in Paris."
    );
    let answers: Vec<Value> = server
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/answer-question"))
        .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap()["answer"].clone())
        .collect();
    assert_eq!(answers, [json!({"selectedOptions": [0]})]);
    // The sign-in card linked to the conversation in Dust, and stopping cancelled the run.
    let link = &report["signInLink"];
    assert_eq!(link["target"], "_blank", "{link}");
    let cancelled = server
        .sim
        .requests()
        .iter()
        .any(|r| r.method == "POST" && r.path.ends_with("/cancel"));
    assert!(
        cancelled,
        "the stopped sign-in run was not cancelled in Dust"
    );
    assert!(report["slowUpdates"].as_u64().unwrap() > 1, "{report:#}");
    assert!(!report["searchResults"].as_array().unwrap().is_empty());
    for key in [
        "consoleErrors",
        "cspViolations",
        "pageErrors",
        "failedRequests",
        "dialogs",
    ] {
        assert_eq!(report[key], json!([]), "{key}: {report:#}");
    }
    // The one refusal the attachment step asks for (a file type Dust does not take).
    assert_eq!(
        report["expectedConsoleErrors"].as_array().map(Vec::len),
        Some(1),
        "{report:#}"
    );
    assert_eq!(report["steps"].as_array().unwrap().len(), 15, "{report:#}");
    for name in report["steps"].as_array().unwrap() {
        let png = artifacts.join(format!("{}.png", name.as_str().unwrap()));
        assert!(png.metadata().is_ok_and(|m| m.len() > 0), "{png:?}");
    }

    // The cross-site posts were refused and changed nothing (the page reloaded still logged in).
    for attack in ["logout", "login"] {
        let status = report["crossSite"][attack]["status"].as_u64().unwrap();
        assert!(
            status == 401 || status == 403,
            "cross-site {attack}: {status}"
        );
    }
    assert_eq!(report["sessionSurvivedCrossSite"], true);

    // The old session cookie no longer works after logout.
    let name = cookie["name"].as_str().expect("session cookie name");
    let value = cookie["value"].as_str().expect("session cookie value");
    let replay = server
        .http
        .get(server.url("/api/v1/auth/session"))
        .header("Cookie", format!("{name}={value}"))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 401);
    let replay = server
        .http
        .get(server.url("/api/v1/auth/tokens"))
        .header("Cookie", format!("{name}={value}"))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 401);

    // The token revoked in "my tokens" is refused.
    let (status, _) = server
        .mcp(
            Some(&other_token),
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
        )
        .await;
    assert_eq!(status, 401);

    // One login from the browser (and the test's own), none from the cross-site form.
    server.state.auditor.flush().await;
    let logins = server.audit.of_type(AuditEventType::AuthnLoginSuccess);
    assert_eq!(logins.len(), 2, "{logins:#?}");
    server.shutdown().await;
}

/// The OAuth consent page in a real browser (issue 10): `tests/browser/consent.mjs` registers a
/// client, opens the authorization URL, fills the key, withholds one permission and approves;
/// Chromium follows the redirect to the client under the page's own `form-action` policy. This
/// test then checks the token the client got and the server's records.
#[tokio::test(flavor = "multi_thread")]
async fn the_oauth_consent_page_works_in_chromium() {
    let Some(chromium) = browser_tools() else {
        return;
    };
    let server = TestServer::start().await;
    let (mut report, output, _) = run_browser_script(
        "consent.mjs",
        &chromium,
        &[
            ("BASE_URL", &server.url("")),
            ("API_KEY", server.sim.api_key()),
            ("WORKSPACE_ID", server.sim.workspace_id()),
        ],
    )
    .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let access_token = report["accessToken"].take();
    assert_eq!(
        report["ok"], true,
        "consent run failed: {report:#}\n{stderr}"
    );
    assert!(output.status.success());
    assert!(!stdout.contains(server.sim.api_key()) && !stderr.contains(server.sim.api_key()));

    // What the person saw and chose.
    for key in ["consoleErrors", "cspViolations", "pageErrors"] {
        assert_eq!(report[key], json!([]), "{key}: {report:#}");
    }
    assert_eq!(report["steps"].as_array().unwrap().len(), 4, "{report:#}");
    assert_eq!(
        report["grantedScope"], "read:agents read:knowledge-bases",
        "{report:#}"
    );
    assert_eq!(report["hasRefreshToken"], true);
    // Framed by another site: not rendered. Posted from another site: refused, no redirect.
    assert_eq!(report["framedFormVisible"], false, "{report:#}");
    assert!(
        report["frameRefusals"][0]
            .as_str()
            .is_some_and(|l| l.contains("frame-ancestors 'none'")),
        "the frame was not refused by the page's policy: {report:#}"
    );
    assert_eq!(report["forgedStatus"], 403, "{report:#}");
    assert_eq!(report["callbacksAfterForgery"], 1, "{report:#}");

    // The token works for what was granted, and only that.
    let token = access_token.as_str().expect("an access token");
    let (status, body) = server
        .mcp(
            Some(token),
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let names: Vec<&str> = body["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"list_agents"), "{names:?}");
    assert!(!names.contains(&"ask_agent"), "{names:?}");

    server.state.auditor.flush().await;
    for (event, count) in [
        (AuditEventType::OauthClientRegistered, 1),
        (AuditEventType::OauthConsentGranted, 1),
        (AuditEventType::OauthTokenIssued, 1),
    ] {
        assert_eq!(server.audit.of_type(event).len(), count, "{event:?}");
    }
    assert!(
        !server.audit.of_type(AuditEventType::CsrfFail).is_empty(),
        "the forged consent was not audited"
    );
    server.shutdown().await;
}
