//! Conversation ownership in memory: the default for one instance and for `stdio`.
//!
//! A `std::sync::RwLock` suffices: no lock is held across an `.await`, and every critical
//! section is a map lookup or insert.

use std::{collections::HashMap, sync::RwLock};

use async_trait::async_trait;

use super::{ConversationRecord, ConversationStore};
use crate::store::StoreError;

/// Most conversations remembered per workspace; the oldest are forgotten past it, so a long-lived
/// process cannot be grown without bound.
const MAX_CONVERSATIONS_PER_WORKSPACE: usize = 100_000;

/// Conversation ownership in memory.
#[derive(Debug, Default)]
pub struct MemoryConversationStore {
    /// workspace id → conversation id → record.
    by_workspace: RwLock<HashMap<String, HashMap<String, ConversationRecord>>>,
}

impl MemoryConversationStore {
    pub fn new() -> Self {
        Self::default()
    }
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError("memory store lock poisoned".into())
}

#[async_trait]
impl ConversationStore for MemoryConversationStore {
    async fn record(&self, record: ConversationRecord) -> Result<(), StoreError> {
        let mut map = self.by_workspace.write().map_err(poisoned)?;
        let conversations = map.entry(record.workspace_id.clone()).or_default();
        if conversations.len() >= MAX_CONVERSATIONS_PER_WORKSPACE
            && !conversations.contains_key(&record.conversation_id)
            && let Some(oldest) = conversations
                .values()
                .min_by_key(|r| r.created_at)
                .map(|r| r.conversation_id.clone())
        {
            conversations.remove(&oldest);
        }
        conversations
            .entry(record.conversation_id.clone())
            .or_insert(record);
        Ok(())
    }

    async fn get(
        &self,
        workspace_id: &str,
        conversation_id: &str,
    ) -> Result<Option<ConversationRecord>, StoreError> {
        let map = self.by_workspace.read().map_err(poisoned)?;
        Ok(map
            .get(workspace_id)
            .and_then(|c| c.get(conversation_id))
            .cloned())
    }

    async fn list(
        &self,
        workspace_id: &str,
        owner: &str,
    ) -> Result<Vec<ConversationRecord>, StoreError> {
        let map = self.by_workspace.read().map_err(poisoned)?;
        let mut records: Vec<_> = map
            .get(workspace_id)
            .into_iter()
            .flat_map(|c| c.values())
            .filter(|r| r.owner == owner)
            .cloned()
            .collect();
        records.sort_by_key(|r| std::cmp::Reverse(r.created_at));
        Ok(records)
    }
}

#[cfg(test)]
mod contract {
    crate::conversation_store_contract_tests!(super::MemoryConversationStore::new());
}
