//! Memory per live record for `docs/PERFORMANCE.md`: fills the in-memory token store with N
//! realistic records (sealed 35-byte Dust key, `tok_` id, `usr_` fingerprint, default
//! permissions, one-hour expiry, as `/api/v1/auth/login` stores them) and reads this process's
//! VmRSS before and after. Records are kept alive while RSS is read.
//!
//! The same for browser sessions in the in-memory session store (64-hex HMAC key, linked
//! `tok_` id, `usr_` fingerprint, timestamps, as a session login stores them). A session also
//! links one token record, so a browser user costs one of each.
//!
//! Conversation-ownership records (issue 25): N records spread over 1, 100 or 10,000 workspaces
//! (one owner per 8 conversations, 36-character ids and a title, as `ask_agent` records them),
//! in a store whose caps are N, so the figure includes the eviction order it keeps. And the
//! recent-audit window: N `tool_call` records as the server keeps them (one JSON line each).
//!
//! The figures are the bytes per entry of docs/RELIABILITY.md ("Memory bounds"), which
//! `bench/soak.rs` multiplies by the entries the server reports to account for its RSS.
//!
//! `cargo run --release --example memory -- 10000 100000`

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use mcp_dust_server::{
    audit::{AuditEvent, AuditEventType, AuditResult, MemoryRecentAudit, RecentAudit, Severity},
    auth::{KeyCipher, Keys, PermissionSet, new_token_id},
    store::{
        ConversationLimits, ConversationRecord, ConversationStore, MemoryConversationStore,
        MemorySessionStore, MemoryTokenStore, SessionKey, SessionRecord, SessionStore, TokenRecord,
        TokenStore,
    },
};
use secrecy::SecretString;

/// This process's resident memory in kB.
fn rss_kb() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc/self/status")
}

async fn fill_tokens(n: usize) -> Result<(u64, MemoryTokenStore)> {
    let keys = Keys::ephemeral();
    let cipher = KeyCipher::new(&keys);
    let store = MemoryTokenStore::with_capacity(n);
    let now = i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs())?;
    let permissions = PermissionSet::parse_list(
        "read:workspaces,read:agents,execute:agents,read:knowledge-bases,read:connectors",
    )
    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let before = rss_kb()?;
    for i in 0..n {
        let token_id = new_token_id();
        // One user per 8 tokens (the per-user cap is larger; distinct strings either way).
        let key = SecretString::from(format!("sk-{:032x}", i / 8));
        let record = TokenRecord {
            sealed_key: cipher.seal(&key, &token_id),
            token_id,
            user_id: format!("usr_{:024x}", i / 8),
            username: format!("user{}", i / 8),
            email: None,
            workspace_id: "w0123456789".to_owned(),
            permissions,
            issued_at: now,
            expires_at: now + 3600,
            revoked_at: None,
            origin: mcp_dust_server::store::TokenOrigin::Login,
            chain_expires_at: Some(now + 86_400),
        };
        store.save(record, now).await?;
    }
    Ok((rss_kb()?.saturating_sub(before), store))
}

async fn fill_sessions(n: usize) -> Result<(u64, MemorySessionStore)> {
    let store = MemorySessionStore::with_capacity(n);
    let now_ms = i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis())?;
    let before = rss_kb()?;
    for i in 0..n {
        let key = SessionKey::from_hmac_hex(format!("{:064x}", ((i as u128) << 32) | 0xfeed));
        let record = SessionRecord {
            token_id: new_token_id(),
            user_id: format!("usr_{:024x}", i / 8),
            workspace_id: "w0123456789".to_owned(),
            created_at_ms: now_ms,
            last_seen_ms: now_ms,
            expires_at_ms: now_ms + 3_600_000,
            absolute_expires_at_ms: now_ms + 43_200_000,
        };
        store.insert(&key, record, now_ms).await?;
    }
    Ok((rss_kb()?.saturating_sub(before), store))
}

async fn fill_conversations(n: usize, workspaces: usize) -> Result<(u64, MemoryConversationStore)> {
    let store = MemoryConversationStore::with_limits(ConversationLimits {
        total: n,
        per_workspace: n,
    });
    let now_ms = i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis())?;
    let before = rss_kb()?;
    for i in 0..n {
        let record = ConversationRecord {
            conversation_id: format!("{:036x}", i as u128 * 0x9e37_79b9),
            workspace_id: format!("w{:010}", i % workspaces),
            owner: format!("usr_{:024x}", i / 8),
            title: Some("MCP: summarise the expenses policy".to_owned()),
            agent_id: "ech0Ag3ntX".to_owned(),
            created_at: now_ms + i as i64,
        };
        store.record(record).await?;
    }
    Ok((rss_kb()?.saturating_sub(before), store))
}

fn fill_audit(n: usize) -> Result<(u64, MemoryRecentAudit)> {
    let window = MemoryRecentAudit::new(n);
    let before = rss_kb()?;
    for i in 0..n {
        let event = AuditEvent::new(AuditEventType::ResourceAccess, Severity::Info, "tool call")
            .user(&format!("usr_{:024x}", i / 8), Some("soak"))
            .workspace("w0123456789")
            .action("ask_agent")
            .resource("agent", "ech0Ag3ntX")
            .result(AuditResult::Success);
        window.push(&event);
    }
    Ok((rss_kb()?.saturating_sub(before), window))
}

fn row(store: &str, n: usize, added_kb: u64) {
    println!(
        "| {store} | {n} | {:.1} | {:.0} |",
        added_kb as f64 / 1024.0,
        added_kb as f64 * 1024.0 / n as f64
    );
}

/// The server's allocator, so that the figures describe the server.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let counts: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()
        .context("arguments are record counts")?;
    let counts = if counts.is_empty() {
        vec![10_000, 100_000]
    } else {
        counts
    };
    println!("| store | records | RSS added MB | bytes per record |");
    println!("|---|---|---|---|");
    // Every store stays alive to the end, so a later fill cannot reuse an earlier one's pages.
    let mut kept = Vec::new();
    for &n in &counts {
        let started = std::time::Instant::now();
        let (added_kb, store) = fill_tokens(n).await?;
        let elapsed = started.elapsed();
        println!(
            "| token records (memory) | {n} | {:.1} | {:.0} |",
            added_kb as f64 / 1024.0,
            added_kb as f64 * 1024.0 / n as f64
        );
        eprintln!("filled {n} token records in {elapsed:.2?}");
        kept.push(store);
    }
    let mut sessions = Vec::new();
    for &n in &counts {
        let (added_kb, store) = fill_sessions(n).await?;
        println!(
            "| sessions (memory) | {n} | {:.1} | {:.0} |",
            added_kb as f64 / 1024.0,
            added_kb as f64 * 1024.0 / n as f64
        );
        sessions.push(store);
    }
    let mut conversations = Vec::new();
    for &n in &counts {
        for workspaces in [1, 100, 10_000] {
            let (added_kb, store) = fill_conversations(n, workspaces).await?;
            row(
                &format!("conversations (memory), {workspaces} workspaces"),
                n,
                added_kb,
            );
            conversations.push(store);
        }
    }
    let mut windows = Vec::new();
    for &n in &counts {
        let (added_kb, window) = fill_audit(n)?;
        row("recent audit (memory)", n, added_kb);
        windows.push(window);
    }
    Ok(())
}
