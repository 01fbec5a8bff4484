//! The format check of a Dust API key, done before anything else touches it.
//!
//! The guide's rule: 32 to 64 characters of `A-Z a-z 0-9 _ -`. Dust's keys (`sk-` and 32 hex
//! characters) fit it. The check is a cheap pre-filter, not authentication (Dust is the
//! authority), and it never trims: a key with a stray space is refused, not silently changed.

/// Shortest accepted key.
pub const MIN_LEN: usize = 32;
/// Longest accepted key.
pub const MAX_LEN: usize = 64;

/// Why a key was refused. The messages never contain the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyFormatError {
    #[error("an API key must be 32 to 64 characters long")]
    Length,
    #[error("an API key may only contain letters, digits, '_' and '-'")]
    Characters,
}

/// Checks the format of `key`.
pub fn check_format(key: &str) -> Result<(), KeyFormatError> {
    if !(MIN_LEN..=MAX_LEN).contains(&key.len()) {
        return Err(KeyFormatError::Length);
    }
    if !key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(KeyFormatError::Characters);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_dust_keys_and_refuses_the_rest() {
        assert!(check_format("sk-0123456789abcdef0123456789abcdef").is_ok());
        assert!(check_format(&"a".repeat(32)).is_ok());
        assert!(check_format(&"a".repeat(64)).is_ok());
        assert_eq!(check_format(&"a".repeat(31)), Err(KeyFormatError::Length));
        assert_eq!(check_format(&"a".repeat(65)), Err(KeyFormatError::Length));
        let padded = format!(" {}", "a".repeat(32));
        assert_eq!(check_format(&padded), Err(KeyFormatError::Characters));
        let unicode = format!("{}é", "a".repeat(31));
        assert!(check_format(&unicode).is_err());
        assert!(check_format(&format!("{}\n", "a".repeat(32))).is_err());
    }
}
