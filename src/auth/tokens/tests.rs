use secrecy::{ExposeSecret, SecretString};

use super::*;
use crate::{auth::Keys, store::tokens::contract};

const CANARY_KEY: &str = "sk-canary0canary0canary0canary000";

fn keys() -> Keys {
    Keys::derive(&SecretString::from("root-one".to_owned()))
}

#[tokio::test]
async fn the_live_token_cap_holds_over_the_memory_store() {
    testing::live_token_cap(&crate::store::MemoryTokenStore::new()).await;
}

#[test]
fn token_ids_are_random_url_safe_and_128_bits() {
    let a = new_token_id();
    assert_ne!(a, new_token_id());
    assert_eq!(a.len(), 4 + 22);
    assert!(
        a[4..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
}

#[test]
fn sealed_keys_open_only_for_their_token_e2() {
    let cipher = KeyCipher::new(&keys());
    let key = SecretString::from(CANARY_KEY.to_owned());
    let sealed = cipher.seal(&key, "tok_a");
    assert_eq!(
        cipher.open(&sealed, "tok_a").unwrap().expose_secret(),
        CANARY_KEY
    );
    assert_ne!(sealed, cipher.seal(&key, "tok_a"), "nonces repeat");
    assert_eq!(cipher.open(&sealed, "tok_b").unwrap_err(), OpenError);
    for i in 0..sealed.len() {
        let mut flipped = sealed.to_vec();
        flipped[i] ^= 0x01;
        assert!(cipher.open(&flipped, "tok_a").is_err(), "byte {i}");
    }
    assert!(cipher.open(&sealed[..sealed.len() - 1], "tok_a").is_err());
    assert!(cipher.open(&[], "tok_a").is_err());
    assert!(cipher.open(&[1; 10], "tok_a").is_err());
    let other = KeyCipher::new(&Keys::derive(&SecretString::from("root-two".to_owned())));
    assert!(other.open(&sealed, "tok_a").is_err());
    assert_eq!(format!("{cipher:?}"), "KeyCipher([REDACTED])");
}

#[test]
fn k11_the_key_is_not_in_the_record_or_its_debug() {
    let cipher = KeyCipher::new(&keys());
    let mut record = contract::record("w1", "usr_1", 0, 3600);
    record.sealed_key = cipher.seal(&SecretString::from(CANARY_KEY.to_owned()), &record.token_id);
    let json = serde_json::to_string(&record).unwrap();
    let debug = format!("{record:?} {record:#?}");
    for shown in [&json, &debug] {
        assert!(!shown.contains("canary"), "{shown}");
    }
    let raw = CANARY_KEY.as_bytes();
    assert!(!json.as_bytes().windows(raw.len()).any(|w| w == raw));
    assert!(!record.sealed_key.windows(raw.len()).any(|w| w == raw));
    let back: TokenRecord = serde_json::from_str(&json).unwrap();
    assert_eq!(back, record);
    assert!(
        json.contains(r#""permissions":["read:workspaces""#),
        "{json}"
    );
}
