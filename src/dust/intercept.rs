//! Wrapping every Dust call, once: the circuit breaker and the key watch.
//!
//! Both need to see each call go by (the breaker to refuse it while a workspace's circuit is
//! open and to count its failure, the watch to notice a key Dust stopped accepting), and neither
//! cares which call it is. An [`Interceptor`] says what happens before and after a call;
//! [`Intercepted`] applies it to every method of [`DustApi`]. Its implementation is generated
//! with the trait itself (`dust_api!` in `mod.rs`), so a new Dust call is written in the trait's
//! list, the client and the simulator, and nowhere else.

use std::{fmt, future::Future, sync::Arc};

use super::{DustApi, DustCredentials, DustError, Result};

/// What happens around every Dust call.
pub trait Interceptor: Send + Sync + 'static {
    /// What [`Self::admit`] hands to [`Self::settle`]. Dropped without `settle` when the
    /// caller gives up on the call (its future is dropped).
    type Ticket: Send;

    /// Before call `call` (the method's name) with `creds`: `Err` refuses it, and Dust is not
    /// called.
    ///
    /// # Errors
    ///
    /// The error the caller gets instead of Dust's answer.
    fn admit(&self, creds: &DustCredentials, call: &'static str) -> Result<Self::Ticket>;

    /// After the call, with its error if it failed.
    fn settle(
        &self,
        ticket: Self::Ticket,
        creds: &DustCredentials,
        call: &'static str,
        error: Option<&DustError>,
    );
}

/// A [`DustApi`] whose every call goes through an [`Interceptor`].
pub struct Intercepted<I> {
    inner: Arc<dyn DustApi>,
    interceptor: I,
}

impl<I: Interceptor> Intercepted<I> {
    /// Wraps `inner`.
    pub fn wrap(inner: Arc<dyn DustApi>, interceptor: I) -> Self {
        Self { inner, interceptor }
    }

    /// The interceptor.
    pub fn interceptor(&self) -> &I {
        &self.interceptor
    }

    /// The wrapped client (for the generated methods).
    pub(super) fn inner(&self) -> &dyn DustApi {
        self.inner.as_ref()
    }

    /// Runs `call` (the inner client's future for method `name`) between `admit` and `settle`.
    pub(super) async fn intercept<T>(
        &self,
        creds: &DustCredentials,
        name: &'static str,
        call: impl Future<Output = Result<T>> + Send,
    ) -> Result<T> {
        let ticket = self.interceptor.admit(creds, name)?;
        let result = call.await;
        self.interceptor
            .settle(ticket, creds, name, result.as_ref().err());
        result
    }
}

impl<I: fmt::Debug> fmt::Debug for Intercepted<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Intercepted")
            .field("interceptor", &self.interceptor)
            .finish_non_exhaustive()
    }
}
