//! The contract every [`TokenStore`] backend passes. Not `#[cfg(test)]`, so a backend in another
//! module or crate (Redis) runs the same suite against a live server.

use std::time::SystemTime;

use super::{MAX_LIVE_TOKENS_PER_USER, TokenRecord, TokenStore, new_token_id, save_capped};
use crate::auth::PermissionSet;

/// A record for `user_id` in `workspace_id`, issued `age` seconds ago, expiring `ttl` seconds
/// after issue.
pub fn record(workspace_id: &str, user_id: &str, age: i64, ttl: i64) -> TokenRecord {
    let issued_at = wall_clock() - age;
    TokenRecord {
        token_id: new_token_id(),
        user_id: user_id.to_owned(),
        username: "contract".to_owned(),
        email: Some("contract@example.com".to_owned()),
        workspace_id: workspace_id.to_owned(),
        permissions: PermissionSet::DEFAULT,
        sealed_key: vec![1, 24, 0xAB, 0xCD],
        issued_at,
        expires_at: issued_at + ttl,
        revoked_at: None,
    }
}

fn wall_clock() -> i64 {
    crate::state::epoch_secs(SystemTime::now())
}

/// Runs the whole contract; panics on the first violation. Uses fresh random ids, so it can run
/// against a store that holds other data.
pub async fn token_store_contract(store: &dyn TokenStore) {
    let ws = new_token_id();
    let user = new_token_id();
    let now = wall_clock();

    // save / get round trip, and unknown ids.
    let a = record(&ws, &user, 30, 3600);
    store.save(a.clone()).await.unwrap();
    assert_eq!(store.get(&a.token_id).await.unwrap().as_deref(), Some(&a));
    assert_eq!(store.get("tok_unknown").await.unwrap(), None);

    // Expired records are invisible and never count.
    let expired = record(&ws, &user, 7200, 3600);
    store.save(expired.clone()).await.unwrap();
    assert_eq!(store.get(&expired.token_id).await.unwrap(), None);
    assert!(!store.revoke(&expired.token_id, now).await.unwrap());

    // Listing: newest first, scoped to the user and the workspace.
    let b = record(&ws, &user, 10, 3600);
    store.save(b.clone()).await.unwrap();
    store
        .save(record(&ws, "usr_someone_else", 0, 3600))
        .await
        .unwrap();
    store
        .save(record("other-ws", &user, 0, 3600))
        .await
        .unwrap();
    let listed: Vec<String> = store
        .list_for_user(&ws, &user)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.token_id)
        .collect();
    assert_eq!(listed, [b.token_id.clone(), a.token_id.clone()]);
    assert_eq!(store.count_live_for_user(&ws, &user).await.unwrap(), 2);

    // Revocation: idempotent, keeps the first time, revoked records stay readable.
    assert!(store.revoke(&a.token_id, now).await.unwrap());
    assert!(store.revoke(&a.token_id, now + 5).await.unwrap());
    let got = store
        .get(&a.token_id)
        .await
        .unwrap()
        .expect("revoked records stay readable");
    assert_eq!(got.revoked_at, Some(now));
    assert!(!store.revoke("tok_unknown", now).await.unwrap());
    // No save undoes a revocation.
    store.save(a.clone()).await.unwrap();
    let got = store.get(&a.token_id).await.unwrap().unwrap();
    assert_eq!(got.revoked_at, Some(now), "a revocation is final");
    assert_eq!(store.count_live_for_user(&ws, &user).await.unwrap(), 1);
    assert_eq!(store.list_for_user(&ws, &user).await.unwrap().len(), 2);

    // Saving again replaces.
    let mut b2 = b.clone();
    b2.username = "renamed".to_owned();
    store.save(b2.clone()).await.unwrap();
    assert_eq!(store.get(&b.token_id).await.unwrap().as_deref(), Some(&b2));

    // The live-token cap (K13): the oldest live tokens go.
    let capped_user = new_token_id();
    let mut ids = Vec::new();
    for i in 0..MAX_LIVE_TOKENS_PER_USER + 2 {
        let r = record(&ws, &capped_user, 100 - i64::try_from(i).unwrap(), 3600);
        ids.push(r.token_id.clone());
        save_capped(store, r, MAX_LIVE_TOKENS_PER_USER, now)
            .await
            .unwrap();
    }
    assert_eq!(
        store.count_live_for_user(&ws, &capped_user).await.unwrap(),
        MAX_LIVE_TOKENS_PER_USER
    );
    for old in &ids[..2] {
        let r = store.get(old).await.unwrap().unwrap();
        assert_eq!(
            r.revoked_at,
            Some(now),
            "the oldest tokens are revoked first"
        );
    }
    assert!(
        store
            .get(ids.last().unwrap())
            .await
            .unwrap()
            .unwrap()
            .is_live(now)
    );
}
