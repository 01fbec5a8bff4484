//! Cookie parsing (src/http/session.rs): arbitrary `Cookie` header lines (split on 0x00 into
//! several headers), looked up under the session and CSRF cookie names.
//!
//! Invariants: every value found is the trimmed value of a `name=value` pair with exactly that
//! name (checked against an independent split), holds no `;`, and is found once per occurrence,
//! so a tossed duplicate is visible to the caller; only a value of 43 canonical base64url
//! characters passes as a session id, and it decodes to 32 bytes.
use axum::http::{HeaderMap, HeaderValue, header};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use mcp_dust_server::http::session::{
    SESSION_COOKIE, SESSION_ID_BYTES, XSRF_COOKIE, cookie_values, is_well_formed_id,
};

pub(super) fn run(data: &[u8]) {
    let mut headers = HeaderMap::new();
    let mut lines = Vec::new();
    for line in data.split(|&b| b == 0) {
        if let Ok(value) = HeaderValue::from_bytes(line) {
            // Only visible-ASCII headers are read at all (`to_str`), by the code and the oracle.
            if let Ok(text) = value.to_str() {
                lines.push(text.to_owned());
            }
            headers.append(header::COOKIE, value);
        }
    }
    for name in [SESSION_COOKIE, XSRF_COOKIE, "__Host-mcp.sid"] {
        let found = cookie_values(&headers, name);
        // The oracle: split each readable header on ';', then on the first '='.
        let expected: Vec<String> = lines
            .iter()
            .flat_map(|l| l.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.trim().to_owned())
            .collect();
        assert_eq!(found, expected, "cookie {name}");
        for value in &found {
            assert!(!value.contains(';'));
            assert_eq!(value.trim(), *value);
        }
        for value in found {
            if is_well_formed_id(value) {
                assert_eq!(value.len(), 43);
                assert_eq!(
                    URL_SAFE_NO_PAD.decode(value).unwrap().len(),
                    SESSION_ID_BYTES
                );
                assert!(
                    value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                );
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(data)
        && is_well_formed_id(text)
    {
        assert_eq!(
            URL_SAFE_NO_PAD.encode(URL_SAFE_NO_PAD.decode(text).unwrap()),
            text
        );
    }
}
