//! Contract suites of the store traits defined here. Not `#[cfg(test)]`, so the Redis backend's
//! integration tests run the same suites against a live server.

pub use super::counters::testing::counter_store_contract;
use super::{ConversationRecord, ConversationStore};

fn record(workspace_id: &str, id: &str, owner: &str, created_at: i64) -> ConversationRecord {
    ConversationRecord {
        conversation_id: id.to_owned(),
        workspace_id: workspace_id.to_owned(),
        owner: owner.to_owned(),
        title: Some(format!("title of {id}")),
        agent_id: "helper".to_owned(),
        created_at,
    }
}

/// Checks ownership: the first owner stays, records are scoped to their workspace, `list`
/// returns one owner's conversations newest first. Ids are fresh per run, so a shared backend
/// can run it alongside other data.
///
/// # Panics
/// On any departure from the contract.
pub async fn conversation_store_contract(store: &dyn ConversationStore) {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let ws = format!("ws-{run}");
    let other_ws = format!("ws2-{run}");
    let (alice, bob) = (format!("usr_a{run}"), format!("usr_b{run}"));

    assert_eq!(store.get(&ws, "nothing").await.unwrap(), None);
    assert!(store.list(&ws, &alice).await.unwrap().is_empty());

    let first = record(&ws, "c1", &alice, 1_000);
    store.record(first.clone()).await.unwrap();
    assert_eq!(store.get(&ws, "c1").await.unwrap(), Some(first.clone()));

    // Recording the same id again (by someone else) keeps the first owner.
    store.record(record(&ws, "c1", &bob, 2_000)).await.unwrap();
    assert_eq!(store.get(&ws, "c1").await.unwrap(), Some(first.clone()));
    assert!(store.list(&ws, &bob).await.unwrap().is_empty());

    // Workspaces are separate: the same id elsewhere is another conversation.
    assert_eq!(store.get(&other_ws, "c1").await.unwrap(), None);
    let elsewhere = record(&other_ws, "c1", &bob, 1_500);
    store.record(elsewhere.clone()).await.unwrap();
    assert_eq!(store.get(&other_ws, "c1").await.unwrap(), Some(elsewhere));
    assert_eq!(store.get(&ws, "c1").await.unwrap(), Some(first.clone()));

    // Listing: the owner's own, newest first; ids with separators stay distinct.
    let newer = record(&ws, "c:2/x", &alice, 3_000);
    let bobs = record(&ws, "c3", &bob, 4_000);
    store.record(newer.clone()).await.unwrap();
    store.record(bobs.clone()).await.unwrap();
    assert_eq!(
        store.list(&ws, &alice).await.unwrap(),
        vec![newer, first.clone()]
    );
    assert_eq!(store.list(&ws, &bob).await.unwrap(), vec![bobs]);
    assert!(store.list(&other_ws, &alice).await.unwrap().is_empty());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryConversationStore;

    #[tokio::test]
    async fn memory_conversation_store_passes_the_contract() {
        conversation_store_contract(&MemoryConversationStore::new()).await;
    }
}
