//! Login CSRF defence (catalogue C8): a browser on another site must not be able to log a
//! victim into the attacker's workspace.
//!
//! The login endpoint only takes `application/json` (a cross-site form cannot send it without a
//! CORS preflight), and here the Fetch-Metadata and `Origin` headers are checked: a request a
//! browser marks `cross-site`, or whose `Origin` is neither this server nor a configured origin,
//! is refused. Non-browser clients send neither header and pass. The full session-bound CSRF
//! token scheme for the console arrives with the browser work.

use axum::http::{HeaderMap, header};

use crate::{error::ApiError, state::AppState};

/// Refuses cross-site browser requests to the login endpoint.
pub fn check_login_origin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if site.eq_ignore_ascii_case("cross-site") {
        return Err(ApiError::forbidden("cross-site login requests are refused"));
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("");
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let same_origin = origin
        .split_once("://")
        .is_some_and(|(_, authority)| !host.is_empty() && authority.eq_ignore_ascii_case(host));
    let configured = state
        .config
        .cors_allowed_origins
        .iter()
        .any(|allowed| allowed == origin)
        || origin.eq_ignore_ascii_case(&state.public_url);
    if same_origin || configured {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "login requests from this origin are refused",
        ))
    }
}
