//! CSRF token verification (src/http/csrf.rs).
//!
//! The input is a raw token (first byte even) or the parts of one the harness signs
//! independently (issued time, nonce, optionally the wrong key or session).
//!
//! Invariants: a token is accepted only if its third part is the HMAC, under the CSRF key, of
//! this session, its issue time and its nonce (recomputed here); never for another session or
//! another key; never when older than the TTL or issued more than a minute in the future; a
//! correctly signed fresh token is always accepted.
use std::sync::LazyLock;
use std::time::{Duration, UNIX_EPOCH};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use mcp_dust_server::{
    auth::Keys,
    http::csrf::{CSRF_TOKEN_TTL, verify_token_with_key},
    store::SessionKey,
};
use secrecy::SecretString;
use sha2::Sha256;

const NOW: u64 = 1_800_000_000;

static KEYS: LazyLock<Keys> = LazyLock::new(|| {
    Keys::derive(&SecretString::from(
        "fuzz-root-secret-0123456789abcdef0123456789",
    ))
});
static OTHER_KEYS: LazyLock<Keys> = LazyLock::new(|| {
    Keys::derive(&SecretString::from(
        "another-root-secret-0123456789abcdef01234567",
    ))
});

fn tag(key: &[u8], session: &SessionKey, issued: u64, nonce: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
    mac.update(b"mcp-dust-server/csrf/v1");
    mac.update(&[0]);
    mac.update(session.as_str().as_bytes());
    mac.update(&[0]);
    mac.update(&issued.to_be_bytes());
    mac.update(nonce);
    mac.finalize().into_bytes().to_vec()
}

pub(super) fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let session = SessionKey::from_hmac_hex("a".repeat(64));
    let other_session = SessionKey::from_hmac_hex("b".repeat(64));
    let now = UNIX_EPOCH + Duration::from_secs(NOW);
    let key = KEYS.csrf_signing();
    let token = if mode % 2 == 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        let (age, nonce) = match rest.split_first_chunk::<8>() {
            Some((age, nonce)) => (i64::from_be_bytes(*age) % 10_000, nonce),
            None => (0, rest),
        };
        let issued = NOW.saturating_add_signed(-age);
        let signing_key = if mode & 2 != 0 {
            OTHER_KEYS.csrf_signing()
        } else {
            key
        };
        let signing_session = if mode & 4 != 0 {
            &other_session
        } else {
            &session
        };
        let token = format!(
            "{issued}.{}.{}",
            URL_SAFE_NO_PAD.encode(nonce),
            URL_SAFE_NO_PAD.encode(tag(signing_key, signing_session, issued, nonce))
        );
        let fresh = age >= -60 && age < CSRF_TOKEN_TTL.as_secs() as i64;
        let genuine = mode & 6 == 0;
        assert_eq!(
            verify_token_with_key(key, &session, &token, now).is_ok(),
            genuine && fresh,
            "issued {age} s ago, genuine {genuine}"
        );
        token
    };
    if verify_token_with_key(key, &session, &token, now).is_ok() {
        let mut parts = token.splitn(3, '.');
        let issued: u64 = parts.next().unwrap().parse().unwrap();
        let nonce = URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap();
        let signature = URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap();
        assert_eq!(
            signature,
            tag(key, &session, issued, &nonce),
            "accepted a forged token"
        );
        assert!(NOW.saturating_sub(issued) < CSRF_TOKEN_TTL.as_secs());
        assert!(issued <= NOW + 60);
        assert!(verify_token_with_key(key, &other_session, &token, now).is_err());
        assert!(verify_token_with_key(OTHER_KEYS.csrf_signing(), &session, &token, now).is_err());
        // The lifetime counts from the issue time (which may be up to a minute ahead of now).
        let expiry = UNIX_EPOCH + Duration::from_secs(issued) + CSRF_TOKEN_TTL;
        assert!(verify_token_with_key(key, &session, &token, expiry).is_err());
    }
}
