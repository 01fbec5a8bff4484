//! Authentication and authorization: who the caller is ([`Principal`]) and what it may do
//! ([`Permission`], [`PermissionSet`], [`Policy`]).
//!
//! - [`keys`]: the keys derived from `SECURITY_SECRET_KEY`, and the production secret guard.
//! - [`jwt`]: the access-token profile (HS256 only, `typ`, `iss`, `aud`, `jti`).
//! - [`tokens`]: what a `jti` stands for: records with the Dust key sealed at rest.
//! - [`lockout`]: failed-login throttling per IP and per key.
//! - [`policy`]: the optional permissions policy file.

pub mod api_key;
pub mod jwt;
pub mod keys;
pub mod lockout;
pub mod permissions;
pub mod policy;
pub mod principal;
pub mod tokens;

pub use jwt::{Claims, JwtIssuer, TokenError, TokenSubject, looks_like_dust_key};
pub use keys::{Keys, WeakSecret, check_root_secret};
pub use lockout::LoginThrottle;
pub use permissions::{Operation, Permission, PermissionSet, UnknownPermission};
pub use policy::{Policy, PolicyError};
pub use principal::Principal;
pub use tokens::{KeyCipher, MemoryTokenStore, TokenRecord, TokenStore, new_token_id};
