//! Sealing Dust keys at rest: XChaCha20-Poly1305 with the at-rest key.
//!
//! XChaCha's 192-bit nonce makes random nonces safe for any number of seals under one key, so
//! no counter has to be shared between instances. The token id is the associated data: a sealed
//! key only opens in the record it was sealed for. Layout: version byte, 24-byte nonce,
//! ciphertext with its 16-byte tag.

use crate::crypto::SealedKey;
use std::fmt;

use chacha20poly1305::{
    KeyInit, XChaCha20Poly1305, XNonce,
    aead::{Aead, Payload},
};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::auth::keys::{KEY_LEN, Keys};

/// Format version of a sealed key; a different first byte does not open.
const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
/// Domain separation in the associated data.
const AAD_LABEL: &[u8] = b"mcp-dust-server/sealed-dust-key/v1\0";

/// A sealed key that does not open: wrong key, wrong token id, or tampered bytes. Callers treat
/// it as "not found" and audit `crypt_decrypt_fail` (catalogue E2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the sealed key cannot be opened")]
pub struct OpenError;

/// Seals and opens Dust keys with the at-rest key.
pub struct KeyCipher {
    key: Zeroizing<[u8; KEY_LEN]>,
}

impl KeyCipher {
    pub fn new(keys: &Keys) -> Self {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        key.copy_from_slice(keys.at_rest());
        Self { key }
    }

    /// Seals `api_key` for the record of `token_id`. Sealing twice gives different bytes.
    #[must_use]
    pub fn seal(&self, api_key: &SecretString, token_id: &str) -> SealedKey {
        let nonce = crate::crypto::random_bytes::<NONCE_LEN>();
        let aad = aad(token_id);
        let ciphertext = self
            .cipher()
            .encrypt(
                XNonce::from_slice(nonce.as_ref()),
                Payload {
                    msg: api_key.expose_secret().as_bytes(),
                    aad: &aad,
                },
            )
            .expect("XChaCha20-Poly1305 encryption of a short key cannot fail");
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        sealed.push(VERSION);
        sealed.extend_from_slice(nonce.as_ref());
        sealed.extend_from_slice(&ciphertext);
        SealedKey::from_bytes(sealed)
    }

    /// Opens a key sealed for `token_id`.
    pub fn open(&self, sealed: &[u8], token_id: &str) -> Result<SecretString, OpenError> {
        let Some((&VERSION, rest)) = sealed.split_first() else {
            return Err(OpenError);
        };
        if rest.len() < NONCE_LEN {
            return Err(OpenError);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let aad = aad(token_id);
        let plain = Zeroizing::new(
            self.cipher()
                .decrypt(
                    XNonce::from_slice(nonce),
                    Payload {
                        msg: ciphertext,
                        aad: &aad,
                    },
                )
                .map_err(|_| OpenError)?,
        );
        let text = std::str::from_utf8(&plain).map_err(|_| OpenError)?;
        Ok(SecretString::from(text.to_owned()))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.key.as_ref().into())
    }
}

fn aad(token_id: &str) -> Vec<u8> {
    [AAD_LABEL, token_id.as_bytes()].concat()
}

impl fmt::Debug for KeyCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyCipher([REDACTED])")
    }
}
