//! The contract every [`TokenStore`] passes, one case per function. Stamp it for a backend with
//! [`token_store_contract_tests!`](crate::token_store_contract_tests): memory in
//! [`super::memory`]'s unit tests, Redis in `tests/all/shared_state.rs`. The live-token cap, a
//! rule of the caller's, has its own check over any backend: `auth::tokens::testing`.
//!
//! Ids are fresh per case, so a case can run against a store that holds other data. Every time
//! is relative to the fixed [`NOW`]: expiry is judged by the caller's clock only, so the cases
//! cross it without sleeping.

use super::{TokenOrigin, TokenRecord, TokenStore};
use crate::permissions::PermissionSet;

/// The `now` (epoch seconds) of every case: a fixed instant, not the wall clock.
pub const NOW: i64 = 1_800_000_000;

/// A fresh id (`tok_` and 32 hex digits).
#[must_use]
pub fn fresh_id() -> String {
    format!("tok_{}", uuid::Uuid::new_v4().simple())
}

/// A record for `user_id` in `workspace_id`, issued `age` seconds before [`NOW`], expiring
/// `ttl` seconds after issue.
#[must_use]
pub fn record(workspace_id: &str, user_id: &str, age: i64, ttl: i64) -> TokenRecord {
    let issued_at = NOW - age;
    TokenRecord {
        token_id: fresh_id(),
        user_id: user_id.to_owned(),
        username: "contract".to_owned(),
        email: Some("contract@example.com".to_owned()),
        workspace_id: workspace_id.to_owned(),
        permissions: PermissionSet::DEFAULT,
        sealed_key: crate::crypto::SealedKey::from_bytes(vec![1, 24, 0xAB, 0xCD]),
        issued_at,
        expires_at: issued_at + ttl,
        revoked_at: None,
        origin: TokenOrigin::Login,
        chain_expires_at: Some(issued_at + 24 * ttl),
    }
}

/// A token's origin (an OAuth grant's id and client) and the end of its chain read back as
/// written: revoking a grant's token must find the grant, and a refresh the chain's end.
pub async fn the_origin_and_the_end_of_the_chain_read_back(store: &dyn TokenStore) {
    let mut oauth = record(&fresh_id(), &fresh_id(), 30, 3600);
    oauth.origin = TokenOrigin::OAuth {
        grant_id: "fam_contract".to_owned(),
        client_id: "cli_contract".to_owned(),
    };
    oauth.chain_expires_at = Some(NOW + 90 * 86_400);
    store.save(oauth.clone(), NOW).await.unwrap();
    let read = store.get(&oauth.token_id, NOW).await.unwrap().unwrap();
    assert_eq!(read.origin, oauth.origin);
    assert_eq!(read.chain_end(), NOW + 90 * 86_400);
    let listed = store
        .list_for_user(&oauth.workspace_id, &oauth.user_id, NOW)
        .await
        .unwrap();
    assert_eq!(listed[0].origin, oauth.origin);
}

/// save / get round trip, and unknown ids.
pub async fn a_saved_record_reads_back(store: &dyn TokenStore) {
    let a = record(&fresh_id(), &fresh_id(), 30, 3600);
    store.save(a.clone(), NOW).await.unwrap();
    assert_eq!(
        store.get(&a.token_id, NOW).await.unwrap().as_deref(),
        Some(&a)
    );
    assert_eq!(store.get(&fresh_id(), NOW).await.unwrap(), None);
}

/// Expired records are invisible and never count, whether they were saved expired or expired
/// later (by the caller's `now`, not the backend's clock).
pub async fn expired_records_are_invisible(store: &dyn TokenStore) {
    let (ws, user) = (fresh_id(), fresh_id());
    let expired = record(&ws, &user, 7200, 3600);
    store.save(expired.clone(), NOW).await.unwrap();
    assert_eq!(store.get(&expired.token_id, NOW).await.unwrap(), None);
    assert!(!store.revoke(&expired.token_id, NOW).await.unwrap());

    let short = record(&ws, &user, 0, 60);
    store.save(short.clone(), NOW).await.unwrap();
    assert!(
        store
            .get(&short.token_id, NOW + 59)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store
            .count_live_for_user(&ws, &user, NOW + 59)
            .await
            .unwrap(),
        1
    );
    let later = NOW + 60;
    assert_eq!(
        store.get(&short.token_id, later).await.unwrap(),
        None,
        "at expires_at"
    );
    assert!(
        store
            .list_for_user(&ws, &user, later)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.count_live_for_user(&ws, &user, later).await.unwrap(),
        0
    );
    assert!(!store.revoke(&short.token_id, later).await.unwrap());
}

/// Listing: newest first, scoped to the user and the workspace; all of them live.
pub async fn list_for_user_is_scoped_and_newest_first(store: &dyn TokenStore) {
    let (ws, user) = (fresh_id(), fresh_id());
    let a = record(&ws, &user, 30, 3600);
    let b = record(&ws, &user, 10, 3600);
    for r in [
        a.clone(),
        b.clone(),
        record(&ws, &fresh_id(), 0, 3600),
        record(&fresh_id(), &user, 0, 3600),
    ] {
        store.save(r, NOW).await.unwrap();
    }
    let listed: Vec<String> = store
        .list_for_user(&ws, &user, NOW)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.token_id)
        .collect();
    assert_eq!(listed, [b.token_id, a.token_id]);
    assert_eq!(store.count_live_for_user(&ws, &user, NOW).await.unwrap(), 2);
}

/// Revocation: idempotent, keeps the first time, revoked records stay readable (so reuse of a
/// revoked token is told apart from an unknown one) and stop counting as live.
pub async fn revocation_keeps_the_first_time(store: &dyn TokenStore) {
    let (ws, user) = (fresh_id(), fresh_id());
    let a = record(&ws, &user, 30, 3600);
    store.save(a.clone(), NOW).await.unwrap();
    store.save(record(&ws, &user, 10, 3600), NOW).await.unwrap();
    assert!(store.revoke(&a.token_id, NOW).await.unwrap());
    assert!(store.revoke(&a.token_id, NOW + 5).await.unwrap());
    let got = store
        .get(&a.token_id, NOW + 5)
        .await
        .unwrap()
        .expect("revoked records stay readable");
    assert_eq!(got.revoked_at, Some(NOW));
    assert!(!store.revoke(&fresh_id(), NOW).await.unwrap());
    assert_eq!(store.count_live_for_user(&ws, &user, NOW).await.unwrap(), 1);
    assert_eq!(store.list_for_user(&ws, &user, NOW).await.unwrap().len(), 2);
}

/// No save undoes a revocation.
pub async fn a_revocation_is_final(store: &dyn TokenStore) {
    let (ws, user) = (fresh_id(), fresh_id());
    let a = record(&ws, &user, 30, 3600);
    store.save(a.clone(), NOW).await.unwrap();
    assert!(store.revoke(&a.token_id, NOW).await.unwrap());
    store.save(a.clone(), NOW + 1).await.unwrap();
    let got = store.get(&a.token_id, NOW + 1).await.unwrap().unwrap();
    assert_eq!(got.revoked_at, Some(NOW), "a revocation is final");
    assert_eq!(store.count_live_for_user(&ws, &user, NOW).await.unwrap(), 0);
}

/// Saving again replaces the record.
pub async fn saving_again_replaces(store: &dyn TokenStore) {
    let b = record(&fresh_id(), &fresh_id(), 10, 3600);
    store.save(b.clone(), NOW).await.unwrap();
    let mut b2 = b.clone();
    b2.username = "renamed".to_owned();
    store.save(b2.clone(), NOW).await.unwrap();
    assert_eq!(
        store.get(&b.token_id, NOW).await.unwrap().as_deref(),
        Some(&b2)
    );
}

/// One `#[tokio::test]` per case of this suite, for the [`TokenStore`] the argument builds
/// (see [`store_contract_tests!`](crate::store_contract_tests) for the forms it takes).
#[macro_export]
macro_rules! token_store_contract_tests {
    ($($backend:tt)+) => {
        $crate::store_contract_tests!(
            [$crate::store::tokens::contract]
            [
                a_saved_record_reads_back,
                expired_records_are_invisible,
                list_for_user_is_scoped_and_newest_first,
                revocation_keeps_the_first_time,
                a_revocation_is_final,
                saving_again_replaces,
                the_origin_and_the_end_of_the_chain_read_back,
            ]
            $($backend)+
        );
    };
}
