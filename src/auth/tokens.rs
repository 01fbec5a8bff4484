//! Issuing token records: their ids ([`new_token_id`]), the sealing of the Dust key they hold
//! ([`KeyCipher`]), and the cap on live tokens per user ([`save_capped`]). The records and
//! their store are [`crate::store::tokens`] (what a JWT's `jti` stands for, revocation by `jti`,
//! K11: the key only ever stored sealed).
//!
//! The cap on live tokens per user (K13) is enforced by the caller through [`save_capped`], not
//! by the store: it keeps the store contract to plain storage, and the same rule then holds for
//! every backend. Across instances the count-then-revoke is not atomic; the worst case is a brief
//! overshoot of the cap by concurrent logins, never a lost record. [`testing::live_token_cap`]
//! checks the rule over any backend.

mod cipher;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;

pub use cipher::{KeyCipher, OpenError};

use crate::store::{
    StoreError,
    tokens::{TokenRecord, TokenStore},
};

/// Most live (unexpired, unrevoked) tokens one user may hold in one workspace. A login past it
/// revokes the user's oldest live tokens ([`save_capped`]), so a client that lost its token is
/// never locked out and the store stays bounded.
pub const MAX_LIVE_TOKENS_PER_USER: usize = 10;

/// Random bytes in a token id: 128 bits from the OS CSPRNG (ASVS 5.0 7.2.3).
pub const TOKEN_ID_BYTES: usize = 16;

/// A new token id: `tok_` and 22 URL-safe characters.
#[must_use]
pub fn new_token_id() -> String {
    format!("tok_{}", crate::crypto::random_token::<TOKEN_ID_BYTES>())
}

/// Saves `record`, then revokes the user's oldest live tokens beyond `cap` (normally
/// [`MAX_LIVE_TOKENS_PER_USER`]). Returns the ids it revoked, for the audit log.
///
/// # Errors
/// The store's, at the first that fails.
pub async fn save_capped(
    store: &dyn TokenStore,
    record: TokenRecord,
    cap: usize,
    now: i64,
) -> Result<Vec<String>, StoreError> {
    let (workspace_id, user_id, token_id) = (
        record.workspace_id.clone(),
        record.user_id.clone(),
        record.token_id.clone(),
    );
    store.save(record, now).await?;
    let live: Vec<TokenRecord> = store
        .list_for_user(&workspace_id, &user_id, now)
        .await?
        .into_iter()
        .filter(|r| r.is_live(now) && r.token_id != token_id)
        .collect();
    let mut revoked = Vec::new();
    // `live` is newest first; the new token counts as one of the `cap`.
    for old in live.iter().skip(cap.saturating_sub(1)) {
        if store.revoke(&old.token_id, now).await? {
            revoked.push(old.token_id.clone());
        }
    }
    Ok(revoked)
}

#[cfg(test)]
mod tests;

/// What [`revoke`] ended.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Revoked {
    /// Whether the token itself was revoked now (`false`: unknown, expired or already revoked).
    pub token: bool,
    /// The OAuth grant the token belonged to, if it did: revoked with every token it issued.
    pub grant: Option<String>,
    /// The other tokens of that grant revoked with it.
    pub grant_tokens: usize,
}

/// Revokes `record`'s token and, for an access token of an OAuth grant, the grant itself: its
/// refresh tokens stop working and every access token it issued is revoked. Whoever revokes a
/// token of a grant (its owner in the token list, a logout, `/oauth/revoke`, the hook that
/// revokes the tokens of a key Dust refused) means to end what the connector can do, and a
/// grant left alive would only issue a new token at its next refresh (M3).
///
/// `now` is epoch seconds; the revoked family is remembered for `remember_secs` (the refresh
/// tokens' lifetime), so that a refresh token presented later is known as revoked.
///
/// # Errors
///
/// A store failure; what was revoked before it stays revoked.
pub async fn revoke(
    tokens: &dyn TokenStore,
    oauth: &dyn crate::store::OAuthStore,
    record: &TokenRecord,
    now: i64,
    remember_secs: i64,
) -> Result<Revoked, StoreError> {
    let token = tokens.revoke(&record.token_id, now).await?;
    let crate::store::TokenOrigin::OAuth { grant_id, .. } = &record.origin else {
        return Ok(Revoked {
            token,
            ..Revoked::default()
        });
    };
    // The token itself is already revoked: what revoke_grant counts are the others.
    let grant_tokens = revoke_grant(tokens, oauth, grant_id, now, remember_secs)
        .await?
        .iter()
        .filter(|id| **id != record.token_id)
        .count();
    Ok(Revoked {
        token,
        grant: Some(grant_id.clone()),
        grant_tokens,
    })
}

/// Revokes the OAuth grant `grant_id`: its refresh tokens stop working (the family is
/// remembered as revoked for `remember_secs`, so that a late refresh is known as revoked) and
/// every access token it issued is revoked. Returns the ids of those that were still live.
///
/// # Errors
///
/// A store failure; what was revoked before it stays revoked.
pub async fn revoke_grant(
    tokens: &dyn TokenStore,
    oauth: &dyn crate::store::OAuthStore,
    grant_id: &str,
    now: i64,
    remember_secs: i64,
) -> Result<Vec<String>, StoreError> {
    let now_ms = now.saturating_mul(1000);
    let until_ms = now_ms.saturating_add(remember_secs.saturating_mul(1000));
    let mut ids = oauth.revoke_family(grant_id, until_ms, now_ms).await?;
    ids.sort();
    ids.dedup();
    let mut revoked = Vec::new();
    for id in ids {
        if tokens.revoke(&id, now).await? {
            revoked.push(id);
        }
    }
    Ok(revoked)
}
