//! Who is calling: the verified identity every tool, resource and REST handler reads.
//!
//! A Dust API key is workspace-scoped, not personal, so the identity is a stable pseudonym
//! derived from the key (`user_id`, a keyed hash, never the key), the workspace, and the
//! username/email the caller asserted at login (or the `DUST_USERNAME`/`DUST_EMAIL` defaults).
//! The principal also carries the Dust credentials the server uses on the caller's behalf; its
//! `Debug` output never shows the key.

use hmac::Mac;
use secrecy::ExposeSecret;

use super::permissions::{Permission, PermissionSet};
use crate::dust::DustCredentials;

/// Domain separation for key fingerprints, so the same key hashed elsewhere gives another value.
const FINGERPRINT_LABEL: &[u8] = b"mcp-dust-server/key-fingerprint/v1";

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    /// Stable pseudonym of the API key (`usr_` + 24 hex characters).
    pub user_id: String,
    /// Asserted at login or taken from `DUST_USERNAME`; used as Dust's message `username`.
    pub username: String,
    pub email: Option<String>,
    pub full_name: Option<String>,
    /// The only workspace this principal may touch; never taken from a request argument.
    pub workspace_id: String,
    pub permissions: PermissionSet,
    /// The JWT `jti` when the principal came from a token (HTTP); `None` on stdio.
    pub token_id: Option<String>,
    /// The Dust key and workspace the server calls Dust with for this principal.
    pub credentials: DustCredentials,
}

impl Principal {
    /// Whether this principal holds `permission`.
    #[must_use]
    pub fn can(&self, permission: Permission) -> bool {
        self.permissions.contains(permission)
    }

    /// The pseudonymous user id of a key: HMAC-SHA256 over the key with `secret` (empty on
    /// stdio, where there is no server secret; the key's own entropy keeps it unguessable).
    pub fn user_id_for_key(secret: &[u8], credentials: &DustCredentials) -> String {
        let mut mac = crate::crypto::hmac_sha256(secret);
        mac.update(FINGERPRINT_LABEL);
        mac.update(credentials.workspace_id.as_bytes());
        mac.update(&[0]);
        mac.update(credentials.api_key.expose_secret().as_bytes());
        let digest = mac.finalize().into_bytes();
        format!("usr_{}", hex::encode(&digest[..12]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_id_is_stable_and_hides_the_key() {
        let key = "sk-0123456789abcdef0123456789abcdef";
        let creds = DustCredentials::new("w1", key);
        let a = Principal::user_id_for_key(b"", &creds);
        assert_eq!(a, Principal::user_id_for_key(b"", &creds));
        assert!(a.starts_with("usr_") && a.len() == 28);
        assert!(!a.contains("0123456789abcdef"));
        let other_ws = DustCredentials::new("w2", key);
        assert_ne!(a, Principal::user_id_for_key(b"", &other_ws));
        assert_ne!(a, Principal::user_id_for_key(b"server-secret", &creds));
    }

    #[test]
    fn debug_never_shows_the_key() {
        let key = "sk-canary0canary0canary0canary000";
        let creds = DustCredentials::new("w1", key);
        let p = Principal {
            user_id: Principal::user_id_for_key(b"", &creds),
            username: "u".into(),
            email: None,
            full_name: None,
            workspace_id: "w1".into(),
            permissions: PermissionSet::DEFAULT,
            token_id: None,
            credentials: creds,
        };
        let shown = format!("{p:?} {p:#?}");
        assert!(!shown.contains("canary"), "{shown}");
    }
}
