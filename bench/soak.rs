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
//! Growth verdict (issue 25): every structure that grows with use has a cap or an expiry
//! (docs/RELIABILITY.md, "Memory bounds"), so the RSS of a sound server rises while they fill and
//! is flat afterwards; growth before that point is no leak, growth after it is. The server tells
//! how full each structure is (`store_entries{structure}` and `store_capacity{structure}` on
//! `/metrics`, scraped at every sample with the soak's token, which needs `admin:metrics`), and
//! the verdict window starts once every structure is *settled*: at its cap (98 %), or, for one
//! bounded by expiry (token records), at 80 % of the most it held in the run, the first time it
//! gets there (its size then follows the request rate, which wanders on a shared machine: an
//! earlier rule, "for good", put the settling of the hour-long run at 3,200 s because the token
//! count dipped once under 80 % while other work slowed the load; a structure that grows
//! without bound reaches its most only at the end and leaves no window). Structures that never
//! held 100 entries are not waited for. The window (never
//! before `--warmup`) must leave at least a quarter of the run, otherwise the caps were not
//! reached and the run proves nothing (`NOT SETTLED`: lower the caps, bench/soak.sh does). In
//! the window, the last quarter's median must not exceed the first quarter's by more than
//! max(8 MiB, 10 %) for RSS, nor by more than 8 for file descriptors; the least-squares slope
//! (MiB per hour) is printed too.
//!
//! The report then accounts for the RSS the run ends with: the RSS before the load, plus each
//! structure's entries times its bytes per entry (measured by `examples/memory.rs`,
//! [`BYTES_PER_ENTRY`]), against the last RSS; the rest is the load's working set (connections,
//! buffers, the allocator's caches), which the window shows to be flat.

use std::{
    collections::{BTreeMap, BTreeSet},
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
    /// Seconds at least left out of the growth verdict at the start; the window starts later
    /// when the server's structures are still filling (see the module doc).
    #[arg(long, default_value_t = 60)]
    warmup: u64,
    /// Seconds between two samples.
    #[arg(long, default_value_t = 5)]
    sample_every: u64,
    /// Requests per second of each worker.
    #[arg(long, default_value_t = 5.0)]
    worker_rate: f64,
    /// Write the samples here as CSV (seconds, rss_kib, fds, then the entries of each structure).
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
    let mut samples: Vec<Sample> = Vec::new();
    let total = Duration::from_secs(ctx.args.duration);
    loop {
        let at = started.elapsed();
        let (rss, fds) = sample(ctx.args.pid).context("the server process is gone")?;
        let stores = store_gauges(&ctx).await.unwrap_or_default();
        let conversations = stores.get("conversations").map_or(0, |e| e.0);
        samples.push(Sample {
            t: at.as_secs_f64(),
            rss,
            fds,
            stores,
        });
        if at >= total {
            break;
        }
        let done: u64 = ctx.tally.lock().unwrap().ok.values().sum();
        eprintln!(
            "soak: {:>4}s  rss {:>7.1} MiB  fds {:>4}  requests {done}  conversations held {conversations}",
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
        let names: BTreeSet<&String> = samples.iter().flat_map(|s| s.stores.keys()).collect();
        let mut csv = String::from("seconds,rss_kib,fds");
        for name in &names {
            csv.push_str(&format!(",{name}"));
        }
        csv.push('\n');
        for s in &samples {
            csv.push_str(&format!("{:.1},{},{}", s.t, s.rss, s.fds));
            for name in &names {
                csv.push_str(&format!(",{}", s.stores.get(*name).map_or(0, |e| e.0)));
            }
            csv.push('\n');
        }
        std::fs::write(path, csv)?;
    }
    report(&ctx, &samples)
}

/// One sample: seconds since the start, VmRSS (KiB), open fds, and each structure's
/// `(entries, capacity)` as `/metrics` gave them.
struct Sample {
    t: f64,
    rss: u64,
    fds: u64,
    stores: BTreeMap<String, (u64, u64)>,
}

/// Bytes per entry of each structure at its cap, measured with `examples/memory.rs` on the
/// release build (docs/RELIABILITY.md, "Memory bounds"): what the report multiplies the entries
/// by to account for the RSS.
const BYTES_PER_ENTRY: &[(&str, u64)] = &[
    ("conversations", 620),
    ("tokens", 650),
    ("sessions", 300),
    ("recent_audit", 650),
    ("rate_limit_counters", 100),
    ("agent_cache", 20_000),
    ("knowledge_cache", 2_000),
    ("task_slots", 200),
];

/// `store_entries` and `store_capacity` per structure, from the server's `/metrics`.
async fn store_gauges(ctx: &Ctx) -> Result<BTreeMap<String, (u64, u64)>> {
    let token = ctx.token.lock().unwrap().clone();
    let response = ctx
        .http
        .get(format!("{}/metrics", ctx.args.base))
        .bearer_auth(token)
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("/metrics answered {}", response.status());
    }
    let text = response.text().await?;
    let mut out: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((name, rest)) = line.split_once("{structure=\"") else {
            continue;
        };
        let Some((structure, value)) = rest.split_once("\"}") else {
            continue;
        };
        let Ok(value) = value.trim().parse::<f64>() else {
            continue;
        };
        let entry = out.entry(structure.to_owned()).or_default();
        if name.ends_with("store_entries") {
            entry.0 = value as u64;
        } else if name.ends_with("store_capacity") {
            entry.1 = value as u64;
        }
    }
    Ok(out)
}

/// When every structure has settled (see the module doc): the time of the first sample from
/// which all of them stay settled, and the structure that settled last.
fn settled_at(samples: &[Sample]) -> Option<(f64, String)> {
    // A scrape that failed (the shared token expired at that instant) says nothing.
    let samples: Vec<&Sample> = samples.iter().filter(|s| !s.stores.is_empty()).collect();
    let names: BTreeSet<&String> = samples.iter().flat_map(|s| s.stores.keys()).collect();
    if names.is_empty() {
        return None;
    }
    let mut at = (samples[0].t, String::from("none"));
    for name in names {
        let entries = |s: &&Sample| s.stores.get(name).map_or(0, |e| e.0);
        let most = samples.iter().map(entries).max().unwrap_or(0);
        let capacity = samples
            .iter()
            .filter_map(|s| s.stores.get(name).map(|e| e.1))
            .max()
            .unwrap_or(0);
        if most < 100 {
            continue;
        }
        let threshold = if most as f64 >= 0.98 * capacity as f64 {
            0.98 * capacity as f64
        } else {
            0.8 * most as f64
        };
        // The first time it gets there: after that, a structure under an expiry moves with the
        // request rate (which a shared machine's load makes wander), not with the run's length;
        // one still filling reaches its most only at the end, and leaves no window.
        let from = samples
            .iter()
            .position(|s| (entries(s) as f64) >= threshold)
            .unwrap_or(samples.len());
        let t = samples.get(from).map_or(f64::INFINITY, |s| s.t);
        if t > at.0 {
            at = (t, name.clone());
        }
    }
    Some(at)
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

fn report(ctx: &Ctx, samples: &[Sample]) -> Result<()> {
    let tally = ctx.tally.lock().unwrap();
    let duration = ctx.args.duration as f64;
    let requests: u64 = tally.ok.values().sum();
    let errors: u64 = tally.errors.values().sum();
    let mib = |kib: u64| kib as f64 / 1024.0;
    let (first, last) = (&samples[0], &samples[samples.len() - 1]);
    let max_rss = samples.iter().map(|s| s.rss).max().unwrap_or(0);
    let max_fds = samples.iter().map(|s| s.fds).max().unwrap_or(0);
    // The window of the verdict: from when every structure settled (never before --warmup).
    let settled = settled_at(samples);
    let start = settled
        .as_ref()
        .map_or(duration / 2.0, |(t, _)| *t)
        .max(ctx.args.warmup as f64);
    let steady: Vec<&Sample> = samples.iter().filter(|s| s.t >= start).collect();
    let long_enough = duration - start >= duration / 4.0 && steady.len() >= 8;
    let quarter = (steady.len() / 4).max(1);
    let head = &steady[..quarter.min(steady.len())];
    let tail = &steady[steady.len().saturating_sub(quarter)..];
    let rss_head = median(head.iter().map(|s| s.rss).collect());
    let rss_tail = median(tail.iter().map(|s| s.rss).collect());
    let fds_head = median(head.iter().map(|s| s.fds).collect());
    let fds_tail = median(tail.iter().map(|s| s.fds).collect());
    let (rss_low, rss_high) = (
        steady.iter().map(|s| s.rss).min().unwrap_or(0),
        steady.iter().map(|s| s.rss).max().unwrap_or(0),
    );
    // Least-squares slope of RSS over the window, MiB per hour.
    let n = steady.len().max(1) as f64;
    let (mt, mr) = (
        steady.iter().map(|s| s.t).sum::<f64>() / n,
        steady.iter().map(|s| mib(s.rss)).sum::<f64>() / n,
    );
    let cov: f64 = steady.iter().map(|s| (s.t - mt) * (mib(s.rss) - mr)).sum();
    let var: f64 = steady.iter().map(|s| (s.t - mt).powi(2)).sum();
    let slope = if var > 0.0 { cov / var * 3600.0 } else { 0.0 };
    let rss_allowance = (8 * 1024).max(rss_head / 10);
    let rss_grew = rss_tail > rss_head + rss_allowance;
    let fds_grew = fds_tail > fds_head + 8;

    println!("## Soak report");
    println!();
    println!(
        "duration {} s, {} samples every {} s",
        ctx.args.duration,
        samples.len(),
        ctx.args.sample_every,
    );
    match &settled {
        Some((t, last_one)) => println!(
            "every structure settled (at its cap, or steady under its expiry) at {t:.0} s \
             ({last_one} last); verdict window {start:.0}–{} s",
            ctx.args.duration
        ),
        None => println!(
            "no structure gauges (the token lacks admin:metrics?): verdict window {start:.0}–{} s",
            ctx.args.duration
        ),
    }
    println!(
        "requests answered: {requests} ({:.0}/s); errors: {errors}",
        requests as f64 / duration
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
        "| | first | last | max | window first quarter (median) | window last quarter (median) | window min–max |"
    );
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| RSS MiB | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1}–{:.1} |",
        mib(first.rss),
        mib(last.rss),
        mib(max_rss),
        mib(rss_head),
        mib(rss_tail),
        mib(rss_low),
        mib(rss_high)
    );
    println!(
        "| open fds | {} | {} | {} | {} | {} | |",
        first.fds, last.fds, max_fds, fds_head, fds_tail
    );
    println!();
    println!("RSS slope over the window: {slope:+.2} MiB/hour");
    account(first, last);
    let verdict = match (long_enough, rss_grew, fds_grew) {
        (false, _, _) => "NOT SETTLED (the caps were not reached in time: lower them)",
        (true, false, false) => "no growth beyond noise",
        (true, true, false) => "RSS GROWTH",
        (true, false, true) => "FD GROWTH",
        (true, true, true) => "RSS AND FD GROWTH",
    };
    println!("verdict: {verdict}");
    if errors > 0 || !long_enough || rss_grew || fds_grew {
        bail!("soak failed: {errors} errors, {verdict}");
    }
    Ok(())
}

/// Prints what the last RSS is made of: the RSS before the load, and each structure's entries
/// times its measured bytes per entry; the rest is the load's working set.
fn account(first: &Sample, last: &Sample) {
    if last.stores.is_empty() {
        return;
    }
    println!();
    println!("| structure | entries at the end | cap | bytes per entry | MiB |");
    println!("|---|---|---|---|---|");
    let mut held = 0.0;
    for (name, (entries, capacity)) in &last.stores {
        let per = BYTES_PER_ENTRY
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, b)| *b);
        let bytes = (*entries * per) as f64 / 1_048_576.0;
        held += bytes;
        println!("| {name} | {entries} | {capacity} | {per} | {bytes:.1} |");
    }
    let (start, end) = (first.rss as f64 / 1024.0, last.rss as f64 / 1024.0);
    println!(
        "RSS at the end {end:.1} MiB = {start:.1} before the load + {held:.1} held by the \
         structures + {:.1} working set of the load (connections, buffers, allocator caches)",
        end - start - held
    );
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
