//! Conversation ownership in memory: the default for one instance and for `stdio`.
//!
//! Every `ask_agent` records one conversation, so this is the structure that grows with use the
//! fastest (a soak at 150 requests/s records about 34 a second; issue 25). It is bounded twice:
//! per workspace ([`Limits::per_workspace`], so that one busy workspace cannot push every
//! other's records out) and over all workspaces ([`Limits::total`], the bound that memory
//! actually needs: a per-workspace cap times an unbounded number of workspaces is none). Past
//! either, the oldest record (of the workspace, or of the whole store) is forgotten: its owner
//! then gets "not found" for a conversation old enough to have left the window, the same answer
//! as after a restart, while refusing new conversations would break `ask_agent` for everyone.
//!
//! "Oldest" is the order of recording, kept in two `BTreeMap`s keyed by a sequence number (one
//! per workspace, one for the store), so that forgetting one record costs O(log n) instead of a
//! scan of 100,000 records on every new conversation at the cap (what the first version did).
//!
//! A `std::sync::RwLock` suffices: no lock is held across an `.await`, and every critical
//! section is a few map operations.

use std::{
    collections::{BTreeMap, HashMap},
    sync::RwLock,
};

use async_trait::async_trait;

use super::{ConversationRecord, ConversationStore};
use crate::store::StoreError;

/// Most conversations remembered per workspace, by default (`CONVERSATION_MAX_PER_WORKSPACE`).
pub const MAX_CONVERSATIONS_PER_WORKSPACE: usize = 100_000;

/// Most conversations remembered over all workspaces, by default (`CONVERSATION_MAX_RECORDS`).
pub const MAX_CONVERSATIONS: usize = 100_000;

/// How many conversation records the memory store keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Over all workspaces.
    pub total: usize,
    /// In one workspace.
    pub per_workspace: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            total: MAX_CONVERSATIONS,
            per_workspace: MAX_CONVERSATIONS_PER_WORKSPACE,
        }
    }
}

/// The records of one workspace.
#[derive(Debug, Default)]
struct Workspace {
    /// conversation id → (sequence number, record).
    records: HashMap<String, (u64, ConversationRecord)>,
    /// sequence number → conversation id: the workspace's oldest first.
    order: BTreeMap<u64, String>,
}

#[derive(Debug, Default)]
struct Records {
    by_workspace: HashMap<String, Workspace>,
    /// sequence number → workspace id: the store's oldest first. The first entry of a workspace
    /// here is the first of its own `order`, as both are keyed by the same numbers.
    order: BTreeMap<u64, String>,
    next: u64,
}

impl Records {
    /// Forgets the oldest record of `workspace_id`.
    fn evict_oldest_of(&mut self, workspace_id: &str) {
        let Some(workspace) = self.by_workspace.get_mut(workspace_id) else {
            return;
        };
        if let Some((seq, id)) = workspace.order.pop_first() {
            workspace.records.remove(&id);
            self.order.remove(&seq);
        }
        if workspace.records.is_empty() {
            self.by_workspace.remove(workspace_id);
        }
    }

    /// Forgets the oldest record of the store.
    fn evict_oldest(&mut self) {
        if let Some((_, workspace_id)) = self.order.first_key_value() {
            let workspace_id = workspace_id.clone();
            self.evict_oldest_of(&workspace_id);
        }
    }
}

/// Conversation ownership in memory.
#[derive(Debug, Default)]
pub struct MemoryConversationStore {
    limits: Limits,
    records: RwLock<Records>,
}

impl MemoryConversationStore {
    /// A store with the default [`Limits`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A store keeping at most `limits` records (a limit of 0 counts as 1).
    pub fn with_limits(limits: Limits) -> Self {
        Self {
            limits: Limits {
                total: limits.total.max(1),
                per_workspace: limits.per_workspace.max(1),
            },
            records: RwLock::default(),
        }
    }

    /// How many records are held, over all workspaces.
    #[must_use]
    pub fn len(&self) -> usize {
        self.records.read().map_or(0, |r| r.order.len())
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError("memory store lock poisoned".into())
}

#[async_trait]
impl ConversationStore for MemoryConversationStore {
    async fn record(&self, record: ConversationRecord) -> Result<(), StoreError> {
        let mut records = self.records.write().map_err(poisoned)?;
        let known = records
            .by_workspace
            .get(&record.workspace_id)
            .is_some_and(|w| w.records.contains_key(&record.conversation_id));
        if known {
            return Ok(());
        }
        let workspace_len = records
            .by_workspace
            .get(&record.workspace_id)
            .map_or(0, |w| w.records.len());
        if workspace_len >= self.limits.per_workspace {
            records.evict_oldest_of(&record.workspace_id);
        }
        while records.order.len() >= self.limits.total {
            records.evict_oldest();
        }
        let seq = records.next;
        records.next += 1;
        records.order.insert(seq, record.workspace_id.clone());
        let workspace = records
            .by_workspace
            .entry(record.workspace_id.clone())
            .or_default();
        workspace.order.insert(seq, record.conversation_id.clone());
        workspace
            .records
            .insert(record.conversation_id.clone(), (seq, record));
        Ok(())
    }

    async fn get(
        &self,
        workspace_id: &str,
        conversation_id: &str,
    ) -> Result<Option<ConversationRecord>, StoreError> {
        let records = self.records.read().map_err(poisoned)?;
        Ok(records
            .by_workspace
            .get(workspace_id)
            .and_then(|w| w.records.get(conversation_id))
            .map(|(_, r)| r.clone()))
    }

    async fn list(
        &self,
        workspace_id: &str,
        owner: &str,
    ) -> Result<Vec<ConversationRecord>, StoreError> {
        let records = self.records.read().map_err(poisoned)?;
        let mut found: Vec<_> = records
            .by_workspace
            .get(workspace_id)
            .into_iter()
            .flat_map(|w| w.records.values())
            .filter(|(_, r)| r.owner == owner)
            .map(|(_, r)| r.clone())
            .collect();
        found.sort_by_key(|r| std::cmp::Reverse(r.created_at));
        Ok(found)
    }

    fn held(&self) -> Option<usize> {
        Some(self.len())
    }
}

#[cfg(test)]
mod contract {
    crate::conversation_store_contract_tests!(super::MemoryConversationStore::new());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(workspace_id: &str, id: usize) -> ConversationRecord {
        ConversationRecord {
            conversation_id: format!("c{id}"),
            workspace_id: workspace_id.to_owned(),
            owner: "usr_a".to_owned(),
            title: None,
            agent_id: "helper".to_owned(),
            created_at: i64::try_from(id).unwrap(),
        }
    }

    async fn known(store: &MemoryConversationStore, workspace_id: &str, id: usize) -> bool {
        store
            .get(workspace_id, &format!("c{id}"))
            .await
            .unwrap()
            .is_some()
    }

    /// One workspace at its cap forgets its own oldest record, never another workspace's.
    #[tokio::test]
    async fn a_workspace_at_its_cap_forgets_its_own_oldest() {
        let store = MemoryConversationStore::with_limits(Limits {
            total: 100,
            per_workspace: 3,
        });
        store.record(record("quiet", 0)).await.unwrap();
        for id in 1..=5 {
            store.record(record("busy", id)).await.unwrap();
        }
        assert!(known(&store, "quiet", 0).await);
        assert!(!known(&store, "busy", 1).await && !known(&store, "busy", 2).await);
        assert!(known(&store, "busy", 3).await && known(&store, "busy", 5).await);
        assert_eq!(store.len(), 4);
    }

    /// Many workspaces under their own cap are still bounded together: past the global cap the
    /// oldest record of the store goes, whichever workspace holds it, and a workspace whose last
    /// record went is forgotten too.
    #[tokio::test]
    async fn the_store_is_bounded_over_all_workspaces() {
        let store = MemoryConversationStore::with_limits(Limits {
            total: 10,
            per_workspace: 5,
        });
        for id in 0..1000 {
            store.record(record(&format!("w{id}"), id)).await.unwrap();
            assert!(store.len() <= 10);
        }
        assert_eq!(store.len(), 10);
        assert!(!known(&store, "w989", 989).await);
        assert!((990..1000).all(|id| {
            store
                .records
                .read()
                .unwrap()
                .by_workspace
                .contains_key(&format!("w{id}"))
        }));
        assert_eq!(store.records.read().unwrap().by_workspace.len(), 10);
        assert!(known(&store, "w999", 999).await);
    }

    /// Recording a known conversation again neither moves it nor evicts anything.
    #[tokio::test]
    async fn recording_again_at_the_cap_evicts_nothing() {
        let store = MemoryConversationStore::with_limits(Limits {
            total: 3,
            per_workspace: 3,
        });
        for id in 0..3 {
            store.record(record("w", id)).await.unwrap();
        }
        store.record(record("w", 0)).await.unwrap();
        assert!((0..3).all(|id| {
            store.records.read().unwrap().by_workspace["w"]
                .records
                .contains_key(&format!("c{id}"))
        }));
        store.record(record("w", 3)).await.unwrap();
        assert!(
            !known(&store, "w", 0).await,
            "the oldest goes, not the one recorded again"
        );
    }
}
