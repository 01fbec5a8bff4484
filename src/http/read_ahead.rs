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

/// A bearer request's verified claims and the token store's answer for them (request
/// extension, as `Arc<ReadAhead>`), beside its [`PrincipalCount`].
pub(crate) struct ReadAhead {
    /// The verified claims of the request's bearer token.
    pub(crate) claims: Claims,
    /// The token store's answer for `claims.jti`, until authentication takes it.
    record: Mutex<Option<FoundRecord>>,
}

impl std::fmt::Debug for ReadAhead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The claims name the token id and the user: not secret, but nothing to print either.
        f.debug_struct("ReadAhead").finish_non_exhaustive()
    }
}

impl ReadAhead {
    pub(crate) fn new(claims: Claims, record: FoundRecord) -> Self {
        Self {
            claims,
            record: Mutex::new(Some(record)),
        }
    }

    /// The token store's answer, once (authentication takes it; a second call gets `None` and
    /// asks the store itself).
    pub(crate) fn take_record(&self) -> Option<FoundRecord> {
        self.record.lock().ok().and_then(|mut r| r.take())
    }
}

/// A session-cookie request's session record, read beside the client address's count
/// (request extension, as `Arc<SessionAhead>`). Its token and its principal's count are read
/// together in the second and last round trip, once the session is known (`http::auth`).
pub(crate) struct SessionAhead {
    /// The store key of the request's one well-formed session cookie.
    pub(crate) key: SessionKey,
    found: Mutex<Option<FoundSession>>,
}

impl std::fmt::Debug for SessionAhead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionAhead").finish_non_exhaustive()
    }
}

impl SessionAhead {
    pub(crate) fn new(key: SessionKey, found: FoundSession) -> Self {
        Self {
            key,
            found: Mutex::new(Some(found)),
        }
    }

    /// The session store's answer for `key`, once.
    pub(crate) fn take(&self) -> Option<FoundSession> {
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
        user_id: &str,
        token_id: &str,
        counted: Option<(BucketState, SystemTime)>,
    ) -> Self {
        Self {
            user_id: user_id.to_owned(),
            token_id: token_id.to_owned(),
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
