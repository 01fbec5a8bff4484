//! Authentication and authorization: who the caller is ([`Principal`]) and what it may do
//! ([`Permission`], [`PermissionSet`], [`Policy`]).
//!
//! - [`credentials`]: checking a Dust key and workspace (format, lockout, Dust) for the login,
//!   the OAuth consent and `stdio`.
//! - [`keys`]: the keys derived from `SECURITY_SECRET_KEY`, and the production secret guard.
//! - [`jwt`]: the access-token profile (HS256 only, `typ`, `iss`, `aud`, `jti`).
//! - [`tokens`]: issuing token records: ids, the Dust key sealed at rest, the cap per user
//!   (the records and their store are [`crate::store::tokens`]).
//! - [`lockout`]: the failed-login throttling policy per IP and per key (the counters are
//!   [`crate::store::failures`]).
//! - [`policy`]: the optional permissions policy file.
//! - [`issuer`]: writing token records and their JWTs (logins, sessions, grants), and the
//!   rules of renewing them.
//! - [`resolve`]: from a presented token to its principal; [`refusal`]: why a credential was
//!   refused (one enum, its `reason()` feeding the audit log and metrics).

pub mod api_key;
pub mod credentials;
pub mod issuer;
pub mod jwt;
pub mod keys;
pub mod lockout;
pub mod policy;
pub mod principal;
pub mod refusal;
pub mod resolve;
pub mod tokens;

/// The permission vocabulary lives at the crate root ([`crate::permissions`]) because token
/// records in `store` carry it too; it is re-exported here, where it is checked.
pub use crate::permissions;

pub use issuer::Issuer;
pub use jwt::{Claims, JwtIssuer, TokenError, TokenSubject, looks_like_dust_key};
pub use keys::{Keys, WeakSecret, check_root_secret};
pub use lockout::LoginThrottle;
pub use permissions::{Operation, Permission, PermissionSet, UnknownPermission};
pub use policy::{Policy, PolicyError};
pub use principal::Principal;
pub use refusal::Refusal;
pub use resolve::Resolver;
pub use tokens::{KeyCipher, new_token_id};
