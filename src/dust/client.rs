//! [`HttpDustClient`]: the transport under every Dust call.
//!
//! One `reqwest::Client` (one connection pool) serves every user; the key travels with each call
//! (see [`DustCredentials`]) and is only exposed to build a sensitive `Authorization` header. This
//! module owns what every call shares: URL building, timeouts, retries, redirects, bounded body
//! reads and the mapping of failures to [`DustError`]. The calls themselves, one per
//! [`DustApi`](super::DustApi) method, live in `calls.rs`.
//!
//! Security decisions, each with its reason:
//! - Every id is pushed as one percent-encoded path segment, and `""`, `.` and `..` are refused,
//!   so a caller-chosen id (document ids are free text) can never change the route or add a
//!   query string.
//! - Redirects are followed only to the origin of the request: Dust sends the events route to
//!   `/api/sse/...` on the same host, and nothing legitimate leaves it. A redirect elsewhere is
//!   not followed at all, so the key never reaches another host.
//! - Errors are written from the status, Dust's envelope and the root cause of a transport
//!   failure; a request, and so its headers, is never formatted into one.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use rand::Rng;
use reqwest::{
    Method, Response,
    header::{self, HeaderValue},
    redirect,
};
use secrecy::ExposeSecret;
use serde::{Serialize, de::DeserializeOwned};
use tracing::{Instrument, field::Empty};
use url::Url;

use super::{
    DustCredentials, DustError, DustErrorKind, EventStream, Result, sse::agent_event_stream,
};

/// Sent as `User-Agent`, so Dust can tell this server's traffic apart.
pub const USER_AGENT: &str = concat!(env!("CARGO_PKG_NAME"), "/", env!("CARGO_PKG_VERSION"));

/// Largest successful answer we read. Dust's biggest answers (a conversation with its tool
/// outputs, a full-text document) stay well below; past it the call fails with
/// [`DustErrorKind::Protocol`] rather than holding an unbounded body in memory.
pub const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;

/// How much of an error answer we read to find Dust's envelope; the rest is dropped.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// Same-origin redirects followed before giving up (Dust uses one, for event streams).
const MAX_REDIRECTS: usize = 5;

/// Ceiling of the exponential backoff between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// Options of [`HttpDustClient`]. Every field has a production default.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Dust API base, e.g. `https://dust.tt` or `https://eu.dust.tt`. A path prefix (for a
    /// proxy) is kept; the API path is appended to it.
    pub base_url: Url,
    /// Whole-request timeout of ordinary calls, body included (not of event streams).
    pub timeout: Duration,
    /// TCP + TLS connect timeout.
    pub connect_timeout: Duration,
    /// Retries of idempotent calls (GET, DELETE) on 408/429/502/503/504 and broken connections.
    pub max_retries: u32,
    /// First backoff delay; it doubles on each retry (with ±20 % jitter) up to 8 s.
    pub retry_base_delay: Duration,
    /// Longest `Retry-After` we wait for. When Dust asks for longer, the call fails at once with
    /// [`DustErrorKind::RateLimited`] and the `retry_after` Dust sent: the caller decides, and a
    /// tool call is not held for minutes.
    pub max_retry_after: Duration,
    /// Event streams: time allowed to connect and receive the response headers.
    pub stream_open_timeout: Duration,
    /// Event streams: longest silence between two chunks. Dust closes a stream itself after
    /// about 60 s, so this only catches connections that died without closing.
    pub stream_idle_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            base_url: Url::parse("https://dust.tt").expect("static URL"),
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_retries: 3,
            retry_base_delay: Duration::from_millis(250),
            max_retry_after: Duration::from_secs(30),
            stream_open_timeout: Duration::from_secs(30),
            stream_idle_timeout: Duration::from_secs(75),
        }
    }
}

/// The real Dust client: [`DustApi`](super::DustApi) over HTTPS.
///
/// It holds no credential, so its `Debug` output (options and pool) is safe to log.
#[derive(Debug, Clone)]
pub struct HttpDustClient {
    http: reqwest::Client,
    options: ClientOptions,
    /// `scheme://host[:port]` of the base URL, for error messages.
    origin: String,
}

/// One outbound call, described for sending, logging and error messages.
#[derive(Debug)]
pub(super) struct Call {
    /// What the call does, as a verb phrase for messages: "list agents".
    pub op: &'static str,
    /// The route with placeholders, for logs: `/assistant/agent_configurations/{sId}`.
    pub template: &'static str,
    pub method: Method,
    pub url: Url,
    /// The body, already serialised, and its content type.
    pub body: Option<(Bytes, String)>,
}

impl Call {
    pub(super) fn new(op: &'static str, template: &'static str, method: Method, url: Url) -> Self {
        Self {
            op,
            template,
            method,
            url,
            body: None,
        }
    }

    /// Adds a JSON body.
    pub(super) fn json(mut self, body: &impl Serialize) -> Result<Self> {
        let bytes = serde_json::to_vec(body).map_err(|error| {
            DustError::new(
                DustErrorKind::Protocol,
                format!("could not encode the request to {}: {error}", self.op),
            )
        })?;
        self.body = Some((bytes.into(), "application/json".to_owned()));
        Ok(self)
    }

    /// Adds a `multipart/form-data` body of one file field, as Dust's upload route reads it.
    /// Built here rather than with reqwest's form so that, like every body, it is bytes that
    /// a retry could send again. `file_name` is a checked title; quotes, backslashes and
    /// control characters are replaced all the same, since it sits in a part header.
    pub(super) fn multipart_file(
        mut self,
        field: &str,
        file_name: &str,
        content_type: &str,
        data: &[u8],
    ) -> Self {
        let boundary = format!("mcp-dust-server-{:032x}", rand::rng().random::<u128>());
        let file_name: String = file_name
            .chars()
            .map(|c| {
                if c == '"' || c == '\\' || c.is_control() {
                    '_'
                } else {
                    c
                }
            })
            .collect();
        let mut body = Vec::with_capacity(data.len() + 256);
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; \
                 filename=\"{file_name}\"\r\nContent-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        self.body = Some((
            body.into(),
            format!("multipart/form-data; boundary={boundary}"),
        ));
        self
    }

    /// GET and DELETE may be sent twice without effect; nothing else is retried.
    fn is_idempotent(&self) -> bool {
        matches!(self.method, Method::GET | Method::DELETE)
    }

    /// The call's span, around its attempts (and the parent of an event stream's): the
    /// operation ("create a conversation") and the route template, never the URL (its ids are
    /// the caller's, its query may carry anything) and never a header.
    fn span(&self) -> tracing::Span {
        tracing::info_span!(
            target: crate::telemetry::otel::SPANS,
            "dust",
            otel.name = %format_args!("dust {}", self.op),
            dust.operation = self.op,
            url.template = self.template,
            error.type = Empty,
            otel.status_code = Empty,
        )
    }

    /// One attempt's span, an HTTP client span after the OpenTelemetry conventions:
    /// `{method} {url.template}`, with `http.request.resend_count` on a retry.
    fn attempt_span(&self, retries: u32) -> tracing::Span {
        tracing::info_span!(
            target: crate::telemetry::otel::SPANS,
            "dust.attempt",
            otel.name = %format_args!("{} {}", self.method, self.template),
            otel.kind = "client",
            http.request.method = %self.method,
            url.template = self.template,
            server.address = self.url.host_str(),
            server.port = self.url.port_or_known_default(),
            http.request.resend_count = (retries > 0).then_some(retries),
            http.response.status_code = Empty,
            error.type = Empty,
            otel.status_code = Empty,
        )
    }
}

/// Marks `span` failed with the failure's kind (`error.type`), never its message.
fn record_error(span: &tracing::Span, error: &DustError) {
    span.record("error.type", error.kind.name());
    span.record("otel.status_code", "error");
}

/// Installs the pure-Rust TLS provider (ring) for every `reqwest` client of the process.
/// reqwest is built without a bundled provider (no C build); call this before building any
/// client. Calling it again is harmless: an error only means a provider is already installed.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl HttpDustClient {
    /// Builds the client. Fails on a base URL that cannot take a path or carries credentials,
    /// or when the TLS stack cannot be set up.
    pub fn new(options: ClientOptions) -> Result<Self> {
        let mut options = options;
        let base = &mut options.base_url;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(invalid_base("it must be an http or https URL"));
        }
        // Credentials in the URL would be sent as basic auth and shown by `Debug`.
        if !base.username().is_empty() || base.password().is_some() {
            return Err(invalid_base("it must not contain a user name or password"));
        }
        base.set_query(None);
        base.set_fragment(None);
        let origin = base.origin().ascii_serialization();

        install_crypto_provider();

        let policy = redirect::Policy::custom(|attempt| {
            let same_origin = attempt
                .previous()
                .first()
                .is_some_and(|first| first.origin() == attempt.url().origin());
            if same_origin && attempt.previous().len() <= MAX_REDIRECTS {
                attempt.follow()
            } else {
                // The 3xx itself comes back and becomes a Protocol error (see `failure`).
                attempt.stop()
            }
        });
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(options.connect_timeout)
            .redirect(policy)
            .build()
            .map_err(|error| {
                DustError::new(
                    DustErrorKind::Network,
                    format!("could not set up the HTTP client: {}", root_cause(&error)),
                )
            })?;
        Ok(Self {
            http,
            options,
            origin,
        })
    }

    /// A client with default options against `base_url` (tests, simulator, EU region).
    pub fn with_base_url(base_url: &str) -> Result<Self> {
        let base_url = Url::parse(base_url).map_err(|_| invalid_base("it is not a URL"))?;
        Self::new(ClientOptions {
            base_url,
            ..ClientOptions::default()
        })
    }

    /// The options in use (base URL normalised).
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// The `uploadUrl` Dust returned for a file, if it is on Dust's own origin: like a
    /// redirect elsewhere, an upload URL on another host would take the key there.
    pub(super) fn upload_endpoint(&self, upload_url: Option<&str>) -> Result<Url> {
        let url = upload_url.and_then(|u| Url::parse(u).ok()).ok_or_else(|| {
            DustError::new(
                DustErrorKind::Protocol,
                "Dust's answer to create a file has no usable uploadUrl",
            )
        })?;
        if url.origin().ascii_serialization() != self.origin {
            return Err(DustError::new(
                DustErrorKind::Protocol,
                format!(
                    "Dust's uploadUrl points to {}, not to {}; the file was not sent",
                    url.origin().ascii_serialization(),
                    self.origin
                ),
            ));
        }
        Ok(url)
    }

    /// `{base}/api/v1/w/{wId}/{segments...}`, each segment percent-encoded on its own.
    pub(super) fn endpoint(&self, workspace_id: &str, segments: &[&str]) -> Result<Url> {
        let mut url = self.options.base_url.clone();
        {
            let mut path = url
                .path_segments_mut()
                .map_err(|()| invalid_base("it cannot take a path"))?;
            path.pop_if_empty().extend(["api", "v1", "w"]);
            for segment in std::iter::once(workspace_id).chain(segments.iter().copied()) {
                // `url` silently drops "." and ".." segments, and an empty one would address
                // the parent collection: refuse all three instead of calling another route.
                if matches!(segment, "" | "." | "..") {
                    return Err(DustError::new(
                        DustErrorKind::InvalidRequest,
                        format!("invalid id {segment:?}: an id must not be empty, \".\" or \"..\""),
                    ));
                }
                path.push(segment);
            }
        }
        Ok(url)
    }

    /// Sends `call` (retrying idempotent calls) and returns its bounded, successful body.
    pub(super) async fn execute(&self, creds: &DustCredentials, call: &Call) -> Result<Bytes> {
        let span = call.span();
        async {
            let mut response = self.send(creds, call, false).await?;
            read_limited(&mut response, MAX_RESPONSE_BYTES)
                .await
                .map_err(|failure| self.read_error(call, failure))
        }
        .instrument(span.clone())
        .await
        .inspect_err(|error| record_error(&span, error))
    }

    /// Like [`Self::execute`], decoding the JSON answer.
    pub(super) async fn execute_json<T: DeserializeOwned>(
        &self,
        creds: &DustCredentials,
        call: &Call,
    ) -> Result<T> {
        let body = self.execute(creds, call).await?;
        serde_json::from_slice(&body).map_err(|error| {
            DustError::new(
                DustErrorKind::Protocol,
                format!("Dust's answer to {} could not be read: {error}", call.op),
            )
        })
    }

    /// Opens an event stream: `Accept: text/event-stream`, no total timeout, an idle timeout
    /// between chunks, and SSE frames decoded into agent events.
    pub(super) async fn open_event_stream(
        &self,
        creds: &DustCredentials,
        call: &Call,
    ) -> Result<EventStream> {
        let span = call.span();
        let response = self
            .send(creds, call, true)
            .instrument(span.clone())
            .await
            .inspect_err(|error| record_error(&span, error))?;
        // The stream outlives the call that opened it: its span, a child of the call's, lasts
        // until the stream is dropped (the run ended, or its reader gave up).
        let reading = tracing::info_span!(
            target: crate::telemetry::otel::SPANS,
            parent: &span,
            "dust.event_stream",
            otel.name = "dust event stream",
            dust.operation = call.op,
        );
        let events = agent_event_stream(
            response.bytes_stream().boxed(),
            self.options.stream_idle_timeout,
            self.origin.clone(),
        );
        Ok(events
            .map(move |event| {
                let _open = &reading;
                event
            })
            .boxed())
    }

    /// Sends a call, retrying it when it is idempotent (GET, DELETE) and Dust answered a
    /// transient status (408, 429, 502, 503, 504) or the connection broke before an answer.
    ///
    /// Nothing else is retried. A POST (a conversation, a message, a document upsert) may have
    /// reached Dust even when no answer came back, and a second one would create a second
    /// conversation or run; the caller gets the error and decides. Timeouts are not retried
    /// either: a caller waiting on a dead upstream is better told at once than after several
    /// timeouts (and the circuit breaker, `breaker.rs`, stops the calls altogether).
    async fn send(&self, creds: &DustCredentials, call: &Call, stream: bool) -> Result<Response> {
        let authorization = bearer(creds)?;
        let accept = if stream {
            "text/event-stream"
        } else {
            "application/json"
        };
        let mut retries = 0u32;
        loop {
            let mut request = self
                .http
                .request(call.method.clone(), call.url.clone())
                .header(header::AUTHORIZATION, authorization.clone())
                .header(header::ACCEPT, accept);
            if let Some((body, content_type)) = &call.body {
                request = request
                    .header(header::CONTENT_TYPE, content_type)
                    .body(body.clone());
            }
            let attempt = call.attempt_span(retries);
            let started = Instant::now();
            let sent = if stream {
                // No total timeout: a stream legitimately lasts a minute. Bound the wait for
                // the headers instead; the body has its idle timeout.
                let limit = self.options.stream_open_timeout;
                match tokio::time::timeout(limit, request.send().instrument(attempt.clone())).await
                {
                    Ok(sent) => sent.map_err(|error| self.transport_error(call, &error)),
                    Err(_) => Err(self.timeout_error(call, limit)),
                }
            } else {
                request
                    .timeout(self.options.timeout)
                    .send()
                    .instrument(attempt.clone())
                    .await
                    .map_err(|error| self.transport_error(call, &error))
            };
            match &sent {
                Ok(response) => {
                    attempt.record("http.response.status_code", response.status().as_u16());
                    if !response.status().is_success() {
                        attempt.record("error.type", response.status().as_str());
                        attempt.record("otel.status_code", "error");
                    }
                }
                Err(error) => record_error(&attempt, error),
            }
            drop(attempt);
            let elapsed = started.elapsed();
            let latency_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
            let outcome: &'static str = match &sent {
                Ok(response) if response.status().is_success() => "ok",
                Ok(response) if response.status().is_client_error() => "client_error",
                Ok(_) => "server_error",
                Err(_) => "unreachable",
            };
            metrics::counter!("dust_requests_total", "op" => call.op, "outcome" => outcome)
                .increment(1);
            metrics::histogram!("dust_request_duration_seconds", "op" => call.op)
                .record(elapsed.as_secs_f64());
            let response = match sent {
                Ok(response) => response,
                Err(error) => {
                    tracing::debug!(
                        dust.op = call.op,
                        http.method = %call.method,
                        http.path = call.template,
                        latency_ms,
                        error.kind = ?error.kind,
                        "Dust call failed without an answer"
                    );
                    // A reset or refused connection of an idempotent call is tried again; a
                    // timeout is not (it already cost the whole budget).
                    if call.is_idempotent()
                        && error.kind == DustErrorKind::Network
                        && retries < self.options.max_retries
                        && let Some(delay) = self.retry_delay(retries, None)
                    {
                        tokio::time::sleep(delay).await;
                        retries += 1;
                        continue;
                    }
                    return Err(error);
                }
            };
            let status = response.status();
            tracing::debug!(
                dust.op = call.op,
                http.method = %call.method,
                http.path = call.template,
                http.status = status.as_u16(),
                latency_ms,
                retry = retries,
                "Dust call answered"
            );
            if status.is_success() {
                return Ok(response);
            }
            let error = self.failure(call, response).await;
            if call.is_idempotent()
                && error.is_retryable()
                && retries < self.options.max_retries
                && let Some(delay) = self.retry_delay(retries, error.retry_after)
            {
                tracing::debug!(
                    dust.op = call.op,
                    http.status = status.as_u16(),
                    delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    "retrying Dust call"
                );
                tokio::time::sleep(delay).await;
                retries += 1;
                continue;
            }
            return Err(error);
        }
    }

    /// Backoff before retry number `retry + 1`: Dust's `Retry-After` when it sent one (or no
    /// retry when it exceeds [`ClientOptions::max_retry_after`]), else exponential with jitter.
    fn retry_delay(&self, retry: u32, retry_after: Option<Duration>) -> Option<Duration> {
        match retry_after {
            Some(after) if after > self.options.max_retry_after => None,
            Some(after) => Some(after),
            None => {
                let backoff = self
                    .options
                    .retry_base_delay
                    .saturating_mul(1u32 << retry.min(16))
                    .min(MAX_BACKOFF);
                Some(backoff.mul_f64(rand::rng().random_range(0.8..=1.2)))
            }
        }
    }

    /// The error of a non-success answer.
    async fn failure(&self, call: &Call, mut response: Response) -> DustError {
        let status = response.status();
        if status.is_redirection() {
            // Only a redirect our policy refused gets here.
            let target = response
                .headers()
                .get(header::LOCATION)
                .and_then(|location| location.to_str().ok())
                .and_then(|location| response.url().join(location).ok())
                .map(|url| url.origin().ascii_serialization());
            let message = match target {
                Some(target) if target == self.origin => format!(
                    "Dust redirected the request to {} more than {MAX_REDIRECTS} times",
                    call.op
                ),
                Some(target) => format!(
                    "Dust redirected the request to {} to another origin ({target}); \
                     the redirect was not followed",
                    call.op
                ),
                None => format!(
                    "Dust answered the request to {} with an unusable redirect",
                    call.op
                ),
            };
            let mut error = DustError::new(DustErrorKind::Protocol, message);
            error.status = Some(status.as_u16());
            return error;
        }
        let retry_after = retry_after(&response);
        // A body we cannot read still leaves the status to go on.
        let body = read_limited(&mut response, MAX_ERROR_BODY_BYTES)
            .await
            .unwrap_or_else(|failure| match failure {
                ReadFailure::TooLarge(prefix) => prefix,
                ReadFailure::Transport(_) => Bytes::new(),
            });
        DustError::from_response(status.as_u16(), &body, retry_after)
    }

    fn read_error(&self, call: &Call, failure: ReadFailure) -> DustError {
        match failure {
            ReadFailure::TooLarge(_) => DustError::new(
                DustErrorKind::Protocol,
                format!(
                    "Dust's answer to {} is larger than {} MiB; it was refused",
                    call.op,
                    MAX_RESPONSE_BYTES / (1024 * 1024)
                ),
            ),
            ReadFailure::Transport(error) => self.transport_error(call, &error),
        }
    }

    fn timeout_error(&self, call: &Call, limit: Duration) -> DustError {
        DustError::new(
            DustErrorKind::Timeout,
            format!(
                "Dust at {} did not answer in time to {} (limit {:.1} s)",
                self.origin,
                call.op,
                limit.as_secs_f64()
            ),
        )
    }

    /// A reqwest failure, described by its root cause. reqwest's own `Display` is not used:
    /// it names the URL, and we prefer messages that name the operation and the origin only.
    fn transport_error(&self, call: &Call, error: &reqwest::Error) -> DustError {
        if error.is_timeout() {
            let limit = if error.is_connect() {
                self.options.connect_timeout
            } else {
                self.options.timeout
            };
            return self.timeout_error(call, limit);
        }
        let cause = root_cause(error);
        let message = if error.is_connect() {
            format!(
                "could not reach Dust at {} to {}: {cause}",
                self.origin, call.op
            )
        } else if error.is_body() || error.is_decode() {
            format!(
                "the connection to Dust at {} broke while reading the answer to {}: {cause}",
                self.origin, call.op
            )
        } else {
            format!(
                "the request to Dust at {} to {} failed: {cause}",
                self.origin, call.op
            )
        };
        DustError::new(DustErrorKind::Network, message)
    }
}

fn invalid_base(reason: &str) -> DustError {
    DustError::new(
        DustErrorKind::InvalidRequest,
        format!("invalid Dust base URL: {reason}"),
    )
}

/// `Authorization: Bearer <key>`, marked sensitive so that `http`'s `Debug` (and any layer
/// that honours the flag, such as HTTP/2 header compression) never shows it.
fn bearer(creds: &DustCredentials) -> Result<HeaderValue> {
    let mut value = HeaderValue::try_from(format!("Bearer {}", creds.api_key.expose_secret()))
        .map_err(|_| {
            DustError::new(
                DustErrorKind::Unauthorized,
                "the Dust API key contains characters that cannot be sent in an HTTP header",
            )
        })?;
    value.set_sensitive(true);
    Ok(value)
}

/// `Retry-After` in seconds (the form Dust sends); an HTTP date is ignored.
fn retry_after(response: &Response) -> Option<Duration> {
    let value = response.headers().get(header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The innermost error's message ("Connection refused (os error 111)").
pub(super) fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

enum ReadFailure {
    /// The body passed the limit; holds what was read up to it.
    TooLarge(Bytes),
    Transport(reqwest::Error),
}

/// Reads a body, refusing more than `limit` bytes.
async fn read_limited(
    response: &mut Response,
    limit: usize,
) -> std::result::Result<Bytes, ReadFailure> {
    let declared = response.content_length().unwrap_or(0);
    if usize::try_from(declared).map_or(true, |declared| declared > limit) {
        return Err(ReadFailure::TooLarge(Bytes::new()));
    }
    let mut body = Vec::with_capacity(usize::try_from(declared).unwrap_or(0));
    while let Some(chunk) = response.chunk().await.map_err(ReadFailure::Transport)? {
        if body.len() + chunk.len() > limit {
            let room = limit - body.len();
            body.extend_from_slice(&chunk[..room]);
            return Err(ReadFailure::TooLarge(body.into()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str) -> HttpDustClient {
        HttpDustClient::with_base_url(base).unwrap()
    }

    #[test]
    fn ids_are_single_segments() {
        let url = client("https://dust.tt")
            .endpoint(
                "w 1",
                &["documents", "a/b c?d#e", "../x", "back\\slash", "%2F"],
            )
            .unwrap();
        assert_eq!(
            url.as_str(),
            "https://dust.tt/api/v1/w/w%201/documents/a%2Fb%20c%3Fd%23e/..%2Fx/back%5Cslash/%252F"
        );
        assert_eq!(url.query(), None);
    }

    #[test]
    fn dot_and_empty_ids_are_refused() {
        let client = client("https://dust.tt");
        for bad in ["", ".", ".."] {
            let error = client.endpoint("w", &["documents", bad]).unwrap_err();
            assert_eq!(error.kind, DustErrorKind::InvalidRequest);
        }
    }

    #[test]
    fn base_path_prefix_is_kept() {
        for base in [
            "https://proxy.example/dust",
            "https://proxy.example/dust/?x=1#f",
        ] {
            let url = client(base).endpoint("w", &["spaces"]).unwrap();
            assert_eq!(url.as_str(), "https://proxy.example/dust/api/v1/w/w/spaces");
        }
    }

    #[test]
    fn bad_base_urls_are_refused() {
        for base in [
            "ftp://dust.tt",
            "mailto:x@y",
            "https://user:pw@dust.tt",
            "not a url",
        ] {
            assert!(HttpDustClient::with_base_url(base).is_err(), "{base}");
        }
    }

    #[test]
    fn retry_delays() {
        let client = client("https://dust.tt");
        let first = client.retry_delay(0, None).unwrap();
        assert!(first >= Duration::from_millis(200) && first <= Duration::from_millis(300));
        let capped = client.retry_delay(10, None).unwrap();
        assert!(capped <= MAX_BACKOFF.mul_f64(1.2));
        assert_eq!(
            client.retry_delay(0, Some(Duration::from_secs(2))),
            Some(Duration::from_secs(2))
        );
        assert_eq!(client.retry_delay(0, Some(Duration::from_secs(31))), None);
    }
}
