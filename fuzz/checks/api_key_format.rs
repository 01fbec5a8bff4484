//! The API key format check (src/auth/api_key.rs): arbitrary strings.
//!
//! Invariants: accepted exactly when 32..=64 bytes of `[A-Za-z0-9_-]` (an independent
//! statement of the guide's rule); never trims; the error is one of two fixed sentences.
use mcp_dust_server::auth::api_key::{KeyFormatError, MAX_LEN, MIN_LEN, check_format};

pub(super) fn run(data: &[u8]) {
    let Ok(key) = std::str::from_utf8(data) else {
        return;
    };
    let expected = (MIN_LEN..=MAX_LEN).contains(&key.len())
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let result = check_format(key);
    assert_eq!(result.is_ok(), expected, "{key:?}");
    if let Err(error) = result {
        // One of two fixed sentences, whatever the key: nothing of it is quoted back.
        let fixed = [KeyFormatError::Length, KeyFormatError::Characters];
        assert!(fixed.iter().any(|f| f.to_string() == error.to_string()));
        assert!(["Length", "Characters"].contains(&format!("{error:?}").as_str()));
    }
}
