//! Server-side state behind small async traits, so one instance keeps it in memory and a
//! cluster shares it (Redis, in its own module later) without the callers changing.
//!
//! Each trait has one contract test suite that every backend passes (for counters:
//! [`counters::testing::counter_store_contract`]).

pub mod counters;
mod memory;
pub mod sessions;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use counters::{CounterStore, MemoryCounterStore, WindowCount};
pub use memory::MemoryConversationStore;
pub use sessions::{MemorySessionStore, SessionKey, SessionRecord, SessionStore};

/// A failure of the backing store. Callers fail closed: a request that needs the store is
/// refused rather than served on a guess.
#[derive(Debug, thiserror::Error)]
#[error("state store unavailable: {0}")]
pub struct StoreError(pub String);

/// A conversation this server started, and who started it.
///
/// Dust's API keys are workspace keys: everyone sharing a key could read every conversation of
/// it. The server therefore records who created each conversation and answers "not found" to
/// anyone else (the MCP spec's "state handle hijacking" and catalogue Z cases).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationRecord {
    pub conversation_id: String,
    pub workspace_id: String,
    /// The principal's pseudonymous `user_id`.
    pub owner: String,
    pub title: Option<String>,
    pub agent_id: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
}

/// Conversation ownership.
#[async_trait]
pub trait ConversationStore: Send + Sync + 'static {
    /// Records a conversation; recording the same id again keeps the first owner.
    async fn record(&self, record: ConversationRecord) -> Result<(), StoreError>;

    /// The record of `conversation_id` in `workspace_id`, whoever owns it.
    async fn get(
        &self,
        workspace_id: &str,
        conversation_id: &str,
    ) -> Result<Option<ConversationRecord>, StoreError>;

    /// The conversations `owner` started in `workspace_id`, newest first.
    async fn list(
        &self,
        workspace_id: &str,
        owner: &str,
    ) -> Result<Vec<ConversationRecord>, StoreError>;
}
