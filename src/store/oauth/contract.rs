//! The contract every [`OAuthStore`] passes, one case per function. Stamp it for a backend with
//! [`oauth_store_contract_tests!`](crate::oauth_store_contract_tests): memory in
//! [`super::memory`]'s unit tests, Redis in `tests/all/shared_state.rs`. With the `test-support`
//! feature the integration tests run it against a live Redis; never in a release build.
//!
//! Every key is fresh per case, so a case can run against a store holding other data; `now` is
//! fixed, since every expiry is judged by the caller's clock. The one exception is the cap of
//! unused clients: stamp the suite with a store built with [`UNUSED_CAPACITY`] and holding no
//! other unused client (a fresh one per case, as both stamps do), so the case can tell which
//! client is the oldest.

use super::{
    CodeRecord, Grant, GrantSummary, Issued, OAuthClient, OAuthStore, PendingAuthorization,
    Redeemed, RefreshRecord, Rotated, secret_hash,
};

/// The fixed `now` of every case (milliseconds).
const NOW: i64 = 1_700_000_000_000;

/// The cap of unused clients the stamped stores are built with.
pub const UNUSED_CAPACITY: usize = 3;

fn fresh(name: &str) -> String {
    format!("contract-{name}-{}", uuid::Uuid::new_v4().simple())
}

fn grant(family_id: &str) -> Grant {
    Grant {
        family_id: family_id.to_owned(),
        client_id: fresh("client"),
        user_id: fresh("usr"),
        username: "ada".into(),
        email: None,
        workspace_id: "ws1".into(),
        permissions: vec!["read:agents".into()],
        resource: "http://mcp.test/mcp".into(),
        sealed_key: crate::crypto::SealedKey::from_bytes(b"sealed".to_vec()),
        created_at_ms: Some(1_000),
        expires_at_ms: Some(1_000 + 90 * 86_400_000),
    }
}

fn client() -> OAuthClient {
    OAuthClient {
        client_id: fresh("client"),
        client_name: Some("Claude".into()),
        redirect_uris: vec!["https://claude.ai/api/mcp/auth_callback".into()],
        metadata_document: false,
        created_at_ms: NOW,
        expires_at_ms: NOW + 60_000,
        used: false,
    }
}

/// An unused client registered at `created_at_ms`.
fn client_at(created_at_ms: i64) -> OAuthClient {
    OAuthClient {
        created_at_ms,
        expires_at_ms: created_at_ms + 86_400_000,
        ..client()
    }
}

async fn present(store: &dyn OAuthStore, client: &OAuthClient) -> bool {
    store
        .get_client(&client.client_id, NOW)
        .await
        .unwrap()
        .is_some()
}

/// Clients: round trip, gone at their expiry, unknown ones absent.
pub async fn a_client_reads_back_until_it_expires(store: &dyn OAuthStore) {
    let client = client();
    store.put_client(&client, NOW).await.unwrap();
    assert_eq!(
        store.get_client(&client.client_id, NOW).await.unwrap(),
        Some(client.clone())
    );
    assert_eq!(
        store
            .get_client(&client.client_id, NOW + 60_000)
            .await
            .unwrap(),
        None,
        "an expired client is gone"
    );
    assert_eq!(store.get_client(&fresh("nobody"), NOW).await.unwrap(), None);
}

/// The cap of unused clients: one more evicts the oldest unused client (by registration
/// time, whatever the order of the puts) instead of being refused; used clients are never
/// evicted and do not count.
pub async fn past_the_cap_the_oldest_unused_client_is_evicted(store: &dyn OAuthStore) {
    let used = OAuthClient {
        used: true,
        ..client_at(NOW - 10_000)
    };
    store.put_client(&used, NOW).await.unwrap();
    let [a, b, c, d, e, f] = [1, 2, 3, 4, 5, 6].map(|i| client_at(NOW - 1_000 + i));
    for client in [&b, &a, &c] {
        store.put_client(client, NOW).await.unwrap();
    }
    assert!(present(store, &a).await && present(store, &b).await && present(store, &c).await);
    store.put_client(&d, NOW).await.expect("never refused");
    assert!(
        !present(store, &a).await,
        "the oldest unused client is evicted"
    );
    for client in [&b, &c, &d, &used] {
        assert!(present(store, client).await, "{}", client.client_id);
    }
    // Once used, a client leaves the count: the next eviction takes the oldest still unused.
    assert!(
        store
            .mark_client_used(&b.client_id, NOW + 1_000_000, NOW)
            .await
            .unwrap()
    );
    store.put_client(&e, NOW).await.unwrap();
    assert!(present(store, &c).await, "b no longer counts: room for e");
    store.put_client(&f, NOW).await.expect("never refused");
    assert!(
        !present(store, &c).await,
        "c is now the oldest unused client"
    );
    for client in [&b, &d, &e, &f, &used] {
        assert!(present(store, client).await, "{}", client.client_id);
    }
}

/// Marking a client used gives it its new (long) life; an unknown or expired client is not
/// resurrected.
pub async fn a_used_client_takes_its_long_life(store: &dyn OAuthStore) {
    let unused = client();
    store.put_client(&unused, NOW).await.unwrap();
    assert!(
        store
            .mark_client_used(&unused.client_id, NOW + 3_600_000, NOW)
            .await
            .unwrap()
    );
    let read = store
        .get_client(&unused.client_id, NOW + 60_000)
        .await
        .unwrap()
        .expect("lives past its first end");
    assert!(read.used);
    assert_eq!(read.expires_at_ms, NOW + 3_600_000);
    assert_eq!(
        store
            .get_client(&unused.client_id, NOW + 3_600_000)
            .await
            .unwrap(),
        None
    );
    assert!(
        !store
            .mark_client_used(&fresh("nobody"), NOW + 3_600_000, NOW)
            .await
            .unwrap()
    );
    let expired = client();
    store.put_client(&expired, NOW).await.unwrap();
    assert!(
        !store
            .mark_client_used(&expired.client_id, NOW + 3_600_000, NOW + 60_000)
            .await
            .unwrap(),
        "an expired client stays gone"
    );
    assert_eq!(
        store.get_client(&expired.client_id, NOW).await.unwrap(),
        Some(expired)
    );
}

/// Pending consents: handed out once, not after expiry.
pub async fn a_pending_consent_is_taken_once(store: &dyn OAuthStore) {
    let client = client();
    let pending = PendingAuthorization {
        client_id: client.client_id.clone(),
        redirect_uri: client.redirect_uris[0].clone(),
        state: Some("st".into()),
        code_challenge: "challenge".into(),
        scopes: vec!["read:agents".into()],
        resource: "http://mcp.test/mcp".into(),
        cookie_hash: secret_hash("cookie"),
        expires_at_ms: NOW + 600_000,
    };
    let (p1, p2) = (secret_hash(&fresh("p1")), secret_hash(&fresh("p2")));
    store.put_pending(&p1, &pending, NOW).await.unwrap();
    store.put_pending(&p2, &pending, NOW).await.unwrap();
    assert_eq!(
        store.take_pending(&p1, NOW).await.unwrap(),
        Some(pending.clone())
    );
    assert_eq!(store.take_pending(&p1, NOW).await.unwrap(), None, "once");
    assert_eq!(store.take_pending(&p2, NOW + 600_000).await.unwrap(), None);
}

/// States: claimed once per client.
pub async fn a_state_is_claimed_once_per_client(store: &dyn OAuthStore) {
    let (client_id, state) = (fresh("client"), fresh("state"));
    assert!(!store.state_claimed(&client_id, &state, NOW).await.unwrap());
    assert!(
        store
            .claim_state(&client_id, &state, NOW + 600_000, NOW)
            .await
            .unwrap()
    );
    assert!(
        !store
            .claim_state(&client_id, &state, NOW + 600_000, NOW)
            .await
            .unwrap()
    );
    assert!(store.state_claimed(&client_id, &state, NOW).await.unwrap());
    assert!(
        !store
            .state_claimed(&fresh("other"), &state, NOW)
            .await
            .unwrap(),
        "per client"
    );
}

/// Codes: fresh once, then a replay that names what the first use issued.
pub async fn a_code_is_redeemed_once_then_replayed(store: &dyn OAuthStore) {
    let code = CodeRecord {
        grant: grant(&fresh("fam")),
        redirect_uri: "http://127.0.0.1:9/cb".into(),
        code_challenge: "challenge".into(),
        expires_at_ms: NOW + 60_000,
    };
    let code_hash = secret_hash(&fresh("code"));
    store
        .put_code(&code_hash, &code, NOW + 600_000, NOW)
        .await
        .unwrap();
    let first = Issued {
        token_id: "tok_first".into(),
    };
    let second = Issued {
        token_id: "tok_second".into(),
    };
    assert_eq!(
        store.redeem_code(&code_hash, &first, NOW).await.unwrap(),
        Redeemed::Fresh(code.clone())
    );
    assert_eq!(
        store.redeem_code(&code_hash, &second, NOW).await.unwrap(),
        Redeemed::Replayed(code, first.clone())
    );
    assert_eq!(
        store
            .redeem_code(&secret_hash(&fresh("nope")), &first, NOW)
            .await
            .unwrap(),
        Redeemed::Unknown
    );
}

/// Refresh tokens: rotate once; the spent one is a reuse that stores nothing; unknown and
/// expired ones are told apart from live ones.
pub async fn a_refresh_token_rotates_once(store: &dyn OAuthStore) {
    let r1 = RefreshRecord {
        grant: grant(&fresh("fam")),
        expires_at_ms: NOW + 3_600_000,
    };
    let (h1, h2, h3) = (
        secret_hash(&fresh("r1")),
        secret_hash(&fresh("r2")),
        secret_hash(&fresh("r3")),
    );
    store.put_refresh(&h1, &r1, NOW).await.unwrap();
    assert_eq!(store.get_refresh(&h1, NOW).await.unwrap(), Some(r1.clone()));
    assert_eq!(
        store.rotate_refresh(&h1, &h2, &r1, NOW).await.unwrap(),
        Rotated::Rotated(r1.clone())
    );
    assert_eq!(
        store.rotate_refresh(&h1, &h3, &r1, NOW).await.unwrap(),
        Rotated::Reused(r1.clone())
    );
    assert_eq!(
        store.get_refresh(&h3, NOW).await.unwrap(),
        None,
        "nothing stored"
    );
    assert_eq!(
        store
            .rotate_refresh(&secret_hash(&fresh("nope")), &h3, &r1, NOW)
            .await
            .unwrap(),
        Rotated::Unknown
    );
    assert_eq!(
        store.get_refresh(&h1, NOW + 3_600_000).await.unwrap(),
        None,
        "expired"
    );
}

/// Revoking a family returns its access tokens and stops its refresh tokens, the rotated-to
/// one included; no new token joins it; other families are untouched.
pub async fn revoking_a_family_stops_all_its_tokens(store: &dyn OAuthStore) {
    let family = fresh("fam");
    let r1 = RefreshRecord {
        grant: grant(&family),
        expires_at_ms: NOW + 3_600_000,
    };
    let (h1, h2, h3) = (
        secret_hash(&fresh("r1")),
        secret_hash(&fresh("r2")),
        secret_hash(&fresh("r3")),
    );
    store.put_refresh(&h1, &r1, NOW).await.unwrap();
    store.rotate_refresh(&h1, &h2, &r1, NOW).await.unwrap();
    store
        .add_family_token(&family, "tok_a", NOW + 3_600_000, NOW)
        .await
        .unwrap();
    store
        .add_family_token(&family, "tok_b", NOW + 3_600_000, NOW)
        .await
        .unwrap();
    assert!(!store.family_revoked(&family, NOW).await.unwrap());
    let mut revoked = store
        .revoke_family(&family, NOW + 3_600_000, NOW)
        .await
        .unwrap();
    revoked.sort();
    assert_eq!(revoked, ["tok_a", "tok_b"]);
    assert!(store.family_revoked(&family, NOW).await.unwrap());
    assert_eq!(
        store.rotate_refresh(&h2, &h3, &r1, NOW).await.unwrap(),
        Rotated::Reused(r1.clone()),
        "the rotated-to token dies with its family"
    );
    assert!(
        store.put_refresh(&h3, &r1, NOW).await.is_err(),
        "no new token in a revoked family"
    );
    let other = fresh("fam");
    assert!(!store.family_revoked(&other, NOW).await.unwrap());
    assert!(
        store
            .revoke_family(&other, NOW + 1_000, NOW)
            .await
            .unwrap()
            .is_empty()
    );
}

/// One `#[tokio::test]` per case of this suite, for the [`OAuthStore`] the argument builds
/// (see [`store_contract_tests!`](crate::store_contract_tests) for the forms it takes).
/// A person's grants: listed newest use first, one entry per grant (a refresh replaces it),
/// scoped to the person, gone once revoked or expired.
pub async fn a_persons_grants_are_listed_until_revoked_or_expired(store: &dyn OAuthStore) {
    let (ws, user) = (fresh("ws"), fresh("usr"));
    let summary = |grant_id: &str, used: i64, until: i64| GrantSummary {
        grant_id: grant_id.to_owned(),
        client_id: "client".into(),
        client_name: Some("Claude".into()),
        permissions: vec!["read:agents".into()],
        created_at_ms: 1_000,
        last_used_ms: used,
        expires_at_ms: until,
    };
    let (a, b) = (fresh("fam"), fresh("fam"));
    store
        .touch_grant(&ws, &user, &summary(&a, 2_000, 100_000), 2_000)
        .await
        .unwrap();
    store
        .touch_grant(&ws, &user, &summary(&b, 3_000, 50_000), 3_000)
        .await
        .unwrap();
    // A refresh of the first grant replaces its entry and puts it first.
    store
        .touch_grant(&ws, &user, &summary(&a, 4_000, 200_000), 4_000)
        .await
        .unwrap();
    let listed = store.list_grants(&ws, &user, 5_000).await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|g| g.grant_id.as_str()).collect();
    assert_eq!(ids, [a.as_str(), b.as_str()]);
    assert_eq!(listed[0].last_used_ms, 4_000);
    assert_eq!(listed[0].client_name.as_deref(), Some("Claude"));
    // Another person, or another workspace, sees none of them.
    assert!(
        store
            .list_grants(&ws, &fresh("usr"), 5_000)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_grants(&fresh("ws"), &user, 5_000)
            .await
            .unwrap()
            .is_empty()
    );
    // Revoked: gone. Expired: gone.
    store.revoke_family(&a, 300_000, 6_000).await.unwrap();
    let ids: Vec<String> = store
        .list_grants(&ws, &user, 6_000)
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.grant_id)
        .collect();
    assert_eq!(ids, [b]);
    assert!(
        store
            .list_grants(&ws, &user, 60_000)
            .await
            .unwrap()
            .is_empty()
    );
}

#[macro_export]
macro_rules! oauth_store_contract_tests {
    ($($backend:tt)+) => {
        $crate::store_contract_tests!(
            [$crate::store::oauth::contract]
            [
                a_client_reads_back_until_it_expires,
                past_the_cap_the_oldest_unused_client_is_evicted,
                a_used_client_takes_its_long_life,
                a_pending_consent_is_taken_once,
                a_state_is_claimed_once_per_client,
                a_code_is_redeemed_once_then_replayed,
                a_refresh_token_rotates_once,
                revoking_a_family_stops_all_its_tokens,
                a_persons_grants_are_listed_until_revoked_or_expired,
            ]
            $($backend)+
        );
    };
}
