//! The cluster test of the deployment guide: two instances sharing one Redis behind nginx with
//! TLS and HTTP/2, using the very nginx template in `deploy/` (catalogue J9, R8 and the
//! trusted-proxy rule).
//!
//! It proves what an operator relies on when adding an instance: a token issued through one
//! instance works on the other, a logout on one is honoured by the other at once, the rate
//! limit is shared rather than doubled, the client address the limiter sees is the one nginx
//! saw (a forged `X-Forwarded-For` buys nothing), plain HTTP only redirects, and a browser
//! session (S12) started through the proxy works on every instance and ends on all of them at
//! one logout.
//!
//! Needs `redis-server`, `nginx` and `openssl` (`.ci/setup.d/20-redis.sh`, `25-nginx.sh`):
//! skipped with a message without them, a failure in CI.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::common::{browser::Reply, redis_server::RedisServer};
use mcp_dust_server::sim::{self, SimConfig, SimHandle};
use reqwest::{StatusCode, Version, redirect::Policy};
use serde_json::{Value, json};

/// The per-address budget of the instances; small, so the test reaches it quickly.
const RATE_LIMIT: u64 = 60;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn have(tool: &str, args: &[&str]) -> bool {
    Command::new(tool)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// A child process stopped when dropped: SIGTERM first, so that nginx's master stops its
/// workers (a SIGKILL of the master alone leaves them running, orphaned), then SIGKILL if it is
/// still there after a few seconds.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Instance {
    port: u16,
    audit: PathBuf,
    _process: Process,
}

impl Instance {
    fn start(
        dir: &Path,
        name: &str,
        sim: &SimHandle,
        redis: &RedisServer,
        secret: &str,
        https_port: u16,
    ) -> Self {
        let port = free_port();
        let audit = dir.join(format!("audit-{name}.jsonl"));
        let public = format!("https://localhost:{https_port}");
        let hosts = format!("localhost:{https_port},localhost,127.0.0.1:{port}");
        let child = Command::new(env!("CARGO_BIN_EXE_mcp-dust-server"))
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("NODE_ENV", "production")
            .env("SECURITY_SECRET_KEY", secret)
            .env("MCP_SERVER_HOST", "127.0.0.1")
            .env("MCP_SERVER_PORT", port.to_string())
            .env("MCP_PUBLIC_URL", &public)
            .env("ALLOWED_HOSTS", &hosts)
            .env("TRUSTED_PROXIES", "127.0.0.1/32")
            .env("REDIS_URL", redis.url())
            .env("RATE_LIMIT_MAX", RATE_LIMIT.to_string())
            .env("RATE_LIMIT_WINDOW", "3600")
            .env("DUST_BASE_URL", sim.base_url())
            .env("DUST_WORKSPACE_ID", sim.workspace_id())
            .env("AUDIT_LOG_FILE", &audit)
            .env("LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        Self {
            port,
            audit,
            _process: Process(child),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn wait_ready(&self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = client.get(self.url("/ready")).send().await
                && response.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "instance on {} never ready",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn audit_records(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.audit)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

struct Nginx {
    http_port: u16,
    https_port: u16,
    cert: Vec<u8>,
    _process: Process,
}

impl Nginx {
    fn start(dir: &Path, http_port: u16, https_port: u16, upstreams: [u16; 2]) -> Self {
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        let status = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
            ])
            .args(["-nodes", "-days", "1", "-subj", "/CN=localhost"])
            .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
            // An end-entity certificate (openssl's default is a CA, which rustls refuses to
            // accept as a server's certificate).
            .args(["-addext", "basicConstraints=critical,CA:FALSE"])
            .args(["-addext", "extendedKeyUsage=serverAuth"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "openssl could not make a certificate");

        let template = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/nginx/mcp-dust-server.conf.template"
        ))
        .unwrap();
        let site = template
            .replace("${UPSTREAM_A}", &format!("127.0.0.1:{}", upstreams[0]))
            .replace("${UPSTREAM_B}", &format!("127.0.0.1:{}", upstreams[1]))
            .replace("${HTTP_PORT}", &http_port.to_string())
            .replace("${HTTPS_PORT}", &https_port.to_string())
            .replace("${SERVER_NAME}", "localhost")
            .replace("${TLS_CERT}", cert.to_str().unwrap())
            .replace("${TLS_KEY}", key.to_str().unwrap());
        assert!(!site.contains("${"), "a placeholder was left unfilled");
        std::fs::write(dir.join("site.conf"), site).unwrap();
        let root = is_root();
        let d = dir.display();
        let main = format!(
            "{user}daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
             include {d}/site.conf;\n}}\n",
            user = if root { "user root;\n" } else { "" },
        );
        std::fs::write(dir.join("nginx.conf"), main).unwrap();
        let check = Command::new("nginx")
            .arg("-t")
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "nginx rejects the configuration:\n{}",
            String::from_utf8_lossy(&check.stderr)
        );
        let child = Command::new("nginx")
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        Self {
            http_port,
            https_port,
            cert: std::fs::read(&cert).unwrap(),
            _process: Process(child),
        }
    }

    fn https(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.https_port)
    }

    /// A client that trusts the throwaway certificate and negotiates HTTP/2 by ALPN.
    fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&self.cert).unwrap())
            .redirect(Policy::none())
            .build()
            .unwrap()
    }

    async fn wait_ready(&self) {
        let client = self.client();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let last = match client.get(self.https("/health")).send().await {
                Ok(response) if response.status().is_success() => return,
                Ok(response) => format!("status {}", response.status()),
                Err(e) => format!("{e:?}"),
            };
            assert!(
                Instant::now() < deadline,
                "nginx never answered over TLS: {last}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn mcp_list_tools(client: &reqwest::Client, url: &str, token: &str) -> reqwest::RequestBuilder {
    client
        .post(url)
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {} }))
}

#[tokio::test(flavor = "multi_thread")]
async fn two_instances_behind_nginx_behave_as_one() {
    if !(have("nginx", &["-v"]) && have("openssl", &["version"])) {
        assert!(
            std::env::var_os("CI").is_none(),
            "nginx and openssl are needed (CI runs .ci/setup.d/25-nginx.sh first)"
        );
        eprintln!("skipped: the cluster test needs nginx and openssl");
        return;
    }
    mcp_dust_server::dust::install_crypto_provider();
    let Some(redis) = RedisServer::start("cluster").await else {
        return;
    };
    let sim = sim::spawn(SimConfig {
        token_delay_ms: 1,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let secret = mcp_dust_server::secret::generate();
    let (http_port, https_port) = (free_port(), free_port());
    let a = Instance::start(dir.path(), "a", &sim, &redis, &secret, https_port);
    let b = Instance::start(dir.path(), "b", &sim, &redis, &secret, https_port);
    a.wait_ready().await;
    b.wait_ready().await;
    let nginx = Nginx::start(dir.path(), http_port, https_port, [a.port, b.port]);
    nginx.wait_ready().await;
    let client = nginx.client();
    let direct = reqwest::Client::new();

    // Plain HTTP only redirects to HTTPS.
    let plain = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
        .get(format!("http://localhost:{}/health", nginx.http_port))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(
        plain.headers()["location"],
        format!("https://localhost:{https_port}/health").as_str()
    );

    // TLS with HTTP/2, and the server's own headers pass through the proxy.
    let health = client.get(nginx.https("/health")).send().await.unwrap();
    assert_eq!(health.version(), Version::HTTP_2);
    assert!(health.headers().contains_key("strict-transport-security"));
    assert!(health.headers().contains_key("content-security-policy"));

    // J9: a token issued through the proxy works on both instances, directly and through it.
    let login = client
        .post(nginx.https("/api/v1/auth/login"))
        .json(&json!({ "apiKey": sim.api_key(), "workspaceId": sim.workspace_id() }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        login.status(),
        StatusCode::OK,
        "{}",
        login.text().await.unwrap()
    );
    let token = login.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    for instance in [&a, &b] {
        let response = mcp_list_tools(&direct, &instance.url("/mcp"), &token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "instance {}",
            instance.port
        );
    }
    for _ in 0..4 {
        let response = mcp_list_tools(&client, &nginx.https("/mcp"), &token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    // A logout on A is honoured by B at once.
    let logout = direct
        .post(a.url("/api/v1/auth/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(logout.status().is_success(), "{}", logout.status());
    let after = mcp_list_tools(&direct, &b.url("/mcp"), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);

    browser_sessions_are_shared(&nginx, &sim, [&a, &b]).await;

    // R8 and the trusted proxy: the budget of 127.0.0.1 (nginx's view of this client) is one
    // budget across both instances, counted down by one per request whichever instance
    // answers, and a forged X-Forwarded-For (replaced by nginx) does not open a new one.
    let mut remaining: Option<u64> = None;
    let mut refused_at = None;
    for i in 0..(RATE_LIMIT + 5) {
        let response = client
            .get(nginx.https("/api/v1/status"))
            .header("x-forwarded-for", format!("203.0.113.{}", i % 250))
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(response.headers().contains_key("retry-after"));
            refused_at = Some(i);
            break;
        }
        assert_eq!(response.status(), StatusCode::OK);
        let now: u64 = response.headers()["x-ratelimit-remaining"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        if let Some(before) = remaining {
            assert_eq!(now + 1, before, "one shared counter, request {i}");
        }
        remaining = Some(now);
    }
    let refused_at = refused_at.expect("the shared limit was reached");
    assert!(
        refused_at <= RATE_LIMIT,
        "cut at the configured limit, not twice it"
    );

    // Both instances served traffic, and every record of the limiter names the real address.
    // (The audit writer is asynchronous: give it a moment to reach the files.)
    let deadline = Instant::now() + Duration::from_secs(5);
    let records: Vec<Value> = loop {
        let records: Vec<Value> = [&a, &b].iter().flat_map(|i| i.audit_records()).collect();
        if records
            .iter()
            .any(|r| r["event_type"] == "ratelimit_exceeded")
            || Instant::now() > deadline
        {
            break records;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!a.audit_records().is_empty() && !b.audit_records().is_empty());
    let limited: Vec<&Value> = records
        .iter()
        .filter(|r| r["event_type"] == "ratelimit_exceeded")
        .collect();
    assert!(!limited.is_empty());
    for record in &limited {
        assert_eq!(record["ip"], "127.0.0.1", "{record}");
    }
    assert!(
        !serde_json::to_string(&records)
            .unwrap()
            .contains("203.0.113."),
        "a forged address never reaches the audit trail"
    );
}

/// S12 across instances: a browser session started through nginx (production cookies:
/// `__Host-`, `Secure`) works on both instances, directly and through the proxy, and one
/// logout ends it everywhere at once.
async fn browser_sessions_are_shared(nginx: &Nginx, sim: &SimHandle, [a, b]: [&Instance; 2]) {
    let client = nginx.client();
    let direct = reqwest::Client::new();
    let login = Reply::read(
        client
            .post(nginx.https("/api/v1/auth/login"))
            .json(
                &json!({ "apiKey": sim.api_key(), "workspaceId": sim.workspace_id(),
                           "session": true }),
            )
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(login.status, 200, "{}", login.text);
    let sid = login.cookie("__Host-mcp.sid");
    let xsrf = login.cookie("__Host-XSRF-TOKEN");
    assert!(sid.has("secure") && sid.has("httponly"), "{sid:?}");
    assert!(
        login.body.get("token").is_none(),
        "a browser login returns no bearer token"
    );
    let csrf = login.body["csrfToken"].as_str().unwrap().to_owned();
    // What the browser sends back (the cookies are `Secure`: over plain HTTP to an instance
    // the test sends them itself, as a browser never would; the server does not care).
    let cookies = format!(
        "__Host-mcp.sid={}; __Host-XSRF-TOKEN={}",
        sid.value, xsrf.value
    );
    let whoami = |client: &reqwest::Client, url: String| {
        client.get(url).header("cookie", cookies.clone()).send()
    };

    // The session works on A and on B directly, and through nginx whichever instance answers.
    for instance in [a, b] {
        let reply = Reply::read(
            whoami(&direct, instance.url("/api/v1/auth/session"))
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            reply.status, 200,
            "instance {}: {}",
            instance.port, reply.text
        );
        assert_eq!(
            reply.body["user"]["id"], login.body["user"]["id"],
            "instance {}",
            instance.port
        );
    }
    for _ in 0..4 {
        let response = whoami(&client, nginx.https("/api/v1/auth/session"))
            .await
            .unwrap();
        assert_eq!(response.version(), Version::HTTP_2);
        assert_eq!(response.status(), StatusCode::OK);
    }
    // B enforces the CSRF rule on it: a cookie-authenticated POST without the header fails.
    let forged = Reply::read(
        direct
            .post(b.url("/api/v1/auth/logout"))
            .header("cookie", cookies.clone())
            .send()
            .await
            .unwrap(),
    )
    .await;
    forged.assert_error(403, "csrf_failed");

    // Logout on A (with the CSRF header the browser sends) ends the session on B at once, and
    // through the proxy.
    let logout = Reply::read(
        direct
            .post(a.url("/api/v1/auth/logout"))
            .header("cookie", cookies.clone())
            .header("x-xsrf-token", &csrf)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(logout.status < 300, "{} {}", logout.status, logout.text);
    let on_b = Reply::read(
        whoami(&direct, b.url("/api/v1/auth/session"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(on_b.status, 401, "{}", on_b.text);
    for _ in 0..2 {
        let through = whoami(&client, nginx.https("/api/v1/auth/session"))
            .await
            .unwrap();
        assert_eq!(through.status(), StatusCode::UNAUTHORIZED);
    }

    // A second session, ended by a logout through nginx, is gone on both instances directly.
    let second = Reply::read(
        client
            .post(nginx.https("/api/v1/auth/login"))
            .json(
                &json!({ "apiKey": sim.api_key(), "workspaceId": sim.workspace_id(),
                           "session": true }),
            )
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(second.status, 200, "{}", second.text);
    let cookies = format!(
        "__Host-mcp.sid={}; __Host-XSRF-TOKEN={}",
        second.cookie("__Host-mcp.sid").value,
        second.cookie("__Host-XSRF-TOKEN").value
    );
    let csrf = second.body["csrfToken"].as_str().unwrap();
    let logout = client
        .post(nginx.https("/api/v1/auth/logout"))
        .header("cookie", cookies.clone())
        .header("x-xsrf-token", csrf)
        .send()
        .await
        .unwrap();
    assert!(logout.status().is_success(), "{}", logout.status());
    for instance in [a, b] {
        let response = direct
            .get(instance.url("/api/v1/auth/session"))
            .header("cookie", cookies.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "instance {}",
            instance.port
        );
    }
}
