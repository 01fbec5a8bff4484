//! From a presented token to the [`Principal`] it stands for: the one place a principal is
//! built from a token record (bearer tokens and sessions alike) or from an OAuth grant.
//!
//! A token is accepted when its JWT verifies, its record exists and is neither revoked nor
//! expired, the JWT's identity is the record's, and the record's sealed Dust key opens. The
//! principal's permissions are the record's *as far as the current policy still grants them*:
//! permissions taken out of the policy leave every token and grant at their next request
//! (issue 18, M2). HTTP only parses the header or cookie and renders the [`Refusal`].

use std::{sync::Arc, time::SystemTime};

use super::{JwtIssuer, KeyCipher, Policy, Principal, Refusal, jwt};
use crate::{
    dust::DustCredentials,
    permissions::{Permission, PermissionSet},
    store::{StoreError, TokenRecord, TokenStore, oauth::Grant},
};

/// What resolving a token needs: the token profile, the at-rest key, the records, the policy.
#[derive(Clone, Copy)]
pub struct Resolver<'a> {
    pub jwt: &'a JwtIssuer,
    pub cipher: &'a KeyCipher,
    pub tokens: &'a dyn TokenStore,
    pub policy: &'a Policy,
}

impl std::fmt::Debug for Resolver<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver").finish_non_exhaustive()
    }
}

impl Resolver<'_> {
    /// Verifies `token` at `now` and builds the principal it stands for, with its record.
    ///
    /// # Errors
    ///
    /// The [`Refusal`] that says why (the store down is [`Refusal::StoreUnavailable`]).
    pub async fn token(
        &self,
        token: &str,
        now: SystemTime,
    ) -> Result<(Principal, Arc<TokenRecord>), Refusal> {
        let claims = self.verify(token, now)?;
        let found = self
            .tokens
            .get(&claims.jti, crate::state::epoch_secs(now))
            .await;
        self.accept(&claims, found, now)
    }

    /// The first half of [`token`](Self::token), which needs no store: the token is one of
    /// ours (not a Dust key, a JWT that verifies at `now`), and its claims name the record to
    /// look up. The HTTP layer looks it up beside the rate-limit counters
    /// (`http::read_ahead`) and finishes with [`accept`](Self::accept).
    ///
    /// # Errors
    ///
    /// [`Refusal::DustKey`] or the JWT's [`Refusal::Token`].
    pub fn verify(&self, token: &str, now: SystemTime) -> Result<jwt::Claims, Refusal> {
        if jwt::looks_like_dust_key(token) {
            return Err(Refusal::DustKey);
        }
        self.jwt.verify(token, now).map_err(Refusal::Token)
    }

    /// The second half of [`token`](Self::token): `found` is what the token store answered for
    /// `claims.jti` at `now`; the record must exist, be neither revoked nor expired, and be the
    /// claims' identity's.
    ///
    /// # Errors
    ///
    /// The [`Refusal`] that says why (the store down is [`Refusal::StoreUnavailable`]).
    pub fn accept(
        &self,
        claims: &jwt::Claims,
        found: Result<Option<Arc<TokenRecord>>, StoreError>,
        now: SystemTime,
    ) -> Result<(Principal, Arc<TokenRecord>), Refusal> {
        let now_secs = crate::state::epoch_secs(now);
        let record = match found {
            Ok(Some(record)) => record,
            // The store no longer shows a record once it has expired (at `now`, the app's
            // clock); the record of a token ends at the token's own `exp`, so a verified token
            // past its `exp` (still inside the JWT leeway) is refused as expired, not unknown.
            Ok(None) if claims.exp <= now_secs => return Err(Refusal::Expired),
            Ok(None) => return Err(Refusal::UnknownToken),
            Err(e) => {
                tracing::error!(error = %e, "token store unavailable");
                return Err(Refusal::StoreUnavailable);
            }
        };
        if record.revoked_at.is_some() {
            return Err(Refusal::Revoked);
        }
        if record.expires_at <= now_secs {
            return Err(Refusal::Expired);
        }
        if record.user_id != claims.user_id || record.workspace_id != claims.workspace_id {
            return Err(Refusal::ClaimsMismatch);
        }
        let principal = self.record(&record)?;
        Ok((principal, record))
    }

    /// The principal a live token record stands for: opens its sealed Dust key, and applies
    /// the current policy to its permissions.
    ///
    /// # Errors
    ///
    /// [`Refusal::SealedKey`] when the key does not open (the secret key changed).
    pub fn record(&self, record: &TokenRecord) -> Result<Principal, Refusal> {
        let api_key = self
            .cipher
            .open(&record.sealed_key, &record.token_id)
            .map_err(|_| Refusal::SealedKey)?;
        Ok(Principal {
            user_id: record.user_id.clone(),
            username: record.username.clone(),
            email: record.email.clone(),
            full_name: None,
            workspace_id: record.workspace_id.clone(),
            permissions: record
                .permissions
                .intersect(self.policy.grant(&record.user_id)),
            token_id: Some(record.token_id.clone()),
            credentials: DustCredentials {
                workspace_id: record.workspace_id.clone(),
                api_key,
            },
        })
    }

    /// The principal an OAuth grant's next token stands for: opens the grant's sealed key, and
    /// grants what the person consented to as far as the current policy still allows it (a
    /// refresh keeps or loses rights, never gains them, M2).
    ///
    /// # Errors
    ///
    /// [`Refusal::SealedKey`] when the key does not open (the secret key changed).
    pub fn grant(&self, grant: &Grant) -> Result<Principal, Refusal> {
        let api_key = self
            .cipher
            .open(&grant.sealed_key, &grant.family_id)
            .map_err(|_| Refusal::SealedKey)?;
        let permissions = grant
            .permissions
            .iter()
            .filter_map(|p| p.parse::<Permission>().ok())
            .collect::<PermissionSet>()
            .intersect(self.policy.grant(&grant.user_id));
        Ok(Principal {
            user_id: grant.user_id.clone(),
            username: grant.username.clone(),
            email: grant.email.clone(),
            full_name: None,
            workspace_id: grant.workspace_id.clone(),
            permissions,
            token_id: None,
            credentials: DustCredentials {
                workspace_id: grant.workspace_id.clone(),
                api_key,
            },
        })
    }
}
