//! Load generator for `docs/PERFORMANCE.md`: MCP over Streamable HTTP (both protocol eras) or
//! plain HTTP GETs, on loopback, at a fixed concurrency (closed loop) or a fixed request rate
//! (open loop). Prints one Markdown table row: throughput, latency percentiles and the server's
//! resident memory.
//!
//! Why an example target: examples may use dev-dependencies (hdrhistogram), so the server
//! binary carries nothing of this. Run it with `cargo run --release --example loadgen -- --help`;
//! `bench/run.sh` drives every scenario.
//!
//! At a fixed rate every request is sent on its own task when it is due, whatever the earlier
//! ones are doing, so a stalled server cannot slow the sending down and hide its queueing delay
//! (no "coordinated omission"). Latency is measured from the moment the request is sent: tokio's
//! timer wakes up to 1 ms after the due time, and counting that wait added up to 1 ms of the
//! generator's own to every percentile (docs/PERFORMANCE.md, finding 12). How late the sends
//! were is printed on stderr, so a generator that fell behind shows. Every run is bounded in time
//! and stops by itself.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};

/// What one request is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// MCP 2026-07-28: no initialize; `MCP-Protocol-Version: 2026-07-28` and `_meta` per request.
    Mcp2026,
    /// MCP up to 2025-11-25: an initialize handshake first, then requests with the version header.
    McpLegacy,
    /// A plain `GET` of `--url` (a bare route, the simulator, `/live`...).
    Http,
}

#[derive(Debug, Parser)]
#[command(
    name = "loadgen",
    about = "Loopback load generator (throughput, latency, RSS)"
)]
struct Args {
    /// Target URL: the server's `/mcp` for the MCP modes, any URL for `http`.
    #[arg(long)]
    url: String,
    #[arg(long, value_enum, default_value = "mcp2026")]
    mode: Mode,
    /// Bearer token (sent as `Authorization: Bearer`); for the simulator, its API key. Several,
    /// comma-separated, are used in turn (one per request): load from several principals, so
    /// the per-principal bulkhead and rate limit do not cap a run meant to measure the server.
    #[arg(
        long,
        env = "LOADGEN_TOKEN",
        hide_env_values = true,
        value_delimiter = ','
    )]
    token: Vec<String>,
    /// MCP method: `tools/list`, or `tools/call` with `--tool`.
    #[arg(long, default_value = "tools/list")]
    method: String,
    /// Tool name for `tools/call`.
    #[arg(long)]
    tool: Option<String>,
    /// Tool arguments (JSON object) for `tools/call`.
    #[arg(long, default_value = "{}")]
    arguments: String,
    /// Closed loop: this many workers, each sending its next request when the last is answered.
    #[arg(long, conflicts_with = "rate")]
    concurrency: Option<usize>,
    /// Open loop: this many requests per second, whatever the answers.
    #[arg(long)]
    rate: Option<u64>,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Unmeasured seconds before (connections opened, caches warm).
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Process id of the server, for VmRSS from /proc/<pid>/status after the run.
    #[arg(long)]
    pid: Option<u32>,
    /// Label of the table row.
    #[arg(long, default_value = "run")]
    label: String,
    /// Print the header row of the table first.
    #[arg(long)]
    header: bool,
    /// A PEM certificate to trust besides the system roots: a TLS proxy's self-signed one
    /// (`bench/cluster_load.sh`).
    #[arg(long)]
    ca_file: Option<std::path::PathBuf>,
}

/// Everything a worker needs to send one request.
struct Target {
    client: reqwest::Client,
    url: String,
    mode: Mode,
    /// One header set per token (at least one), used in turn.
    headers: Vec<HeaderMap>,
    next: AtomicU64,
    body: Option<bytes::Bytes>,
}

impl Target {
    async fn new(args: &Args) -> Result<Self> {
        let mut client = reqwest::Client::builder()
            .pool_max_idle_per_host(4096)
            .timeout(Duration::from_secs(30));
        if let Some(path) = &args.ca_file {
            let pem =
                std::fs::read(path).with_context(|| format!("--ca-file {}", path.display()))?;
            client = client.add_root_certificate(reqwest::Certificate::from_pem(&pem)?);
        }
        let client = client.build()?;
        let mut headers = HeaderMap::new();
        let body = match args.mode {
            Mode::Http => None,
            Mode::Mcp2026 | Mode::McpLegacy => {
                let mut params = match args.method.as_str() {
                    "tools/call" => json!({
                        "name": args.tool.as_deref().context("tools/call needs --tool")?,
                        "arguments": serde_json::from_str::<Value>(&args.arguments)
                            .context("--arguments is not JSON")?,
                    }),
                    _ => json!({}),
                };
                headers.insert(
                    "accept",
                    HeaderValue::from_static("application/json, text/event-stream"),
                );
                headers.insert("content-type", HeaderValue::from_static("application/json"));
                if args.mode == Mode::Mcp2026 {
                    params["_meta"] = json!({
                        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                        "io.modelcontextprotocol/clientInfo": {"name": "loadgen", "version": "1.0"},
                        "io.modelcontextprotocol/clientCapabilities": {},
                    });
                    headers.insert(
                        "mcp-protocol-version",
                        HeaderValue::from_static("2026-07-28"),
                    );
                    headers.insert(
                        HeaderName::from_static("mcp-method"),
                        HeaderValue::from_str(&args.method)?,
                    );
                    if let Some(tool) = &args.tool {
                        headers.insert(
                            HeaderName::from_static("mcp-name"),
                            HeaderValue::from_str(tool)?,
                        );
                    }
                } else {
                    headers.insert(
                        "mcp-protocol-version",
                        HeaderValue::from_static("2025-11-25"),
                    );
                }
                Some(bytes::Bytes::from(serde_json::to_vec(
                    &json!({"jsonrpc": "2.0", "id": 1, "method": args.method, "params": params}),
                )?))
            }
        };
        let mut per_token = Vec::new();
        for token in &args.token {
            let mut value = HeaderValue::from_str(&format!("Bearer {token}"))?;
            value.set_sensitive(true);
            let mut with_token = headers.clone();
            with_token.insert(reqwest::header::AUTHORIZATION, value);
            per_token.push(with_token);
        }
        if per_token.is_empty() {
            per_token.push(headers);
        }
        let target = Self {
            client,
            url: args.url.clone(),
            mode: args.mode,
            headers: per_token,
            next: AtomicU64::new(0),
            body,
        };
        if target.mode == Mode::McpLegacy {
            for headers in &target.headers {
                target.initialize(headers).await?;
            }
        }
        // One request up front: a wrong token or URL fails loudly instead of as 100% errors.
        target.once().await.context("the first request failed")?;
        Ok(target)
    }

    /// The legacy handshake: `initialize`, then `notifications/initialized`. The server is
    /// stateless in both eras (no `Mcp-Session-Id`), so one handshake per client is what a real
    /// client does before its requests.
    async fn initialize(&self, headers: &HeaderMap) -> Result<()> {
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "loadgen", "version": "1.0"}}});
        let mut without_version = headers.clone();
        without_version.remove("mcp-protocol-version");
        let answer = self
            .client
            .post(&self.url)
            .headers(without_version)
            .json(&init)
            .send()
            .await?;
        let status = answer.status();
        let text = answer.text().await?;
        if !status.is_success() || !text.contains("protocolVersion") {
            bail!(
                "initialize answered {status}: {}",
                text.chars().take(200).collect::<String>()
            );
        }
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let answer = self
            .client
            .post(&self.url)
            .headers(headers.clone())
            .json(&initialized)
            .send()
            .await?;
        if !answer.status().is_success() {
            bail!("notifications/initialized answered {}", answer.status());
        }
        Ok(())
    }

    /// One request; an error unless the answer is a 2xx whose body (for MCP) has a `result`
    /// that is not a tool error.
    async fn once(&self) -> Result<()> {
        let request = match &self.body {
            Some(body) => self.client.post(&self.url).body(body.clone()),
            None => self.client.get(&self.url),
        };
        let turn = self.next.fetch_add(1, Ordering::Relaxed) as usize % self.headers.len();
        let answer = request.headers(self.headers[turn].clone()).send().await?;
        let status = answer.status();
        let text = answer.bytes().await?;
        if !status.is_success() {
            bail!(
                "status {status}: {}",
                String::from_utf8_lossy(&text[..text.len().min(200)])
            );
        }
        if self.mode != Mode::Http {
            let text = String::from_utf8_lossy(&text);
            if !text.contains("\"result\"") || text.contains("\"isError\":true") {
                bail!("MCP error: {}", text.chars().take(300).collect::<String>());
            }
        }
        Ok(())
    }
}

/// Measurements shared by the workers.
struct Tally {
    histogram: Mutex<Histogram<u64>>,
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Tally {
    fn record(&self, started: Instant, outcome: Result<()>) {
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        match outcome {
            Ok(()) => {
                let mut histogram = self.histogram.lock().expect("histogram lock");
                histogram.saturating_record(micros.max(1));
            }
            Err(error) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                let mut first = self.first_error.lock().expect("error lock");
                first.get_or_insert_with(|| format!("{error:#}"));
            }
        }
    }
}

/// Resident memory of `pid` in kB, from `/proc/<pid>/status`.
fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Closed loop: `workers` tasks until `until`; records only what starts after `measure_from`.
async fn closed_loop(
    target: Arc<Target>,
    tally: Arc<Tally>,
    workers: usize,
    measure_from: Instant,
    until: Instant,
) {
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let (target, tally) = (target.clone(), tally.clone());
            tokio::spawn(async move {
                while Instant::now() < until {
                    let started = Instant::now();
                    let outcome = target.once().await;
                    if started >= measure_from {
                        tally.record(started, outcome);
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
}

/// Open loop: one request due every `1/rate` s until `until`, each on its own task; latency
/// from the send. Returns how late the measured sends were after their due time.
async fn open_loop(
    target: Arc<Target>,
    tally: Arc<Tally>,
    rate: u64,
    measure_from: Instant,
    until: Instant,
) -> Result<Histogram<u64>> {
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let start = Instant::now();
    let mut lateness = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut tasks = Vec::new();
    let mut n: u32 = 0;
    loop {
        let due = start + interval * n;
        if due >= until {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
        let sent = Instant::now();
        let measured = due >= measure_from;
        if measured {
            let late = u64::try_from(sent.duration_since(due).as_micros()).unwrap_or(u64::MAX);
            lateness.saturating_record(late.max(1));
        }
        let (target, tally) = (target.clone(), tally.clone());
        tasks.push(tokio::spawn(async move {
            let outcome = target.once().await;
            if measured {
                tally.record(sent, outcome);
            }
        }));
        n += 1;
    }
    for task in tasks {
        let _ = task.await;
    }
    Ok(lateness)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    if args.concurrency.is_none() && args.rate.is_none() {
        bail!("give --concurrency N (closed loop) or --rate R (open loop)");
    }
    // The load generator gets one core's worth of threads; the server the rest.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> Result<()> {
    let target = Arc::new(Target::new(&args).await?);
    let tally = Arc::new(Tally {
        histogram: Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3)?),
        errors: AtomicU64::new(0),
        first_error: Mutex::new(None),
    });
    let measure_from = Instant::now() + Duration::from_secs_f64(args.warmup);
    let until = measure_from + Duration::from_secs_f64(args.duration);
    match (args.concurrency, args.rate) {
        (Some(workers), _) => {
            closed_loop(target, tally.clone(), workers, measure_from, until).await
        }
        (None, Some(rate)) => {
            let late = open_loop(target, tally.clone(), rate, measure_from, until).await?;
            let ms = |q: f64| late.value_at_quantile(q) as f64 / 1000.0;
            eprintln!(
                "{} at {rate}/s: sends late by p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
                args.label,
                ms(0.50),
                ms(0.99),
                late.max() as f64 / 1000.0
            );
        }
        (None, None) => unreachable!("checked in main"),
    }
    let histogram = tally.histogram.lock().expect("histogram lock");
    let errors = tally.errors.load(Ordering::Relaxed);
    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    let rss = args
        .pid
        .and_then(rss_kb)
        .map_or_else(|| "-".to_owned(), |kb| format!("{:.1}", kb as f64 / 1024.0));
    let load = match (args.concurrency, args.rate) {
        (Some(c), _) => format!("c={c}"),
        (_, Some(r)) => format!("{r}/s"),
        _ => String::new(),
    };
    if args.header {
        println!(
            "| scenario | load | ok | errors | req/s | p50 ms | p90 ms | p99 ms | max ms | server RSS MB |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|");
    }
    println!(
        "| {} | {load} | {} | {errors} | {:.0} | {:.3} | {:.3} | {:.3} | {:.3} | {rss} |",
        args.label,
        histogram.len(),
        histogram.len() as f64 / args.duration,
        ms(0.50),
        ms(0.90),
        ms(0.99),
        histogram.max() as f64 / 1000.0,
    );
    if let Some(error) = tally.first_error.lock().expect("error lock").as_ref() {
        eprintln!("{}: first error: {error}", args.label);
    }
    Ok(())
}
