//! `POST /mcp` body checks (src/http/jsonrpc.rs): arbitrary bytes.
//!
//! Invariants beyond "no panic": an accepted body is one JSON object whose `params`, if any, is
//! an object, and whose top-level keys are unique; a refused one gets a JSON-RPC error code of
//! the three used and a fixed message that quotes nothing from the body.
use std::collections::HashSet;

use mcp_dust_server::fuzzing::check_jsonrpc_body;
use serde_json::Value;

/// Every message a refusal may carry.
const MESSAGES: &[&str] = &[
    "parse error: JSON nested too deeply",
    "parse error: the body is not valid JSON",
    "parse error: the body could not be read as JSON",
    "batches are not supported: send one JSON-RPC message per request",
    "a JSON-RPC message must be an object",
    "duplicate keys in the JSON-RPC message",
    "params must be an object",
];

/// Top-level keys in order, duplicates kept, via serde_json's streaming map reader.
fn top_level_keys(bytes: &[u8]) -> Option<Vec<String>> {
    struct Keys;
    impl<'de> serde::de::Visitor<'de> for Keys {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut keys = Vec::new();
            while let Some(k) = map.next_key::<String>()? {
                map.next_value::<serde::de::IgnoredAny>()?;
                keys.push(k);
            }
            Ok(keys)
        }
    }
    use serde::Deserializer;
    serde_json::Deserializer::from_slice(bytes)
        .deserialize_map(Keys)
        .ok()
}

pub(super) fn run(data: &[u8]) {
    match check_jsonrpc_body(data) {
        Ok(()) => {
            let value: Value = serde_json::from_slice(data).expect("accepted body is JSON");
            let object = value.as_object().expect("accepted body is an object");
            if let Some(params) = object.get("params") {
                assert!(params.is_object(), "accepted non-object params");
            }
            let keys = top_level_keys(data).expect("accepted body reads as a map");
            let unique: HashSet<&String> = keys.iter().collect();
            assert_eq!(unique.len(), keys.len(), "accepted duplicate keys");
        }
        Err(rejection) => {
            assert!(
                matches!(rejection.code, -32700 | -32600 | -32602),
                "unexpected code {}",
                rejection.code
            );
            assert!(!rejection.message.is_empty());
            // The id is echoed only once the body parsed as an object.
            if rejection.code == -32700 {
                assert!(rejection.id.is_null());
                assert!(serde_json::from_slice::<Value>(data).is_err());
            }
            // One of the fixed sentences: nothing of the body is quoted back.
            assert!(
                MESSAGES.contains(&rejection.message),
                "{}",
                rejection.message
            );
        }
    }
}
