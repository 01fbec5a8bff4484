use super::*;

use axum::http::{HeaderMap, HeaderValue, header};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::json;

/// A canary Dust key and JWT, grepped for in every output (catalogue L1).
const KEY: &str = "sk-0123456789abcdefABCDEF";
const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1c2VySWQiOiJ1XzEiLCJleHAiOjF9.c2lnbmF0dXJlLXNpZ25hdHVyZQ";

fn masked(input: &str) -> String {
    mask_text(input).into_owned()
}

fn assert_clean(output: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!output.contains(secret), "{secret:?} leaked in {output:?}");
    }
}

#[test]
fn clean_text_is_borrowed() {
    for text in [
        "",
        "list_agents returned 3 agents in 120 ms",
        "select a colour; the author=Jane wrote it",
        "GET /api/v1/agents?limit=10&cursor=abc HTTP/1.1",
        r#"{"tokenType": "Bearer-ish", "expiresAt": "2030-01-01T00:00:00Z"}"#,
        "status code: 404, error_code=not_found",
        "task-abc and sk-short",
        "session.id_hash=3f2a1b0c9d8e",
    ] {
        assert!(
            matches!(mask_text(text), Cow::Borrowed(_)),
            "{text:?} was changed"
        );
    }
}

#[test]
fn api_keys_and_jwts_are_redacted_anywhere() {
    let text = format!(
        "key {KEY}, in a word x{KEY}y, jwt {JWT} and unsigned {}",
        &JWT[..JWT.rfind('.').unwrap()]
    );
    let out = masked(&text);
    assert_clean(&out, &[KEY, "0123456789abcdef", "eyJhbGciOi", "eyJ1c2Vy"]);
    assert!(
        out.starts_with("key [REDACTED], in a word x[REDACTED]"),
        "{out}"
    );
}

#[test]
fn http_credentials_keep_their_scheme() {
    assert_eq!(
        masked("Authorization: Bearer abc.def-ghi"),
        "Authorization: [REDACTED]"
    );
    assert_eq!(
        masked("sent bearer opaque_token_1 upstream"),
        "sent bearer [REDACTED] upstream"
    );
    assert_eq!(masked("Basic dXNlcjpwYXNz=="), "Basic [REDACTED]");
    assert_eq!(masked("note: Bearer xyz"), "note: Bearer [REDACTED]");
}

#[test]
fn cookies_with_secret_names_are_redacted() {
    let out = masked(
        "Cookie: theme=dark; mcp.sid=s3ss10n; __Host-mcp.sid=abc; XSRF-TOKEN=x1; \
         __Host-XSRF-TOKEN=x2; PHPSESSID=p; my_auth=a; csrftoken=c",
    );
    assert_eq!(
        out,
        "Cookie: [REDACTED]; mcp.sid=[REDACTED]; __Host-mcp.sid=[REDACTED]; XSRF-TOKEN=[REDACTED]; __Host-XSRF-TOKEN=[REDACTED]; PHPSESSID=[REDACTED]; my_auth=[REDACTED]; csrftoken=[REDACTED]"
    );
    let out = masked("theme=dark; mcp.sid=s3ss10n; lang=en");
    assert_eq!(out, "theme=dark; mcp.sid=[REDACTED]; lang=en");
}

#[test]
fn secret_query_and_form_parameters_are_redacted() {
    for name in [
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "apiKey",
        "api_key",
        "key",
        "secret",
        "client_secret",
        "password",
        "code",
        "code_verifier",
        "session",
        "sid",
        "TOKEN",
        "ApiKey",
    ] {
        let out = masked(&format!("/cb?state=ok&{name}=v4lue&x=1"));
        assert_eq!(out, format!("/cb?state=ok&{name}=[REDACTED]&x=1"));
    }
    assert_eq!(
        masked("grant_type=authorization_code&code=abc&code_challenge=xyz"),
        "grant_type=authorization_code&code=[REDACTED]&code_challenge=xyz"
    );
    // URL-encoded inside another parameter.
    assert_eq!(
        masked("next=%2Fapp%3Ftoken%3Dabc123"),
        "next=%2Fapp%3Ftoken%3D[REDACTED]"
    );
}

#[test]
fn json_ish_pairs_in_text_are_redacted() {
    let out = masked(
        r#"upstream said {"api_key": "k1", "password":"p w", "pin": 1, "sessionId": 42, "name": "x"}"#,
    );
    assert_eq!(
        out,
        r#"upstream said {"api_key": "[REDACTED]", "password":"[REDACTED]", "pin": 1, "sessionId": [REDACTED], "name": "x"}"#
    );
    let escaped = masked(r#"body="{\"client_secret\":\"abc\",\"ok\":true}""#);
    assert_eq!(
        escaped,
        r#"body="{\"client_secret\":\"[REDACTED]\",\"ok\":true}""#
    );
    assert_eq!(
        masked("{ password: \"hunter2\" }"),
        "{ password: \"[REDACTED]\" }"
    );
    assert_eq!(masked("{'token': 'abc'}"), "{'token': '[REDACTED]'}");
}

#[test]
fn a_secret_value_starting_with_a_delimiter_is_redacted() {
    // Each of these kept the whole value: the rule wanted a token character first.
    for delimiter in ["&", ";", ",", "\"", "'", "<", ">", " ", "\t"] {
        let value = format!("{delimiter}s3cr3t-{delimiter}-tail");
        // White space after the separator is kept as part of it.
        let kept = if delimiter.trim().is_empty() {
            delimiter
        } else {
            ""
        };
        for (line, expected) in [
            (
                format!("SECURITY_SECRET_KEY={value}\nHOME=/root"),
                format!("SECURITY_SECRET_KEY={kept}[REDACTED]\nHOME=/root"),
            ),
            (
                format!("api_key: {value}"),
                format!("api_key: {kept}[REDACTED]"),
            ),
            (
                format!("Authorization: {value}"),
                format!("Authorization: {kept}[REDACTED]"),
            ),
            (
                format!("x password={value}"),
                format!("x password={kept}[REDACTED]"),
            ),
        ] {
            let out = masked(&line);
            assert_eq!(out, expected, "{line:?}");
            assert_clean(&out, &["s3cr3t", "tail"]);
        }
    }
    // Quoted in JSON, and in JSON logged inside a JSON string.
    assert_eq!(
        masked(r#"{"password": "\"s3cr3t", "user": "bob"}"#),
        r#"{"password": "[REDACTED]", "user": "bob"}"#
    );
    assert_eq!(
        masked(r#"body="{\"password\":\"\\\"s3cr3t\",\"ok\":true}""#),
        r#"body="{\"password\":\"[REDACTED]\",\"ok\":true}""#
    );
}

#[test]
fn a_bare_secret_value_runs_to_the_end_of_its_line_or_the_next_field() {
    for (line, expected) in [
        // Delimiters inside the value: redacted whole, to the end of the line.
        (
            "SECURITY_SECRET_KEY=p@ss; w0rd, <x>",
            "SECURITY_SECRET_KEY=[REDACTED]",
        ),
        ("Authorization: Token ghp_abc", "Authorization: [REDACTED]"),
        ("password=abc;  \nnext", "password=[REDACTED]\nnext"),
        // Up to the next field: query strings, cookies and field lists stay readable.
        ("/cb?token=a;b&x=1", "/cb?token=[REDACTED]&x=1"),
        ("mcp.sid=a b; lang=en", "mcp.sid=[REDACTED]; lang=en"),
        (
            "api_key: <k> x, user: bob",
            "api_key: [REDACTED], user: bob",
        ),
        (
            r#"secret=a b, "next": 1"#,
            r#"secret=[REDACTED], "next": 1"#,
        ),
        ("token=a&next%3Db", "token=[REDACTED]&next%3Db"),
        // A non-secret name with no value leaves the delimiter to the next pair.
        ("author=&token=abc", "author=&token=[REDACTED]"),
        ("author=;Bearer abc", "author=;Bearer [REDACTED]"),
    ] {
        assert_eq!(masked(line), expected, "{line:?}");
    }
}

#[test]
fn url_userinfo_passwords_are_redacted() {
    assert_eq!(
        masked("REDIS_URL=redis://:pw@cache:6379/0"),
        "REDIS_URL=redis://[REDACTED]@cache:6379/0"
    );
    assert_eq!(
        masked("see https://alice:pw@example.com/x"),
        "see https://[REDACTED]@example.com/x"
    );
}

#[test]
fn mask_url_redacts_userinfo_query_and_fragment() {
    assert_eq!(
        mask_url("https://ghp_opaque@example.com/p?access_token=a&page=2#id_token=b"),
        "https://[REDACTED]@example.com/p?access_token=[REDACTED]&page=2#id_token=[REDACTED]"
    );
    assert_eq!(mask_url("/mcp?apiKey=abc"), "/mcp?apiKey=[REDACTED]");
    assert_eq!(mask_url(&format!("/x/{KEY}/y")), "/x/[REDACTED]/y");
    assert!(matches!(
        mask_url("/api/v1/agents?limit=5"),
        Cow::Borrowed(_)
    ));
}

#[test]
fn canary_encodings() {
    use base64_like::{b64, b64url};
    for secret in [KEY, JWT] {
        let encoded = urlencoding::encode(secret).into_owned();
        let raw = masked(&format!("a {secret} b"));
        let url = masked(&format!("/p?q={encoded}&r=1"));
        let b = masked(&format!("blob {} end", b64(secret)));
        let bu = masked(&format!("blob {} end", b64url(secret)));
        for (label, out) in [
            ("raw", &raw),
            ("url", &url),
            ("base64", &b),
            ("base64url", &bu),
        ] {
            for needle in [
                secret.to_owned(),
                encoded.clone(),
                b64(secret),
                b64url(secret),
            ] {
                assert!(!out.contains(&needle), "{label}: {needle} in {out}");
            }
        }
    }
}

/// Minimal base64 for the canary test, so the crate needs no base64 dependency for it.
mod base64_like {
    const STD: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub(super) fn b64(text: &str) -> String {
        let mut out = String::new();
        for chunk in text.as_bytes().chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(STD[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    pub(super) fn b64url(text: &str) -> String {
        b64(text)
            .replace('+', "-")
            .replace('/', "_")
            .trim_end_matches('=')
            .to_owned()
    }

    #[test]
    fn known_answer() {
        assert_eq!(b64("sk-"), "c2st");
        assert_eq!(b64("eyJ"), "ZXlK");
        assert_eq!(b64("ab"), "YWI=");
    }
}

#[test]
fn the_key_never_survives_any_surrounding_text() {
    // A property test with a fixed seed (no proptest dependency): random ASCII, punctuation and
    // fragments of the rules' own syntax around each canary.
    const ALPHABET: &[u8] = b"abcXYZ019 -_.=:;&?#%\"'{}[]<>/\\\r\n\tsk-eyJBearer ";
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..5000 {
        let piece = |rng: &mut StdRng| -> String {
            let len = rng.random_range(0..24);
            (0..len)
                .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
                .collect()
        };
        for canary in [KEY, JWT] {
            let text = format!("{}{canary}{}", piece(&mut rng), piece(&mut rng));
            let out = masked(&text);
            assert!(!out.contains(canary), "leaked in {text:?} -> {out:?}");
            let sanitized = sanitize_for_log(&text, 64);
            assert!(
                !sanitized.contains(&canary[..12]),
                "leaked in {text:?} -> {sanitized:?}"
            );
        }
    }
}

#[test]
fn mask_json_redacts_secret_keys_and_keeps_metadata() {
    let mut value = json!({
        "apiKey": "k",
        "access_token": "t",
        "tokenType": "Bearer",
        "expiresAt": "2030-01-01T00:00:00Z",
        "tokenId": "tok_1",
        "session_id_hash": "3f2a1b0c9d8e",
        "usage": {"tokens": 120, "inputTokens": 100, "max_tokens": 4096},
        "tokens": ["opaque1", "opaque2"],
        "hasSession": true,
        "cookie": "mcp.sid=abc",
        "Authorization": "whatever",
        "private_key": "-----BEGIN",
        "credentials": {"user": "u"},
        "nested": [{"client_secret": "s", "note": format!("see {KEY}"), "code": "not_found"}],
        "author": "Jane",
        "csrfTokenExpiresAt": 5,
    });
    mask_json(&mut value);
    assert_eq!(
        value,
        json!({
            "apiKey": REDACTED,
            "access_token": REDACTED,
            "tokenType": "Bearer",
            "expiresAt": "2030-01-01T00:00:00Z",
            "tokenId": "tok_1",
            "session_id_hash": "3f2a1b0c9d8e",
            "usage": {"tokens": 120, "inputTokens": 100, "max_tokens": 4096},
            "tokens": REDACTED,
            "hasSession": true,
            "cookie": REDACTED,
            "Authorization": REDACTED,
            "private_key": REDACTED,
            "credentials": REDACTED,
            "nested": [{"client_secret": REDACTED, "note": "see [REDACTED]", "code": "not_found"}],
            "author": "Jane",
            "csrfTokenExpiresAt": 5,
        })
    );
}

#[test]
fn name_classification() {
    use NameKind::*;
    for (name, kind) in [
        ("api_key", Secret),
        ("X-Api-Key", Secret),
        ("refreshToken", Secret),
        ("mcp.sid", Secret),
        ("__Host-mcp.sid", Secret),
        ("x-auth", Secret),
        ("authHeader", Secret),
        ("sessionId", Secret),
        ("author", Plain),
        ("oauth", Plain),
        ("www-authenticate", Plain),
        ("tokenType", Plain),
        ("token_endpoint", Plain),
        ("cookie_name", Plain),
        ("tokens", Count),
        ("outputTokens", Count),
        ("key", Plain),
        ("code", Plain),
    ] {
        assert_eq!(classify_name(name), kind, "{name}");
    }
    assert!(is_secret_param("key") && is_secret_param("Code") && !is_secret_param("keys"));
}

#[test]
fn headers_are_redacted_by_name_and_masked_by_shape() {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_static("Bearer abc"),
    );
    headers.insert(header::COOKIE, HeaderValue::from_static("mcp.sid=abc"));
    headers.insert(header::SET_COOKIE, HeaderValue::from_static("XSRF-TOKEN=x"));
    headers.insert(
        header::PROXY_AUTHORIZATION,
        HeaderValue::from_static("Basic eA=="),
    );
    headers.insert("x-xsrf-token", HeaderValue::from_static("x"));
    headers.insert("x-csrf-token", HeaderValue::from_static("x"));
    headers.insert("x-api-key", HeaderValue::from_static("k"));
    headers.insert("x-dust-session", HeaderValue::from_static("k"));
    headers.insert(
        header::USER_AGENT,
        HeaderValue::from_str(&format!("curl {KEY}")).unwrap(),
    );
    headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    headers.insert("x-odd", HeaderValue::from_bytes(b"caf\xe9").unwrap());
    let shown: std::collections::HashMap<_, _> = mask_headers(&headers).into_iter().collect();
    for name in [
        "authorization",
        "cookie",
        "set-cookie",
        "proxy-authorization",
        "x-xsrf-token",
        "x-csrf-token",
        "x-api-key",
        "x-dust-session",
    ] {
        assert_eq!(shown[name], REDACTED, "{name}");
    }
    assert_eq!(shown["user-agent"], "curl [REDACTED]");
    assert_eq!(shown["accept"], "application/json");
    assert_eq!(shown["x-odd"], BINARY);
}

#[test]
fn log_injection_stays_on_one_line() {
    let out = sanitize_for_log(
        "x\r\n{\"level\":\"error\",\"msg\":\"admin login\"}\u{1b}[31m\0\u{202e}\u{2028}\u{85}",
        200,
    );
    assert_eq!(
        out,
        "x\\r\\n{\"level\":\"error\",\"msg\":\"admin login\"}\\u{001b}[31m\\0\\u{202e}\\u{2028}\\u{0085}"
    );
    assert!(!out.chars().any(needs_escape));
}

#[test]
fn sanitize_masks_and_truncates_on_a_char_boundary() {
    let out = sanitize_for_log(&format!("{KEY} é"), 11);
    assert_eq!(out, "[REDACTED] …[truncated 2 bytes]");
    // "é" is two bytes: cutting at 18 would split it.
    assert_eq!(
        sanitize_for_log("abcdefghijklmnopqé!", 18),
        "abcdefghijklmnopq…[truncated 3 bytes]"
    );
    // An escape is never cut in half.
    assert_eq!(sanitize_for_log("ab\ncd", 3), "ab…[truncated 3 bytes]");
    assert_eq!(sanitize_for_log("short", 256), "short");
}

#[test]
fn a_megabyte_is_truncated_cheaply() {
    let big = format!("{KEY} {}", "A".repeat(1 << 20));
    let out = sanitize_for_log(&big, 256);
    assert!(out.starts_with("[REDACTED] AAAA"), "{}", &out[..40]);
    let content = out.split('…').next().unwrap();
    assert_eq!(content.len(), 256);
    let expected = big.len() - KEY.len() - 1 - (256 - REDACTED.len() - 1);
    assert!(
        out.ends_with(&format!("…[truncated {expected} bytes]")),
        "{}",
        &out[250..]
    );
}

#[test]
fn deep_pairs_fail_closed_and_stay_linear() {
    let hostile = "code:".repeat(20_000) + "token=abc";
    let out = masked(&hostile);
    assert!(!out.contains("abc"));
    assert!(
        out.starts_with("code:code:code:code:code:[REDACTED]"),
        "{}",
        &out[..60]
    );
}

#[test]
fn fingerprints_are_short_stable_and_distinct() {
    let a = fingerprint("session-a");
    assert_eq!(a.len(), FINGERPRINT_HEX_LEN);
    assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(a, fingerprint("session-a"));
    assert_ne!(a, fingerprint("session-b"));
    let plain = hex::encode(Sha256::digest(b"session-a"));
    assert!(!plain.starts_with(&a));
}

#[test]
fn a_key_used_as_a_url_scheme_is_still_redacted() {
    assert_eq!(
        masked(&format!("{KEY}://u:p@h")),
        "[REDACTED]://[REDACTED]@h"
    );
}
