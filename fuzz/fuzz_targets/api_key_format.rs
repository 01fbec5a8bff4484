//! The API key format check (src/auth/api_key.rs): arbitrary strings.
//!
//! Invariants: accepted exactly when 32..=64 bytes of `[A-Za-z0-9_-]` (an independent
//! statement of the guide's rule); never trims; the error message never contains the key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_dust_server::auth::api_key::{MAX_LEN, MIN_LEN, check_format};

fuzz_target!(|data: &[u8]| {
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
        let message = error.to_string();
        if key.len() >= 4 {
            assert!(!message.contains(key), "error quotes the key");
        }
        assert!(!format!("{error:?}").contains(key) || key.len() < 4);
    }
});
