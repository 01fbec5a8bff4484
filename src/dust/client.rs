//! PLACEHOLDER: HttpDustClient is being written (helper B). Replace this file entirely.

use std::time::Duration;

use url::Url;

/// Options of [`HttpDustClient`].
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Dust API base, e.g. `https://dust.tt` or `https://eu.dust.tt`.
    pub base_url: Url,
    /// Whole-request timeout of ordinary calls (not of event streams).
    pub timeout: Duration,
    /// TCP + TLS connect timeout.
    pub connect_timeout: Duration,
    /// Retries of idempotent calls on 408/429/502/503/504.
    pub max_retries: u32,
}

/// The real Dust client.
#[derive(Debug, Clone)]
pub struct HttpDustClient {
    options: ClientOptions,
}
impl Default for ClientOptions { fn default() -> Self { todo!() } }
impl HttpDustClient { pub fn new(options: ClientOptions) -> Result<Self, super::DustError> { Ok(Self{options}) } }
