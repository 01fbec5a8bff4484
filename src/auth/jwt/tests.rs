//! The JWT cases of catalogue §4.1 that can be tested without HTTP: J1–J8, J10–J12, J17 (in
//! `keys`), J18. Hostile tokens are built by hand so nothing here trusts the code under test.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use secrecy::SecretString;
use serde_json::{Value, json};
use sha2::{Sha256, Sha384, Sha512};

use super::*;

const ISS: &str = "https://mcp.example.com";
const AUD: &str = "https://mcp.example.com/mcp";
const T0: u64 = 1_800_000_000;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn keys(root: &str) -> Keys {
    Keys::derive(&SecretString::from(root.to_owned()))
}

fn issuer() -> (Keys, JwtIssuer) {
    let k = keys("root-one");
    let j = JwtIssuer::new(&k, ISS, AUD, Duration::from_secs(3600));
    (k, j)
}

fn subject() -> TokenSubject {
    TokenSubject {
        user_id: "usr_0123456789abcdef01234567".into(),
        username: "alice".into(),
        workspace_id: "w1".into(),
        permissions: PermissionSet::DEFAULT,
    }
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A token with any header and payload, signed with HMAC-SHA256/384/512 or not at all.
fn forge(key: &[u8], alg: &str, header: &Value, payload: &Value) -> String {
    let input = format!("{}.{}", b64(header.to_string()), b64(payload.to_string()));
    let sig = match alg {
        "HS256" => mac::<Hmac<Sha256>>(key, &input),
        "HS384" => mac::<Hmac<Sha384>>(key, &input),
        "HS512" => mac::<Hmac<Sha512>>(key, &input),
        _ => Vec::new(),
    };
    format!("{input}.{}", b64(sig))
}

fn mac<M: Mac + hmac::digest::KeyInit>(key: &[u8], input: &str) -> Vec<u8> {
    let mut m = <M as Mac>::new_from_slice(key).unwrap();
    m.update(input.as_bytes());
    m.finalize().into_bytes().to_vec()
}

fn header() -> Value {
    json!({"alg": "HS256", "typ": TOKEN_TYPE})
}

fn payload() -> Value {
    json!({
        "iss": ISS, "aud": AUD, "jti": "tok_1", "tokenId": "tok_1",
        "iat": T0, "nbf": T0, "exp": T0 + 3600,
        "userId": "usr_0123456789abcdef01234567", "username": "alice",
        "workspaceId": "w1", "permissions": ["read:agents"],
    })
}

fn with(mut v: Value, key: &str, value: Value) -> Value {
    v[key] = value;
    v
}

fn without(mut v: Value, key: &str) -> Value {
    v.as_object_mut().unwrap().remove(key);
    v
}

#[test]
fn issued_tokens_round_trip() {
    let (_, j) = issuer();
    let (token, claims) = j.issue(&subject(), "tok_abc", at(T0)).unwrap();
    assert_eq!(claims.exp, T0 as i64 + 3600);
    assert_eq!(
        (claims.jti.as_str(), claims.token_id.as_str()),
        ("tok_abc", "tok_abc")
    );
    assert_eq!(j.verify(&token, at(T0 + 10)), Ok(claims.clone()));
    assert_eq!(claims.permission_set(), Some(PermissionSet::DEFAULT));
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header, json!({"alg": "HS256", "typ": "mcp-dust+jwt"}));
}

#[test]
fn hand_forged_reference_token_verifies() {
    let (k, j) = issuer();
    let token = forge(k.jwt_signing(), "HS256", &header(), &payload());
    assert_eq!(j.verify(&token, at(T0)).unwrap().username, "alice");
}

#[test]
fn j1_alg_none_in_every_case_is_refused() {
    let (k, j) = issuer();
    for alg in ["none", "None", "NONE", "nOnE"] {
        let h = with(header(), "alg", json!(alg));
        let unsigned = forge(k.jwt_signing(), alg, &h, &payload());
        assert!(unsigned.ends_with('.'));
        assert_eq!(
            j.verify(&unsigned, at(T0)),
            Err(TokenError::Algorithm),
            "{alg}"
        );
        let bogus = format!("{unsigned}c2lnbmF0dXJl");
        assert_eq!(
            j.verify(&bogus, at(T0)),
            Err(TokenError::Algorithm),
            "{alg}"
        );
    }
    let reason = TokenError::Algorithm.reason();
    assert_eq!(reason, "alg");
}

#[test]
fn j2_algorithm_confusion_is_refused() {
    let (k, j) = issuer();
    for alg in ["RS256", "ES256", "PS256", "EdDSA", "hs256", "HS256 "] {
        let h = with(header(), "alg", json!(alg));
        let token = forge(k.jwt_signing(), "HS256", &h, &payload());
        assert_eq!(
            j.verify(&token, at(T0)),
            Err(TokenError::Algorithm),
            "{alg}"
        );
    }
    let empty_key = forge(b"", "HS256", &header(), &payload());
    assert_eq!(j.verify(&empty_key, at(T0)), Err(TokenError::Signature));
    let public_key = forge(
        b"-----BEGIN PUBLIC KEY-----\nMFkw...",
        "HS256",
        &header(),
        &payload(),
    );
    assert_eq!(j.verify(&public_key, at(T0)), Err(TokenError::Signature));
    let h = json!({"alg": 256, "typ": TOKEN_TYPE});
    let token = forge(k.jwt_signing(), "HS256", &h, &payload());
    assert_eq!(j.verify(&token, at(T0)), Err(TokenError::Malformed));
}

#[test]
fn j3_same_key_other_hmac_algorithm_is_refused() {
    let (k, j) = issuer();
    for alg in ["HS384", "HS512"] {
        let h = with(header(), "alg", json!(alg));
        let token = forge(k.jwt_signing(), alg, &h, &payload());
        assert_eq!(
            j.verify(&token, at(T0)),
            Err(TokenError::Algorithm),
            "{alg}"
        );
        // The same signature under a header claiming HS256 fails on the signature.
        let sig = token.rsplit('.').next().unwrap();
        let relabelled = format!(
            "{}.{}.{sig}",
            b64(header().to_string()),
            b64(payload().to_string())
        );
        assert_eq!(
            j.verify(&relabelled, at(T0)),
            Err(TokenError::Signature),
            "{alg}"
        );
    }
}

#[test]
fn j4_wrong_signatures_are_refused() {
    let (k, j) = issuer();
    let token = forge(k.jwt_signing(), "HS256", &header(), &payload());
    let (input, sig) = token.rsplit_once('.').unwrap();
    let mut raw = URL_SAFE_NO_PAD.decode(sig).unwrap();
    raw[7] ^= 0x01;
    let flipped = format!("{input}.{}", b64(&raw));
    assert_eq!(j.verify(&flipped, at(T0)), Err(TokenError::Signature));
    let other_key = forge(
        keys("root-two").jwt_signing(),
        "HS256",
        &header(),
        &payload(),
    );
    assert_eq!(j.verify(&other_key, at(T0)), Err(TokenError::Signature));
    let truncated = format!("{input}.{}", b64(&raw[..16]));
    assert_eq!(j.verify(&truncated, at(T0)), Err(TokenError::Signature));
    assert_eq!(
        j.verify(&format!("{input}."), at(T0)),
        Err(TokenError::Signature)
    );
    let jwe = format!("{input}.{sig}.{sig}.{sig}");
    assert_eq!(j.verify(&jwe, at(T0)), Err(TokenError::Malformed));
    for junk in ["", ".", "..", "a.b", "eyJ", &".".repeat(10_000)] {
        assert!(j.verify(junk, at(T0)).is_err(), "{junk:.20}");
    }
}

#[test]
fn j5_tampered_payloads_are_refused() {
    let (k, j) = issuer();
    let token = forge(k.jwt_signing(), "HS256", &header(), &payload());
    let (_, sig) = token.rsplit_once('.').unwrap();
    for tampered in [
        with(
            payload(),
            "permissions",
            json!(["read:agents", "delete:knowledge-bases"]),
        ),
        with(payload(), "workspaceId", json!("w2")),
        with(payload(), "exp", json!(T0 + 999_999)),
    ] {
        let t = format!(
            "{}.{}.{sig}",
            b64(header().to_string()),
            b64(tampered.to_string())
        );
        assert_eq!(j.verify(&t, at(T0)), Err(TokenError::Signature));
    }
}

#[test]
fn j6_expiry_honours_exactly_the_leeway() {
    let (k, j) = issuer();
    let leeway = LEEWAY.as_secs();
    let now = T0 + 7200;
    let exp_at = |exp: u64| {
        let p = with(with(payload(), "exp", json!(exp)), "iat", json!(T0));
        forge(k.jwt_signing(), "HS256", &header(), &p)
    };
    assert_eq!(
        j.verify(&exp_at(now - leeway - 1), at(now)),
        Err(TokenError::Expired)
    );
    assert!(j.verify(&exp_at(now - leeway), at(now)).is_ok());
    assert!(j.verify(&exp_at(now - leeway + 1), at(now)).is_ok());
    let (token, _) = j.issue(&subject(), "tok_x", at(T0)).unwrap();
    assert!(j.verify(&token, at(T0 + 3600 + leeway)).is_ok());
    assert_eq!(
        j.verify(&token, at(T0 + 3601 + leeway)),
        Err(TokenError::Expired)
    );
    assert_eq!(TokenError::Expired.reason(), "expired");
}

#[test]
fn j7_not_yet_valid_and_future_iat_are_refused() {
    let (k, j) = issuer();
    let leeway = LEEWAY.as_secs();
    let sign = |p: &Value| forge(k.jwt_signing(), "HS256", &header(), p);
    let nbf = with(payload(), "nbf", json!(T0 + 300));
    assert_eq!(j.verify(&sign(&nbf), at(T0)), Err(TokenError::NotYetValid));
    let nbf_edge = with(payload(), "nbf", json!(T0 + leeway));
    assert!(j.verify(&sign(&nbf_edge), at(T0)).is_ok());
    let iat = with(payload(), "iat", json!(T0 + leeway + 1));
    assert_eq!(j.verify(&sign(&iat), at(T0)), Err(TokenError::NotYetValid));
    let (token, _) = j.issue(&subject(), "tok_x", at(T0 + 600)).unwrap();
    assert_eq!(j.verify(&token, at(T0)), Err(TokenError::NotYetValid));
}

#[test]
fn j8_missing_or_ill_typed_claims_are_refused_without_panicking() {
    let (k, j) = issuer();
    let sign = |p: &Value| forge(k.jwt_signing(), "HS256", &header(), p);
    let cases = [
        without(payload(), "exp"),
        without(payload(), "jti"),
        without(payload(), "tokenId"),
        without(payload(), "aud"),
        without(payload(), "iss"),
        without(payload(), "nbf"),
        with(payload(), "tokenId", json!("tok_other")),
        with(payload(), "jti", json!("")),
        with(payload(), "permissions", json!("read:agents")),
        with(payload(), "permissions", json!(["read:everything"])),
        with(payload(), "workspaceId", Value::Null),
        with(payload(), "exp", json!("9999999999")),
        with(payload(), "exp", json!(1e300)),
        with(payload(), "exp", json!(u64::MAX)),
        with(payload(), "aud", json!([AUD])),
        json!([1, 2, 3]),
    ];
    for p in &cases {
        assert_eq!(j.verify(&sign(p), at(T0)), Err(TokenError::Claims), "{p}");
    }
    let huge = r#"{"iss":"x","exp":1e400}"#;
    let t = format!("{}.{}", b64(header().to_string()), b64(huge));
    let t = format!("{t}.{}", b64(mac::<Hmac<Sha256>>(k.jwt_signing(), &t)));
    assert_eq!(j.verify(&t, at(T0)), Err(TokenError::Claims));
    // Unknown claims are ignored, including an `email` from another issuer.
    let extra = with(
        with(payload(), "email", json!("a@b.c")),
        "admin",
        json!(true),
    );
    assert!(j.verify(&sign(&extra), at(T0)).is_ok());
    // Duplicate members: a derived struct refuses them instead of keeping the last one.
    let dup = payload().to_string().replacen(
        r#""workspaceId":"w1""#,
        r#""workspaceId":"w1","workspaceId":"w2""#,
        1,
    );
    assert!(dup.contains(r#""workspaceId":"w2""#));
    let t = format!("{}.{}", b64(header().to_string()), b64(&dup));
    let t = format!("{t}.{}", b64(mac::<Hmac<Sha256>>(k.jwt_signing(), &t)));
    assert_eq!(j.verify(&t, at(T0)), Err(TokenError::Claims));
    let dup_header = r#"{"alg":"HS256","typ":"mcp-dust+jwt","alg":"none"}"#;
    let t = format!("{}.{}", b64(dup_header), b64(payload().to_string()));
    let t = format!("{t}.{}", b64(mac::<Hmac<Sha256>>(k.jwt_signing(), &t)));
    assert_eq!(j.verify(&t, at(T0)), Err(TokenError::Malformed));
}

#[test]
fn j10_malleated_encodings_are_refused() {
    let (_, j) = issuer();
    let (token, claims) = j.issue(&subject(), "tok_revoked", at(T0)).unwrap();
    let (input, sig) = token.rsplit_once('.').unwrap();
    // 32 bytes of signature → 43 characters, the last carrying 2 spare bits.
    let last = sig.chars().last().unwrap();
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let idx = alphabet.find(last).unwrap();
    let sibling = alphabet.chars().nth(idx ^ 1).unwrap();
    let non_canonical = format!("{input}.{}{sibling}", &sig[..sig.len() - 1]);
    assert_eq!(j.verify(&non_canonical, at(T0)), Err(TokenError::Signature));
    let padded = format!("{token}=");
    assert_eq!(j.verify(&padded, at(T0)), Err(TokenError::Signature));
    let std_alphabet = token.replace('-', "+").replace('_', "/");
    if std_alphabet != token {
        assert!(j.verify(&std_alphabet, at(T0)).is_err());
    }
    let spaced_header = format!(
        "{}.{}",
        b64(r#"{ "alg": "HS256", "typ": "mcp-dust+jwt" }"#),
        token.split('.').nth(1).unwrap()
    );
    assert_eq!(
        j.verify(&format!("{spaced_header}.{sig}"), at(T0)),
        Err(TokenError::Signature)
    );
    let padded_payload = format!(
        "{}.{}=.{sig}",
        token.split('.').next().unwrap(),
        token.split('.').nth(1).unwrap()
    );
    assert_eq!(
        j.verify(&padded_payload, at(T0)),
        Err(TokenError::Signature)
    );
    // Whatever the spelling, revocation is keyed by `jti`, which the malleated copies share.
    assert_eq!(claims.jti, "tok_revoked");
}

#[test]
fn j11_header_steered_keys_are_refused() {
    let (k, j) = issuer();
    for (name, value) in [
        ("kid", json!("../../dev/null")),
        ("kid", json!("' OR '1'='1")),
        ("jku", json!("http://127.0.0.1:9/jwks")),
        ("jwk", json!({"kty": "oct", "k": "AAAA"})),
        ("x5u", json!("http://127.0.0.1:9/cert")),
        ("x5c", json!(["MIIB"])),
        ("crit", json!(["exp"])),
    ] {
        let h = with(header(), name, value);
        let token = forge(k.jwt_signing(), "HS256", &h, &payload());
        assert_eq!(
            j.verify(&token, at(T0)),
            Err(TokenError::Malformed),
            "{name}"
        );
    }
}

#[test]
fn j12_other_issuer_audience_or_type_is_refused() {
    let (k, j) = issuer();
    let sign = |h: &Value, p: &Value| forge(k.jwt_signing(), "HS256", h, p);
    let other_aud = with(payload(), "aud", json!("https://other.example.com/api"));
    assert_eq!(
        j.verify(&sign(&header(), &other_aud), at(T0)),
        Err(TokenError::WrongAudience)
    );
    let staging = with(payload(), "iss", json!("https://staging.example.com"));
    assert_eq!(
        j.verify(&sign(&header(), &staging), at(T0)),
        Err(TokenError::WrongIssuer)
    );
    for typ in [json!("JWT"), json!("at+jwt"), json!("csrf"), Value::Null] {
        let h = with(header(), "typ", typ.clone());
        assert_eq!(
            j.verify(&sign(&h, &payload()), at(T0)),
            Err(TokenError::WrongType),
            "{typ}"
        );
    }
    let untyped = without(header(), "typ");
    assert_eq!(
        j.verify(&sign(&untyped, &payload()), at(T0)),
        Err(TokenError::WrongType)
    );
    // A token signed with the CSRF key (same root, other label) does not verify.
    let csrf = forge(k.csrf_signing(), "HS256", &header(), &payload());
    assert_eq!(j.verify(&csrf, at(T0)), Err(TokenError::Signature));
    let other = JwtIssuer::new(
        &k,
        ISS,
        "https://mcp.example.com/other",
        Duration::from_secs(60),
    );
    let (token, _) = other.issue(&subject(), "tok_1", at(T0)).unwrap();
    assert_eq!(j.verify(&token, at(T0)), Err(TokenError::WrongAudience));
}

#[test]
fn j13_oversized_tokens_are_refused_before_decoding() {
    let (_, j) = issuer();
    let big = "a".repeat(MAX_TOKEN_BYTES + 1);
    assert_eq!(j.verify(&big, at(T0)), Err(TokenError::TooLarge));
}

/// Issue 22: the fuzzer's subject (1,050 control characters, each escaped as six bytes of JSON)
/// made a token `verify` refused. The issuer refuses it instead; the largest subject a login can
/// produce (254 four-byte characters as username and workspace) still round-trips.
#[test]
fn j13_the_issuer_never_makes_a_token_its_verifier_refuses() {
    let (_, j) = issuer();
    let mut big = subject();
    big.username = "\0".repeat(1050);
    assert_eq!(
        j.issue(&big, "tok_1", at(T0)).map(|_| ()),
        Err(TokenError::TooLarge)
    );
    let mut largest_login = subject();
    largest_login.username = "\u{10FFFF}".repeat(254);
    largest_login.workspace_id = "w".repeat(256);
    let (token, claims) = j.issue(&largest_login, "tok_1", at(T0)).unwrap();
    assert!(token.len() <= MAX_TOKEN_BYTES);
    assert_eq!(j.verify(&token, at(T0)), Ok(claims));
    // At the edge: the longest username that still fits is issued, one more byte is refused.
    let fits = (0..MAX_TOKEN_BYTES)
        .rev()
        .find(|&n| {
            let mut s = subject();
            s.username = "a".repeat(n);
            j.issue(&s, "tok_1", at(T0)).is_ok()
        })
        .unwrap();
    let mut at_edge = subject();
    at_edge.username = "a".repeat(fits);
    let (token, _) = j.issue(&at_edge, "tok_1", at(T0)).unwrap();
    assert!(j.verify(&token, at(T0)).is_ok());
    at_edge.username.push('a');
    assert_eq!(
        j.issue(&at_edge, "tok_1", at(T0)).map(|_| ()),
        Err(TokenError::TooLarge)
    );
}

#[test]
fn j16_dust_keys_are_recognised() {
    assert!(looks_like_dust_key("sk-0123456789abcdef0123456789abcdef"));
    let (_, j) = issuer();
    let (token, _) = j.issue(&subject(), "tok_1", at(T0)).unwrap();
    assert!(!looks_like_dust_key(&token));
}

#[test]
fn j18_rotating_the_root_secret_invalidates_old_tokens() {
    let (_, old) = issuer();
    let (token, _) = old.issue(&subject(), "tok_1", at(T0)).unwrap();
    let new = JwtIssuer::new(&keys("root-rotated"), ISS, AUD, Duration::from_secs(3600));
    assert_eq!(new.verify(&token, at(T0)), Err(TokenError::Signature));
}

#[test]
fn l9_payload_holds_no_secret_and_no_email() {
    let (k, j) = issuer();
    let (token, _) = j.issue(&subject(), "tok_1", at(T0)).unwrap();
    let payload = URL_SAFE_NO_PAD
        .decode(token.split('.').nth(1).unwrap())
        .unwrap();
    let text = String::from_utf8(payload).unwrap();
    assert!(!text.contains("email") && !text.contains("sk-"), "{text}");
    assert!(!text.contains(&hex::encode(k.jwt_signing())));
    let shown = format!("{j:?}");
    assert!(!shown.contains(&format!("{:?}", k.jwt_signing())));
}

#[test]
fn errors_carry_no_token_text() {
    let (_, j) = issuer();
    let (token, _) = j.issue(&subject(), "tok_1", at(T0)).unwrap();
    let err = j.verify(&token, at(T0 + 1_000_000)).unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("eyJ") && !shown.contains("tok_1"));
}
