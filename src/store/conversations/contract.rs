//! The contract every [`ConversationStore`] passes, one case per function. Stamp it for a
//! backend with [`conversation_store_contract_tests!`](crate::conversation_store_contract_tests):
//! memory in [`super::memory`]'s unit tests, Redis in `tests/all/shared_state.rs`.
//!
//! Workspaces and owners are fresh per case, so a shared backend can run the cases alongside
//! other data.

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

/// Fresh names for one case: two workspaces and two owners.
struct Run {
    ws: String,
    other_ws: String,
    alice: String,
    bob: String,
}

fn run() -> Run {
    let run = uuid::Uuid::new_v4().simple().to_string();
    Run {
        ws: format!("ws-{run}"),
        other_ws: format!("ws2-{run}"),
        alice: format!("usr_a{run}"),
        bob: format!("usr_b{run}"),
    }
}

/// Nothing is known before it is recorded; a recorded conversation reads back whole.
pub async fn a_recorded_conversation_reads_back(store: &dyn ConversationStore) {
    let Run { ws, alice, .. } = run();
    assert_eq!(store.get(&ws, "nothing").await.unwrap(), None);
    assert!(store.list(&ws, &alice).await.unwrap().is_empty());
    let first = record(&ws, "c1", &alice, 1_000);
    store.record(first.clone()).await.unwrap();
    assert_eq!(store.get(&ws, "c1").await.unwrap(), Some(first));
}

/// Recording the same id again (by someone else) keeps the first owner.
pub async fn the_first_owner_stays(store: &dyn ConversationStore) {
    let Run { ws, alice, bob, .. } = run();
    let first = record(&ws, "c1", &alice, 1_000);
    store.record(first.clone()).await.unwrap();
    store.record(record(&ws, "c1", &bob, 2_000)).await.unwrap();
    assert_eq!(store.get(&ws, "c1").await.unwrap(), Some(first));
    assert!(store.list(&ws, &bob).await.unwrap().is_empty());
}

/// Workspaces are separate: the same id elsewhere is another conversation.
pub async fn workspaces_are_separate(store: &dyn ConversationStore) {
    let Run {
        ws,
        other_ws,
        alice,
        bob,
    } = run();
    let first = record(&ws, "c1", &alice, 1_000);
    store.record(first.clone()).await.unwrap();
    assert_eq!(store.get(&other_ws, "c1").await.unwrap(), None);
    let elsewhere = record(&other_ws, "c1", &bob, 1_500);
    store.record(elsewhere.clone()).await.unwrap();
    assert_eq!(store.get(&other_ws, "c1").await.unwrap(), Some(elsewhere));
    assert_eq!(store.get(&ws, "c1").await.unwrap(), Some(first));
    assert!(store.list(&other_ws, &alice).await.unwrap().is_empty());
}

/// Listing: the owner's own, newest first; ids with separators stay distinct.
pub async fn list_is_the_owners_newest_first(store: &dyn ConversationStore) {
    let Run { ws, alice, bob, .. } = run();
    let first = record(&ws, "c1", &alice, 1_000);
    let newer = record(&ws, "c:2/x", &alice, 3_000);
    let bobs = record(&ws, "c3", &bob, 4_000);
    for r in [&first, &newer, &bobs] {
        store.record(r.clone()).await.unwrap();
    }
    assert_eq!(store.list(&ws, &alice).await.unwrap(), vec![newer, first]);
    assert_eq!(store.list(&ws, &bob).await.unwrap(), vec![bobs]);
}

/// One `#[tokio::test]` per case of this suite, for the [`ConversationStore`] the argument
/// builds (see [`store_contract_tests!`](crate::store_contract_tests) for the forms it takes).
#[macro_export]
macro_rules! conversation_store_contract_tests {
    ($($backend:tt)+) => {
        $crate::store_contract_tests!(
            [$crate::store::conversations::contract]
            [
                a_recorded_conversation_reads_back,
                the_first_owner_stays,
                workspaces_are_separate,
                list_is_the_owners_newest_first,
            ]
            $($backend)+
        );
    };
}
