//! The security audit trail: what happened, to whom, from where, and with what result.
//!
//! An [`AuditEvent`] is one record in the vocabulary of the OWASP logging cheat sheet
//! ([`AuditEventType`]) with every field the security guide lists (catalogue L7). It is built
//! with a small builder, and **every string is masked and bounded when it is set**
//! ([`crate::mask`]): the session id is kept only as a fingerprint, the user agent and path are
//! escaped and truncated, `extra` goes through [`mask::mask_json`]. A caller therefore cannot
//! leak a secret into the trail by passing the wrong thing.
//!
//! An [`Auditor`] writes records as JSON lines to a sink ([`AuditSink`]) from a thread of its
//! own. Recording never blocks and never awaits: the queue is bounded, a full queue drops the
//! record and counts it, and the count is itself written as an `audit_overflow` record as soon
//! as there is room (catalogue L8). See [`Auditor`] for why a thread and not a task.
//!
//! What never goes in: API keys, JWTs, cookies, session ids, request or response bodies. Free
//! text that looks like SQL or script injection is *noted* ([`detect_suspicious`],
//! `malicious_input`), never blocked (decision 6.10, catalogue V11).

pub mod alert;
mod detect;
pub mod recent;
mod writer;

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::mask;

pub use detect::{SCRIPT_INJECTION, SQL_INJECTION, detect_suspicious};
pub use recent::{AuditQuery, MemoryRecentAudit, RECENT_AUDIT_CAPACITY, RecentAudit};
pub use writer::{
    AUDIT_QUEUE_CAPACITY, AuditError, AuditOptions, AuditSink, Auditor, MemoryAudit, Result,
};

/// Longest message kept, in bytes; the rest is cut with a `…[truncated N bytes]` marker.
pub const MAX_MESSAGE_BYTES: usize = 1024;

/// Longest user agent kept, in bytes (catalogue L7, L8: a 1 MB user agent stays a short field).
pub const MAX_USER_AGENT_BYTES: usize = 256;

/// Longest request path kept, in bytes (query included, after masking).
pub const MAX_PATH_BYTES: usize = 1024;

/// Longest short field kept, in bytes: ids, username, method, resource, action.
pub const MAX_FIELD_BYTES: usize = 256;

/// Longest string kept inside `extra`, in bytes.
pub const MAX_EXTRA_STRING_BYTES: usize = 1024;

/// What happened: the OWASP logging vocabulary, serialised in snake case (`authn_login_fail`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditEventType {
    /// A login (API key exchange, console sign-in) succeeded.
    AuthnLoginSuccess,
    /// A login failed (unknown or malformed key, lockout).
    AuthnLoginFail,
    /// A token was refreshed.
    AuthnTokenRefreshed,
    /// A token was revoked (logout, admin action).
    AuthnTokenRevoked,
    /// A bad or expired token was presented.
    AuthnTokenInvalid,
    /// A revoked token was presented again (logged out, refreshed, or its key refused): a
    /// stolen-token signal, high severity.
    AuthnTokenReuse,
    /// A login was refused because the address or key is locked out after repeated failures.
    AuthnLoginFailMax,
    /// An authenticated caller asked for something its permissions do not allow.
    AuthzFail,
    /// A rate limit was exceeded.
    RatelimitExceeded,
    /// A request was rejected by validation (identifier allowlist, size, shape).
    InputValidationFail,
    /// Free text looked like SQL or script injection. Log-only: the text was passed on.
    MaliciousInput,
    /// A browser session was created.
    SessionCreated,
    /// A browser session ended (logout, expiry, eviction).
    SessionEnded,
    /// A resource was read.
    ResourceAccess,
    /// A resource was created, changed or deleted.
    ResourceModified,
    /// A CSRF check failed.
    CsrfFail,
    /// The Dust API failed or could not be reached.
    UpstreamFailure,
    /// The configuration is weak or unusual (debug logging in production, …).
    ConfigWarning,
    /// Audit records were dropped because the queue was full.
    AuditOverflow,
    /// An OAuth client was registered (RFC 7591) or its metadata document accepted.
    OauthClientRegistered,
    /// An OAuth client registration or metadata document was refused (bad redirect URIs, an
    /// address that must not be fetched, …).
    OauthClientRefused,
    /// An authorization request or consent was refused (unknown client, redirect URI mismatch,
    /// PKCE missing, wrong resource, replayed `state`, …).
    OauthAuthorizeFail,
    /// A person approved a client on the consent page; a code was issued.
    OauthConsentGranted,
    /// A person declined a client on the consent page.
    OauthConsentDenied,
    /// The token endpoint issued tokens (code exchange or refresh).
    OauthTokenIssued,
    /// The token endpoint refused a grant (bad verifier, replayed code, reused refresh token…).
    OauthTokenFail,
    /// A person (or the `DUST_TOOL_APPROVAL` policy) approved an agent's tool.
    AgentActionApproved,
    /// An agent's tool was refused: by the person, by the policy, or because nobody could be
    /// asked.
    AgentActionRejected,
    /// A person answered an agent's question (an option, their own words, or both).
    AgentQuestionAnswered,
    /// An agent run became a task (MCP Tasks extension).
    TaskCreated,
    /// A task's run ended (succeeded or failed), as first seen by `tasks/get`.
    TaskCompleted,
    /// A task was cancelled (`tasks/cancel`; the Dust message is cancelled too).
    TaskCancelled,
}

impl AuditEventType {
    /// The snake-case name, as written in the record.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthnLoginSuccess => "authn_login_success",
            Self::AuthnLoginFail => "authn_login_fail",
            Self::AuthnTokenRefreshed => "authn_token_refreshed",
            Self::AuthnTokenRevoked => "authn_token_revoked",
            Self::AuthnTokenInvalid => "authn_token_invalid",
            Self::AuthnTokenReuse => "authn_token_reuse",
            Self::AuthnLoginFailMax => "authn_login_fail_max",
            Self::AuthzFail => "authz_fail",
            Self::RatelimitExceeded => "ratelimit_exceeded",
            Self::InputValidationFail => "input_validation_fail",
            Self::MaliciousInput => "malicious_input",
            Self::SessionCreated => "session_created",
            Self::SessionEnded => "session_ended",
            Self::ResourceAccess => "resource_access",
            Self::ResourceModified => "resource_modified",
            Self::CsrfFail => "csrf_fail",
            Self::UpstreamFailure => "upstream_failure",
            Self::ConfigWarning => "config_warning",
            Self::AuditOverflow => "audit_overflow",
            Self::OauthClientRegistered => "oauth_client_registered",
            Self::OauthClientRefused => "oauth_client_refused",
            Self::OauthAuthorizeFail => "oauth_authorize_fail",
            Self::OauthConsentGranted => "oauth_consent_granted",
            Self::OauthConsentDenied => "oauth_consent_denied",
            Self::OauthTokenIssued => "oauth_token_issued",
            Self::OauthTokenFail => "oauth_token_fail",
            Self::AgentActionApproved => "agent_action_approved",
            Self::AgentActionRejected => "agent_action_rejected",
            Self::AgentQuestionAnswered => "agent_question_answered",
            Self::TaskCreated => "task_created",
            Self::TaskCompleted => "task_completed",
            Self::TaskCancelled => "task_cancelled",
        }
    }
}

/// How much an operator should care, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Routine (a login, a resource read).
    Info,
    /// Worth a look in aggregate (a suspicious-looking input, a validation failure).
    Low,
    /// Worth a look (a failed login, a denied permission, a rate limit).
    Medium,
    /// Act soon (repeated failures, CSRF failures, lost audit records).
    High,
    /// Act now.
    Critical,
}

impl Severity {
    /// The snake-case name, as written in the record.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

/// How the audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditResult {
    /// It was done.
    Success,
    /// It was attempted and failed (bad credentials, upstream error).
    Failure,
    /// It was refused by policy (permission, rate limit, CSRF).
    Denied,
}

impl AuditResult {
    /// The snake-case name, as written in the record.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Denied => "denied",
        }
    }
}

/// What the HTTP layer knows about a request, in plain form; [`AuditEvent::request`] masks and
/// bounds it. `ip` is the derived client address (after the trusted-proxy rule).
#[derive(Debug, Clone, Default)]
pub struct RequestInfo {
    /// The client address, as derived from the peer and trusted forwarded headers.
    pub ip: Option<IpAddr>,
    /// The raw `User-Agent` header.
    pub user_agent: Option<String>,
    /// The HTTP method.
    pub method: Option<String>,
    /// The request target (path and query).
    pub path: Option<String>,
    /// The request id (`X-Request-Id`) that ties the record to the access log.
    pub request_id: Option<String>,
}

/// The address a request is attributed to (a request extension set by the HTTP layer after
/// its trusted-proxy rule, `crate::http::client_ip`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl RequestInfo {
    /// What the audit log records about an HTTP request: the client address ([`ClientIp`],
    /// else the peer), user agent, method, the path the client sent (axum's `OriginalUri` where
    /// a router recorded it: a nested router strips its prefix) and the request id.
    #[must_use]
    pub fn from_parts(parts: &axum::http::request::Parts) -> Self {
        Self::from_http(&parts.method, &parts.uri, &parts.headers, &parts.extensions)
    }

    /// [`Self::from_parts`] from the pieces of a request.
    #[must_use]
    pub fn from_http(
        method: &axum::http::Method,
        uri: &axum::http::Uri,
        headers: &axum::http::HeaderMap,
        extensions: &axum::http::Extensions,
    ) -> Self {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Self {
            ip: extensions.get::<ClientIp>().map(|c| c.0).or_else(|| {
                extensions
                    .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                    .map(|c| c.0.ip())
            }),
            user_agent: header("user-agent"),
            method: Some(method.to_string()),
            path: Some(
                extensions
                    .get::<axum::extract::OriginalUri>()
                    .map_or(uri, |original| &original.0)
                    .path()
                    .to_owned(),
            ),
            request_id: header("x-request-id"),
        }
    }
}

/// One audit record. Build it with [`AuditEvent::new`] and the builder methods; every string is
/// masked and bounded on the way in, so the fields hold only what may be written.
///
/// Serialised, every field is present (`null` when unknown) so that log pipelines see one
/// stable shape.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEvent {
    timestamp: String,
    event_type: AuditEventType,
    severity: Severity,
    message: String,
    user_id: Option<String>,
    username: Option<String>,
    /// The caller's workspace, when known: the audit query (`GET /api/v1/audit`) shows a
    /// workspace only its own records.
    workspace_id: Option<String>,
    session_id_hash: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    method: Option<String>,
    path: Option<String>,
    request_id: Option<String>,
    resource_type: Option<String>,
    resource_id: Option<String>,
    action: Option<String>,
    result: Option<AuditResult>,
    extra: Map<String, Value>,
}

impl AuditEvent {
    /// A new record, stamped now. The message should make sense on its own.
    pub fn new(event_type: AuditEventType, severity: Severity, message: impl AsRef<str>) -> Self {
        Self {
            timestamp: rfc3339_millis(SystemTime::now()),
            event_type,
            severity,
            message: mask::sanitize_for_log(message.as_ref(), MAX_MESSAGE_BYTES),
            user_id: None,
            username: None,
            workspace_id: None,
            session_id_hash: None,
            ip: None,
            user_agent: None,
            method: None,
            path: None,
            request_id: None,
            resource_type: None,
            resource_id: None,
            action: None,
            result: None,
            extra: Map::new(),
        }
    }

    /// Who: the stable user id (a pseudonym, never a key) and the asserted username if known.
    #[must_use]
    pub fn user(mut self, user_id: &str, username: Option<&str>) -> Self {
        self.user_id = Some(short(user_id));
        self.username = username.map(short);
        self
    }

    /// Which workspace the record belongs to.
    #[must_use]
    pub fn workspace(mut self, workspace_id: &str) -> Self {
        self.workspace_id = Some(short(workspace_id));
        self
    }

    /// Who, for an authenticated caller: its user id, username and workspace.
    #[must_use]
    pub fn principal(self, principal: &crate::auth::Principal) -> Self {
        self.user(&principal.user_id, Some(&principal.username))
            .workspace(&principal.workspace_id)
    }

    /// Which browser session: only its [`mask::fingerprint`] is kept, never the id.
    #[must_use]
    pub fn session(mut self, session_id: &str) -> Self {
        self.session_id_hash = Some(mask::fingerprint(session_id));
        self
    }

    /// Where from: client address, user agent, method, path and request id.
    #[must_use]
    pub fn request(mut self, request: &RequestInfo) -> Self {
        self.ip = request.ip.map(|ip| ip.to_string());
        self.user_agent = request
            .user_agent
            .as_deref()
            .map(|ua| mask::sanitize_for_log(ua, MAX_USER_AGENT_BYTES));
        self.method = request.method.as_deref().map(short);
        self.path = request
            .path
            .as_deref()
            .map(|path| mask::sanitize_url_for_log(path, MAX_PATH_BYTES));
        self.request_id = request.request_id.as_deref().map(short);
        self
    }

    /// What was touched: a resource kind (`agent`, `conversation`, `data_source`) and its id.
    #[must_use]
    pub fn resource(mut self, resource_type: &str, resource_id: &str) -> Self {
        self.resource_type = Some(short(resource_type));
        self.resource_id = Some(short(resource_id));
        self
    }

    /// What was done, as a verb phrase or tool name (`run_agent`, `login`).
    #[must_use]
    pub fn action(mut self, action: &str) -> Self {
        self.action = Some(short(action));
        self
    }

    /// How it ended.
    #[must_use]
    pub fn result(mut self, result: AuditResult) -> Self {
        self.result = Some(result);
        self
    }

    /// One more detail under `extra`, with a dotted name (`tool.name`, `dust.status`). The
    /// value is masked by its key and content ([`mask::mask_json`]) and its strings bounded.
    #[must_use]
    pub fn extra(mut self, key: &str, value: impl Into<Value>) -> Self {
        let mut one = Map::new();
        one.insert(short(key), value.into());
        let mut one = Value::Object(one);
        mask::mask_json(&mut one);
        bound_strings(&mut one);
        if let Value::Object(one) = one {
            self.extra.extend(one);
        }
        self
    }

    /// When it happened, in the audit format (`YYYY-MM-DDTHH:MM:SS.mmmZ`).
    pub fn timestamp(&self) -> &str {
        &self.timestamp
    }

    /// The kind of event.
    pub fn event_type(&self) -> AuditEventType {
        self.event_type
    }

    /// How much it matters.
    pub fn severity(&self) -> Severity {
        self.severity
    }

    /// The workspace the record belongs to, if known.
    pub fn workspace_id(&self) -> Option<&str> {
        self.workspace_id.as_deref()
    }

    /// The (masked) message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The client address, if the event came from a request.
    pub fn ip(&self) -> Option<&str> {
        self.ip.as_deref()
    }

    /// The user pseudonym, if known.
    pub fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    /// The kind of resource touched, if any (`cors` for a refused preflight).
    pub fn resource_type(&self) -> Option<&str> {
        self.resource_type.as_deref()
    }
}

/// A short field: masked, escaped, bounded to [`MAX_FIELD_BYTES`].
fn short(text: &str) -> String {
    mask::sanitize_for_log(text, MAX_FIELD_BYTES)
}

/// Escapes and bounds every string inside a JSON value (already masked).
fn bound_strings(value: &mut Value) {
    match value {
        Value::String(s) => *s = mask::sanitize_for_log(s, MAX_EXTRA_STRING_BYTES),
        Value::Array(items) => items.iter_mut().for_each(bound_strings),
        Value::Object(map) => map.values_mut().for_each(bound_strings),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// `2024-05-01T12:34:56.789Z`: UTC, RFC 3339, millisecond precision.
///
/// Formatted by hand (days to civil date, after Howard Hinnant's algorithm) rather than adding
/// a date crate for one format.
/// `at` as UTC RFC 3339 with milliseconds, ending in `Z` (the audit timestamp format).
pub fn rfc3339_millis(at: SystemTime) -> String {
    let since_epoch = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since_epoch.as_secs();
    let (year, month, day) = civil_from_days(secs / 86_400);
    let of_day = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60,
        since_epoch.subsec_millis()
    )
}

/// [`rfc3339_millis`] of a time in milliseconds since the epoch (before it: the epoch).
#[must_use]
pub fn rfc3339_epoch_ms(ms: i64) -> String {
    rfc3339_millis(UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
}

/// Year, month (1–12) and day (1–31) of a day count since 1970-01-01.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests;
