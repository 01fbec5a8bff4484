//! The few cryptographic primitives the server builds on, each written once: random bytes and
//! tokens from the operating system's CSPRNG, and the keyed MAC (HMAC-SHA256).
//!
//! Why one place: seven call sites drew random bytes and five built an HMAC, each with its own
//! `expect` message and encoding. A source of randomness that fails is not something to recover
//! from (a server that cannot draw a session id must not issue a predictable one), so
//! [`random_bytes`] panics, with one message, rather than return an error every caller would
//! turn into a panic anyway.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use rand::{TryRngCore, rngs::OsRng};
use sha2::Sha256;
use zeroize::Zeroizing;

/// `N` bytes from the operating system's CSPRNG, wiped from memory when dropped.
///
/// # Panics
///
/// When the operating system's random source is unavailable.
#[must_use]
pub fn random_bytes<const N: usize>() -> Zeroizing<[u8; N]> {
    let mut bytes = Zeroizing::new([0u8; N]);
    OsRng
        .try_fill_bytes(bytes.as_mut())
        .expect("the operating system's random source is unavailable");
    bytes
}

/// `N` random bytes as unpadded base64url (`N = 32` gives 43 characters): ids and secrets that
/// travel in URLs, cookies and headers as they are.
#[must_use]
pub fn random_token<const N: usize>() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<N>().as_ref())
}

/// HMAC-SHA256 keyed with `key`, ready for `update`.
#[must_use]
pub fn hmac_sha256(key: &[u8]) -> Hmac<Sha256> {
    <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length")
}

/// A Dust API key sealed at rest (`auth::tokens::KeyCipher`): opaque ciphertext, bound to the
/// record it was sealed for. One type for every record that holds a key (token records and
/// OAuth grants), written in JSON as unpadded base64url. Its `Debug` shows only its length.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedKey(Vec<u8>);

impl SealedKey {
    /// Ciphertext as sealed (`KeyCipher::seal`).
    #[must_use]
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl std::ops::Deref for SealedKey {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for SealedKey {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SealedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{} sealed bytes]", self.0.len())
    }
}

impl serde::Serialize for SealedKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&URL_SAFE_NO_PAD.encode(&self.0))
    }
}

impl<'de> serde::Deserialize<'de> for SealedKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        URL_SAFE_NO_PAD
            .decode(text.as_bytes())
            .map(Self)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_fresh_and_url_safe() {
        let a = random_token::<32>();
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_token::<32>());
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mut mac = hmac_sha256(b"Jefe");
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_sealed_key_is_base64url_in_json_and_opaque_in_debug() {
        let sealed = SealedKey::from_bytes(vec![0xfb, 0xff, 0x00, 0x41]);
        let json = serde_json::to_string(&sealed).unwrap();
        assert_eq!(json, "\"-_8AQQ\"");
        assert_eq!(serde_json::from_str::<SealedKey>(&json).unwrap(), sealed);
        assert!(serde_json::from_str::<SealedKey>("\"not base64!\"").is_err());
        assert_eq!(format!("{sealed:?}"), "[4 sealed bytes]");
    }
}
