//! The server's access tokens: a JWT profile small enough to read in one sitting.
//!
//! Profile (catalogue §6.7): compact JWS, header exactly `{"alg":"HS256","typ":"mcp-dust+jwt"}`,
//! claims `iss`, `aud`, `jti` (also sent as the guide's `tokenId`), `iat`, `nbf`, `exp`,
//! `userId`, `username`, `workspaceId`, `permissions`.
//!
//! Why hand-written rather than the `jsonwebtoken` crate: its pure-Rust backend pulls in `rsa`,
//! which carries an unfixed advisory (RUSTSEC-2023-0071) that fails `cargo deny`, plus three
//! more algorithm families this profile refuses anyway. HS256 is one HMAC; doing it here also
//! keeps every rule visible: the algorithm allowlist is a string compare, base64url is strict
//! (no padding, no `+`/`/`, no spare bits: catalogue J10), the header may carry nothing we did
//! not put there (no `kid`/`jku`/`jwk`/`x5u`/`x5c`/`crit`: J11; no code here fetches keys), and
//! claims go through a derived struct so a duplicated key is an error (J8).
//!
//! `email` is deliberately **not** a claim (catalogue L9): a JWT payload is only encoded, the
//! address is asserted rather than verified, and the server already holds it in the token record
//! (`TokenRecord::email`). Unknown claims, including an `email` from elsewhere, are ignored.
//!
//! Time is always passed in (`now`), so tests move the clock; the leeway is explicit
//! ([`LEEWAY`]). Key rotation: changing `SECURITY_SECRET_KEY` invalidates every token at once
//! (they fail with [`TokenError::Signature`]); there is no `kid` and no grace window (J18).

use std::{
    fmt,
    time::{Duration, SystemTime},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize, de::IgnoredAny};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::{Keys, Principal, keys::KEY_LEN, permissions::PermissionSet};

/// Clock skew tolerated on `exp`, `nbf` and `iat`. Explicit because `jsonwebtoken` and others
/// default to 60 s; 30 s is the catalogue's ceiling.
pub const LEEWAY: Duration = Duration::from_secs(30);

/// Longest token accepted, checked before any decoding: a token this server issues is well under
/// 1 KiB, so anything near this is hostile (catalogue J13).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The `typ` header of our access tokens: explicit typing (RFC 8725 §3.11) so no other JWT kind
/// signed with a related key is mistaken for one (J12).
pub const TOKEN_TYPE: &str = "mcp-dust+jwt";

/// The one algorithm accepted (RFC 8725 §3.1: one key, one algorithm).
pub const ALGORITHM: &str = "HS256";

/// The header of every token this server issues, serialized once.
const HEADER_JSON: &str = r#"{"alg":"HS256","typ":"mcp-dust+jwt"}"#;

/// The claims of an access token. Field names on the wire follow the guide (`userId`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// The canonical URI of this server's `/mcp` endpoint: tokens are only for us (MCP authz).
    pub aud: String,
    /// The token id, the key of its server-side record and of revocation.
    pub jti: String,
    /// The same value as `jti`, under the guide's name; both must agree.
    #[serde(rename = "tokenId")]
    pub token_id: String,
    /// Seconds since the epoch, like `nbf` and `exp`.
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    /// The key fingerprint (`usr_…`), never the key.
    #[serde(rename = "userId")]
    pub user_id: String,
    /// Asserted at login, not verified by anyone.
    pub username: String,
    #[serde(rename = "workspaceId")]
    pub workspace_id: String,
    pub permissions: Vec<String>,
}

impl Claims {
    /// The permissions as a set; `None` if one is unknown (never the case for a verified token).
    #[must_use]
    pub fn permission_set(&self) -> Option<PermissionSet> {
        PermissionSet::parse_list(&self.permissions.join(",")).ok()
    }
}

/// Who a token is issued to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSubject {
    pub user_id: String,
    pub username: String,
    pub workspace_id: String,
    pub permissions: PermissionSet,
}

impl From<&Principal> for TokenSubject {
    fn from(p: &Principal) -> Self {
        Self {
            user_id: p.user_id.clone(),
            username: p.username.clone(),
            workspace_id: p.workspace_id.clone(),
            permissions: p.permissions,
        }
    }
}

/// Why a token was refused. No variant carries the token or any part of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token's algorithm is not accepted")]
    Algorithm,
    #[error("the token's signature is invalid")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued for another audience")]
    WrongAudience,
    #[error("the token was issued by another issuer")]
    WrongIssuer,
    #[error("the token is not an access token of this server")]
    WrongType,
    #[error("the token's claims are missing or invalid")]
    Claims,
    #[error("the token is too large")]
    TooLarge,
}

impl TokenError {
    /// A stable word for audit events (`reason=...`).
    #[must_use]
    pub const fn reason(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Algorithm => "alg",
            Self::Signature => "signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::WrongAudience => "audience",
            Self::WrongIssuer => "issuer",
            Self::WrongType => "typ",
            Self::Claims => "claims",
            Self::TooLarge => "too_large",
        }
    }
}

/// Whether a bearer value is a Dust API key rather than one of our tokens. The HTTP layer
/// refuses those on `/mcp` (catalogue J16: no token passthrough in either direction).
#[must_use]
pub fn looks_like_dust_key(token: &str) -> bool {
    token.starts_with("sk-")
}

/// The JOSE header as received. A derived struct: duplicate members are an error. Members this
/// server never sets are named so that their mere presence can be refused.
#[derive(Deserialize)]
struct Header {
    alg: String,
    typ: Option<String>,
    kid: Option<IgnoredAny>,
    jku: Option<IgnoredAny>,
    jwk: Option<IgnoredAny>,
    x5u: Option<IgnoredAny>,
    x5c: Option<IgnoredAny>,
    x5t: Option<IgnoredAny>,
    #[serde(rename = "x5t#S256")]
    x5t_s256: Option<IgnoredAny>,
    crit: Option<IgnoredAny>,
    cty: Option<IgnoredAny>,
    enc: Option<IgnoredAny>,
    zip: Option<IgnoredAny>,
    b64: Option<IgnoredAny>,
}

impl Header {
    fn has_foreign_members(&self) -> bool {
        [
            &self.kid,
            &self.jku,
            &self.jwk,
            &self.x5u,
            &self.x5c,
            &self.x5t,
            &self.x5t_s256,
            &self.crit,
            &self.cty,
            &self.enc,
            &self.zip,
            &self.b64,
        ]
        .iter()
        .any(|m| m.is_some())
    }
}

/// Issues and verifies this server's access tokens.
pub struct JwtIssuer {
    key: Zeroizing<[u8; KEY_LEN]>,
    issuer: String,
    audience: String,
    lifetime: Duration,
    leeway: Duration,
}

impl JwtIssuer {
    /// `issuer` is the server's public origin; `audience` the canonical URI of its `/mcp`
    /// endpoint; `lifetime` is `SECURITY_TOKEN_EXPIRATION`. The leeway is [`LEEWAY`].
    pub fn new(
        keys: &Keys,
        issuer: impl Into<String>,
        audience: impl Into<String>,
        lifetime: Duration,
    ) -> Self {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        key.copy_from_slice(keys.jwt_signing());
        Self {
            key,
            issuer: issuer.into(),
            audience: audience.into(),
            lifetime,
            leeway: LEEWAY,
        }
    }

    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    #[must_use]
    pub fn audience(&self) -> &str {
        &self.audience
    }

    #[must_use]
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// A signed token for `subject`, and its claims (the caller stores the record under
    /// `token_id` and answers with `claims.exp`).
    ///
    /// # Errors
    ///
    /// [`TokenError::TooLarge`] when the token would pass [`MAX_TOKEN_BYTES`]: the issuer never
    /// hands out a token its own [`verify`](Self::verify) refuses, whatever the subject holds
    /// (JSON escapes a control character as six bytes, so the subject's length alone says
    /// little).
    pub fn issue(
        &self,
        subject: &TokenSubject,
        token_id: &str,
        now: SystemTime,
    ) -> Result<(String, Claims), TokenError> {
        self.issue_until(subject, token_id, now, i64::MAX)
    }

    /// [`Self::issue`], expiring at `not_after` (epoch seconds) if that comes before the end
    /// of the token's lifetime: a token of a chain (refreshes of a login, an OAuth grant)
    /// never outlives the chain.
    ///
    /// # Errors
    ///
    /// As [`Self::issue`].
    pub fn issue_until(
        &self,
        subject: &TokenSubject,
        token_id: &str,
        now: SystemTime,
        not_after: i64,
    ) -> Result<(String, Claims), TokenError> {
        let iat = epoch_seconds(now);
        let lifetime = i64::try_from(self.lifetime.as_secs()).unwrap_or(i64::MAX);
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            jti: token_id.to_owned(),
            token_id: token_id.to_owned(),
            iat,
            nbf: iat,
            exp: iat.saturating_add(lifetime).min(not_after),
            user_id: subject.user_id.clone(),
            username: subject.username.clone(),
            workspace_id: subject.workspace_id.clone(),
            permissions: subject
                .permissions
                .names()
                .into_iter()
                .map(str::to_owned)
                .collect(),
        };
        let payload = serde_json::to_vec(&claims).expect("claims serialize");
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(HEADER_JSON),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let signature =
            URL_SAFE_NO_PAD.encode(self.mac(signing_input.as_bytes()).finalize().into_bytes());
        let token = format!("{signing_input}.{signature}");
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLarge);
        }
        Ok((token, claims))
    }

    /// Verifies `token` at time `now`. Checks, in order: size, shape and strict base64url,
    /// header (algorithm, type, nothing else), signature, claims, issuer, audience, time. Claims
    /// are only parsed once the signature holds.
    pub fn verify(&self, token: &str, now: SystemTime) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLarge);
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let header_bytes = strict_decode(header_b64)?;
        let header: Header =
            serde_json::from_slice(&header_bytes).map_err(|_| TokenError::Malformed)?;
        if header.alg != ALGORITHM {
            return Err(TokenError::Algorithm);
        }
        if header.typ.as_deref() != Some(TOKEN_TYPE) {
            return Err(TokenError::WrongType);
        }
        if header.has_foreign_members() {
            return Err(TokenError::Malformed);
        }
        let signature = strict_decode(signature_b64).map_err(|_| TokenError::Signature)?;
        let signed_len = header_b64.len() + 1 + payload_b64.len();
        self.mac(&token.as_bytes()[..signed_len])
            .verify_slice(&signature)
            .map_err(|_| TokenError::Signature)?;
        let payload = strict_decode(payload_b64)?;
        let claims: Claims = serde_json::from_slice(&payload).map_err(|_| TokenError::Claims)?;
        if claims.jti.is_empty()
            || claims.jti != claims.token_id
            || claims.permission_set().is_none()
        {
            return Err(TokenError::Claims);
        }
        if claims.iss != self.issuer {
            return Err(TokenError::WrongIssuer);
        }
        if claims.aud != self.audience {
            return Err(TokenError::WrongAudience);
        }
        let now = epoch_seconds(now);
        let leeway = i64::try_from(self.leeway.as_secs()).unwrap_or(i64::MAX);
        if now > claims.exp.saturating_add(leeway) {
            return Err(TokenError::Expired);
        }
        if claims.nbf > now.saturating_add(leeway) || claims.iat > now.saturating_add(leeway) {
            return Err(TokenError::NotYetValid);
        }
        Ok(claims)
    }

    fn mac(&self, data: &[u8]) -> Hmac<Sha256> {
        let mut mac = crate::crypto::hmac_sha256(self.key.as_ref());
        mac.update(data);
        mac
    }
}

impl fmt::Debug for JwtIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtIssuer")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("lifetime", &self.lifetime)
            .field("leeway", &self.leeway)
            .finish_non_exhaustive()
    }
}

/// Base64url without padding, and canonical: the `base64` engine refuses `=`, `+`, `/` and
/// non-zero spare bits in the last character, so one token has exactly one spelling.
fn strict_decode(segment: &str) -> Result<Vec<u8>, TokenError> {
    if segment.is_empty() {
        return Err(TokenError::Malformed);
    }
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| TokenError::Malformed)
}

use crate::state::epoch_secs as epoch_seconds;

#[cfg(test)]
mod tests;
