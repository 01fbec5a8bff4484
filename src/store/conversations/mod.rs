//! Conversation ownership: who started each conversation this server created, so that nobody
//! else sharing the workspace key reads it. The memory backend is [`memory`]; the Redis one
//! (`store::redis::conversations`) keeps the record and a per-owner index, both expiring after
//! `CONVERSATION_RETENTION`. Both pass [`contract`].
//!
//! No clock is needed: a record carries its own creation time (`created_at`, from the caller),
//! and the memory store forgets only by count (`CONVERSATION_MAX_RECORDS` over all workspaces,
//! `CONVERSATION_MAX_PER_WORKSPACE` in one), never by age.

#[cfg(any(test, feature = "test-support"))]
pub mod contract;
pub mod memory;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use memory::{Limits as ConversationLimits, MemoryConversationStore};

use super::StoreError;

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

    /// How many records this process holds, for the `store_entries` gauge; `None` when the
    /// records live elsewhere (Redis bounds them by expiry).
    fn held(&self) -> Option<usize> {
        None
    }
}
