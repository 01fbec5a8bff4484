//! Sequential Redis round trips per request, for `docs/PERFORMANCE.md` (issue 20, item 1).
//!
//! Puts a delaying TCP proxy (a fixed delay each way, switchable at run time) between a real
//! `mcp-dust-server serve` and a real Redis, and times each kind of request one at a time with
//! the delay off and on. What the delay adds to a request's median, divided by the round-trip
//! time it adds (twice the one-way delay), is the number of Redis round trips the request waits
//! for one after another; pipelined or concurrent commands count once. Beside it, the Redis
//! commands a request costs, from `INFO commandstats` read directly (not through the proxy).
//!
//! ```text
//! redis-server --port 6390 --save '' --appendonly no &
//! cargo build --release
//! cargo run --release --example redis_rtt -- target/release/mcp-dust-server 127.0.0.1:6390
//! ```
//!
//! Arguments: the server binary, Redis's address, the one-way delay in ms (default 5, large
//! against the noise, so the estimate is within a few tenths; fractions allowed: `0.5` puts
//! Redis 1 ms away, and the delayed median is then what a request takes with such a Redis),
//! requests per kind (default 100). The simulator runs in process as the Dust upstream. The
//! proxy sleeps on tokio's timer to within 2 ms of each due time and yields the rest (the timer
//! alone rounds every wait up to its 1 ms tick). The divisor is measured, not assumed: a `PING`
//! through the proxy with the delay on and off.

use std::{
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use mcp_dust_server::sim::{self, SimConfig};
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{
        TcpListener, TcpStream,
        tcp::{OwnedReadHalf, OwnedWriteHalf},
    },
    sync::mpsc,
};

/// Forwards `from` to `to`, each chunk after the proxy's current one-way delay.
async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, delay_us: Arc<AtomicU64>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let writer = tokio::spawn(async move {
        while let Some((due, bytes)) = rx.recv().await {
            // No timer when nothing is to wait for: tokio's 1 ms tick would add to the baseline.
            // The timer sleeps to within 2 ms of the due time, the rest is spent yielding, so a
            // sub-millisecond delay (Redis 1 ms away) is what it says, not a whole tick.
            let now = tokio::time::Instant::now();
            if due > now + Duration::from_millis(2) {
                tokio::time::sleep_until(due - Duration::from_millis(2)).await;
            }
            while tokio::time::Instant::now() < due {
                tokio::task::yield_now().await;
            }
            if to.write_all(&bytes).await.is_err() {
                break;
            }
        }
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let delay = Duration::from_micros(delay_us.load(Ordering::Relaxed));
                let due = tokio::time::Instant::now() + delay;
                if tx.send((due, buf[..n].to_vec())).is_err() {
                    break;
                }
            }
        }
    }
    drop(tx);
    let _ = writer.await;
}

/// The delaying proxy: every connection to `listener` goes to `upstream`, both ways delayed.
async fn proxy(listener: TcpListener, upstream: SocketAddr, delay_us: Arc<AtomicU64>) {
    while let Ok((client, _)) = listener.accept().await {
        let Ok(server) = TcpStream::connect(upstream).await else {
            continue;
        };
        let _ = (client.set_nodelay(true), server.set_nodelay(true));
        let (client_read, client_write) = client.into_split();
        let (server_read, server_write) = server.into_split();
        tokio::spawn(pipe(client_read, server_write, delay_us.clone()));
        tokio::spawn(pipe(server_read, client_write, delay_us.clone()));
    }
}

/// Total Redis command calls so far (`INFO commandstats`).
async fn commands(redis: &mut redis::aio::MultiplexedConnection) -> Result<u64> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(redis)
        .await?;
    Ok(info
        .lines()
        .filter(|l| l.starts_with("cmdstat_") && !l.starts_with("cmdstat_info:"))
        .filter_map(|l| {
            l.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum())
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// One kind of request, sent on `http` against the server at `base`.
#[derive(Clone, Copy)]
enum Kind {
    Login,
    ToolsList,
    ToolCall,
    RestRead,
    SessionRead,
}

impl Kind {
    const ALL: [Self; 5] = [
        Self::ToolsList,
        Self::ToolCall,
        Self::RestRead,
        Self::SessionRead,
        Self::Login,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Login => "login (`POST /api/v1/auth/login`)",
            Self::ToolsList => "`tools/list` (2026-07-28, bearer)",
            Self::ToolCall => "tool call (`list_agents`, cached agents)",
            Self::RestRead => "REST read (`GET .../agents`, bearer)",
            Self::SessionRead => "browser-session read (`GET .../agents`, cookie)",
        }
    }
}

struct Target {
    http: reqwest::Client,
    base: String,
    workspace_id: String,
    api_key: String,
    token: String,
    cookie: HeaderValue,
}

fn mcp_2026(method: &str, params: Value) -> (HeaderMap, Value) {
    let mut headers = HeaderMap::new();
    headers.insert(
        "accept",
        HeaderValue::from_static("application/json, text/event-stream"),
    );
    headers.insert(
        "mcp-protocol-version",
        HeaderValue::from_static("2026-07-28"),
    );
    headers.insert("mcp-method", HeaderValue::from_str(method).expect("ascii"));
    if let Some(name) = params["name"].as_str() {
        headers.insert("mcp-name", HeaderValue::from_str(name).expect("ascii"));
    }
    let mut params = params;
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "redis_rtt", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    (
        headers,
        json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}),
    )
}

impl Target {
    async fn send(&self, kind: Kind) -> Result<()> {
        let agents = format!(
            "{}/api/v1/workspaces/{}/agents",
            self.base, self.workspace_id
        );
        let response = match kind {
            Kind::Login => {
                self.http
                    .post(format!("{}/api/v1/auth/login", self.base))
                    .json(&json!({"apiKey": self.api_key, "workspaceId": self.workspace_id}))
                    .send()
                    .await?
            }
            Kind::ToolsList | Kind::ToolCall => {
                let (headers, body) = match kind {
                    Kind::ToolsList => mcp_2026("tools/list", json!({})),
                    _ => mcp_2026(
                        "tools/call",
                        json!({"name": "list_agents", "arguments": {}}),
                    ),
                };
                self.http
                    .post(format!("{}/mcp", self.base))
                    .bearer_auth(&self.token)
                    .headers(headers)
                    .json(&body)
                    .send()
                    .await?
            }
            Kind::RestRead => {
                self.http
                    .get(agents)
                    .bearer_auth(&self.token)
                    .send()
                    .await?
            }
            Kind::SessionRead => {
                self.http
                    .get(agents)
                    .header("cookie", self.cookie.clone())
                    .header("sec-fetch-site", "same-origin")
                    .send()
                    .await?
            }
        };
        let status = response.status();
        let body = response.bytes().await?;
        if !status.is_success() || body.windows(8).any(|w| w == b"\"error\":") {
            bail!(
                "{} answered {status}: {}",
                kind.name(),
                String::from_utf8_lossy(&body)
            );
        }
        Ok(())
    }

    /// The median latency of `n` sequential requests of `kind`.
    async fn median(&self, kind: Kind, n: usize) -> Result<Duration> {
        let mut took = Vec::with_capacity(n);
        for _ in 0..n {
            let started = Instant::now();
            self.send(kind).await?;
            took.push(started.elapsed());
        }
        took.sort_unstable();
        Ok(took[n / 2])
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: redis_rtt <server binary> <redis host:port> [one-way delay ms] [requests]";
    let binary = args.next().context(usage)?;
    let redis_addr: SocketAddr = args.next().context(usage)?.parse()?;
    let delay_ms: f64 = args.next().map_or(Ok(5.0), |d| d.parse())?;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let delay_us = (delay_ms * 1000.0).round() as u64;
    let n: usize = args.next().map_or(Ok(100), |n| n.parse())?;

    mcp_dust_server::dust::install_crypto_provider();
    let sim = sim::spawn(SimConfig::default()).await?;
    let delay_now = Arc::new(AtomicU64::new(0));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let proxy_port = listener.local_addr()?.port();
    tokio::spawn(proxy(listener, redis_addr, delay_now.clone()));

    let mut redis = redis::Client::open(format!("redis://{redis_addr}"))?
        .get_multiplexed_async_connection()
        .await
        .context("Redis is not reachable")?;
    let port = free_port()?;
    let _server = Server(
        Command::new(&binary)
            .arg("serve")
            .env_clear()
            .env("MCP_SERVER_HOST", "127.0.0.1")
            .env("MCP_SERVER_PORT", port.to_string())
            .env("DUST_BASE_URL", sim.base_url())
            .env("REDIS_URL", format!("redis://127.0.0.1:{proxy_port}"))
            .env("REDIS_KEY_PREFIX", format!("rtt{port}:"))
            .env("RATE_LIMIT_MAX", "100000000")
            .env("RATE_LIMIT_LOGIN_MAX", "1000000")
            .env("LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {binary}"))?,
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while http
        .get(format!("{base}/ready"))
        .send()
        .await
        .map_or(true, |r| !r.status().is_success())
    {
        if Instant::now() > deadline {
            bail!("the server did not become ready");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let login = |session: bool| {
        http.post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"apiKey": sim.api_key(), "workspaceId": sim.workspace_id(), "session": session}))
            .send()
    };
    let token: Value = login(false).await?.json().await?;
    let session = login(true).await?;
    let cookie = session
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
        .collect::<Vec<_>>()
        .join("; ");
    let target = Target {
        http: http.clone(),
        base: base.clone(),
        workspace_id: sim.workspace_id().to_owned(),
        api_key: sim.api_key().to_owned(),
        token: token["token"].as_str().context("no token")?.to_owned(),
        cookie: HeaderValue::from_str(&cookie)?,
    };

    println!(
        "| request | median, no delay | median, {delay_ms} ms each way | added | sequential round trips | Redis commands |"
    );
    println!("|---|---|---|---|---|---|");
    // The round trip the delay really adds: a `PING` through the proxy, timed with the delay
    // off and on.
    let mut through = redis::Client::open(format!("redis://127.0.0.1:{proxy_port}"))?
        .get_multiplexed_async_connection()
        .await?;
    let mut ping = async |delay: u64| -> Result<Duration> {
        delay_now.store(delay, Ordering::Relaxed);
        let mut took = Vec::new();
        for _ in 0..51 {
            let started = Instant::now();
            let _: String = redis::cmd("PING").query_async(&mut through).await?;
            took.push(started.elapsed());
        }
        took.sort_unstable();
        Ok(took[25])
    };
    let rtt = ping(delay_us).await?.saturating_sub(ping(0).await?);
    eprintln!(
        "one round trip through the proxy adds {:.2} ms",
        rtt.as_secs_f64() * 1e3
    );
    for kind in Kind::ALL {
        delay_now.store(0, Ordering::Relaxed);
        target.median(kind, n / 5 + 1).await?; // warm-up (connections, caches)
        let before = commands(&mut redis).await?;
        let fast = target.median(kind, n).await?;
        let per_request = (commands(&mut redis).await? - before) as f64 / n as f64;
        delay_now.store(delay_us, Ordering::Relaxed);
        target.median(kind, 3).await?; // connections re-established under the delay
        let slow = target.median(kind, n).await?;
        let added = slow.saturating_sub(fast);
        println!(
            "| {} | {:.2} ms | {:.2} ms | {:.2} ms | {:.1} | {:.1} |",
            kind.name(),
            fast.as_secs_f64() * 1e3,
            slow.as_secs_f64() * 1e3,
            added.as_secs_f64() * 1e3,
            added.as_secs_f64() / rtt.as_secs_f64(),
            per_request,
        );
    }
    sim.shutdown().await;
    Ok(())
}
