//! The contract every [`SessionStore`] passes, one case per function. Stamp it for a backend
//! with [`session_store_contract_tests!`](crate::session_store_contract_tests): memory in
//! [`super::memory`]'s unit tests, Redis in `tests/all/shared_state.rs`. With the
//! `test-support` feature the integration tests run it against a live Redis; never in a release
//! build.
//!
//! Keys, users and workspaces are fresh per case, so a case can run against a store that holds
//! other data (and those that clean up leave none).

use super::{Inserted, SessionKey, SessionRecord, SessionStore};

/// The fixed `now` of every case (milliseconds): expiry is the caller's to judge.
const NOW: i64 = 1_700_000_000_000;

fn fresh(name: &str) -> String {
    format!("contract-{name}-{}", uuid::Uuid::new_v4().simple())
}

fn key(name: &str) -> SessionKey {
    SessionKey::from_hmac_hex(fresh(name))
}

/// A record for `user_id` in `workspace_id`, created at `created_at_ms`, one hour idle and
/// twelve hours absolute.
#[must_use]
pub fn record(workspace_id: &str, user_id: &str, created_at_ms: i64) -> SessionRecord {
    SessionRecord {
        token_id: fresh("tok"),
        user_id: user_id.to_owned(),
        workspace_id: workspace_id.to_owned(),
        created_at_ms,
        last_seen_ms: created_at_ms,
        expires_at_ms: created_at_ms + 3_600_000,
        absolute_expires_at_ms: created_at_ms + 43_200_000,
    }
}

/// insert / get round trip; unknown keys are absent and are not created by reads.
pub async fn an_inserted_session_reads_back(store: &dyn SessionStore) {
    let (a, ra) = (key("a"), record(&fresh("ws"), &fresh("usr"), NOW));
    assert_eq!(
        store.insert(&a, ra.clone(), NOW).await.unwrap(),
        Inserted::Stored
    );
    assert_eq!(store.get(&a).await.unwrap(), Some(ra));
    let unknown = key("unknown");
    assert_eq!(store.get(&unknown).await.unwrap(), None);
    assert_eq!(
        store.get(&unknown).await.unwrap(),
        None,
        "not created by a read"
    );
    store.remove(&a).await.unwrap();
}

/// touch updates activity, and never creates a session (S6: no revival after logout).
pub async fn touch_updates_activity_and_never_creates(store: &dyn SessionStore) {
    let (a, ra) = (key("a"), record(&fresh("ws"), &fresh("usr"), NOW));
    store.insert(&a, ra, NOW).await.unwrap();
    assert!(store.touch(&a, NOW + 10, NOW + 3_600_010).await.unwrap());
    let got = store.get(&a).await.unwrap().unwrap();
    assert_eq!(
        (got.last_seen_ms, got.expires_at_ms),
        (NOW + 10, NOW + 3_600_010)
    );
    assert_eq!(got.created_at_ms, NOW, "touch keeps the creation time");
    let unknown = key("unknown");
    assert!(!store.touch(&unknown, NOW, NOW + 1).await.unwrap());
    assert_eq!(store.get(&unknown).await.unwrap(), None);
    store.remove(&a).await.unwrap();
}

/// Listing: the user's sessions in the workspace, oldest first; `count` sees them all.
pub async fn list_for_user_is_scoped_and_oldest_first(store: &dyn SessionStore) {
    let (ws, user) = (fresh("ws"), fresh("usr"));
    let sessions = [
        (key("a"), record(&ws, &user, NOW)),
        (key("b"), record(&ws, &user, NOW + 5)),
        (key("older"), record(&ws, &user, NOW - 5)),
        (key("other"), record(&ws, &fresh("usr"), NOW)),
        (key("ows"), record(&fresh("ws"), &user, NOW)),
    ];
    for (k, r) in &sessions {
        assert_eq!(
            store.insert(k, r.clone(), NOW).await.unwrap(),
            Inserted::Stored
        );
    }
    let listed: Vec<SessionKey> = store
        .list_for_user(&ws, &user)
        .await
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let [(a, _), (b, _), (older, _), ..] = &sessions;
    assert_eq!(listed, [older.clone(), a.clone(), b.clone()]);
    assert!(store.count().await.unwrap() >= 5);
    for (k, _) in &sessions {
        assert!(store.remove(k).await.unwrap().is_some());
    }
    assert!(store.list_for_user(&ws, &user).await.unwrap().is_empty());
}

/// remove: returns the record once, then the session is gone for every operation.
pub async fn remove_returns_the_record_once(store: &dyn SessionStore) {
    let (ws, user) = (fresh("ws"), fresh("usr"));
    let (a, ra) = (key("a"), record(&ws, &user, NOW));
    let (b, rb) = (key("b"), record(&ws, &user, NOW + 5));
    store.insert(&a, ra.clone(), NOW).await.unwrap();
    store.insert(&b, rb, NOW).await.unwrap();
    assert_eq!(
        store.remove(&a).await.unwrap().map(|r| r.token_id),
        Some(ra.token_id)
    );
    assert_eq!(store.remove(&a).await.unwrap(), None);
    assert_eq!(store.get(&a).await.unwrap(), None);
    assert!(!store.touch(&a, NOW, NOW + 1).await.unwrap());
    assert_eq!(store.list_for_user(&ws, &user).await.unwrap().len(), 1);
    assert!(store.remove(&b).await.unwrap().is_some());
}

/// One `#[tokio::test]` per case of this suite, for the [`SessionStore`] the argument builds
/// (see [`store_contract_tests!`](crate::store_contract_tests) for the forms it takes).
#[macro_export]
macro_rules! session_store_contract_tests {
    ($($backend:tt)+) => {
        $crate::store_contract_tests!(
            [$crate::store::sessions::contract]
            [
                an_inserted_session_reads_back,
                touch_updates_activity_and_never_creates,
                list_for_user_is_scoped_and_oldest_first,
                remove_returns_the_record_once,
            ]
            $($backend)+
        );
    };
}
