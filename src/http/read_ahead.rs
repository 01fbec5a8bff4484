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
//! - **A session cookie:** the cookie names only the session (its id is random and carries
//!   nothing of the user, catalogue S7); its token and principal are in the session record.
//!   But a session's token and principal never change in its life (a login or a refresh starts
//!   a new session), so once an instance has seen a session it remembers where it leads
//!   ([`SessionHints`]): the rate limiter then reads the session record, its token record and
//!   the principal's count beside the address's count, **one round trip**, and authentication
//!   checks that the record still names that token and principal. The sliding expiry is written
//!   once the request is accepted, without the request waiting for it. A session this instance
//!   has not seen yet (started on another instance, or forgotten when the hints were full)
//!   takes **two** round trips once: its record beside the address's count, then its token,
//!   the sliding expiry and the principal's count together; then it is remembered. A hint is
//!   only a pointer: nothing is decided on it, and a revoked token or ended session is refused
//!   on every instance at its next request exactly as before.
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
//! With the stores in memory there is no round trip to save, and none of this runs: each layer
//! asks the store itself, as it would without this module (its joins, extensions and refund
//! bookkeeping were 4.8k of a `tools/list`'s 230k instructions there, docs/PERFORMANCE.md,
//! finding 16).
//!
//! Only a syntactically valid bearer token whose JWT verifies, or a single well-formed session
//! cookie on an `/api/` route without an `Authorization` header, gets a read-ahead; anything
//! else takes the layers' own path, unchanged. What to check and how to refuse stays with the
//! layers: the read-ahead only changes when the stores are asked. A flood of tokens that do not
//! verify still costs one counter increment each; one of a verifying (stolen or revoked) token
//! costs its record's read and a count given back besides.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, PoisonError, RwLock,
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

/// A session-cookie request's session key and what was read for it beside the client
/// address's count: its record, and its token's when the session was known ([`SessionHints`]).
pub(crate) type SessionAhead = Ahead<SessionKey, SessionFound>;

/// The answers read ahead for a session cookie.
pub(crate) struct SessionFound {
    /// The session store's answer.
    pub(crate) session: FoundSession,
    /// The token the session was known to lead to, and the token store's answer for it;
    /// `None` for a session this instance had not seen (its token is read once the session
    /// is).
    pub(crate) token: Option<(String, FoundRecord)>,
}

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

/// Where the sessions this instance has seen lead: for each session key, its token and its
/// principal, which never change in a session's life. Lets a console request read its session,
/// token and principal's count in one round trip (module docs). Only with the stores in Redis
/// (capacity 0 otherwise: nothing is kept).
///
/// A hint decides nothing: the session record read beside it must name the same token and
/// principal, or the request takes the two-round-trip path and the hint is replaced. Bounded at
/// [`MAX_SESSION_HINTS`]: when full it is emptied, and the sessions still in use are
/// remembered again at their next request, each paying one more round trip once.
#[derive(Debug, Default)]
pub struct SessionHints {
    hints: RwLock<HashMap<SessionKey, Arc<SessionHint>>>,
    capacity: usize,
}

/// Where a session leads: its token and principal.
pub(crate) struct SessionHint {
    pub(crate) token_id: String,
    pub(crate) user_id: String,
}

impl std::fmt::Debug for SessionHint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionHint").finish_non_exhaustive()
    }
}

/// The most session hints an instance keeps: about 250 bytes each, 5 MB at the cap.
pub const MAX_SESSION_HINTS: usize = 20_000;

impl SessionHints {
    /// Hints for at most `capacity` sessions (0: none are kept).
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self {
            hints: RwLock::default(),
            capacity,
        }
    }

    /// Where the session under `key` was seen to lead, if this instance remembers it.
    pub(crate) fn get(&self, key: &SessionKey) -> Option<Arc<SessionHint>> {
        if self.capacity == 0 {
            return None;
        }
        let hints = self.hints.read().unwrap_or_else(PoisonError::into_inner);
        hints.get(key).cloned()
    }

    /// Remembers that the session under `key` leads to `token_id` and `user_id`.
    pub(crate) fn remember(&self, key: &SessionKey, token_id: &str, user_id: &str) {
        if self.capacity == 0 {
            return;
        }
        let mut hints = self.hints.write().unwrap_or_else(PoisonError::into_inner);
        if hints.len() >= self.capacity && !hints.contains_key(key) {
            hints.clear();
        }
        hints.insert(
            key.clone(),
            Arc::new(SessionHint {
                token_id: token_id.to_owned(),
                user_id: user_id.to_owned(),
            }),
        );
    }

    /// Forgets the session under `key` (it ended).
    pub(crate) fn forget(&self, key: &SessionKey) {
        if self.capacity == 0 {
            return;
        }
        let mut hints = self.hints.write().unwrap_or_else(PoisonError::into_inner);
        hints.remove(key);
    }

    /// How many sessions are remembered, for the `store_entries` gauge; `None` when none are
    /// kept.
    #[must_use]
    pub fn held(&self) -> Option<usize> {
        (self.capacity > 0).then(|| {
            self.hints
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .len()
        })
    }

    /// The most sessions remembered.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: usize) -> SessionKey {
        SessionKey::from_hmac_hex(format!("{n:064x}"))
    }

    #[test]
    fn hints_are_bounded_and_forgotten() {
        let hints = SessionHints::new(3);
        for n in 0..3 {
            hints.remember(&key(n), &format!("tok_{n}"), &format!("usr_{n}"));
        }
        assert_eq!(hints.held(), Some(3));
        assert_eq!(hints.get(&key(1)).unwrap().token_id, "tok_1");
        // Full: the next new session empties the hints, then is remembered alone.
        hints.remember(&key(3), "tok_3", "usr_3");
        assert_eq!(hints.held(), Some(1));
        assert!(hints.get(&key(0)).is_none());
        assert_eq!(hints.get(&key(3)).unwrap().user_id, "usr_3");
        // A session already remembered is replaced in place, never clearing the others.
        hints.remember(&key(4), "tok_4", "usr_4");
        hints.remember(&key(5), "tok_5", "usr_5");
        hints.remember(&key(5), "tok_5b", "usr_5");
        assert_eq!(hints.held(), Some(3));
        assert_eq!(hints.get(&key(5)).unwrap().token_id, "tok_5b");
        hints.forget(&key(5));
        assert!(hints.get(&key(5)).is_none());
        assert_eq!(hints.held(), Some(2));
    }

    #[test]
    fn no_capacity_keeps_nothing() {
        let hints = SessionHints::new(0);
        hints.remember(&key(0), "tok_0", "usr_0");
        assert!(hints.get(&key(0)).is_none());
        assert_eq!(hints.held(), None);
    }
}
