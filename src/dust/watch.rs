//! Noticing a key that Dust stopped accepting.
//!
//! A token outlives the check made at login: the workspace admin may revoke the key, or cap it,
//! an hour before the token expires. [`KeyWatch`] wraps any [`DustApi`] and calls a hook
//! whenever Dust answers 401 for a key, so the HTTP server can revoke every token holding that
//! key at once (catalogue J19) instead of forwarding refused calls until the tokens expire.

use std::sync::Arc;

use super::{DustApi, DustCredentials, DustError, DustErrorKind, Intercepted, Interceptor, Result};

/// Called with the credentials Dust refused.
pub type RejectedKeyHook = Arc<dyn Fn(&DustCredentials) + Send + Sync>;

/// The interceptor of [`KeyWatch`]: hands the credentials of every call Dust answered 401 to a
/// hook.
pub struct WatchKeys {
    on_rejected: RejectedKeyHook,
}

impl std::fmt::Debug for WatchKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchKeys").finish_non_exhaustive()
    }
}

impl Interceptor for WatchKeys {
    type Ticket = ();

    fn admit(&self, _: &DustCredentials, _: &'static str) -> Result<()> {
        Ok(())
    }

    fn settle(
        &self,
        (): (),
        creds: &DustCredentials,
        call: &'static str,
        error: Option<&DustError>,
    ) {
        // Login's own check is not watched: its refusal is the login's business, and no token
        // exists yet.
        if call != "check_key" && error.is_some_and(|e| e.kind == DustErrorKind::Unauthorized) {
            (self.on_rejected)(creds);
        }
    }
}

/// A [`DustApi`] that reports refused keys to a hook.
pub type KeyWatch = Intercepted<WatchKeys>;

impl KeyWatch {
    pub fn new(inner: Arc<dyn DustApi>, on_rejected: RejectedKeyHook) -> Self {
        Intercepted::wrap(inner, WatchKeys { on_rejected })
    }
}
