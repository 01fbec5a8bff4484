//! OAuth clients: dynamic registration (RFC 7591) and client ID metadata documents.
//!
//! Every client here is public (`token_endpoint_auth_method: none`): PKCE is what binds a code
//! to the client that asked for it. What a client is allowed is its exact redirect URIs, each
//! https, or http on a loopback host (native apps, RFC 8252 §7.3). A client id that is an URL
//! is a metadata document: fetched once ([`super::fetch`], SSRF-guarded), checked like a
//! registration (its `client_id` must be its own URL), and cached in the store briefly.
//!
//! Registration needs no credentials, so it is bounded (see the parent module): a `register`
//! bucket per client address, counted before anything is read, and a short life until the
//! client completes an authorization; the store evicts the oldest unused client past its cap.

use axum::{
    Json,
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};
use url::Url;

use super::{events, fetch, now_ms, oauth_error, store_down};
use crate::{
    audit::{AuditEvent, AuditResult, RequestInfo, Severity},
    http::rate_limit,
    state::AppState,
    store::oauth::OAuthClient,
};

/// Most redirect URIs one client registers.
pub(super) const MAX_REDIRECT_URIS: usize = 10;

/// Longest redirect URI.
pub(super) const MAX_REDIRECT_URI_LEN: usize = 2000;

/// Longest client name kept.
pub(super) const MAX_CLIENT_NAME: usize = 100;

/// Largest registration body.
pub(super) const MAX_REGISTRATION_BODY: usize = 16 * 1024;

/// How long a fetched metadata document is trusted before it is fetched again.
pub(super) const DOCUMENT_CACHE_MS: i64 = 5 * 60 * 1000;

/// Checks one redirect URI: absolute, https (or http on a loopback host), no fragment, no
/// credentials, bounded. The error is the description for the client.
pub(super) fn check_redirect_uri(text: &str) -> Result<(), &'static str> {
    if text.len() > MAX_REDIRECT_URI_LEN {
        return Err("a redirect URI is too long");
    }
    let url = Url::parse(text).map_err(|_| "a redirect URI is not an absolute URL")?;
    let host = url.host().ok_or("a redirect URI needs a host")?;
    match url.scheme() {
        "https" => {}
        "http" if fetch::is_loopback_host(&host) => {}
        _ => return Err("redirect URIs must use https (or http on a loopback host)"),
    }
    if url.fragment().is_some() {
        return Err("a redirect URI must not contain a fragment");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("a redirect URI must not contain credentials");
    }
    Ok(())
}

/// The client's name: printable, bounded, or none.
fn clean_name(value: Option<&Value>) -> Option<String> {
    let name = value?.as_str()?.trim();
    let name: String = name
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_CLIENT_NAME)
        .collect();
    (!name.is_empty()).then_some(name)
}

/// A metadata refusal: the RFC 7591 error code and its description.
type Problem = (&'static str, &'static str);

/// The metadata both paths check: redirect URIs (1 to 10, each valid), the grant and response
/// types (code and refresh only), a name. Returns the URIs and the name.
fn check_metadata(body: &Value) -> Result<(Vec<String>, Option<String>), Problem> {
    let Some(uris) = body.get("redirect_uris").and_then(Value::as_array) else {
        return Err(("invalid_redirect_uri", "redirect_uris is required"));
    };
    if uris.is_empty() || uris.len() > MAX_REDIRECT_URIS {
        return Err(("invalid_redirect_uri", "send 1 to 10 redirect_uris"));
    }
    let mut redirect_uris = Vec::with_capacity(uris.len());
    for uri in uris {
        let uri = uri
            .as_str()
            .ok_or(("invalid_redirect_uri", "redirect_uris must be strings"))?;
        check_redirect_uri(uri).map_err(|e| ("invalid_redirect_uri", e))?;
        redirect_uris.push(uri.to_owned());
    }
    let allowed = |field: &str, allowed: &[&str]| {
        body.get(field)
            .and_then(Value::as_array)
            .is_none_or(|list| {
                list.iter()
                    .all(|v| v.as_str().is_some_and(|v| allowed.contains(&v)))
            })
    };
    if !allowed("grant_types", &["authorization_code", "refresh_token"]) {
        return Err((
            "invalid_client_metadata",
            "only the authorization_code and refresh_token grants are supported",
        ));
    }
    if !allowed("response_types", &["code"]) {
        return Err((
            "invalid_client_metadata",
            "only the code response type is supported",
        ));
    }
    Ok((redirect_uris, clean_name(body.get("client_name"))))
}

fn refused(state: &AppState, info: &RequestInfo, client_id: Option<&str>, reason: &str) {
    state.auditor.record(
        AuditEvent::new(
            events::OauthClientRefused,
            Severity::Medium,
            "oauth client refused",
        )
        .request(info)
        .action("oauth_client")
        .result(AuditResult::Denied)
        .extra("reason", reason)
        .extra("client_id", client_id),
    );
}

/// `POST /oauth/register` (RFC 7591): a public client with its redirect URIs, unused until an
/// authorization completes (and forgotten after [`super::UNUSED_CLIENT_TTL`] if none does).
/// Each attempt counts in the client address's `register` bucket first.
pub(super) async fn register(State(state): State<AppState>, request: Request) -> Response {
    let info = super::super::request_info(&request);
    let key = rate_limit::client_key(&request);
    let bucket = match rate_limit::count_client(
        &state,
        &key,
        "register",
        super::REGISTRATION_QUOTA,
        super::REGISTRATION_WINDOW,
    )
    .await
    {
        Ok(bucket) => bucket,
        Err(error) => return error.into_response(),
    };
    let mut response = if bucket.exceeded() {
        too_many(&state, &info, bucket)
    } else {
        create(&state, &info, request).await
    };
    rate_limit::attach(&mut response, bucket);
    response
}

/// A registration refused by the `register` bucket: 429 with `Retry-After`, in the endpoint's
/// error shape; audited once per address and window (a flood is only counted).
fn too_many(state: &AppState, info: &RequestInfo, bucket: rate_limit::BucketState) -> Response {
    metrics::counter!("rate_limited_total", "bucket" => "register").increment(1);
    if bucket.first_refusal() {
        refused(state, info, None, "registration_rate_limited");
    }
    let retry_after = bucket.retry_after().as_secs().max(1);
    let mut response = oauth_error(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "too many client registrations from this address; retry after the number of seconds in Retry-After",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    response
}

/// The registration itself, past the bucket.
async fn create(state: &AppState, info: &RequestInfo, request: Request) -> Response {
    let body: Value = match super::super::read_json(request, MAX_REGISTRATION_BODY).await {
        Ok(body) => body,
        Err(e) => {
            refused(state, info, None, "body");
            return oauth_error(e.status, "invalid_client_metadata", &e.message);
        }
    };
    let (redirect_uris, client_name) = match check_metadata(&body) {
        Ok(found) => found,
        Err((error, description)) => {
            refused(state, info, None, description);
            return oauth_error(StatusCode::BAD_REQUEST, error, description);
        }
    };
    let now = now_ms(state);
    let client = OAuthClient {
        client_id: format!("mcp_client_{}", &super::random_secret()[..24]),
        client_name,
        redirect_uris,
        metadata_document: false,
        created_at_ms: now,
        expires_at_ms: now + super::ms(super::UNUSED_CLIENT_TTL),
        used: false,
    };
    if let Err(e) = state.oauth.put_client(&client, now).await {
        return store_down(&e);
    }
    state.auditor.record(
        AuditEvent::new(
            events::OauthClientRegistered,
            Severity::Info,
            "oauth client registered",
        )
        .request(info)
        .action("oauth_register")
        .result(AuditResult::Success)
        .resource("oauth_client", &client.client_id)
        .extra("client_name", client.client_name.as_deref()),
    );
    let mut response = (
        StatusCode::CREATED,
        Json(json!({
            "client_id": client.client_id,
            "client_id_issued_at": now / 1000,
            "client_name": client.client_name,
            "redirect_uris": client.redirect_uris,
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
        })),
    )
        .into_response();
    super::no_store(&mut response);
    response
}

/// Why a client could not be found.
#[derive(Debug)]
pub(super) enum Lookup {
    /// Unknown id, or a metadata document refused: the description.
    Refused(&'static str),
    Store(crate::store::StoreError),
}

/// The client `client_id`: registered here, cached, or (a URL) its metadata document fetched
/// now. A refused document is audited.
pub(super) async fn find(
    state: &AppState,
    client_id: &str,
    info: &RequestInfo,
) -> Result<OAuthClient, Lookup> {
    let now = now_ms(state);
    if client_id.is_empty() || client_id.len() > fetch::MAX_URL_LEN {
        return Err(Lookup::Refused("unknown client_id"));
    }
    match state.oauth.get_client(client_id, now).await {
        Ok(Some(client)) => return Ok(client),
        Ok(None) => {}
        Err(e) => return Err(Lookup::Store(e)),
    }
    if !(client_id.starts_with("https://") || client_id.starts_with("http://")) {
        return Err(Lookup::Refused("unknown client_id"));
    }
    // Loopback documents: only the listed development origins, never in production.
    let loopback_origins: &[String] = if state.config.is_production() {
        &[]
    } else {
        &state.config.oauth_loopback_metadata_origins
    };
    let document = async {
        let url = fetch::check_url(client_id, loopback_origins)?;
        let bytes = fetch::fetch(&url, loopback_origins).await?;
        let body: Value = serde_json::from_slice(&bytes)
            .map_err(|_| fetch::Refused("the client metadata document is not JSON"))?;
        if body.get("client_id").and_then(Value::as_str) != Some(client_id) {
            return Err(fetch::Refused(
                "the client metadata document's client_id is not its own URL",
            ));
        }
        check_metadata(&body).map_err(|(_, description)| fetch::Refused(description))
    }
    .await;
    let (redirect_uris, client_name) = match document {
        Ok(found) => found,
        Err(fetch::Refused(reason)) => {
            refused(state, info, Some(client_id), reason);
            return Err(Lookup::Refused(reason));
        }
    };
    let client = OAuthClient {
        client_id: client_id.to_owned(),
        client_name,
        redirect_uris,
        metadata_document: true,
        created_at_ms: now,
        expires_at_ms: now + DOCUMENT_CACHE_MS,
        used: false,
    };
    state
        .oauth
        .put_client(&client, now)
        .await
        .map_err(Lookup::Store)?;
    state.auditor.record(
        AuditEvent::new(
            events::OauthClientRegistered,
            Severity::Info,
            "oauth client metadata document accepted",
        )
        .request(info)
        .action("oauth_client_document")
        .result(AuditResult::Success)
        .resource("oauth_client", client_id),
    );
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::check_redirect_uri;

    #[test]
    fn redirect_uris_are_https_or_loopback_http() {
        for ok in [
            "https://claude.ai/api/mcp/auth_callback",
            "http://127.0.0.1:33418/callback",
            "http://localhost:8080/cb",
            "http://[::1]:9/cb",
        ] {
            assert!(check_redirect_uri(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://evil.example/cb",
            "javascript:alert(1)",
            "https://claude.ai/cb#frag",
            "https://u:p@claude.ai/cb",
            "/relative",
            "custom-scheme://cb",
        ] {
            assert!(check_redirect_uri(bad).is_err(), "{bad}");
        }
    }
}
