//! JWT verification (src/auth/jwt.rs).
//!
//! The input is either a raw token (first byte even) or, to get past the signature check, a
//! header and a payload (split at the first 0xFF byte) that the harness encodes and signs,
//! with the server's key or with another one (first byte's second bit).
//!
//! Invariants: `verify` never accepts a token whose signature is not the HMAC-SHA256, under
//! the server's key, of its first two segments (recomputed here independently); never accepts
//! one signed with another key; what it accepts has exactly the profile's header, the expected
//! issuer and audience, and times within the leeway; the error is a fixed sentence per reason;
//! a token the server issues verifies back to the same claims, and the issuer refuses (rather than
//! makes) a token over `MAX_TOKEN_BYTES` (issue 22: it once issued one its verifier refused).
use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use mcp_dust_server::auth::{
    Keys,
    jwt::{JwtIssuer, LEEWAY, MAX_TOKEN_BYTES, TokenError, TokenSubject},
    permissions::PermissionSet,
};
use secrecy::SecretString;
use sha2::Sha256;

const ISSUER: &str = "https://mcp.example.test";
const AUDIENCE: &str = "https://mcp.example.test/mcp";
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
static ISSUER_OF: LazyLock<JwtIssuer> =
    LazyLock::new(|| JwtIssuer::new(&KEYS, ISSUER, AUDIENCE, Duration::from_secs(3600)));

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn check(token: &str, now: SystemTime) {
    let result = ISSUER_OF.verify(token, now);
    match result {
        Ok(claims) => {
            let parts: Vec<&str> = token.split('.').collect();
            assert_eq!(parts.len(), 3);
            let signed = format!("{}.{}", parts[0], parts[1]);
            let signature = URL_SAFE_NO_PAD
                .decode(parts[2])
                .expect("accepted signature decodes");
            assert_eq!(
                signature,
                hmac(KEYS.jwt_signing(), signed.as_bytes()),
                "accepted a token not signed with the server's key"
            );
            assert_ne!(signature, hmac(OTHER_KEYS.jwt_signing(), signed.as_bytes()));
            let header: serde_json::Value =
                serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
            assert_eq!(header["alg"], "HS256");
            assert_eq!(header["typ"], "mcp-dust+jwt");
            assert!(
                header
                    .as_object()
                    .unwrap()
                    .keys()
                    .all(|k| k == "alg" || k == "typ"),
                "accepted a foreign header member: {header}"
            );
            assert_eq!(claims.iss, ISSUER);
            assert_eq!(claims.aud, AUDIENCE);
            assert_eq!(claims.jti, claims.token_id);
            let now = now.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
            let leeway = LEEWAY.as_secs() as i64;
            assert!(
                now <= claims.exp.saturating_add(leeway),
                "accepted an expired token"
            );
            assert!(claims.nbf <= now + leeway && claims.iat <= now + leeway);
        }
        Err(error) => {
            // A fixed sentence per reason: nothing of the token is quoted back.
            let fixed = [
                TokenError::Malformed,
                TokenError::Algorithm,
                TokenError::Signature,
                TokenError::Expired,
                TokenError::NotYetValid,
                TokenError::WrongAudience,
                TokenError::WrongIssuer,
                TokenError::WrongType,
                TokenError::Claims,
                TokenError::TooLarge,
            ];
            assert!(fixed.iter().any(|f| f.to_string() == error.to_string()));
        }
    }
}

pub(super) fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let now = UNIX_EPOCH + Duration::from_secs(NOW);
    if mode % 2 == 0 {
        check(&String::from_utf8_lossy(rest), now);
        return;
    }
    let (header, payload) = match rest.iter().position(|&b| b == 0xFF) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (&br#"{"alg":"HS256","typ":"mcp-dust+jwt"}"#[..], rest),
    };
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let foreign = mode & 2 != 0;
    let key = if foreign {
        OTHER_KEYS.jwt_signing()
    } else {
        KEYS.jwt_signing()
    };
    let token = format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(hmac(key, signing_input.as_bytes()))
    );
    if foreign {
        assert!(
            ISSUER_OF.verify(&token, now).is_err(),
            "accepted a token signed with another key"
        );
    }
    check(&token, now);
    // Issue → verify round trip, with the fuzzer's bytes as the subject.
    if mode & 4 != 0 {
        let text = String::from_utf8_lossy(payload);
        let subject = TokenSubject {
            user_id: format!("usr_{}", text.len()),
            username: text.to_string(),
            workspace_id: text.chars().rev().collect(),
            permissions: PermissionSet::parse_list("read:agents").unwrap(),
        };
        match ISSUER_OF.issue(&subject, "tok_1", now) {
            Ok((issued, claims)) => {
                assert!(issued.len() <= MAX_TOKEN_BYTES, "issued an oversized token");
                assert_eq!(ISSUER_OF.verify(&issued, now), Ok(claims));
                assert!(
                    ISSUER_OF
                        .verify(
                            &issued,
                            now + Duration::from_secs(3600) + LEEWAY + Duration::from_secs(1)
                        )
                        .is_err()
                );
            }
            // Refused only when the subject alone, as the JSON the payload carries, comes near
            // the limit once encoded: never a small subject refused for another reason.
            Err(error) => {
                assert_eq!(error, TokenError::TooLarge);
                let escaped =
                    serde_json::to_string(&(&subject.username, &subject.workspace_id)).unwrap();
                assert!(
                    escaped.len() * 4 / 3 > MAX_TOKEN_BYTES - 512,
                    "refused to issue a token for a {}-byte subject",
                    escaped.len()
                );
            }
        }
    }
}
