//! The shapes of the authentication routes (`/api/v1/auth/login`, `refresh`, `logout`,
//! `session`), for the OpenAPI document: a client generated from it can log in. The handlers
//! live with the rest of authentication (`http::login`, `http::session`) and write these same
//! members; Schemathesis checks each answer against them (`tests/all/rest_schemathesis.rs`).

use serde::Serialize;
use utoipa::ToSchema;

/// `POST /api/v1/auth/login`: a Dust API key for a token (or, with `session`, browser
/// cookies). Unknown members are refused.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginBody {
    /// A Dust API key (Dust → Admin → API keys): 32 to 64 of `[A-Za-z0-9_-]` after `sk-`.
    #[schema(format = Password)]
    pub api_key: String,
    /// The workspace (default `DUST_WORKSPACE_ID`).
    pub workspace_id: Option<String>,
    /// How the token names you (default `DUST_USERNAME`); 1 to 254 printable characters.
    pub username: Option<String>,
    pub email: Option<String>,
    /// Narrows what the policy grants the key; never widens it.
    pub permissions: Option<Vec<String>>,
    /// A browser login: the answer sets the session and CSRF cookies instead of giving a token.
    pub session: Option<bool>,
}

/// Who a token or a session stands for.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    /// The key's fingerprint (`usr_...`), never the key.
    pub id: String,
    pub username: String,
    pub email: Option<String>,
    pub workspace_id: String,
    pub permissions: Vec<String>,
}

/// A token: from a login or a refresh.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenAnswer {
    /// Send it as `Authorization: Bearer <token>`.
    pub token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// RFC 3339.
    pub expires_at: String,
    pub user: UserView,
}

/// A browser session: from a login with `session: true`, a refresh or `GET /auth/session`.
/// The session id travels only in its HttpOnly cookie.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionAnswer {
    pub user: UserView,
    /// Send it back as `X-XSRF-TOKEN` on POST, PUT, PATCH and DELETE.
    pub csrf_token: String,
    /// When the session ends if idle (RFC 3339).
    pub expires_at: String,
    /// When the session ends whatever happens (RFC 3339).
    pub absolute_expires_at: String,
}

/// `POST /api/v1/auth/logout`.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogoutAnswer {
    /// Always `true`: the token (or session) no longer works.
    pub revoked: bool,
}
