//! Streaming scenario of `docs/PERFORMANCE.md`: how much later an agent's tokens reach an MCP
//! client through the full stack than a client reading Dust's event stream itself.
//!
//! Each round runs the simulator's Echo agent twice, one run after the other so both see the
//! same machine: **direct**, with the server's own Dust client (create the conversation, then
//! follow the agent message's event stream: the very calls `ask_agent` makes), and **stack**,
//! `tools/call ask_agent` with a `progressToken` through `/mcp` (auth, rate limit, audit, rmcp's
//! SSE response). For each it records when the first answer token arrived (a
//! `generation_tokens` event; a `notifications/progress` through the stack) and when the run
//! ended (the success event; the tool result), from the moment the request was sent.
//!
//! The added latency of the first token is the stack's cost to start a run (MCP request,
//! authentication, conversation record, audit) plus relaying one event; the added latency of
//! the end is the same plus relaying the whole stream. Their difference bounds what relaying
//! costs per event.
//!
//! ```sh
//! stream <sim base URL> <workspace id> <sim API key> <server /mcp URL> <bearer token> [rounds]
//! ```

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use hdrhistogram::Histogram;
use mcp_dust_server::dust::{
    AgentEventKind, CreateConversation, DustApi, DustCredentials, HttpDustClient, Mention,
    MessageContext, PostMessage, follow_agent_message,
};
use mcp_dust_server::sim::ECHO_AGENT_ID;
use serde_json::json;

/// Twenty words: the Echo agent streams its answer a word at a time.
const MESSAGE: &str = "one two three four five six seven eight nine ten \
eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty";

/// When the first token and the end of a run arrived, from the request.
struct Timing {
    first: Duration,
    end: Duration,
}

async fn direct(api: &Arc<dyn DustApi>, creds: &DustCredentials) -> Result<Timing> {
    let started = Instant::now();
    let request = CreateConversation {
        title: Some("bench".to_owned()),
        visibility: Some("unlisted".to_owned()),
        message: PostMessage {
            content: MESSAGE.to_owned(),
            mentions: vec![Mention {
                configuration_id: ECHO_AGENT_ID.to_owned(),
            }],
            context: MessageContext {
                username: "bench".to_owned(),
                timezone: "Europe/Paris".to_owned(),
                full_name: None,
                email: None,
                profile_picture_url: None,
                origin: Some("api".to_owned()),
            },
            blocking: None,
            skip_tools_validation: None,
        },
        blocking: Some(false),
        skip_tools_validation: Some(true),
        content_fragments: Vec::new(),
    };
    let created = api.create_conversation(creds, &request).await?;
    let conversation = created.conversation;
    let user_message = created.message.context("no user message")?;
    let reply = conversation
        .agent_reply_to(&user_message.s_id)
        .context("no agent run")?
        .s_id
        .clone();
    let mut events = follow_agent_message(api.clone(), creds.clone(), conversation.s_id, reply);
    let mut first = None;
    while let Some(event) = events.next().await {
        match event?.kind {
            AgentEventKind::GenerationTokens { classification, .. }
                if classification == "tokens" =>
            {
                first.get_or_insert_with(|| started.elapsed());
            }
            AgentEventKind::Success { .. } => {
                return Ok(Timing {
                    first: first.context("no token before the end")?,
                    end: started.elapsed(),
                });
            }
            AgentEventKind::Error { .. } => bail!("the agent failed"),
            _ => {}
        }
    }
    bail!("the event stream ended early")
}

async fn stack(client: &reqwest::Client, url: &str, token: &str) -> Result<Timing> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "ask_agent",
        "arguments": {"agentId": ECHO_AGENT_ID, "message": MESSAGE},
        "_meta": {
            "progressToken": 1,
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "stream-bench", "version": "1.0"},
            "io.modelcontextprotocol/clientCapabilities": {},
        },
    }});
    let started = Instant::now();
    let mut answer = client
        .post(url)
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "ask_agent")
        .json(&body)
        .send()
        .await?;
    if !answer.status().is_success() {
        bail!("status {}", answer.status());
    }
    let mut buffer = Vec::new();
    let mut first = None;
    while let Some(chunk) = answer.chunk().await? {
        buffer.extend_from_slice(&chunk);
        // Complete SSE events end with a blank line; each `data:` line is one JSON message.
        while let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
            let frame: Vec<u8> = buffer.drain(..end + 2).collect();
            let text = String::from_utf8_lossy(&frame);
            for data in text.lines().filter_map(|l| l.strip_prefix("data:")) {
                if data.contains("notifications/progress") {
                    first.get_or_insert_with(|| started.elapsed());
                } else if data.contains("\"result\"") {
                    if data.contains("\"isError\":true") {
                        bail!("tool error: {}", data.chars().take(300).collect::<String>());
                    }
                    return Ok(Timing {
                        first: first.context("no progress before the result")?,
                        end: started.elapsed(),
                    });
                }
            }
        }
    }
    bail!(
        "the response ended without a result: {}",
        String::from_utf8_lossy(&buffer[..buffer.len().min(300)])
    )
}

fn row(label: &str, h: &Histogram<u64>) -> f64 {
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "| {label} | {} | {:.3} | {:.3} | {:.3} | {:.3} |",
        h.len(),
        ms(0.5),
        ms(0.9),
        ms(0.99),
        h.max() as f64 / 1000.0
    );
    ms(0.5)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, sim, workspace, key, mcp_url, token, rest @ ..] = args.as_slice() else {
        bail!(
            "usage: stream <sim URL> <workspace id> <sim key> <server /mcp URL> <token> [rounds]"
        );
    };
    let rounds: usize = rest.first().map_or(Ok(30), |r| r.parse())?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let api: Arc<dyn DustApi> = Arc::new(HttpDustClient::with_base_url(sim)?);
    let creds = DustCredentials::new(workspace, key);
    let client = reqwest::Client::new();
    let new = || Histogram::<u64>::new_with_bounds(1, 60_000_000, 3);
    let (mut d_first, mut d_end, mut s_first, mut s_end) = (new()?, new()?, new()?, new()?);
    let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1);
    // One unmeasured round each: connections opened, caches warm.
    direct(&api, &creds).await.context("direct run")?;
    stack(&client, mcp_url, token).await.context("stack run")?;
    for _ in 0..rounds {
        let d = direct(&api, &creds).await?;
        let s = stack(&client, mcp_url, token).await?;
        d_first.saturating_record(micros(d.first));
        d_end.saturating_record(micros(d.end));
        s_first.saturating_record(micros(s.first));
        s_end.saturating_record(micros(s.end));
    }
    println!("| ask_agent (Echo, 20 words) | runs | p50 ms | p90 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|");
    let df = row("first token, direct", &d_first);
    let sf = row("first token, through the stack", &s_first);
    let de = row("end of run, direct", &d_end);
    let se = row("end of run, through the stack", &s_end);
    println!();
    println!(
        "added by the stack (p50): first token {:.3} ms, end of run {:.3} ms",
        sf - df,
        se - de
    );
    Ok(())
}
