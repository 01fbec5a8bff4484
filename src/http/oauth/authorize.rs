//! The authorization endpoint and its consent page.
//!
//! `GET /oauth/authorize` checks the client and the exact redirect URI first, then everything
//! else: `response_type=code`, a PKCE S256 challenge (`plain` is refused), `resource` equal to
//! the canonical `/mcp` URI, a `state` not already spent, the scopes. It then stores a pending
//! consent and shows the page, with a form token that is an HMAC over the consent id and a
//! random cookie set with it (`__Host-mcp.oauth` in production): a forged post from another
//! site has neither.
//!
//! **No error of the `GET` is redirected**, not even once the redirect URI is verified: every
//! refusal is our own error page (400, audited `oauth_authorize_fail`). RFC 6749 §4.1.2.1 only
//! forbids redirecting errors about the client or the redirect URI, but registration here is
//! open, so "a registered redirect URI" is any address anyone chose a minute ago: bouncing a
//! browser there straight from a link to our host would make it an open redirect (RFC 9700
//! §4.11.1). A browser is sent to a redirect URI only from the consent form's own submission,
//! i.e. after the person has seen our page naming where it goes: the code, `access_denied`
//! when they deny, or `invalid_request` when the `state` was spent meanwhile. (OAuth 2.1 lets
//! a server show errors to the person instead of redirecting them; conforming clients, the
//! SDKs among them, never send an invalid request on purpose, so nothing relies on the
//! redirect.)
//!
//! `POST /oauth/authorize` checks Fetch Metadata and `Origin`, the cookie and the form token
//! (a failure is `csrf_fail`), takes the pending consent (once), then runs the login's checks
//! on the key (format first, lockout, Dust; every refusal audited), spends `state`, and
//! redirects with a single-use code, `state` and `iss` (RFC 9207).

use std::collections::HashMap;

use axum::{
    body::Bytes,
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::Mac;
use secrecy::SecretString;
use subtle::ConstantTimeEq;
use url::Url;

use super::{CONSENT_TTL, events, ms, now_ms, page, random_secret};
use crate::{
    audit::{AuditEvent, AuditEventType, AuditResult, RequestInfo, Severity},
    auth::{Permission, Policy},
    state::AppState,
    store::oauth::{CodeRecord, Grant, OAuthClient, PendingAuthorization, secret_hash},
};

/// The consent cookie in development, and with the `__Host-` prefix in production.
const COOKIE: &str = "mcp.oauth";
const COOKIE_HOST: &str = "__Host-mcp.oauth";

/// Largest consent form.
const MAX_FORM_BYTES: usize = 16 * 1024;

/// Longest `state` accepted.
const MAX_STATE_LEN: usize = 512;

/// Domain separation of the form token's HMAC.
const LABEL: &[u8] = b"mcp-dust-server/oauth-consent/v1";

fn cookie_name(state: &AppState) -> &'static str {
    if state.config.is_production() {
        COOKIE_HOST
    } else {
        COOKIE
    }
}

fn set_cookie(state: &AppState, value: Option<&str>) -> HeaderValue {
    let mut cookie = format!(
        "{}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        cookie_name(state),
        value.unwrap_or(""),
        if value.is_some() {
            CONSENT_TTL.as_secs()
        } else {
            0
        }
    );
    if state.config.is_production() {
        cookie.push_str("; Secure");
    }
    HeaderValue::from_str(&cookie).expect("base64url cookie values are valid headers")
}

/// The form token of consent `pending_id` for the browser holding `cookie`.
fn form_token(state: &AppState, pending_id: &str, cookie: &str) -> String {
    let mut mac = crate::crypto::hmac_sha256(state.keys.csrf_signing());
    mac.update(LABEL);
    mac.update(&[0]);
    mac.update(pending_id.as_bytes());
    mac.update(&[0]);
    mac.update(cookie.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// Form or query parameters; a repeated one (other than `scope` in the form) is refused
/// (RFC 6749 §3.1).
fn parameters(bytes: &[u8]) -> Result<(HashMap<String, String>, Vec<String>), String> {
    let mut single = HashMap::new();
    let mut scopes = Vec::new();
    for (name, value) in url::form_urlencoded::parse(bytes) {
        if name == "scope" {
            scopes.push(value.into_owned());
            continue;
        }
        if single
            .insert(name.to_string(), value.into_owned())
            .is_some()
        {
            return Err(format!("the parameter {name} is repeated"));
        }
    }
    Ok((single, scopes))
}

fn fail(state: &AppState, info: &RequestInfo, client_id: Option<&str>, reason: &str) {
    state.auditor.record(
        AuditEvent::new(
            events::OauthAuthorizeFail,
            Severity::Medium,
            "oauth authorization refused",
        )
        .request(info)
        .action("oauth_authorize")
        .result(AuditResult::Denied)
        .extra("reason", reason)
        .extra("client_id", client_id),
    );
    metrics::counter!("oauth_failures_total", "step" => "authorize").increment(1);
}

/// `redirect_uri` with `params` added to its query.
fn redirect_to(redirect_uri: &str, params: &[(&str, &str)]) -> Response {
    let Ok(mut url) = Url::parse(redirect_uri) else {
        return page::error(StatusCode::BAD_REQUEST, "the redirect URI is not valid");
    };
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in params {
            query.append_pair(name, value);
        }
    }
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(location) = HeaderValue::from_str(url.as_str()) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// An error sent back to the (verified) redirect URI: only from the consent form's submission.
fn redirect_error(
    state: &AppState,
    redirect_uri: &str,
    client_state: Option<&str>,
    error: &str,
    description: &str,
) -> Response {
    let mut params = vec![
        ("error", error),
        ("error_description", description),
        ("iss", state.public_url.as_str()),
    ];
    if let Some(s) = client_state {
        params.push(("state", s));
    }
    redirect_to(redirect_uri, &params)
}

/// The origin and host of a (validated) redirect URI, for the page and its CSP.
fn origin_and_host(redirect_uri: &str) -> (String, String) {
    Url::parse(redirect_uri).map_or_else(
        |_| (String::new(), String::new()),
        |url| {
            (
                url.origin().ascii_serialization(),
                url.host_str().unwrap_or_default().to_owned(),
            )
        },
    )
}

/// A PKCE S256 challenge: 43 base64url characters (the SHA-256 digest).
fn valid_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `GET /oauth/authorize`.
pub(super) async fn show(State(state): State<AppState>, request: Request) -> Response {
    let info = super::super::request_info(&request);
    let query = request.uri().query().unwrap_or("").as_bytes().to_vec();
    let (params, scopes) = match parameters(&query) {
        Ok(found) => found,
        Err(problem) => {
            fail(&state, &info, None, "repeated_parameter");
            return page::error(StatusCode::BAD_REQUEST, &problem);
        }
    };
    let get = |name: &str| params.get(name).map(String::as_str);
    let Some(client_id) = get("client_id") else {
        fail(&state, &info, None, "missing_client_id");
        return page::error(StatusCode::BAD_REQUEST, "client_id is required");
    };
    let client = match super::clients::find(&state, client_id, &info).await {
        Ok(client) => client,
        Err(super::clients::Lookup::Store(e)) => return super::store_down(&e),
        Err(super::clients::Lookup::Refused(reason)) => {
            fail(&state, &info, Some(client_id), "unknown_client");
            return page::error(StatusCode::BAD_REQUEST, reason);
        }
    };
    let redirect_uri = match get("redirect_uri") {
        Some(uri) if client.redirect_uris.iter().any(|r| r == uri) => uri.to_owned(),
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        Some(_) => {
            fail(&state, &info, Some(client_id), "redirect_uri_mismatch");
            return page::error(
                StatusCode::BAD_REQUEST,
                "redirect_uri is not one of this client's registered redirect URIs",
            );
        }
        None => {
            fail(&state, &info, Some(client_id), "missing_redirect_uri");
            return page::error(StatusCode::BAD_REQUEST, "redirect_uri is required");
        }
    };
    // The client and redirect URI are verified, yet no person has seen our page: errors are
    // still shown here, never sent to the redirect URI (see the module doc).
    let client_state = get("state");
    let refuse = |error: &str, description: &str, reason: &str| {
        fail(&state, &info, Some(client_id), reason);
        page::error(StatusCode::BAD_REQUEST, &format!("{description} ({error})"))
    };
    if client_state.is_some_and(|s| s.len() > MAX_STATE_LEN) {
        return refuse("invalid_request", "state is too long", "state_too_long");
    }
    if get("response_type") != Some("code") {
        return refuse(
            "unsupported_response_type",
            "only response_type=code is supported",
            "response_type",
        );
    }
    match get("code_challenge_method") {
        Some("S256") => {}
        Some(_) => {
            return refuse(
                "invalid_request",
                "only code_challenge_method=S256 is supported",
                "pkce_method",
            );
        }
        None => {
            return refuse(
                "invalid_request",
                "code_challenge_method=S256 is required (PKCE)",
                "pkce_missing",
            );
        }
    }
    let Some(challenge) = get("code_challenge").filter(|c| valid_challenge(c)) else {
        return refuse(
            "invalid_request",
            "a code_challenge (43 base64url characters, S256) is required",
            "pkce_missing",
        );
    };
    let resource = super::resource(&state);
    if let Some(asked) = get("resource")
        && asked != resource
    {
        return refuse(
            "invalid_target",
            "resource must be this server's /mcp URI",
            "resource_mismatch",
        );
    }
    let now = now_ms(&state);
    if let Some(s) = client_state {
        match state.oauth.state_claimed(client_id, s, now).await {
            Ok(false) => {}
            Ok(true) => {
                return refuse(
                    "invalid_request",
                    "this state was already used; start a new authorization",
                    "state_replayed",
                );
            }
            Err(e) => return super::store_down(&e),
        }
    }
    let Some(offered) = offered_scopes(&state, &scopes, get("scope")) else {
        return refuse(
            "invalid_scope",
            "none of the requested scopes is known to this server",
            "scope",
        );
    };
    let pending_id = random_secret();
    let cookie = random_secret();
    let pending = PendingAuthorization {
        client_id: client.client_id.clone(),
        redirect_uri: redirect_uri.clone(),
        state: client_state.map(str::to_owned),
        code_challenge: challenge.to_owned(),
        scopes: offered,
        resource,
        cookie_hash: secret_hash(&cookie),
        expires_at_ms: now + ms(CONSENT_TTL),
    };
    if let Err(e) = state
        .oauth
        .put_pending(&secret_hash(&pending_id), &pending, now)
        .await
    {
        return super::store_down(&e);
    }
    let mut response = render(&state, &client, &pending, &pending_id, &cookie, None, None);
    response
        .headers_mut()
        .append(header::SET_COOKIE, set_cookie(&state, Some(&cookie)));
    response
}

/// The permissions to offer: the requested known names (the `scope` parameter, space
/// separated), or the policy's default grant when none was requested. `None` when scopes were
/// requested and none is known.
fn offered_scopes(state: &AppState, extra: &[String], scope: Option<&str>) -> Option<Vec<String>> {
    let requested: Vec<&str> = scope
        .into_iter()
        .chain(extra.iter().map(String::as_str))
        .flat_map(str::split_whitespace)
        .collect();
    if requested.is_empty() {
        return Some(
            state
                .policy
                .default_grant()
                .names()
                .into_iter()
                .map(str::to_owned)
                .collect(),
        );
    }
    let offered: Vec<String> = Permission::ALL
        .iter()
        .map(|p| p.as_str())
        .filter(|name| requested.contains(name))
        .map(str::to_owned)
        .collect();
    (!offered.is_empty()).then_some(offered)
}

fn render(
    state: &AppState,
    client: &OAuthClient,
    pending: &PendingAuthorization,
    pending_id: &str,
    cookie: &str,
    workspace_id: Option<&str>,
    problem: Option<(StatusCode, &str)>,
) -> Response {
    let (origin, host) = origin_and_host(&pending.redirect_uri);
    let token = form_token(state, pending_id, cookie);
    let default_workspace = state.config.dust_workspace_id.as_deref();
    page::consent(
        problem.map_or(StatusCode::OK, |(status, _)| status),
        &page::Consent {
            client_name: client.client_name.as_deref(),
            client_id: &client.client_id,
            redirect_host: &host,
            redirect_origin: &origin,
            scopes: &pending.scopes,
            pending_id,
            form_token: &token,
            workspace_id: workspace_id.or(default_workspace),
            problem: problem.map(|(_, p)| p),
        },
    )
}

fn csrf_refused(state: &AppState, info: &RequestInfo, reason: &'static str) -> Response {
    state.auditor.record(
        AuditEvent::new(
            AuditEventType::CsrfFail,
            Severity::High,
            "oauth consent refused by the CSRF check",
        )
        .request(info)
        .action("oauth_consent")
        .result(AuditResult::Denied)
        .extra("reason", reason),
    );
    metrics::counter!("csrf_failures_total", "reason" => reason).increment(1);
    page::error(
        StatusCode::FORBIDDEN,
        "this consent form could not be verified (reload the authorization page and try again)",
    )
}

/// `POST /oauth/authorize`: the person's answer on the consent page.
pub(super) async fn consent(State(state): State<AppState>, request: Request) -> Response {
    let info = super::super::request_info(&request);
    let headers = request.headers().clone();
    if let Err(reason) = super::super::csrf::check_origin(&state, &headers) {
        return csrf_refused(&state, &info, reason);
    }
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        fail(&state, &info, None, "content_type");
        return page::error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the consent form must be posted as application/x-www-form-urlencoded",
        );
    }
    let Ok(bytes): Result<Bytes, _> =
        axum::body::to_bytes(request.into_body(), MAX_FORM_BYTES).await
    else {
        fail(&state, &info, None, "form_too_large");
        return page::error(StatusCode::PAYLOAD_TOO_LARGE, "the form is too large");
    };
    let (mut form, ticked) = match parameters(&bytes) {
        Ok(found) => found,
        Err(problem) => {
            fail(&state, &info, None, "repeated_parameter");
            return page::error(StatusCode::BAD_REQUEST, &problem);
        }
    };
    let cookie = match cookie_value(&headers, cookie_name(&state)) {
        Ok(cookie) => cookie,
        Err(reason) => return csrf_refused(&state, &info, reason),
    };
    let (Some(pending_id), Some(token)) = (form.get("consent"), form.get("csrf_token")) else {
        return csrf_refused(&state, &info, "missing_token");
    };
    let expected = form_token(&state, pending_id, &cookie);
    if !bool::from(expected.as_bytes().ct_eq(token.as_bytes())) {
        return csrf_refused(&state, &info, "bad_token");
    }
    let now = now_ms(&state);
    let pending = match state
        .oauth
        .take_pending(&secret_hash(pending_id), now)
        .await
    {
        Ok(Some(pending)) if pending.cookie_hash == secret_hash(&cookie) => pending,
        Ok(_) => {
            fail(&state, &info, None, "consent_spent_or_expired");
            return page::error(
                StatusCode::BAD_REQUEST,
                "this consent was already answered or has expired; start again from your client",
            );
        }
        Err(e) => return super::store_down(&e),
    };
    let client_state = pending.state.as_deref();
    if form.get("action").map(String::as_str) == Some("deny") {
        if let Some(s) = client_state {
            let _ = state
                .oauth
                .claim_state(&pending.client_id, s, now + ms(CONSENT_TTL), now)
                .await;
        }
        state.auditor.record(
            AuditEvent::new(
                events::OauthConsentDenied,
                Severity::Info,
                "oauth consent denied",
            )
            .request(&info)
            .action("oauth_consent")
            .result(AuditResult::Denied)
            .extra("client_id", pending.client_id.as_str()),
        );
        let mut response = redirect_error(
            &state,
            &pending.redirect_uri,
            client_state,
            "access_denied",
            "the person declined",
        );
        response
            .headers_mut()
            .append(header::SET_COOKIE, set_cookie(&state, None));
        return response;
    }
    let key = SecretString::from(form.remove("api_key").unwrap_or_default());
    let workspace_id = form.remove("workspace_id").filter(|w| !w.is_empty());
    let checked =
        super::super::login::check_credentials(&state, &info, key, workspace_id.clone()).await;
    let (user_id, credentials) = match checked {
        Ok(found) => found,
        Err(error) => {
            return again(
                &state,
                &info,
                pending,
                &cookie,
                workspace_id.as_deref(),
                error.status,
                &error.message,
            )
            .await;
        }
    };
    let username = state.config.dust_username.clone();
    let ticked: Vec<String> = ticked
        .into_iter()
        .filter(|s| pending.scopes.contains(s))
        .collect();
    let permissions =
        Policy::narrow(state.policy.grant(&user_id), Some(&ticked)).unwrap_or_default();
    if permissions.names().is_empty() {
        return again(
            &state,
            &info,
            pending,
            &cookie,
            workspace_id.as_deref(),
            StatusCode::BAD_REQUEST,
            "choose at least one permission that this server's policy grants your key",
        )
        .await;
    }
    if let Some(s) = client_state {
        match state
            .oauth
            .claim_state(&pending.client_id, s, now + ms(CONSENT_TTL), now)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                fail(&state, &info, Some(&pending.client_id), "state_replayed");
                return redirect_error(
                    &state,
                    &pending.redirect_uri,
                    client_state,
                    "invalid_request",
                    "this state was already used; start a new authorization",
                );
            }
            Err(e) => return super::store_down(&e),
        }
    }
    if let Err(e) = keep_client(&state, &pending.client_id, now).await {
        return super::store_down(&e);
    }
    let family_id = format!("fam_{}", &random_secret()[..22]);
    let grant = Grant {
        family_id: family_id.clone(),
        client_id: pending.client_id.clone(),
        user_id: user_id.clone(),
        username,
        email: state.config.dust_email.clone(),
        workspace_id: credentials.workspace_id.clone(),
        permissions: permissions.names().into_iter().map(str::to_owned).collect(),
        resource: pending.resource.clone(),
        sealed_key: state.cipher.seal(&credentials.api_key, &family_id),
        created_at_ms: Some(now),
        expires_at_ms: Some(now.saturating_add(ms(state.config.oauth_grant_max_lifetime))),
    };
    let code = random_secret();
    let record = CodeRecord {
        grant,
        redirect_uri: pending.redirect_uri.clone(),
        code_challenge: pending.code_challenge.clone(),
        expires_at_ms: now + ms(super::CODE_TTL),
    };
    if let Err(e) = state
        .oauth
        .put_code(
            &secret_hash(&code),
            &record,
            now + ms(super::CODE_MEMORY),
            now,
        )
        .await
    {
        return super::store_down(&e);
    }
    state.auditor.record(
        AuditEvent::new(
            events::OauthConsentGranted,
            Severity::Info,
            "oauth consent granted; code issued",
        )
        .user(&user_id, None)
        .workspace(&credentials.workspace_id)
        .request(&info)
        .action("oauth_consent")
        .result(AuditResult::Success)
        .resource("oauth_grant", &family_id)
        .extra("client_id", pending.client_id.as_str())
        .extra("scopes", record.grant.permissions.join(" ")),
    );
    let mut params = vec![("code", code.as_str()), ("iss", state.public_url.as_str())];
    if let Some(s) = client_state {
        params.push(("state", s));
    }
    let mut response = redirect_to(&pending.redirect_uri, &params);
    response
        .headers_mut()
        .append(header::SET_COOKIE, set_cookie(&state, None));
    response
}

/// A completed authorization makes a registered client *used*: it gets the long life of
/// [`super::CLIENT_TTL`] from its registration and leaves the cap of unused clients. A metadata
/// document stays a short-lived cache entry; a client evicted meanwhile is not brought back
/// (the code is still issued: the person approved it).
async fn keep_client(
    state: &AppState,
    client_id: &str,
    now: i64,
) -> Result<(), crate::store::StoreError> {
    match state.oauth.get_client(client_id, now).await? {
        Some(client) if !client.used && !client.metadata_document => {
            let until = client.created_at_ms + ms(super::CLIENT_TTL);
            state.oauth.mark_client_used(client_id, until, now).await?;
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The consent page again, with `problem` (a refused key, no permission ticked): the pending
/// consent is stored anew under a fresh id, for the same browser.
async fn again(
    state: &AppState,
    info: &RequestInfo,
    pending: PendingAuthorization,
    cookie: &str,
    workspace_id: Option<&str>,
    status: StatusCode,
    problem: &str,
) -> Response {
    fail(state, info, Some(&pending.client_id), "credentials");
    let now = now_ms(state);
    let client = match state.oauth.get_client(&pending.client_id, now).await {
        Ok(Some(client)) => client,
        Ok(None) => {
            return page::error(
                StatusCode::BAD_REQUEST,
                "this client is no longer known; start again from your client",
            );
        }
        Err(e) => return super::store_down(&e),
    };
    let pending_id = random_secret();
    if let Err(e) = state
        .oauth
        .put_pending(&secret_hash(&pending_id), &pending, now)
        .await
    {
        return super::store_down(&e);
    }
    render(
        state,
        &client,
        &pending,
        &pending_id,
        cookie,
        workspace_id,
        Some((status, problem)),
    )
}

/// The single value of cookie `name`; none or several is a CSRF refusal (a tossed cookie).
fn cookie_value(headers: &HeaderMap, name: &str) -> Result<String, &'static str> {
    match super::super::session::cookie_values(headers, name).as_slice() {
        [] => Err("missing_cookie"),
        [one] if !one.is_empty() => Ok((*one).to_owned()),
        [_] => Err("missing_cookie"),
        _ => Err("duplicate_cookie"),
    }
}
