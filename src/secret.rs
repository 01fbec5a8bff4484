//! Random secrets (`gen-secret`).

/// Bytes of randomness in a generated secret (256 bits, the HS256 key size).
pub const SECRET_BYTES: usize = 32;

/// A new secret for `SECURITY_SECRET_KEY`: 32 bytes from the operating system's CSPRNG,
/// hex-encoded.
pub fn generate() -> String {
    hex::encode(crate::crypto::random_bytes::<SECRET_BYTES>().as_ref())
}
