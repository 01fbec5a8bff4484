use secrecy::{ExposeSecret, SecretString};

use super::*;
use crate::auth::Keys;

const CANARY_KEY: &str = "sk-canary0canary0canary0canary000";

fn keys() -> Keys {
    Keys::derive(&SecretString::from("root-one".to_owned()))
}

#[tokio::test]
async fn memory_store_passes_the_contract() {
    testing::token_store_contract(&MemoryTokenStore::new()).await;
}

/// Memory stays bounded: expired records leave the map at a later write (the sweep runs once a
/// second, not on every write).
#[tokio::test]
async fn memory_store_sweeps_expired_records_on_a_later_write() {
    let store = MemoryTokenStore::new();
    store
        .save(testing::record("w1", "usr_a", 0, 1))
        .await
        .unwrap();
    assert_eq!(store.len(), 1);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let live = testing::record("w1", "usr_b", 0, 3600);
    let live_id = live.token_id.clone();
    store.save(live).await.unwrap();
    assert_eq!(store.len(), 1, "the expired record is still in the map");
    assert_eq!(
        store.indexed_users(),
        1,
        "usr_a is still in the per-user index"
    );
    assert!(store.get(&live_id).await.unwrap().is_some());
    let listed = store.list_for_user("w1", "usr_b").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].token_id, live_id);
    assert!(store.list_for_user("w1", "usr_a").await.unwrap().is_empty());
}

/// The per-user index follows a record saved again under another user (ids are random, so
/// this only happens on a bug upstream, but the index must not keep a stale entry).
#[tokio::test]
async fn memory_store_index_follows_a_record_saved_under_another_user() {
    let store = MemoryTokenStore::new();
    let mut record = testing::record("w1", "usr_a", 0, 3600);
    store.save(record.clone()).await.unwrap();
    record.user_id = "usr_b".to_owned();
    store.save(record.clone()).await.unwrap();
    assert!(store.list_for_user("w1", "usr_a").await.unwrap().is_empty());
    assert_eq!(store.list_for_user("w1", "usr_b").await.unwrap().len(), 1);
    assert_eq!(store.count_live_for_user("w1", "usr_b").await.unwrap(), 1);
    assert_eq!(store.indexed_users(), 1);
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
        let mut flipped = sealed.clone();
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
    let mut record = testing::record("w1", "usr_1", 0, 3600);
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

#[test]
fn records_with_unknown_permissions_do_not_load() {
    let record = testing::record("w1", "usr_1", 0, 3600);
    let json = serde_json::to_string(&record)
        .unwrap()
        .replace("read:agents", "admin:everything");
    assert!(serde_json::from_str::<TokenRecord>(&json).is_err());
}
