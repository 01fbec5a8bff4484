//! Fewer store round trips per authenticated request (issue 20): what a request will need from
//! the stores, asked for at once.
//!
//! An authenticated request needs three answers from the stores: its client address's
//! rate-limit count ([`super::rate_limit::limit_requests`]), its token record (authentication,
//! [`super::auth`]) and its principal's count ([`super::rate_limit::limit_principal`]); a
//! console request also its session record and the session's sliding expiry. Asked one after
//! the other by the layers that use them, they cost three round trips (five for a console
//! request): 3 ms with Redis 1 ms away, before the request does anything (docs/PERFORMANCE.md,
//! "Redis round trips"). So they are asked together, and on Redis the multiplexed connection
//! writes them back to back:
//!
//! - **A bearer token:** its JWT is verified first (local work), and its claims name the token
//!   record (`jti`) and the principal (`userId`). The rate limiter, the outermost layer that
//!   counts, sends the address's count, the record's read and the principal's count at once:
//!   **one round trip**. The answers ride to the layers that use them in [`ReadAhead`] and
//!   [`PrincipalCount`] request extensions.
//! - **A session cookie:** the cookie names only the session; its token is known once the
//!   session record is read. The rate limiter reads the record beside the address's count
//!   ([`SessionAhead`]); authentication then reads the token, slides the expiry and counts the
//!   principal at once: **two round trips**.
//!
//! The principal's count is taken before anyone knows whether the request will count: the
//! address may be over its limit, the token revoked, the CSRF check failed or the route not one
//! that authenticates. Such a request never reaches [`PrincipalCount::take`], and its increment
//! is given back ([`CounterStore::refund`](crate::store::CounterStore::refund)), so the bucket
//! counts exactly what it did when it was counted after authentication: the authenticated
//! requests. The refund costs a round trip on those refusals only. While it is in flight the
//! count is one too high: a request of the same principal at the very edge of its quota may be
//! refused one early.
//!
//! Only a syntactically valid bearer token whose JWT verifies, or a single well-formed session
//! cookie on an `/api/` route without an `Authorization` header, gets a read-ahead; anything
//! else takes the layers' own path, unchanged. What to check and how to refuse stays with the
//! layers: the read-ahead only changes when the stores are asked. A flood of tokens that do not
//! verify still costs one counter increment each; one of a verifying (stolen or revoked) token
//! costs its record's read and a count given back besides.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::SystemTime,
};

use super::rate_limit::BucketState;
use crate::{
    auth::jwt::Claims,
    store::{SessionKey, SessionRecord, StoreError, TokenRecord},
};

/// What the token store answered for the read-ahead's `jti`.
pub(crate) type FoundRecord = Result<Option<Arc<TokenRecord>>, StoreError>;

/// What the session store answered for a session cookie's key.
pub(crate) type FoundSession = Result<Option<SessionRecord>, StoreError>;

/// A store's answer read ahead for a request (request extension, as `Arc<Ahead<..>>`): what
/// it was asked about (`key`) and its answer, which the layer that needs it takes once (a
/// second take gets `None` and asks the store itself).
pub(crate) struct Ahead<K, T> {
    /// What the store was asked about.
    pub(crate) key: K,
    found: Mutex<Option<T>>,
}

/// A bearer request's verified claims and the token store's answer for their `jti`, beside its
/// [`PrincipalCount`].
pub(crate) type ReadAhead = Ahead<Claims, FoundRecord>;

/// A session-cookie request's session key and record, read beside the client address's count.
/// Its token and its principal's count are read together in the second and last round trip,
/// once the session is known (`http::auth`).
pub(crate) type SessionAhead = Ahead<SessionKey, FoundSession>;

impl<K, T> std::fmt::Debug for Ahead<K, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key names a token id and a user, or a session: nothing to print.
        f.debug_struct("Ahead").finish_non_exhaustive()
    }
}

impl<K, T> Ahead<K, T> {
    pub(crate) fn new(key: K, found: T) -> Self {
        Self {
            key,
            found: Mutex::new(Some(found)),
        }
    }

    /// The store's answer, once.
    pub(crate) fn take(&self) -> Option<T> {
        self.found.lock().ok().and_then(|mut f| f.take())
    }
}

/// A principal's bucket counted for a request before it was authenticated (request extension,
/// as `Arc<PrincipalCount>`): for the identity it was counted for, the per-principal layer
/// takes it instead of counting again; unused, it is given back.
pub(crate) struct PrincipalCount {
    user_id: String,
    token_id: String,
    /// The bucket after counting, and the end of the window it was counted in (what a refund
    /// names); `None` when the count failed (the per-principal layer then counts again, and
    /// fails closed if the store is still down).
    counted: Option<(BucketState, SystemTime)>,
    taken: AtomicBool,
}

impl std::fmt::Debug for PrincipalCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrincipalCount").finish_non_exhaustive()
    }
}

impl PrincipalCount {
    pub(crate) fn new(
        user_id: String,
        token_id: String,
        counted: Option<(BucketState, SystemTime)>,
    ) -> Self {
        Self {
            user_id,
            token_id,
            counted,
            taken: AtomicBool::new(false),
        }
    }

    /// The bucket counted for this request, once, and only for the identity it was counted
    /// for (`user_id` with the token `token_id`); `None` for any other, or when the count
    /// failed: that request counts on its own.
    pub(crate) fn take(&self, user_id: &str, token_id: Option<&str>) -> Option<BucketState> {
        if self.user_id != user_id || token_id != Some(self.token_id.as_str()) {
            return None;
        }
        let (bucket, _) = self.counted?;
        (!self.taken.swap(true, Ordering::AcqRel)).then_some(bucket)
    }

    /// The counted window to give back when the request did not use it
    /// ([`take`](Self::take)): `(user_id, window end)`, or `None`.
    pub(crate) fn unused(&self) -> Option<(&str, SystemTime)> {
        let (_, resets_at) = self.counted?;
        (!self.taken.load(Ordering::Acquire)).then_some((self.user_id.as_str(), resets_at))
    }
}
