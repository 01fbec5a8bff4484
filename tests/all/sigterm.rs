//! Graceful shutdown of the real binary (issue 8, part 2): `mcp-dust-server serve` runs as a
//! child process against an in-process simulator, with `AUDIT_LOG_FILE` set, and gets SIGTERM
//! in the middle of a load run (MCP tool calls, slow `ask_agent` streams, a REST SSE stream,
//! over two keys).
//!
//! What a client relies on, checked request by request:
//! - every request the server accepted got a complete, valid answer (no truncated body, no
//!   reset once the response began), and every other one failed to connect or was closed
//!   before the server read it (it left no audit record);
//! - new connections are refused once the drain has started, while the process still runs;
//! - the process exits 0 within the grace period plus a margin, with no panic;
//! - the audit file holds exactly one tool-call record per tool call answered.
//!
//! Then the grace period running out (calls end with a "shutting down" error, their Dust runs
//! are cancelled) and a second signal (immediate exit). SIGTERM in stdio mode is in
//! `tests/all/stdio.rs`.
//!
//! No tight timing: the signal is sent once the streams are seen running, and each wait is a
//! generous deadline on a condition (the suite runs on 2 loaded cores in CI).

use std::{
    collections::{HashMap, HashSet},
    fs::File,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use mcp_dust_server::sim::{
    self, ECHO_AGENT_ID, HANDBOOK_DS_ID, SLOW_AGENT_ID, SimConfig, SimHandle,
};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_mcp-dust-server");

/// A server child process and where its output goes.
struct Server {
    child: Child,
    base: String,
    port: u16,
    dir: tempfile::TempDir,
}

impl Server {
    /// Starts `serve` against `sim` with `env` on top of the test defaults, and waits until
    /// `/ready` answers.
    async fn start(sim: &SimHandle, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut command = Command::new(BIN);
        command
            .arg("serve")
            .env_clear()
            .env("MCP_SERVER_HOST", "127.0.0.1")
            .env("MCP_SERVER_PORT", port.to_string())
            .env("DUST_BASE_URL", sim.base_url())
            .env("AUDIT_LOG_FILE", dir.path().join("audit.log"))
            .env("RATE_LIMIT_MAX", "1000000")
            .env("LOG_LEVEL", "info")
            .env("LOG_FORMAT", "json")
            .stdin(Stdio::null())
            .stdout(File::create(dir.path().join("stdout")).unwrap())
            .stderr(File::create(dir.path().join("stderr")).unwrap());
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command.spawn().expect("start the server binary");
        let server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            port,
            dir,
        };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = http.get(format!("{}/ready", server.base)).send().await
                && r.status() == 200
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not become ready:\n{}",
                server.stderr()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        server
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    fn audit_path(&self) -> PathBuf {
        self.dir.path().join("audit.log")
    }

    fn signal(&self, name: &str) {
        signal(self.child.id(), name);
    }

    /// Waits for the exit, failing past `limit`.
    async fn exit_within(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "the server did not exit within {limit:?}:\n{}",
                    self.stderr()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until a line of standard error contains `needle`.
    async fn wait_for_log(&self, needle: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.stderr().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "no log line with {needle:?}:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends a signal with the system's `kill` (the crate forbids `unsafe`, so no `libc::kill`).
fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid} failed");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_sim(token_delay_ms: u64) -> SimHandle {
    mcp_dust_server::dust::install_crypto_provider();
    sim::spawn(SimConfig {
        token_delay_ms,
        ..SimConfig::default()
    })
    .await
    .unwrap()
}

async fn login(base: &str, key: &str, workspace_id: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "apiKey": key, "workspaceId": workspace_id }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["token"].as_str().unwrap().to_owned()
}

/// What one request of the load is.
#[derive(Clone, Debug)]
enum Op {
    /// An MCP request; `progress` asks for progress notifications (the answer is then an SSE
    /// stream); `tool` says whether it is a tool call (audited).
    Mcp {
        method: &'static str,
        params: Value,
        progress: bool,
    },
    /// `POST .../agents/{id}/execute` as an SSE stream.
    RestStream { agent_id: &'static str },
}

impl Op {
    fn tool(name: &str, arguments: Value, progress: bool) -> Self {
        let mut params = json!({ "name": name });
        params["arguments"] = arguments;
        Op::Mcp {
            method: "tools/call",
            params,
            progress,
        }
    }

    fn is_tool_call(&self) -> bool {
        matches!(
            self,
            Op::Mcp {
                method: "tools/call",
                ..
            } | Op::RestStream { .. }
        )
    }
}

/// How one request ended, from the client's side.
#[derive(Debug)]
enum Outcome {
    /// A complete, valid answer; `text` is what the caller reads (tool result or SSE events).
    Complete { body: Value },
    /// The server never took the request: connection refused, or closed before any response.
    NotTaken { error: String },
    /// The server took it and the answer is broken: the test fails on it.
    Broken { error: String },
}

/// One request's record.
#[derive(Debug)]
struct Sent {
    request_id: String,
    tool_call: bool,
    started: Instant,
    ended: Instant,
    outcome: Outcome,
}

/// A client that opens a new connection for every request, so "refused" is unambiguous.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

/// Sends `op` and classifies the result. `headers_seen` is set once the response began.
async fn send(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    workspace_id: &str,
    op: &Op,
    request_id: &str,
    headers_seen: &AtomicBool,
) -> Outcome {
    let request = match op {
        Op::Mcp {
            method,
            params,
            progress,
        } => {
            let mut params = params.clone();
            if *progress {
                params["_meta"] = json!({ "progressToken": format!("p-{request_id}") });
            }
            http.post(format!("{base}/mcp"))
                .header("Accept", "application/json, text/event-stream")
                .header("MCP-Protocol-Version", "2025-11-25")
                .json(&json!({ "jsonrpc": "2.0", "id": request_id, "method": method, "params": params }))
        }
        Op::RestStream { agent_id } => http
            .post(format!(
                "{base}/api/v1/workspaces/{workspace_id}/agents/{agent_id}/execute"
            ))
            .header("Accept", "text/event-stream")
            .json(&json!({ "message": "explain the vacation policy in a few words" })),
    };
    let response = match request
        .bearer_auth(token)
        .header("X-Request-Id", request_id)
        .send()
        .await
    {
        Ok(response) => response,
        Err(e) => {
            return Outcome::NotTaken {
                error: format!("{e:?}"),
            };
        }
    };
    headers_seen.store(true, Ordering::SeqCst);
    let status = response.status();
    let body = match response.bytes().await {
        Ok(body) => String::from_utf8_lossy(&body).into_owned(),
        Err(e) => {
            return Outcome::Broken {
                error: format!("body cut after status {status}: {e:?}"),
            };
        }
    };
    if status != 200 {
        return Outcome::Broken {
            error: format!("status {status}: {body}"),
        };
    }
    match op {
        Op::Mcp { .. } => match mcp_answer(&body, request_id) {
            Some(answer) => Outcome::Complete { body: answer },
            None => Outcome::Broken {
                error: format!("no JSON-RPC answer with id {request_id} in {body:?}"),
            },
        },
        Op::RestStream { .. } => match sse_end(&body) {
            Some(end) => Outcome::Complete { body: end },
            None => Outcome::Broken {
                error: format!("the event stream does not end with done or error: {body:?}"),
            },
        },
    }
}

/// The JSON-RPC answer to `id` in a JSON body or an SSE stream, if it is there whole.
fn mcp_answer(body: &str, id: &str) -> Option<Value> {
    let messages: Vec<Value> = match serde_json::from_str::<Value>(body) {
        Ok(value) => vec![value],
        Err(_) => sse_events(body)
            .into_iter()
            .filter_map(|(_, data)| serde_json::from_str(&data).ok())
            .collect(),
    };
    messages
        .into_iter()
        .find(|m| m["id"] == id && (m.get("result").is_some() || m.get("error").is_some()))
}

/// The events of a complete SSE body (each terminated by a blank line): (event name, data).
fn sse_events(body: &str) -> Vec<(String, String)> {
    let mut events = Vec::new();
    let mut rest = body;
    while let Some(end) = rest.find("\n\n") {
        let block = &rest[..end];
        rest = &rest[end + 2..];
        let mut name = String::from("message");
        let mut data = Vec::new();
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("event:") {
                name = v.trim().to_owned();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push(v.trim_start().to_owned());
            }
        }
        if !data.is_empty() {
            events.push((name, data.join("\n")));
        }
    }
    events
}

/// The final event of a REST agent stream (`done` or `error`) as `{event, data}`.
fn sse_end(body: &str) -> Option<Value> {
    let (name, data) = sse_events(body).pop()?;
    if name != "done" && name != "error" {
        return None;
    }
    Some(json!({ "event": name, "data": serde_json::from_str::<Value>(&data).ok()? }))
}

/// The load: workers that each repeat their list of operations until the server stops
/// taking requests (or `stop` is set), recording every request.
struct Load {
    sent: Arc<Mutex<Vec<Sent>>>,
    completed: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    /// Per streaming worker: whether its current request's response has begun.
    streaming: Vec<Arc<AtomicBool>>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn new() -> Self {
        Self {
            sent: Arc::default(),
            completed: Arc::default(),
            stop: Arc::default(),
            streaming: Vec::new(),
            workers: Vec::new(),
        }
    }

    fn worker(
        &mut self,
        name: &str,
        base: &str,
        token: &str,
        workspace_id: &str,
        ops: Vec<Op>,
        stream: bool,
    ) {
        let (sent, completed, stop) =
            (self.sent.clone(), self.completed.clone(), self.stop.clone());
        let headers = Arc::new(AtomicBool::new(false));
        if stream {
            self.streaming.push(headers.clone());
        }
        let (name, base, token, ws) = (
            name.to_owned(),
            base.to_owned(),
            token.to_owned(),
            workspace_id.to_owned(),
        );
        self.workers.push(tokio::spawn(async move {
            let http = client();
            for n in 0.. {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let op = &ops[n % ops.len()];
                let request_id = format!("{name}-{n}");
                let started = Instant::now();
                headers.store(false, Ordering::SeqCst);
                let outcome = send(&http, &base, &token, &ws, op, &request_id, &headers).await;
                let taken = !matches!(outcome, Outcome::NotTaken { .. });
                if matches!(outcome, Outcome::Complete { .. }) {
                    completed.fetch_add(1, Ordering::SeqCst);
                }
                sent.lock().unwrap().push(Sent {
                    request_id,
                    tool_call: op.is_tool_call(),
                    started,
                    ended: Instant::now(),
                    outcome,
                });
                if !taken {
                    break;
                }
            }
        }));
    }
}

/// Tool-call audit records in the file, by request id.
fn tool_call_records(path: &Path) -> HashMap<String, Vec<Value>> {
    let mut by_id: HashMap<String, Vec<Value>> = HashMap::new();
    let file = File::open(path).expect("the audit file exists");
    for line in BufReader::new(file).lines() {
        let line = line.unwrap();
        let record: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("audit line is not JSON ({e}): {line:?}"));
        if record["message"] == "tool call" {
            let id = record["request_id"].as_str().unwrap_or_default().to_owned();
            by_id.entry(id).or_default().push(record);
        }
    }
    by_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_mid_load_answers_every_accepted_request_and_audits_it() {
    let sim = start_sim(15).await;
    let mut server = Server::start(&sim, &[("SHUTDOWN_GRACE_PERIOD", "90")]).await;
    let base = server.base.clone();
    let ws = sim.workspace_id().to_owned();
    let other_ws = sim.other_workspace_id().to_owned();
    // Two keys (two principals), and two tokens for the first: each principal stays within
    // its bulkhead (8 tool calls at once).
    let (a1, a2) = (
        login(&base, sim.api_key(), &ws).await,
        login(&base, sim.api_key(), &ws).await,
    );
    let b = login(&base, sim.other_api_key(), &other_ws).await;

    let sloth = || json!({ "agentId": SLOW_AGENT_ID, "message": "take your time" });
    let mixed = vec![
        Op::Mcp {
            method: "tools/list",
            params: json!({}),
            progress: false,
        },
        Op::tool("list_agents", json!({}), false),
        Op::tool(
            "search_knowledge",
            json!({ "query": "vacation policy", "knowledgeBaseId": HANDBOOK_DS_ID }),
            false,
        ),
        Op::tool(
            "ask_agent",
            json!({ "agentId": ECHO_AGENT_ID, "message": "one two three four five" }),
            true,
        ),
    ];
    let other = vec![
        Op::Mcp {
            method: "tools/list",
            params: json!({}),
            progress: false,
        },
        Op::tool("list_agents", json!({}), false),
    ];
    let mut load = Load::new();
    load.worker(
        "sloth-sse",
        &base,
        &a1,
        &ws,
        vec![Op::tool("ask_agent", sloth(), true)],
        true,
    );
    load.worker(
        "sloth-json",
        &base,
        &a2,
        &ws,
        vec![Op::tool("ask_agent", sloth(), false)],
        false,
    );
    load.worker(
        "rest-sse",
        &base,
        &a1,
        &ws,
        vec![Op::RestStream {
            agent_id: SLOW_AGENT_ID,
        }],
        true,
    );
    for i in 0..3 {
        let token = if i % 2 == 0 { &a1 } else { &a2 };
        load.worker(
            &format!("mixed{i}"),
            &base,
            token,
            &ws,
            mixed.clone(),
            false,
        );
    }
    for i in 0..2 {
        load.worker(
            &format!("other{i}"),
            &base,
            &b,
            &other_ws,
            other.clone(),
            false,
        );
    }

    // In the middle: fast requests have been answered and every stream has begun.
    let deadline = Instant::now() + Duration::from_secs(60);
    while load.completed.load(Ordering::SeqCst) < 30
        || !load.streaming.iter().all(|s| s.load(Ordering::SeqCst))
    {
        assert!(
            Instant::now() < deadline,
            "the load did not get going:\n{}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let signalled = Instant::now();
    server.signal("TERM");

    // The drain has started: a new connection is refused while the process still runs (the
    // slow streams keep it busy for several seconds more).
    server
        .wait_for_log("drain started", Duration::from_secs(30))
        .await;
    let addr = format!("127.0.0.1:{}", server.port);
    let refused = tokio::net::TcpStream::connect(&addr).await;
    assert!(
        refused.is_err(),
        "a new connection was accepted during the drain"
    );
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the process should still be draining"
    );

    let status = server.exit_within(Duration::from_secs(90 + 30)).await;
    load.stop.store(true, Ordering::SeqCst);
    for worker in load.workers.drain(..) {
        tokio::time::timeout(Duration::from_secs(30), worker)
            .await
            .expect("a load worker did not end")
            .unwrap();
    }
    let stderr = server.stderr();
    assert!(status.success(), "exit status {status:?}:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("drain finished"), "{stderr}");
    assert!(
        !stderr.contains("grace period over"),
        "nothing should outlive 90 s:\n{stderr}"
    );

    let sent = std::mem::take(&mut *load.sent.lock().unwrap());
    let broken: Vec<String> = sent
        .iter()
        .filter_map(|s| match &s.outcome {
            Outcome::Broken { error } => Some(format!("{}: {error}", s.request_id)),
            _ => None,
        })
        .collect();
    assert!(
        broken.is_empty(),
        "accepted requests without a complete answer: {broken:#?}"
    );
    // Nothing failed before the signal; afterwards only requests the server never took.
    for s in &sent {
        if let Outcome::NotTaken { error } = &s.outcome {
            assert!(
                s.ended >= signalled,
                "{} failed before the signal: {error}",
                s.request_id
            );
        }
    }
    // Every answer is a success: the slow streams finished within the grace period.
    let complete: Vec<(&Sent, &Value)> = sent
        .iter()
        .filter_map(|s| match &s.outcome {
            Outcome::Complete { body } => Some((s, body)),
            _ => None,
        })
        .collect();
    for (s, body) in &complete {
        if s.request_id.starts_with("rest") {
            assert_eq!(body["event"], "done", "{}: {body}", s.request_id);
            assert!(
                body["data"]["answer"]
                    .as_str()
                    .is_some_and(|a| !a.is_empty()),
                "{body}"
            );
        } else {
            assert!(body.get("result").is_some(), "{}: {body}", s.request_id);
            assert_ne!(
                body["result"]["isError"],
                json!(true),
                "{}: {body}",
                s.request_id
            );
        }
    }
    // The streams that were running when the signal came were answered in full after it.
    let across: Vec<&str> = complete
        .iter()
        .filter(|(s, _)| {
            s.started < signalled && s.ended > signalled && s.request_id.starts_with(['s', 'r'])
        })
        .map(|(s, _)| s.request_id.as_str())
        .collect();
    assert!(
        across.len() >= 3,
        "the three slow streams span the signal: {across:?}"
    );

    // The audit file: one tool-call record per tool call answered, none for anything else.
    let records = tool_call_records(&server.audit_path());
    let answered: HashSet<&str> = complete
        .iter()
        .filter(|(s, _)| s.tool_call)
        .map(|(s, _)| s.request_id.as_str())
        .collect();
    for id in &answered {
        let n = records.get(*id).map_or(0, Vec::len);
        assert_eq!(n, 1, "tool call {id} has {n} audit records");
    }
    for id in records.keys() {
        assert!(
            answered.contains(id.as_str()),
            "audit record for {id:?}, which got no answer"
        );
    }
    assert_eq!(
        records.values().map(Vec::len).sum::<usize>(),
        answered.len()
    );
    assert!(answered.len() >= 10, "too little load: {}", answered.len());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn past_the_grace_period_calls_end_with_a_clear_error_and_their_runs_are_cancelled() {
    let sim = start_sim(15).await;
    let mut server = Server::start(&sim, &[("SHUTDOWN_GRACE_PERIOD", "1")]).await;
    let base = server.base.clone();
    let ws = sim.workspace_id().to_owned();
    let token = login(&base, sim.api_key(), &ws).await;
    let sloth = json!({ "agentId": SLOW_AGENT_ID, "message": "never mind" });
    let mut load = Load::new();
    load.worker(
        "mcp-sse",
        &base,
        &token,
        &ws,
        vec![Op::tool("ask_agent", sloth.clone(), true)],
        true,
    );
    load.worker(
        "mcp-json",
        &base,
        &token,
        &ws,
        vec![Op::tool("ask_agent", sloth, false)],
        false,
    );
    load.worker(
        "rest-sse",
        &base,
        &token,
        &ws,
        vec![Op::RestStream {
            agent_id: SLOW_AGENT_ID,
        }],
        true,
    );
    // All three runs are streaming from the simulator.
    let deadline = Instant::now() + Duration::from_secs(60);
    while sim
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/events"))
        .count()
        < 3
        || !load.streaming.iter().all(|s| s.load(Ordering::SeqCst))
    {
        assert!(
            Instant::now() < deadline,
            "the runs did not start:\n{}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.signal("TERM");
    let status = server.exit_within(Duration::from_secs(1 + 5 + 30)).await;
    load.stop.store(true, Ordering::SeqCst);
    for worker in load.workers.drain(..) {
        worker.await.unwrap();
    }
    let stderr = server.stderr();
    assert!(status.success(), "exit status {status:?}:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("grace period over"), "{stderr}");

    let sent = std::mem::take(&mut *load.sent.lock().unwrap());
    let firsts: Vec<&Sent> = sent
        .iter()
        .filter(|s| s.request_id.ends_with("-0"))
        .collect();
    assert_eq!(firsts.len(), 3);
    for s in &firsts {
        let Outcome::Complete { body } = &s.outcome else {
            panic!("{}: {:?}", s.request_id, s.outcome);
        };
        if s.request_id.starts_with("rest") {
            assert_eq!(body["event"], "error", "{body}");
            assert_eq!(body["data"]["error"]["code"], "shutting_down", "{body}");
        } else {
            assert_eq!(body["result"]["isError"], json!(true), "{body}");
            let text = body["result"]["content"][0]["text"]
                .as_str()
                .unwrap_or_default();
            assert!(text.contains("shutting down"), "{body}");
        }
    }
    // Their Dust runs were cancelled before the process ended.
    let cancels = sim
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/cancel"))
        .count();
    assert_eq!(cancels, 3, "one Dust cancellation per cut run");
    let records = tool_call_records(&server.audit_path());
    for s in &firsts {
        assert_eq!(
            records.get(&s.request_id).map_or(0, Vec::len),
            1,
            "{}",
            s.request_id
        );
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once() {
    let sim = start_sim(15).await;
    let mut server = Server::start(&sim, &[("SHUTDOWN_GRACE_PERIOD", "600")]).await;
    let base = server.base.clone();
    let ws = sim.workspace_id().to_owned();
    let token = login(&base, sim.api_key(), &ws).await;
    let mut load = Load::new();
    let sloth = json!({ "agentId": SLOW_AGENT_ID, "message": "slowly" });
    load.worker(
        "sse",
        &base,
        &token,
        &ws,
        vec![Op::tool("ask_agent", sloth, true)],
        true,
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while !load.streaming[0].load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "no stream:\n{}", server.stderr());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.signal("TERM");
    server
        .wait_for_log("drain started", Duration::from_secs(30))
        .await;
    server.signal("INT");
    let status = server.exit_within(Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(130), "{}", server.stderr());
    assert!(server.stderr().contains("exiting without draining"));
    load.stop.store(true, Ordering::SeqCst);
    sim.shutdown().await;
}

/// Reads from `stream` until the peer closes it (`limit` at most); `None` when it was reset.
async fn read_to_close(stream: &mut tokio::net::TcpStream, limit: Duration) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    match tokio::time::timeout(limit, stream.read_to_end(&mut out)).await {
        Ok(Ok(_)) => Some(String::from_utf8_lossy(&out).into_owned()),
        Ok(Err(_)) => None,
        Err(_) => panic!(
            "the server kept the connection open {limit:?}; read so far: {:?}",
            String::from_utf8_lossy(&out)
        ),
    }
}

/// Reads one HTTP/1.1 response whose body ends with `end` (the connection stays open).
async fn read_response(stream: &mut tokio::net::TcpStream, end: &str) -> String {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&out).ends_with(end) {
        let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf))
            .await
            .expect("an answer within 30 s")
            .unwrap();
        assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&out));
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `/ready` during the drain, from each way a load balancer or a probe can reach it, while a
/// slow call keeps the process draining: a new connection (how health checks and the Docker
/// `probe` connect) is refused; an idle keep-alive connection is closed without an answer; a
/// request whose head was arriving when the signal came is answered 503 "shutting down" and
/// its connection closed. No one gets a 200 "ready" after the signal. (The listener closes at
/// once by design: docs/RELIABILITY.md, "Graceful shutdown".)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_during_the_drain_is_refused_closed_or_503() {
    use tokio::{io::AsyncWriteExt, net::TcpStream};
    const READY: &[u8] = b"GET /ready HTTP/1.1\r\nHost: mcp.example\r\n\r\n";
    let sim = start_sim(15).await;
    let mut server = Server::start(&sim, &[("SHUTDOWN_GRACE_PERIOD", "600")]).await;
    let base = server.base.clone();
    let ws = sim.workspace_id().to_owned();
    let token = login(&base, sim.api_key(), &ws).await;
    let mut load = Load::new();
    let sloth = json!({ "agentId": SLOW_AGENT_ID, "message": "slowly" });
    load.worker(
        "sse",
        &base,
        &token,
        &ws,
        vec![Op::tool("ask_agent", sloth, true)],
        true,
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while !load.streaming[0].load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "no stream:\n{}", server.stderr());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let addr = format!("127.0.0.1:{}", server.port);
    // A keep-alive connection that asked once (200) and is now idle.
    let mut idle = TcpStream::connect(&addr).await.unwrap();
    idle.write_all(READY).await.unwrap();
    let before = read_response(&mut idle, r#"{"status":"ready"}"#).await;
    assert!(before.starts_with("HTTP/1.1 200 "), "{before}");
    // A connection whose request head is half sent when the signal comes.
    let mut half = TcpStream::connect(&addr).await.unwrap();
    half.write_all(&READY[..READY.len() - 2]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    server.signal("TERM");
    server
        .wait_for_log("drain started", Duration::from_secs(30))
        .await;

    // A new connection: refused, while the process is still up and draining the slow call.
    let refused = TcpStream::connect(&addr).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused),
        "{refused:?}"
    );
    assert!(server.child.try_wait().unwrap().is_none(), "still draining");
    assert!(
        !load
            .sent
            .lock()
            .unwrap()
            .iter()
            .any(|s| s.request_id == "sse-0")
    );

    // The idle keep-alive connection: closed, so a request sent on it gets no answer; or, when
    // the request wins the race with the close (seen under a loaded machine), the same 503
    // "shutting down" as a request in flight. Never a 200.
    let _ = idle.write_all(READY).await;
    let answer = read_to_close(&mut idle, Duration::from_secs(10)).await;
    assert!(
        answer.as_deref().is_none_or(
            |a| a.is_empty() || (a.starts_with("HTTP/1.1 503 ") && a.contains("shutting down"))
        ),
        "{answer:?}"
    );

    // The half-sent request: answered 503 "shutting down", then the connection is closed.
    half.write_all(b"\r\n").await.unwrap();
    let answer = read_to_close(&mut half, Duration::from_secs(10))
        .await
        .expect("an answer, not a reset");
    let (head, body) = answer.split_once("\r\n\r\n").expect("a response");
    assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
    let head = head.to_ascii_lowercase();
    assert!(
        head.contains("\r\ncontent-type: application/json"),
        "{head}"
    );
    assert!(head.contains("\r\nconnection: close"), "{head}");
    let body: Value = serde_json::from_str(body).expect("a JSON body");
    assert_eq!(
        body,
        json!({ "status": "unavailable", "reason": "shutting down" })
    );

    // The slow call still gets its whole answer, and the process exits 0.
    let status = server.exit_within(Duration::from_secs(90)).await;
    assert!(status.success(), "{status:?}:\n{}", server.stderr());
    load.stop.store(true, Ordering::SeqCst);
    for worker in load.workers.drain(..) {
        worker.await.unwrap();
    }
    let sent = std::mem::take(&mut *load.sent.lock().unwrap());
    let first = sent.iter().find(|s| s.request_id == "sse-0").unwrap();
    let Outcome::Complete { body } = &first.outcome else {
        panic!("{:?}", first.outcome);
    };
    assert_ne!(body["result"]["isError"], json!(true), "{body}");
    sim.shutdown().await;
}

/// A client that hangs up in the middle of a call (a closed laptop, a cancelled request) is
/// normal, not a server error: the server cancels the run and logs no `ERROR` (rmcp logs its
/// failed write at error level; that line is held back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_hangs_up_mid_call_leaves_no_error_in_the_log() {
    let sim = start_sim(200).await;
    let server = Server::start(&sim, &[]).await;
    let base = server.base.clone();
    let token = login(&base, sim.api_key(), sim.workspace_id()).await;
    for progress in [false, true] {
        let mut params = json!({"name": "ask_agent",
            "arguments": {"agentId": SLOW_AGENT_ID, "message": "take your time"}});
        if progress {
            params["_meta"] = json!({"progressToken": 1});
        }
        let call = client()
            .post(format!("{base}/mcp"))
            .bearer_auth(&token)
            .header("Accept", "application/json, text/event-stream")
            .header("MCP-Protocol-Version", "2025-11-25")
            .timeout(Duration::from_millis(1500))
            .json(&json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params}))
            .send()
            .await;
        // The answer (or its stream) never completes within the client's patience.
        let gave_up = match call {
            Err(_) => true,
            Ok(response) => response.text().await.is_err(),
        };
        assert!(gave_up, "the slow call answered within 1.5 s");
    }
    // The server notices (the runs are cancelled in Dust), then finishes its drain of the call.
    let deadline = Instant::now() + Duration::from_secs(30);
    while sim
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/cancel"))
        .count()
        < 2
    {
        assert!(
            Instant::now() < deadline,
            "runs not cancelled:\n{}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let stderr = server.stderr();
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("\"level\":\"ERROR\""))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    sim.shutdown().await;
}
