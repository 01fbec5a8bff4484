//! Soak driver for `bench/soak.sh` (docs/RELIABILITY.md, "Soak"): a steady mixed load on a
//! running server for a bounded time, with the server's resident memory (`VmRSS`) and open file
//! descriptors sampled from `/proc/<pid>` every few seconds. Prints a report and exits non-zero
//! on any error or on growth beyond noise.
//!
//! The mix, each a paced worker (the load stays steady instead of saturating the machine):
//! MCP `tools/list`, `list_agents`, `search_knowledge`, `ask_agent` streamed (progress
//! notifications, so the answer is an SSE stream); REST agent list, knowledge bases, and
//! `execute` as an SSE stream; login → refresh → logout churn on fresh connections (each
//! iteration a new client: connections open and close all the time).
//!
//! Growth verdict: samples of the first `--warmup` seconds are left out (allocator arenas,
//! caches and pools fill up); the rest is split in quarters, and the last quarter's median must
//! not exceed the first's by more than max(8 MiB, 10 %) for RSS, nor by more than 8 for file
//! descriptors. The least-squares slope (MiB per hour) is printed too.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use clap::Parser;
use serde_json::{Value, json};

#[derive(Debug, Parser)]
#[command(
    name = "soak",
    about = "Bounded soak run: steady mixed load, RSS and fd sampling"
)]
struct Args {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:5001")]
    base: String,
    /// Dust API key to log in with (the simulator's).
    #[arg(long, env = "SOAK_API_KEY", hide_env_values = true)]
    api_key: String,
    #[arg(long)]
    workspace_id: String,
    /// A knowledge base (data source) id for `search_knowledge`.
    #[arg(long)]
    data_source_id: String,
    /// An agent for `ask_agent` and REST `execute`.
    #[arg(long, default_value = "ech0Ag3ntX")]
    agent_id: String,
    /// Server process id (for /proc sampling).
    #[arg(long)]
    pid: u32,
    /// Total seconds.
    #[arg(long, default_value_t = 600)]
    duration: u64,
    /// Seconds left out of the growth verdict at the start: bounded buffers fill first (the
    /// recent-audit window keeps 5,000 records: about four minutes at this load; token
    /// records live until they expire). Default: half the duration.
    #[arg(long)]
    warmup: Option<u64>,
    /// Seconds between two samples.
    #[arg(long, default_value_t = 5)]
    sample_every: u64,
    /// Requests per second of each worker.
    #[arg(long, default_value_t = 5.0)]
    worker_rate: f64,
    /// Write the samples here as CSV (seconds, rss_kib, fds).
    #[arg(long)]
    csv: Option<String>,
}

/// What one worker repeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    ToolsList,
    ListAgents,
    Search,
    AskStream,
    RestAgents,
    RestKnowledge,
    RestExecuteStream,
    LoginChurn,
}

const MIX: &[Op] = &[
    Op::ToolsList,
    Op::ListAgents,
    Op::Search,
    Op::AskStream,
    Op::AskStream,
    Op::RestAgents,
    Op::RestKnowledge,
    Op::RestExecuteStream,
    Op::LoginChurn,
];

#[derive(Default)]
struct Tally {
    ok: BTreeMap<String, u64>,
    errors: BTreeMap<String, u64>,
    first_errors: Vec<String>,
}

struct Ctx {
    args: Args,
    /// Keep-alive client, as an MCP client holds its connection.
    http: reqwest::Client,
    /// The token of the steady workers (the churn uses its own); renewed when it expires.
    token: Mutex<String>,
    tally: Mutex<Tally>,
}

impl Ctx {
    fn record(&self, op: Op, result: Result<()>) {
        let mut tally = self.tally.lock().unwrap();
        let name = format!("{op:?}");
        match result {
            Ok(()) => *tally.ok.entry(name).or_default() += 1,
            Err(e) => {
                *tally.errors.entry(name.clone()).or_default() += 1;
                if tally.first_errors.len() < 10 {
                    tally.first_errors.push(format!("{name}: {e:#}"));
                }
            }
        }
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    mcp_dust_server::dust::install_crypto_provider();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run(args))
}

async fn run(args: Args) -> Result<()> {
    // Idle keep-alive connections are dropped before the server's idle timeout
    // (HTTP_HEADER_TIMEOUT, 10 s): otherwise a request sent on a connection the server is
    // closing at that instant fails ("connection closed before message completed"), the
    // HTTP/1 keep-alive race every client must avoid this way.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_idle_timeout(Duration::from_secs(5))
        .build()?;
    let token = login(&http, &args).await.context("first login")?;
    let ctx = Arc::new(Ctx {
        args,
        http,
        token: Mutex::new(token),
        tally: Mutex::default(),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for op in MIX {
        let (ctx, stop) = (ctx.clone(), stop.clone());
        let op = *op;
        workers.push(tokio::spawn(async move {
            let period = Duration::from_secs_f64(1.0 / ctx.args.worker_rate);
            let mut next = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let mut result = once(&ctx, op).await;
                if result
                    .as_ref()
                    .is_err_and(|e| e.to_string().contains("401"))
                {
                    // The shared token expired (the run sets a short token lifetime so that
                    // the token store reaches its steady state): log in again, as a client
                    // does, and retry once.
                    result = match login(&ctx.http, &ctx.args).await {
                        Ok(token) => {
                            *ctx.token.lock().unwrap() = token;
                            once(&ctx, op).await
                        }
                        Err(e) => Err(e),
                    };
                }
                ctx.record(op, result);
                next += period;
                let now = Instant::now();
                if next > now {
                    tokio::time::sleep(next - now).await;
                } else {
                    next = now;
                }
            }
        }));
    }

    let started = Instant::now();
    let mut samples: Vec<(f64, u64, u64)> = Vec::new();
    let total = Duration::from_secs(ctx.args.duration);
    loop {
        let at = started.elapsed();
        let (rss, fds) = sample(ctx.args.pid).context("the server process is gone")?;
        samples.push((at.as_secs_f64(), rss, fds));
        if at >= total {
            break;
        }
        let done: u64 = ctx.tally.lock().unwrap().ok.values().sum();
        eprintln!(
            "soak: {:>4}s  rss {:>7.1} MiB  fds {:>4}  requests {done}",
            at.as_secs(),
            rss as f64 / 1024.0,
            fds
        );
        tokio::time::sleep(Duration::from_secs(ctx.args.sample_every).min(total - at)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        let _ = worker.await;
    }
    if let Some(path) = &ctx.args.csv {
        let mut csv = String::from("seconds,rss_kib,fds\n");
        for (t, rss, fds) in &samples {
            csv.push_str(&format!("{t:.1},{rss},{fds}\n"));
        }
        std::fs::write(path, csv)?;
    }
    report(&ctx, &samples)
}

/// `VmRSS` (KiB) and the number of open file descriptors of `pid`.
fn sample(pid: u32) -> Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("no VmRSS")?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))?.count() as u64;
    Ok((rss, fds))
}

fn median(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

fn report(ctx: &Ctx, samples: &[(f64, u64, u64)]) -> Result<()> {
    let tally = ctx.tally.lock().unwrap();
    let warmup = ctx.args.warmup.unwrap_or(ctx.args.duration / 2);
    let requests: u64 = tally.ok.values().sum();
    let errors: u64 = tally.errors.values().sum();
    let mib = |kib: u64| kib as f64 / 1024.0;
    let (first, last) = (samples[0], samples[samples.len() - 1]);
    let max_rss = samples.iter().map(|s| s.1).max().unwrap_or(0);
    let max_fds = samples.iter().map(|s| s.2).max().unwrap_or(0);
    let steady: Vec<_> = samples
        .iter()
        .filter(|s| s.0 >= warmup as f64)
        .copied()
        .collect();
    let quarter = (steady.len() / 4).max(1);
    let head = &steady[..quarter.min(steady.len())];
    let tail = &steady[steady.len().saturating_sub(quarter)..];
    let rss_head = median(head.iter().map(|s| s.1).collect());
    let rss_tail = median(tail.iter().map(|s| s.1).collect());
    let fds_head = median(head.iter().map(|s| s.2).collect());
    let fds_tail = median(tail.iter().map(|s| s.2).collect());
    // Least-squares slope of RSS over the steady part, MiB per hour.
    let n = steady.len() as f64;
    let (mt, mr) = (
        steady.iter().map(|s| s.0).sum::<f64>() / n,
        steady.iter().map(|s| mib(s.1)).sum::<f64>() / n,
    );
    let cov: f64 = steady.iter().map(|s| (s.0 - mt) * (mib(s.1) - mr)).sum();
    let var: f64 = steady.iter().map(|s| (s.0 - mt).powi(2)).sum();
    let slope = if var > 0.0 { cov / var * 3600.0 } else { 0.0 };
    let rss_allowance = (8 * 1024).max(rss_head / 10);
    let rss_grew = rss_tail > rss_head + rss_allowance;
    let fds_grew = fds_tail > fds_head + 8;

    println!("## Soak report");
    println!();
    println!(
        "duration {} s, {} samples every {} s, warm-up {} s left out of the verdict",
        ctx.args.duration,
        samples.len(),
        ctx.args.sample_every,
        warmup
    );
    println!(
        "requests answered: {requests} ({:.0}/s); errors: {errors}",
        requests as f64 / ctx.args.duration as f64
    );
    for (op, count) in &tally.ok {
        println!(
            "  {op}: {count} ok, {} errors",
            tally.errors.get(op).unwrap_or(&0)
        );
    }
    for e in &tally.first_errors {
        println!("  error: {e}");
    }
    println!();
    println!(
        "| | first | last | max | steady first quarter (median) | steady last quarter (median) |"
    );
    println!("|---|---|---|---|---|---|");
    println!(
        "| RSS MiB | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
        mib(first.1),
        mib(last.1),
        mib(max_rss),
        mib(rss_head),
        mib(rss_tail)
    );
    println!(
        "| open fds | {} | {} | {} | {} | {} |",
        first.2, last.2, max_fds, fds_head, fds_tail
    );
    println!();
    println!("RSS slope over the steady part: {slope:+.2} MiB/hour");
    let verdict = match (rss_grew, fds_grew) {
        (false, false) => "no growth beyond noise",
        (true, false) => "RSS GROWTH",
        (false, true) => "FD GROWTH",
        (true, true) => "RSS AND FD GROWTH",
    };
    println!("verdict: {verdict}");
    if errors > 0 || rss_grew || fds_grew {
        bail!("soak failed: {errors} errors, {verdict}");
    }
    Ok(())
}

/// Logs in with the key; returns the bearer token.
async fn login(http: &reqwest::Client, args: &Args) -> Result<String> {
    let response = http
        .post(format!("{}/api/v1/auth/login", args.base))
        .json(&json!({ "apiKey": args.api_key, "workspaceId": args.workspace_id }))
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await?;
    if status != 200 {
        bail!("login answered {status}: {body}");
    }
    Ok(body["token"].as_str().context("no token")?.to_owned())
}

async fn once(ctx: &Ctx, op: Op) -> Result<()> {
    let args = &ctx.args;
    let ws = &args.workspace_id;
    let token = ctx.token.lock().unwrap().clone();
    let rest = |path: String| {
        ctx.http
            .get(format!("{}/api/v1/workspaces/{ws}/{path}", args.base))
            .bearer_auth(&token)
    };
    match op {
        Op::ToolsList => mcp(ctx, &token, "tools/list", json!({}), false).await,
        Op::ListAgents => tool(ctx, &token, "list_agents", json!({}), false).await,
        Op::Search => {
            let arguments = json!({ "query": "vacation policy", "knowledgeBaseId": args.data_source_id, "topK": 8 });
            tool(ctx, &token, "search_knowledge", arguments, false).await
        }
        Op::AskStream => {
            let arguments =
                json!({ "agentId": args.agent_id, "message": "summarise the expenses policy" });
            tool(ctx, &token, "ask_agent", arguments, true).await
        }
        Op::RestAgents => ok_json(rest("agents".into()).send().await?).await,
        Op::RestKnowledge => ok_json(rest("knowledge-bases".into()).send().await?).await,
        Op::RestExecuteStream => {
            let response = ctx
                .http
                .post(format!(
                    "{}/api/v1/workspaces/{ws}/agents/{}/execute",
                    args.base, args.agent_id
                ))
                .bearer_auth(&token)
                .header("Accept", "text/event-stream")
                .json(&json!({ "message": "what is the travel policy?" }))
                .send()
                .await?;
            let status = response.status();
            let body = response.text().await?;
            if status != 200 || !body.contains("event: done") {
                bail!("execute stream: {status} {}", tail(&body));
            }
            Ok(())
        }
        Op::LoginChurn => {
            // A new client each time: new connections, as short-lived scripts make.
            let fresh = reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?;
            let mut token = login(&fresh, args).await?;
            for _ in 0..2 {
                let response = fresh
                    .post(format!("{}/api/v1/auth/refresh", args.base))
                    .bearer_auth(&token)
                    .send()
                    .await?;
                let status = response.status();
                let body: Value = response.json().await?;
                if status != 200 {
                    bail!("refresh answered {status}: {body}");
                }
                token = body["token"].as_str().context("no token")?.to_owned();
            }
            let response = fresh
                .post(format!("{}/api/v1/auth/logout", args.base))
                .bearer_auth(&token)
                .send()
                .await?;
            if !response.status().is_success() {
                bail!("logout answered {}", response.status());
            }
            Ok(())
        }
    }
}

async fn ok_json(response: reqwest::Response) -> Result<()> {
    let status = response.status();
    let body = response.text().await?;
    if status != 200 || serde_json::from_str::<Value>(&body).is_err() {
        bail!("{status} {}", tail(&body));
    }
    Ok(())
}

async fn tool(ctx: &Ctx, token: &str, name: &str, arguments: Value, stream: bool) -> Result<()> {
    let answer = mcp(
        ctx,
        token,
        "tools/call",
        json!({ "name": name, "arguments": arguments }),
        stream,
    );
    answer.await
}

/// One MCP request; with `stream`, progress is asked for (the answer is an SSE stream).
async fn mcp(ctx: &Ctx, token: &str, method: &str, mut params: Value, stream: bool) -> Result<()> {
    if stream {
        params["_meta"] = json!({ "progressToken": "soak" });
    }
    let response = ctx
        .http
        .post(format!("{}/mcp", ctx.args.base))
        .bearer_auth(token)
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2025-11-25")
        .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params }))
        .send()
        .await?;
    let status = response.status();
    let body = response.text().await?;
    if status != 200 {
        bail!("{method}: {status} {}", tail(&body));
    }
    let answer: Option<Value> = serde_json::from_str(&body).ok().or_else(|| {
        body.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
            .find(|m| m.get("id").is_some())
    });
    match answer {
        Some(a) if a.get("result").is_some() && a["result"]["isError"] != json!(true) => Ok(()),
        _ => bail!("{method}: {}", tail(&body)),
    }
}

fn tail(body: &str) -> String {
    body.chars().take(300).collect()
}
