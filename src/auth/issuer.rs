//! Issuing tokens and deciding their renewal: the token records behind logins, sessions and
//! OAuth grants, their JWTs, and the rules of a chain.
//!
//! Every token record is written here ([`Issuer::record`]): the Dust key sealed for it, its
//! origin, the end of its chain, and the cap of live tokens per user (K13: the oldest live
//! tokens are revoked, and returned for the audit log). [`Issuer::issue`] adds the signed JWT,
//! which never outlives the chain. [`renewal`] says whether a token may be renewed at
//! `/api/v1/auth/refresh` and until when: only a login's token, and only until
//! `TOKEN_MAX_LIFETIME` after the login (issue 18, M1 and M2). Revoking is
//! [`super::tokens::revoke`] and [`super::tokens::revoke_grant`]; resolving a presented token is
//! [`super::Resolver`]. The HTTP handlers parse requests and render these answers.

use std::time::SystemTime;

use super::{JwtIssuer, KeyCipher, Principal, TokenSubject, tokens};
use crate::store::{StoreError, TokenOrigin, TokenRecord, TokenStore, oauth::Grant};

/// What issuing needs: the token profile, the at-rest key and the records.
#[derive(Clone, Copy)]
pub struct Issuer<'a> {
    pub jwt: &'a JwtIssuer,
    pub cipher: &'a KeyCipher,
    pub tokens: &'a dyn TokenStore,
}

impl std::fmt::Debug for Issuer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer").finish_non_exhaustive()
    }
}

/// A stored token record, and the live tokens of the same user it pushed past the cap.
#[derive(Debug)]
pub struct Recorded {
    pub record: TokenRecord,
    /// Ids revoked to keep the user under [`tokens::MAX_LIVE_TOKENS_PER_USER`].
    pub displaced: Vec<String>,
}

/// A signed token and its record.
#[derive(Debug)]
pub struct Issued {
    /// The JWT (a secret: never logged).
    pub token: String,
    pub recorded: Recorded,
}

/// Why nothing was issued.
#[derive(Debug)]
pub enum IssueError {
    /// The identity is too long for a token (`MAX_TOKEN_BYTES`); nothing was stored.
    TooLarge,
    /// The token store failed.
    Store(StoreError),
}

impl From<StoreError> for IssueError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

impl Issuer<'_> {
    /// Stores a record `token_id` for `principal`, issued at `now`, expiring at `expires_at`
    /// (epoch seconds), of `origin` and of the chain ending at `chain_end`, under the cap of
    /// live tokens per user.
    ///
    /// # Errors
    ///
    /// The store's.
    pub async fn record(
        &self,
        principal: &Principal,
        token_id: String,
        now: SystemTime,
        expires_at: i64,
        origin: TokenOrigin,
        chain_end: i64,
    ) -> Result<Recorded, StoreError> {
        let now = crate::state::epoch_secs(now);
        let record = TokenRecord {
            sealed_key: self.cipher.seal(&principal.credentials.api_key, &token_id),
            token_id,
            user_id: principal.user_id.clone(),
            username: principal.username.clone(),
            email: principal.email.clone(),
            workspace_id: principal.workspace_id.clone(),
            permissions: principal.permissions,
            issued_at: now,
            expires_at,
            revoked_at: None,
            origin,
            chain_expires_at: Some(chain_end),
        };
        // The cap counts live tokens only (K13): revoked records wait for their expiry in the
        // store, and must not push another client's live token out.
        let displaced = tokens::save_capped(
            self.tokens,
            record.clone(),
            tokens::MAX_LIVE_TOKENS_PER_USER,
            now,
        )
        .await?;
        Ok(Recorded { record, displaced })
    }

    /// Signs a token for `principal` at `now`, expiring at the end of its lifetime or at
    /// `chain_end` if that comes first, and stores its record.
    ///
    /// # Errors
    ///
    /// [`IssueError::TooLarge`] before anything is stored; the store's.
    pub async fn issue(
        &self,
        principal: &Principal,
        now: SystemTime,
        origin: TokenOrigin,
        chain_end: i64,
    ) -> Result<Issued, IssueError> {
        self.issue_as(tokens::new_token_id(), principal, now, origin, chain_end)
            .await
    }

    /// [`Self::issue`] under a token id chosen beforehand (an OAuth code records the id of the
    /// token it will issue, so that a replay can revoke it).
    ///
    /// # Errors
    ///
    /// As [`Self::issue`].
    pub async fn issue_as(
        &self,
        token_id: String,
        principal: &Principal,
        now: SystemTime,
        origin: TokenOrigin,
        chain_end: i64,
    ) -> Result<Issued, IssueError> {
        let (token, claims) = self
            .jwt
            .issue_until(&TokenSubject::from(principal), &token_id, now, chain_end)
            .map_err(|_| IssueError::TooLarge)?;
        let recorded = self
            .record(principal, token_id, now, claims.exp, origin, chain_end)
            .await?;
        Ok(Issued { token, recorded })
    }
}

/// Why a token is not renewed at `/api/v1/auth/refresh`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenewalRefusal {
    /// An access token of an OAuth grant: its client renews it at `/oauth/token` with the
    /// grant's refresh token; issuing one here would step outside the grant.
    OAuthToken { grant_id: String, client_id: String },
    /// The login is older than `TOKEN_MAX_LIFETIME`: the person logs in again.
    ChainEnded,
}

impl RenewalRefusal {
    /// The stable reason, for the audit log.
    #[must_use]
    pub const fn reason(&self) -> &'static str {
        match self {
            Self::OAuthToken { .. } => "oauth_token",
            Self::ChainEnded => "chain_expired",
        }
    }
}

/// Whether `record`'s token may be renewed at `/api/v1/auth/refresh` at `now` (epoch
/// seconds), and the end of its chain (what the new token may not outlive).
///
/// # Errors
///
/// The [`RenewalRefusal`] that says why not.
pub fn renewal(record: &TokenRecord, now: i64) -> Result<i64, RenewalRefusal> {
    if let TokenOrigin::OAuth {
        grant_id,
        client_id,
    } = &record.origin
    {
        return Err(RenewalRefusal::OAuthToken {
            grant_id: grant_id.clone(),
            client_id: client_id.clone(),
        });
    }
    let chain_end = record.chain_end();
    if chain_end <= now {
        return Err(RenewalRefusal::ChainEnded);
    }
    Ok(chain_end)
}

/// Whether an OAuth grant has reached its end (`OAUTH_GRANT_MAX_LIFETIME` after the consent) at
/// `now_ms`: then no refresh renews it, and the person consents again (M2). A grant stored
/// before grants had an end has none.
#[must_use]
pub fn grant_ended(grant: &Grant, now_ms: i64) -> bool {
    grant.expires_at_ms.is_some_and(|end| end <= now_ms)
}

/// When a refresh token of `grant` issued at `now_ms` expires: `ttl` later
/// (`OAUTH_REFRESH_TOKEN_TTL`), and never after the grant.
#[must_use]
pub fn refresh_expiry(grant: &Grant, now_ms: i64, ttl: std::time::Duration) -> i64 {
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    let expiry = now_ms.saturating_add(ttl_ms);
    grant.expires_at_ms.map_or(expiry, |end| expiry.min(end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{permissions::PermissionSet, store::tokens::contract::record};

    #[test]
    fn only_a_logins_token_is_renewed_and_only_within_its_chain() {
        let mut login = record("ws1", "usr_a", 0, 3600);
        login.chain_expires_at = Some(login.issued_at + 7200);
        let now = login.issued_at + 100;
        assert_eq!(renewal(&login, now), Ok(login.issued_at + 7200));
        assert_eq!(
            renewal(&login, login.issued_at + 7200),
            Err(RenewalRefusal::ChainEnded)
        );
        // A record from before chains existed ends with itself.
        login.chain_expires_at = None;
        assert_eq!(renewal(&login, now), Ok(login.expires_at));
        let mut oauth = login.clone();
        oauth.origin = TokenOrigin::OAuth {
            grant_id: "fam_1".into(),
            client_id: "cli_1".into(),
        };
        assert_eq!(renewal(&oauth, now).unwrap_err().reason(), "oauth_token");
        assert_eq!(login.permissions, PermissionSet::DEFAULT);
    }
}
