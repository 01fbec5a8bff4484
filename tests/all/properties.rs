//! Property tests of masking (catalogue L1): no secret survives, in any of its encodings, in
//! any of the places the masking functions are used for (free text, URLs, headers, JSON, log
//! fields), whatever text surrounds it.
//!
//! Two kinds of secret, as `src/mask.rs` documents:
//! - **recognised by shape** anywhere: the user's Dust API key, the server's upstream key (both
//!   `sk-…`) and JWTs. They must be masked in every context, raw, base64, base64url,
//!   URL-encoded and JSON-escaped, with arbitrary text glued on either side;
//! - **recognised by name**: the session id, the XSRF token and `SECURITY_SECRET_KEY` are
//!   opaque, so they are masked where they carry their name (a cookie, a header, a query or
//!   form parameter, a JSON member, a `NAME=value` line), in every encoding.
//!
//! The limiter's arithmetic properties live beside the code (`src/http/rate_limit.rs`).

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use mcp_dust_server::mask::{mask_headers, mask_json, mask_text, mask_url, sanitize_for_log};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Every encoding of `secret` the L1 sweep looks for (plus JSON escaping).
fn encodings(secret: &str) -> Vec<String> {
    let json = serde_json::to_string(secret).unwrap();
    vec![
        secret.to_owned(),
        STANDARD.encode(secret),
        URL_SAFE_NO_PAD.encode(secret),
        urlencoding::encode(secret).into_owned(),
        json[1..json.len() - 1].to_owned(),
    ]
}

/// Fails when `output` holds `secret` in any encoding.
fn assert_no_secret(output: &str, secret: &str, context: &str) -> Result<(), TestCaseError> {
    for encoded in encodings(secret) {
        prop_assert!(
            !output.contains(&encoded),
            "{context}: {encoded:?} survived in {output:?}"
        );
    }
    Ok(())
}

fn api_key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9a-f]{32}".prop_map(|s| format!("sk-{s}")),
        "[A-Za-z0-9]{16,48}".prop_map(|s| format!("sk-{s}")),
    ]
}

fn jwt() -> impl Strategy<Value = String> {
    (
        "[A-Za-z0-9_-]{8,40}",
        "[A-Za-z0-9_-]{8,200}",
        "[A-Za-z0-9_-]{43}",
    )
        .prop_map(|(h, p, s)| format!("eyJ{h}.eyJ{p}.{s}"))
}

fn session_id() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{43}"
}

fn xsrf_token() -> impl Strategy<Value = String> {
    ("[0-9]{10}", "[A-Za-z0-9_-]{22}", "[A-Za-z0-9_-]{43}")
        .prop_map(|(t, n, m)| format!("{t}.{n}.{m}"))
}

/// `SECURITY_SECRET_KEY` as `gen-secret` and the usual tools make it: hex, base64, base64url.
fn root_secret() -> impl Strategy<Value = String> {
    prop_oneof!["[0-9a-f]{64}", "[A-Za-z0-9+/]{43}=", "[A-Za-z0-9_-]{43}"]
}

/// A secret value typed by a person (a password, a pasted key): 8 to 40 of any printable ASCII
/// (long enough not to occur by chance in the text around it), so it may
/// start with or contain the delimiters of its context (`& ; , " ' < >`, a space).
fn printable_value() -> impl Strategy<Value = String> {
    "[ -~]{8,40}"
}

/// The same, without `=`, `:` and `%`: a value in which nothing looks like the start of the
/// next field (`; other=`), so the whole of it, every fragment, must be redacted.
fn printable_value_without_fields() -> impl Strategy<Value = String> {
    "[ -$&-9;<>-~]{8,40}"
}

/// Fails when `output` holds any 8-byte window of `secret` (a partial leak).
fn assert_no_fragment(output: &str, secret: &str, context: &str) -> Result<(), TestCaseError> {
    for window in secret.as_bytes().windows(8) {
        let window = std::str::from_utf8(window).unwrap();
        prop_assert!(
            !output.contains(window),
            "{context}: {window:?} of {secret:?} survived in {output:?}"
        );
    }
    Ok(())
}

/// The places a by-name secret typed by a person appears in text, each in the encoding that
/// place uses: raw on a line of its own (a config dump, a header line, a YAML-ish field, a
/// field list), JSON-escaped in JSON and twice in JSON logged inside a JSON string,
/// URL-encoded in a query string, a form body and a cookie.
fn named_contexts(value: &str, before: &str, after: &str) -> Vec<String> {
    let url = urlencoding::encode(value);
    let json = json!({ "password": value, "user": "bob" }).to_string();
    let json_in_json = serde_json::to_string(&json).unwrap();
    vec![
        format!("{before}SECURITY_SECRET_KEY={value}\n{after}"),
        format!("{before}\nAuthorization: {value}\nAccept: */*"),
        format!("{before} api_key: {value}\n{after}"),
        format!("{before} api_key: {value}, user: bob"),
        format!("{before} password={value}"),
        format!("{before} {json} {after}"),
        format!("{before} body={json_in_json} {after}"),
        format!("{before} GET /cb?state=1&password={url}&x=1 {after}"),
        format!("{before} Cookie: theme=dark; mcp.sid={url}; lang=en"),
    ]
}

/// Arbitrary surrounding text, printable or not.
fn noise() -> impl Strategy<Value = String> {
    prop_oneof![".{0,24}", "[ -~]{0,24}", Just(String::new())]
}

/// A shape-recognised secret in one of its encodings.
fn shaped() -> impl Strategy<Value = (String, String)> {
    (prop_oneof![api_key(), jwt()], 0usize..5).prop_map(|(secret, e)| {
        let encoded = encodings(&secret)[e].clone();
        (secret, encoded)
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Keys and JWTs, in any encoding, glued to arbitrary text, in text, URLs, log fields,
    /// header values and JSON strings.
    #[test]
    fn shaped_secrets_never_survive(
        (secret, encoded) in shaped(),
        before in noise(),
        after in noise(),
        header in "[a-z][a-z0-9-]{0,20}",
        key in "[A-Za-z_]{1,12}",
    ) {
        let text = format!("{before}{encoded}{after}");
        assert_no_secret(&mask_text(&text), &secret, "text")?;
        assert_no_secret(&sanitize_for_log(&text, 4096), &secret, "log field")?;
        let url = format!("https://dust.example/api/v1/{before}{encoded}?q={after}{encoded}#{encoded}");
        assert_no_secret(&mask_url(&url), &secret, "url")?;
        let mut headers = HeaderMap::new();
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(header.as_str()), HeaderValue::from_str(&text)) {
            headers.insert(name, value);
            for (_, shown) in mask_headers(&headers) {
                assert_no_secret(&shown, &secret, "header")?;
            }
        }
        let mut value = json!({ key.clone(): text, "nested": [{ "note": format!("{before}{encoded}") }] });
        mask_json(&mut value);
        assert_no_secret(&value.to_string(), &secret, "json")?;
    }

    /// The opaque secrets, in any encoding, where they carry their name.
    #[test]
    fn named_secrets_never_survive(
        session in session_id(),
        xsrf in xsrf_token(),
        root in root_secret(),
        e in 0usize..5,
        before in "[ -~]{0,24}",
        after in "[ -~]{0,24}",
    ) {
        let s = encodings(&session)[e].clone();
        let x = encodings(&xsrf)[e].clone();
        let r = encodings(&root)[e].clone();
        let check = |out: &str, context: &str| -> Result<(), TestCaseError> {
            assert_no_secret(out, &session, context)?;
            assert_no_secret(out, &xsrf, context)?;
            assert_no_secret(out, &root, context)
        };

        // Headers: the credential headers, whatever the value.
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("cookie", format!("{before}; mcp.sid={s}; XSRF-TOKEN={x}; {after}")),
            ("set-cookie", format!("__Host-mcp.sid={s}; Path=/; HttpOnly")),
            ("x-xsrf-token", x.clone()),
            ("x-security-secret-key", r.clone()),
        ] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.append(HeaderName::from_static(name), value);
            }
        }
        for (_, shown) in mask_headers(&headers) {
            check(&shown, "headers")?;
        }

        // A logged header block, a URL, a config dump and a form body, as text.
        let lines = [
            format!("{before} Cookie: mcp.sid={s}; XSRF-TOKEN={x} {after}"),
            format!("{before} x-xsrf-token: {x} {after}"),
            format!("{before}SECURITY_SECRET_KEY={r}\n{after}"),
            format!("{before} session_id={s}&csrf_token={x}&secret={r} {after}"),
            format!("{before} sessionId: {s}, xsrfToken: {x}, secretKey: {r} {after}"),
            format!(r#"{before} {{\"sessionId\":\"{s}\",\"xsrfToken\":\"{x}\",\"secretKey\":\"{r}\"}} {after}"#),
            format!(r#"{before} {{"sessionId": "{s}", "xsrfToken": "{x}", "secretKey": "{r}"}} {after}"#),
        ];
        for line in &lines {
            check(&mask_text(line), "text")?;
            check(&sanitize_for_log(line, 8192), "log field")?;
        }
        let url = format!("https://mcp.example/api/v1/auth/session?session={s}&xsrf_token={x}&secret={r}&{after}");
        check(&mask_url(&url), "url")?;

        // JSON members, nested, and a JSON body logged inside a JSON string.
        let mut value = json!({
            "sessionId": s, "session": { "id_value": s },
            "xsrfToken": x, "csrf": [x],
            "SECURITY_SECRET_KEY": r, "config": { "secretKey": r },
            "body": json!({ "access_token": x, "session_id": s, "client_secret": r }).to_string(),
        });
        mask_json(&mut value);
        check(&value.to_string(), "json")?;
    }

    /// A by-name secret made of any printable characters, delimiters included, first or
    /// anywhere: no encoding of it survives, in any of its contexts, as text or as a log field.
    #[test]
    fn named_secrets_of_any_printable_characters_never_survive(
        value in printable_value(),
        before in "[ -~]{0,24}",
        after in "[ -~]{0,24}",
    ) {
        for line in named_contexts(&value, &before, &after) {
            assert_no_secret(&mask_text(&line), &value, "text")?;
            assert_no_secret(&sanitize_for_log(&line, 8192), &value, "log field")?;
        }
    }

    /// The same with values in which nothing looks like the next field: not even a fragment of
    /// 8 bytes survives (the value is redacted whole, not up to its first delimiter).
    #[test]
    fn named_secrets_are_redacted_whole(
        value in printable_value_without_fields(),
        before in "[ -~]{0,24}",
        after in "[ -~]{0,24}",
    ) {
        for line in named_contexts(&value, &before, &after) {
            let masked = mask_text(&line);
            assert_no_secret(&masked, &value, "text")?;
            assert_no_fragment(&masked, &value, "text")?;
        }
    }

    /// Masking never panics and is idempotent on arbitrary text (a masked line masked again
    /// is unchanged), and clean ASCII prose without secret-like words is left as is.
    #[test]
    fn masking_is_stable(text in ".{0,200}", prose in "[a-z ]{0,80}") {
        let once = mask_text(&text).into_owned();
        prop_assert_eq!(mask_text(&once).into_owned(), once.clone());
        let _ = mask_url(&text);
        let _ = sanitize_for_log(&text, 64);
        let secretish = ["key", "token", "secret", "passw", "pwd", "auth", "cookie", "sess", "sid",
            "csrf", "xsrf", "credential", "code", "verifier", "jwt", "bearer", "basic"];
        if !secretish.iter().any(|w| prose.contains(w)) {
            prop_assert_eq!(mask_text(&prose).into_owned(), prose);
        }
        let mut value = Value::String(text.clone());
        mask_json(&mut value);
        prop_assert_eq!(value, Value::String(once));
    }
}
