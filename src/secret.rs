//! Random secrets (`gen-secret`).

use rand::{TryRngCore, rngs::OsRng};

/// Bytes of randomness in a generated secret (256 bits, the HS256 key size).
pub const SECRET_BYTES: usize = 32;

/// A new secret for `SECURITY_SECRET_KEY`: 32 bytes from the operating system's CSPRNG,
/// hex-encoded.
pub fn generate() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    OsRng
        .try_fill_bytes(&mut bytes)
        .expect("the operating system's random source is unavailable");
    hex::encode(bytes)
}
