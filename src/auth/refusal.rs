//! Why a request's credentials were refused: one enum for the bearer token, the session
//! cookie and the token record behind either.
//!
//! Each refusal has a stable [`Refusal::reason`] (the audit record's `reason`, the
//! `auth_failures_total` label) and a [`Refusal::message`] for the person, which never says
//! more than "invalid or expired" about a token: which check failed is for the audit log, not
//! for whoever holds the token. The HTTP layer decides the status from the kind
//! ([`Refusal::is_unavailable`]: 503, else 401) and the audit event type
//! ([`Refusal::is_reuse`]: a revoked token presented again is `authn_token_reuse`).

use super::jwt::TokenError;

/// A refused credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Nothing was presented.
    Missing,
    /// More than one `Authorization` header.
    DuplicateHeader,
    /// An `Authorization` header past its size limit.
    TooLarge,
    /// An `Authorization` header that does not parse.
    Malformed,
    /// Another scheme than `Bearer`.
    Scheme,
    /// A Dust API key presented as a bearer token (J16).
    DustKey,
    /// The JWT failed verification.
    Token(TokenError),
    /// A verified JWT whose record the store does not know.
    UnknownToken,
    /// The token (or its record) has expired.
    Expired,
    /// The token was revoked: presenting it again is a stolen-token signal.
    Revoked,
    /// The JWT's identity differs from its record's.
    ClaimsMismatch,
    /// The record's sealed Dust key does not open (the secret key changed).
    SealedKey,
    /// The token or session store did not answer.
    StoreUnavailable,
    /// More than one session cookie.
    DuplicateSessionCookie,
    /// A session id the server does not know (never issued, or ended).
    UnknownSession,
    /// The session passed its idle or absolute deadline.
    SessionExpired,
    /// The token behind the session was revoked or has expired.
    SessionTokenRevoked,
    /// The session ended while the request was on its way (a racing logout).
    SessionEnded,
}

impl Refusal {
    /// The stable reason, for the audit log and metrics.
    #[must_use]
    pub const fn reason(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::DuplicateHeader => "duplicate_header",
            Self::TooLarge => "too_large",
            Self::Malformed => "malformed",
            Self::Scheme => "scheme",
            Self::DustKey => "dust_key",
            Self::Token(error) => error.reason(),
            Self::UnknownToken => "unknown_token",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
            Self::ClaimsMismatch => "claims_mismatch",
            Self::SealedKey => "sealed_key",
            Self::StoreUnavailable => "store_unavailable",
            Self::DuplicateSessionCookie => "duplicate_session_cookie",
            Self::UnknownSession => "unknown_session",
            Self::SessionExpired => "session_expired",
            Self::SessionTokenRevoked => "session_token_revoked",
            Self::SessionEnded => "session_ended",
        }
    }

    /// What the person is told.
    #[must_use]
    pub const fn message(self) -> &'static str {
        match self {
            Self::Missing => {
                "authentication required: send Authorization: Bearer <token from /api/v1/auth/login>"
            }
            Self::DuplicateHeader => "send exactly one Authorization header",
            Self::TooLarge => "the Authorization header is too large",
            Self::Malformed => "malformed Authorization header",
            Self::Scheme => "use the Bearer scheme with a token from /api/v1/auth/login",
            Self::DustKey => {
                "a Dust API key is not a bearer token here: exchange it at /api/v1/auth/login"
            }
            Self::Token(_)
            | Self::UnknownToken
            | Self::Expired
            | Self::Revoked
            | Self::ClaimsMismatch
            | Self::SealedKey => "invalid or expired token",
            Self::StoreUnavailable => "authentication is unavailable",
            Self::DuplicateSessionCookie => "more than one session cookie was sent; sign in again",
            Self::UnknownSession => "no valid session: sign in at /api/v1/auth/login",
            Self::SessionExpired => "the session has expired: sign in again",
            Self::SessionTokenRevoked | Self::SessionEnded => {
                "the session has ended: sign in again"
            }
        }
    }

    /// A revoked token presented again (`authn_token_reuse`, high severity).
    #[must_use]
    pub const fn is_reuse(self) -> bool {
        matches!(self, Self::Revoked)
    }

    /// The refusal is the server's (a store down), not the credential's: 503, not 401.
    #[must_use]
    pub const fn is_unavailable(self) -> bool {
        matches!(self, Self::StoreUnavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_refusals_say_no_more_than_invalid_or_expired() {
        for refusal in [
            Refusal::Token(TokenError::Signature),
            Refusal::UnknownToken,
            Refusal::Expired,
            Refusal::Revoked,
            Refusal::ClaimsMismatch,
            Refusal::SealedKey,
        ] {
            assert_eq!(refusal.message(), "invalid or expired token");
            assert_ne!(refusal.reason(), "missing");
        }
        assert_eq!(Refusal::Token(TokenError::Expired).reason(), "expired");
        assert!(Refusal::Revoked.is_reuse() && !Refusal::Expired.is_reuse());
    }
}
