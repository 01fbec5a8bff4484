//! The server's keys, all derived from one root secret (`SECURITY_SECRET_KEY`).
//!
//! One secret, six jobs: signing JWTs, signing CSRF tokens, encrypting Dust keys at rest,
//! keying the pseudonymous key fingerprints (`usr_…`), keying the session store (a session
//! is stored under an HMAC of its id, never the id itself), and sealing the paused runs handed
//! to clients (`requestState`). Using one key for two jobs lets an output
//! of one be replayed as the other (a CSRF HMAC that verifies as a JWT signature, catalogue J12;
//! the JWT cheat sheet's "do not reuse for encryption"). So each job gets its own 32-byte key,
//! expanded with HKDF-SHA256 under its own `info` label: knowing or misusing one derived key says
//! nothing about the others or about the root.
//!
//! [`check_root_secret`] is the production start guard (catalogue J17, E1): HKDF cannot add
//! entropy, so a guessable root makes every derived key guessable.

use std::{collections::BTreeSet, fmt};

use hkdf::Hkdf;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use zeroize::Zeroizing;

/// Length of every derived key: 256 bits, the HS256 key size RFC 7518 §3.2 asks for.
pub const KEY_LEN: usize = 32;

/// Shortest root secret accepted in production, in bytes. `gen-secret` prints 64.
pub const MIN_ROOT_SECRET_LEN: usize = 32;

/// Fewest distinct bytes a production root secret must contain. Ten, not sixteen: a random
/// 64-character hex secret misses at least one of the sixteen hex digits about 2.5% of the time,
/// and refusing `gen-secret`'s own output would be absurd; it has ten distinct digits with
/// overwhelming probability.
pub const MIN_DISTINCT_BYTES: usize = 10;

/// HKDF salt: a fixed, public domain separator (RFC 5869 §3.1 allows a non-secret salt).
const HKDF_SALT: &[u8] = b"mcp-dust-server/hkdf/v1";
const INFO_JWT: &[u8] = b"mcp-dust-server/jwt-hs256/v1";
const INFO_CSRF: &[u8] = b"mcp-dust-server/csrf-hmac/v1";
const INFO_AT_REST: &[u8] = b"mcp-dust-server/at-rest-aead/v1";
const INFO_FINGERPRINT: &[u8] = b"mcp-dust-server/key-fingerprint/v1";
const INFO_SESSION: &[u8] = b"mcp-dust-server/session-id-hmac/v1";
const INFO_REQUEST_STATE: &[u8] = b"mcp-dust-server/request-state-hmac/v1";

/// Words that mark a secret copied from documentation or an example file. Matched against the
/// secret lowercased with everything but letters and digits removed.
const PLACEHOLDERS: &[&str] = &[
    "changeme",
    "changethis",
    "replaceme",
    "yoursecret",
    "secretkey",
    "mysecret",
    "supersecret",
    "placeholder",
    "example",
    "password",
    "insecure",
    "notsecure",
    "default",
    "mcpdustserver",
];

type Key = Zeroizing<[u8; KEY_LEN]>;

/// The derived keys. Zeroized on drop; `Debug` shows none of them.
pub struct Keys {
    jwt: Key,
    csrf: Key,
    at_rest: Key,
    fingerprint: Key,
    session: Key,
    request_state: Key,
}

impl Keys {
    /// Derives the keys from the root secret.
    pub fn derive(root: &SecretString) -> Self {
        let hkdf = Hkdf::<Sha256>::new(Some(HKDF_SALT), root.expose_secret().as_bytes());
        let expand = |info: &[u8]| {
            let mut key = Zeroizing::new([0u8; KEY_LEN]);
            hkdf.expand(info, key.as_mut())
                .expect("32 bytes is a valid HKDF-SHA256 output length");
            key
        };
        Self {
            jwt: expand(INFO_JWT),
            csrf: expand(INFO_CSRF),
            at_rest: expand(INFO_AT_REST),
            fingerprint: expand(INFO_FINGERPRINT),
            session: expand(INFO_SESSION),
            request_state: expand(INFO_REQUEST_STATE),
        }
    }

    /// Keys from a random root that lives only in this process (development without
    /// `SECURITY_SECRET_KEY`): tokens and sealed keys die with the process.
    pub fn ephemeral() -> Self {
        let root = crate::crypto::random_bytes::<KEY_LEN>();
        Self::derive(&SecretString::from(hex::encode(root.as_ref())))
    }

    /// The HS256 key of the server's JWTs.
    #[must_use]
    pub fn jwt_signing(&self) -> &[u8] {
        self.jwt.as_ref()
    }

    /// The HMAC key of CSRF tokens.
    #[must_use]
    pub fn csrf_signing(&self) -> &[u8] {
        self.csrf.as_ref()
    }

    /// The AEAD key that seals Dust keys in token records.
    #[must_use]
    pub fn at_rest(&self) -> &[u8] {
        self.at_rest.as_ref()
    }

    /// The HMAC key of key fingerprints: pass it to `Principal::user_id_for_key`.
    #[must_use]
    pub fn fingerprint(&self) -> &[u8] {
        self.fingerprint.as_ref()
    }

    /// The HMAC key that turns a session id into its session-store key.
    #[must_use]
    pub fn session_id(&self) -> &[u8] {
        self.session.as_ref()
    }

    /// The HMAC key that seals a paused run handed to a client (`ops::pause`).
    #[must_use]
    pub fn request_state(&self) -> &[u8] {
        self.request_state.as_ref()
    }
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keys([REDACTED])")
    }
}

/// Why a production root secret was refused. The message names the problem, never the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WeakSecret {
    #[error(
        "SECURITY_SECRET_KEY is required in production; generate one with `mcp-dust-server gen-secret`"
    )]
    Missing,
    #[error(
        "SECURITY_SECRET_KEY is shorter than {MIN_ROOT_SECRET_LEN} bytes; generate one with `mcp-dust-server gen-secret`"
    )]
    TooShort,
    #[error(
        "SECURITY_SECRET_KEY looks like a placeholder from documentation or an example file; generate one with `mcp-dust-server gen-secret`"
    )]
    Placeholder,
    #[error(
        "SECURITY_SECRET_KEY has too little variety to be random (too few distinct characters, a repeated pattern, or a single character class); generate one with `mcp-dust-server gen-secret`"
    )]
    LowVariety,
}

/// Checks the root secret. Outside production anything goes (a missing secret means
/// [`Keys::ephemeral`]); in production a missing, short, placeholder or patterned secret is
/// refused. These are heuristics against human-chosen secrets, not an entropy proof.
pub fn check_root_secret(root: Option<&SecretString>, production: bool) -> Result<(), WeakSecret> {
    if !production {
        return Ok(());
    }
    let Some(root) = root else {
        return Err(WeakSecret::Missing);
    };
    let secret = root.expose_secret().as_bytes();
    if secret.iter().all(u8::is_ascii_whitespace) {
        return Err(WeakSecret::Missing);
    }
    let normalized: Zeroizing<String> = Zeroizing::new(
        secret
            .iter()
            .filter(|b| b.is_ascii_alphanumeric())
            .map(|b| char::from(b.to_ascii_lowercase()))
            .collect(),
    );
    if PLACEHOLDERS.iter().any(|p| normalized.contains(p)) {
        return Err(WeakSecret::Placeholder);
    }
    if secret.len() < MIN_ROOT_SECRET_LEN {
        return Err(WeakSecret::TooShort);
    }
    let distinct: BTreeSet<u8> = secret.iter().copied().collect();
    if distinct.len() < MIN_DISTINCT_BYTES || is_repetition(secret) || single_class(secret) {
        return Err(WeakSecret::LowVariety);
    }
    Ok(())
}

/// Whether `s` is one shorter chunk repeated (`abcdefghijklmnopabcdefghijklmnop`).
fn is_repetition(s: &[u8]) -> bool {
    (1..=s.len() / 2)
        .filter(|period| s.len().is_multiple_of(*period))
        .any(|period| s.chunks(period).all(|chunk| chunk == &s[..period]))
}

/// Whether `s` uses one character class only: all lowercase, all uppercase or all digits, or
/// letters and word separators only (a passphrase of dictionary words).
fn single_class(s: &[u8]) -> bool {
    s.iter().all(u8::is_ascii_lowercase)
        || s.iter().all(u8::is_ascii_uppercase)
        || s.iter().all(u8::is_ascii_digit)
        || s.iter()
            .all(|b| b.is_ascii_alphabetic() || matches!(b, b' ' | b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    #[test]
    fn derived_keys_are_distinct_stable_and_root_dependent() {
        let a = Keys::derive(&secret("root-a"));
        let again = Keys::derive(&secret("root-a"));
        let b = Keys::derive(&secret("root-b"));
        let all = [
            a.jwt_signing(),
            a.csrf_signing(),
            a.at_rest(),
            a.fingerprint(),
            a.session_id(),
            a.request_state(),
        ];
        for (i, x) in all.iter().enumerate() {
            assert_eq!(x.len(), KEY_LEN);
            for y in &all[i + 1..] {
                assert_ne!(x, y, "two jobs share a key");
            }
        }
        assert_eq!(a.jwt_signing(), again.jwt_signing());
        assert_ne!(a.jwt_signing(), b.jwt_signing());
        assert_ne!(a.at_rest(), b.at_rest());
        assert_ne!(
            Keys::ephemeral().jwt_signing(),
            Keys::ephemeral().jwt_signing()
        );
    }

    #[test]
    fn debug_shows_no_key_material() {
        let keys = Keys::derive(&secret("root-a"));
        let shown = format!("{keys:?} {keys:#?}");
        assert_eq!(shown, "Keys([REDACTED]) Keys([REDACTED])");
    }

    #[test]
    fn development_accepts_anything() {
        assert_eq!(check_root_secret(None, false), Ok(()));
        assert_eq!(check_root_secret(Some(&secret("x")), false), Ok(()));
    }

    #[test]
    fn production_refuses_weak_secrets_j17() {
        let check = |s: &str| check_root_secret(Some(&secret(s)), true);
        assert_eq!(check_root_secret(None, true), Err(WeakSecret::Missing));
        assert_eq!(check(""), Err(WeakSecret::Missing));
        assert_eq!(check("   "), Err(WeakSecret::Missing));
        for placeholder in [
            "changeme",
            "CHANGE-ME",
            "secret-key",
            "your-secret-key",
            "your-secret-key-here-change-in-production-please",
            "replace_me_with_a_long_random_string_0123456789",
            "mcp-dust-server-secret-key-for-development-only",
        ] {
            assert_eq!(
                check(placeholder),
                Err(WeakSecret::Placeholder),
                "{placeholder}"
            );
        }
        assert_eq!(check("secret"), Err(WeakSecret::TooShort));
        assert_eq!(check("s3cr3t-Value!"), Err(WeakSecret::TooShort));
        assert_eq!(check(&"a".repeat(64)), Err(WeakSecret::LowVariety));
        assert_eq!(
            check(&"0123456789abcdef".repeat(4)),
            Err(WeakSecret::LowVariety)
        );
        assert_eq!(check(&"ab12".repeat(10)), Err(WeakSecret::LowVariety));
        assert_eq!(
            check("correct horse battery staple tree lamp"),
            Err(WeakSecret::LowVariety)
        );
        assert_eq!(
            check("31415926535897932384626433832795028841971"),
            Err(WeakSecret::LowVariety)
        );
    }

    #[test]
    fn messages_never_contain_the_value() {
        let value = "your-secret-key-canary";
        let err = check_root_secret(Some(&secret(value)), true).unwrap_err();
        assert!(!err.to_string().contains("canary"));
        assert!(err.to_string().contains("gen-secret"));
    }

    #[test]
    fn gen_secret_output_passes() {
        for _ in 0..500 {
            let s = crate::secret::generate();
            assert_eq!(s.len(), 64);
            assert_eq!(check_root_secret(Some(&secret(&s)), true), Ok(()));
        }
        assert_eq!(
            check_root_secret(Some(&secret("k7#Qm2$vX9pL!eR4tY8wZ1nB6cF3hJ5s")), true),
            Ok(())
        );
    }
}
