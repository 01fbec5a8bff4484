//! What each operation means, whatever the transport: the layer the MCP tools (`crate::mcp`)
//! and the REST routes (`crate::http::rest`) are thin adapters over.
//!
//! An adapter reads its wire format into an argument type ([`args`]), opens a [`Call`] with the
//! operation's descriptor ([`catalog::Op`]: name, permission, whether it reaches Dust, kind),
//! which checks the permission, the workspace and the caller's bulkhead slot and, when the call
//! ends, writes its audit record; between the two, one function per operation does the work and
//! returns a typed view ([`views`]) or an [`OpError`]. Each adapter then says the result its own
//! way: MCP as structured content, a tool error or a JSON-RPC error (`crate::mcp::errors`);
//! REST as JSON, an HTTP status and the one `ApiError` envelope (`crate::http::rest`).
//!
//! Nothing here knows JSON-RPC or HTTP. Dependencies point one way: adapters → `ops` → `dust`,
//! `store`, `auth`, `audit`.
//!
//! Files: `catalog.rs` (the operation descriptors), `call.rs` (caller, permission and workspace
//! checks, bulkhead, audit), `error.rs`, `args.rs` (argument types and validation), `views.rs`
//! (the shapes returned), and the operations by noun: `workspace.rs`, `agents.rs`,
//! `conversations.rs`, `knowledge.rs`, `tables.rs` (a folder's tables and rows), `ask.rs` (starting and following an agent run),
//! `pause.rs` (a run paused on a person, sealed for the client to bring back), `waiting.rs`
//! (what a person waiting on is shown, and their answers reaching Dust), `tasks.rs` and
//! `task_slots.rs` (agent runs as tasks, and how many each principal has running);
//! `cache.rs` and `bulkhead.rs` are the context's per-principal listing caches and call slots.

pub mod agents;
pub mod args;
pub mod ask;
pub mod attach;
mod bulkhead;
pub mod cache;
pub mod call;
pub mod catalog;
pub mod conversations;
mod error;
pub mod knowledge;
pub mod pause;
pub mod tables;
pub mod task_slots;
pub mod tasks;
pub mod views;
pub mod waiting;
pub mod workspace;

use std::{sync::Arc, time::Duration};

use tokio_util::task::TaskTracker;

use crate::{
    audit::{AuditEvent, Auditor},
    auth::Principal,
    dust::{AgentConfiguration, DustApi, MessageContext},
    store::ConversationStore,
};

pub use ask::CANCEL_TIMEOUT;
pub use bulkhead::MAX_CALLS_IN_FLIGHT;
pub use cache::PrincipalCache;
pub use call::{Call, Caller, Revalidate, Surface};
pub use catalog::Op;
pub use error::{OpError, describe_dust_error};
pub use knowledge::KnowledgeCache;

/// Default of `AGENT_CACHE_TTL`: how long a principal's agent list is reused.
pub const AGENT_CACHE_TTL: Duration = Duration::from_secs(15);

/// Settings of the operations, taken from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `MCP_SERVER_NAME`: the name reported to clients.
    pub server_name: String,
    /// `DUST_AGENT_ID`: the agent `ask_agent` uses when the caller names none.
    pub default_agent_id: Option<String>,
    /// `DUST_TIMEZONE`: sent with messages (Dust requires a valid IANA name).
    pub timezone: String,
    /// `MCP_SERVER_TIMEOUT`: how long an agent run may take.
    pub agent_timeout: Duration,
    /// The Dust base URL, to report the workspace's web address.
    pub dust_base_url: url::Url,
    /// `DUST_TOOL_APPROVAL`: who answers an agent's request to run a tool.
    pub tool_approval: crate::config::ToolApproval,
    /// `TASK_TTL`: how long a task handle of `ask_agent` stays readable.
    pub task_ttl: Duration,
    /// `DUST_AGENT_TOOLS`: the agents that are also tools of their own (`ask_<name>`).
    pub agent_tools: crate::config::AgentTools,
}

/// What every operation shares: the upstream, the stores, the caches and the settings. One per
/// server, behind an `Arc`, whatever the transport.
pub struct Context {
    pub dust: Arc<dyn DustApi>,
    pub conversations: Arc<dyn ConversationStore>,
    pub knowledge: KnowledgeCache,
    /// Each principal's agent list, for `AGENT_CACHE_TTL` ([`agents::agents`]).
    pub agents: PrincipalCache<Vec<AgentConfiguration>>,
    pub settings: Settings,
    /// Where calls, refusals and suspicious input are recorded (`None`: not audited).
    pub auditor: Option<Auditor>,
    /// Bounds the calls each principal has running at once toward Dust.
    pub bulkhead: bulkhead::Bulkhead,
    /// Work that outlives the request that started it (cancelling an abandoned Dust run): the
    /// process waits for it on shutdown, so a client that gives up and then disconnects still
    /// gets its Dust run cancelled.
    pub background: TaskTracker,
    /// Graceful shutdown: whether the server is stopping and the grace period is over.
    pub drain: crate::shutdown::Drain,
    /// Seals the runs paused on a person for the client to bring back (`pause`).
    pub pauses: pause::Pauses,
    /// The agent tasks each principal has running, started here (`task_slots`).
    pub task_slots: task_slots::TaskSlots,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Context {
    pub fn new(
        dust: Arc<dyn DustApi>,
        conversations: Arc<dyn ConversationStore>,
        settings: Settings,
    ) -> Self {
        let background = TaskTracker::new();
        let agent_timeout = settings.agent_timeout;
        Self {
            dust,
            conversations,
            knowledge: KnowledgeCache::new(knowledge::KNOWLEDGE_TTL, cache::CACHE_CAPACITY),
            agents: PrincipalCache::new(AGENT_CACHE_TTL, cache::CACHE_CAPACITY),
            settings,
            auditor: None,
            bulkhead: bulkhead::Bulkhead::default(),
            drain: crate::shutdown::Drain::new(background.clone()),
            background,
            pauses: pause::Pauses::ephemeral(agent_timeout),
            task_slots: task_slots::TaskSlots::default(),
        }
    }

    /// Lets the background work still running (see `background`) reach Dust before the
    /// process exits. The calls still running have had their tokens cancelled: they end at once
    /// and queue their cancellation, which gets its own bounded time.
    pub async fn finish_background(&self) {
        self.background.close();
        let limit = CANCEL_TIMEOUT + Duration::from_secs(1);
        if tokio::time::timeout(limit, self.background.wait())
            .await
            .is_err()
        {
            tracing::warn!("some Dust cancellations did not finish before shutdown");
        }
    }

    /// Records calls and refusals with `auditor`.
    #[must_use]
    pub fn with_auditor(mut self, auditor: Auditor) -> Self {
        self.auditor = Some(auditor);
        self
    }

    /// Seals paused runs with `pauses` (a key every instance shares, a shared single-use store).
    #[must_use]
    pub fn with_pauses(mut self, pauses: pause::Pauses) -> Self {
        self.pauses = pauses;
        self
    }

    /// Keeps each principal's agent list for `ttl` (zero: asks Dust every time).
    #[must_use]
    pub fn with_agent_cache_ttl(mut self, ttl: Duration) -> Self {
        self.agents = PrincipalCache::new(ttl, cache::CACHE_CAPACITY);
        self
    }

    /// Records `event` when auditing is on.
    pub(crate) fn audit(&self, event: AuditEvent) {
        if let Some(auditor) = &self.auditor {
            auditor.record(event);
        }
    }

    /// The `context` of a message sent to Dust on behalf of `principal`.
    fn message_context(&self, principal: &Principal) -> MessageContext {
        MessageContext {
            username: principal.username.clone(),
            timezone: self.settings.timezone.clone(),
            full_name: principal.full_name.clone(),
            email: principal.email.clone(),
            profile_picture_url: None,
            origin: Some("api".to_owned()),
        }
    }
}
