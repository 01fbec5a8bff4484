//! A real server on 127.0.0.1:0 with the simulator as Dust, memory stores, an in-memory audit
//! sink and a manual clock, plus a plain HTTP client.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use mcp_dust_server::{
    audit::{Auditor, MemoryAudit},
    config::Config,
    serve::{Parts, build_state},
    sim::{self, SimConfig, SimHandle},
    state::{AppState, Clock},
    store::{CounterStore, Stores},
};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// The `SECURITY_SECRET_KEY` of every test server (tests derive the JWT key from it).
pub(crate) const SECRET: &str = "3f1c9a7be2d84c6f0a5e1b7d9c3f2e8a4b6d0c1e7f9a2b4c6d8e0f1a3b5c7d9e";

/// A clock tests move by hand.
#[derive(Debug)]
pub(crate) struct ManualClock(Mutex<SystemTime>);

impl ManualClock {
    pub(crate) fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap()
    }
}

pub(crate) struct TestServer {
    pub sim: SimHandle,
    pub state: AppState,
    pub addr: SocketAddr,
    pub base: String,
    pub audit: MemoryAudit,
    pub clock: Arc<ManualClock>,
    pub http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestServer {
    pub(crate) async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Starts with extra configuration (environment-style names).
    pub(crate) async fn start_with(env: &[(&str, &str)]) -> Self {
        let sim = sim::spawn(SimConfig {
            token_delay_ms: 1,
            ..SimConfig::default()
        })
        .await
        .unwrap();
        Self::start_on(sim, env, None).await
    }

    /// Starts in front of `sim`, with the Dust client pointed at `dust_url` when given (a
    /// recording proxy, a mock, a closed port) and at the simulator otherwise.
    pub(crate) async fn start_on(
        sim: SimHandle,
        env: &[(&str, &str)],
        dust_url: Option<&str>,
    ) -> Self {
        Self::start_with_stores(sim, env, dust_url, Stores::memory()).await
    }

    /// [`Self::start_on`] with the given rate-limit counter store.
    pub(crate) async fn start_with_counters(
        sim: SimHandle,
        env: &[(&str, &str)],
        dust_url: Option<&str>,
        counters: Arc<dyn CounterStore>,
    ) -> Self {
        let stores = Stores {
            counters,
            ..Stores::memory()
        };
        Self::start_with_stores(sim, env, dust_url, stores).await
    }

    /// [`Self::start_on`] with the given state stores (Redis: `tests/common/redis.rs`).
    pub(crate) async fn start_with_stores(
        sim: SimHandle,
        env: &[(&str, &str)],
        dust_url: Option<&str>,
        stores: Stores,
    ) -> Self {
        let dust_url = dust_url.map_or_else(|| sim.base_url(), str::to_owned);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut vars: Vec<(String, String)> = vec![
            ("DUST_BASE_URL".into(), dust_url.clone()),
            ("MCP_SERVER_PORT".into(), addr.port().to_string()),
            ("SECURITY_SECRET_KEY".into(), SECRET.into()),
            ("LOG_LEVEL".into(), "warn".into()),
            // Tests make many requests from 127.0.0.1: rate limits are high unless a test
            // sets its own (tests/all/http_rate_limit.rs).
            ("RATE_LIMIT_MAX".into(), "100000".into()),
            ("RATE_LIMIT_LOGIN_MAX".into(), "100000".into()),
        ];
        for (k, v) in env {
            vars.retain(|(name, _)| name != k);
            vars.push(((*k).into(), (*v).into()));
        }
        let config = Config::from_sources(&Default::default(), |name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
        .unwrap();
        let audit = MemoryAudit::new();
        let clock = Arc::new(ManualClock(Mutex::new(SystemTime::now())));
        let parts = Parts {
            // Built from the configuration, so tests can set DUST_TIMEOUT and friends.
            dust: std::sync::Arc::new(mcp_dust_server::app::dust_client(&config).unwrap()),
            stores,
            auditor: Auditor::start(audit.sink()).unwrap(),
            clock: clock.clone(),
        };
        let state = build_state(config, parts).unwrap();
        mcp_dust_server::dust::install_crypto_provider();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(mcp_dust_server::http::serve(
            listener,
            state.clone(),
            async move {
                let _ = rx.await;
            },
        ));
        Self {
            sim,
            state,
            addr,
            base: format!("http://{addr}"),
            audit,
            clock,
            http: reqwest::Client::new(),
            stop: Some(tx),
        }
    }

    /// The server's `now` (its manual clock) in epoch seconds: what token-store calls pass.
    pub(crate) fn now_secs(&self) -> i64 {
        mcp_dust_server::state::epoch_secs(self.state.now())
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Logs in with the simulator's key; returns the whole answer.
    pub(crate) async fn login_with(&self, body: Value) -> reqwest::Response {
        self.http
            .post(self.url("/api/v1/auth/login"))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// A token for the simulator's key, with optional narrowed permissions.
    pub(crate) async fn token(&self, permissions: Option<&[&str]>) -> String {
        let mut body =
            json!({ "apiKey": self.sim.api_key(), "workspaceId": self.sim.workspace_id() });
        if let Some(p) = permissions {
            body["permissions"] = json!(p);
        }
        let response = self.login_with(body).await;
        assert_eq!(response.status(), 200, "login failed");
        let body: Value = response.json().await.unwrap();
        body["token"].as_str().unwrap().to_owned()
    }

    /// One JSON-RPC request to /mcp (2025-11-25 era, no session), returning status and body.
    pub(crate) async fn mcp(&self, token: Option<&str>, body: Value) -> (u16, Value) {
        let mut request = self
            .http
            .post(self.url("/mcp"))
            .header("Accept", "application/json, text/event-stream")
            .header("MCP-Protocol-Version", "2025-11-25")
            .json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, parse_mcp_body(&text))
    }

    /// `tools/call` through /mcp.
    pub(crate) async fn call_tool(
        &self,
        token: &str,
        name: &str,
        arguments: Value,
    ) -> (u16, Value) {
        self.mcp(
            Some(token),
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                   "params": {"name": name, "arguments": arguments}}),
        )
        .await
    }

    /// One JSON-RPC request to /mcp in the 2026-07-28 era, as any client of that era sends it:
    /// `_meta` with the version, client info and `capabilities`, and the matching
    /// `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` headers (`Mcp-Name` from the params'
    /// `name`, `uri` or `taskId`). Returns the status and the body (JSON or the last SSE data).
    pub(crate) async fn mcp_2026(
        &self,
        token: Option<&str>,
        capabilities: &Value,
        method: &str,
        mut params: Value,
    ) -> (u16, Value) {
        params["_meta"] = json!({
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "mcp-dust-server-tests", "version": "1.0"},
            "io.modelcontextprotocol/clientCapabilities": capabilities,
        });
        let mut request = self
            .http
            .post(self.url("/mcp"))
            .header("Accept", "application/json, text/event-stream")
            .header("MCP-Protocol-Version", "2026-07-28")
            .header("Mcp-Method", method);
        let name = ["name", "uri", "taskId"]
            .iter()
            .find_map(|key| params[*key].as_str().map(str::to_owned));
        if let Some(name) = name {
            request = request.header("Mcp-Name", name);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, parse_mcp_body(&response.text().await.unwrap()))
    }

    pub(crate) async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.state.auditor.flush().await;
    }
}

/// A JSON body, or the last `data:` frame of an SSE body.
pub(crate) fn parse_mcp_body(text: &str) -> Value {
    if let Ok(value) = serde_json::from_str(text) {
        return value;
    }
    text.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .next_back()
        .unwrap_or(Value::Null)
}

impl TestServer {
    /// Sends the stop signal (graceful shutdown) and keeps the simulator running.
    pub(crate) fn stop_accepting(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
