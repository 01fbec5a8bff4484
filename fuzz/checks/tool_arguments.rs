//! Tool arguments (src/mcp/args.rs, parsed as `tools/call` does): arbitrary JSON objects for
//! each tool, plus the identifier and URL checks on arbitrary strings.
//!
//! Invariants: an identifier that passes `check_id` is 1..=256 bytes of `[A-Za-z0-9_-]`, so it
//! is one URL path segment as is; a document id that passes is 1..=512 bytes without control
//! characters, not `.` or `..`, and stays exactly one path segment once percent-encoded (no `/`
//! left, decodes back to itself); an accepted source URL is absolute http(s) with a host; the
//! error message of an id check is the same whatever the value (it quotes nothing back).
use mcp_dust_server::fuzzing::{
    MAX_DOCUMENT_ID_LEN, MAX_ID_LEN, TOOLS, check_document_id, check_id, check_source_url,
    check_tags, check_text, parse_tool_arguments,
};
use serde_json::Value;

fn check_identifier(field: &str, value: &str) {
    match check_id(field, value) {
        Ok(()) => {
            assert!(!value.is_empty() && value.len() <= MAX_ID_LEN);
            assert!(
                value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            );
            assert_eq!(
                urlencoding::encode(value),
                value,
                "id changes when path-encoded"
            );
        }
        // One fixed message whatever the value: nothing of it is quoted back.
        Err(e) => assert_eq!(e.message, check_id(field, "/").unwrap_err().message),
    }
    match check_document_id(field, value) {
        Ok(()) => {
            assert!(!value.is_empty() && value.len() <= MAX_DOCUMENT_ID_LEN);
            assert!(value != "." && value != "..");
            assert!(!value.chars().any(char::is_control));
            // As the client sends it: one path segment of the URL, which decodes back to it.
            let mut url = url::Url::parse("https://dust.example/documents").unwrap();
            url.path_segments_mut().unwrap().push(value);
            let last = url.path_segments().unwrap().next_back().unwrap().to_owned();
            assert_eq!(url.path_segments().unwrap().count(), 2, "{url}");
            assert!(!last.contains(['/', '?', '#']));
            assert_eq!(urlencoding::decode(&last).unwrap(), value);
        }
        // `/` is a valid document id (Dust's ids are free); `..` never is.
        Err(e) => assert_eq!(
            e.message,
            check_document_id(field, "..").unwrap_err().message
        ),
    }
}

pub(super) fn run(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    check_identifier("id", &text);
    if check_source_url(&text).is_ok() {
        let url = url::Url::parse(&text).expect("accepted URL parses");
        assert!(matches!(url.scheme(), "http" | "https") && url.host().is_some());
    }
    let _ = check_text("message", &text, 64);
    if let Ok(tags) = serde_json::from_slice::<Vec<String>>(rest)
        && check_tags("tags", &tags).is_ok()
    {
        assert!(tags.len() <= 32);
        assert!(
            tags.iter()
                .all(|t| !t.is_empty() && t.len() <= 256 && !t.contains(char::is_control))
        );
    }
    let tool = TOOLS[usize::from(selector) % TOOLS.len()];
    let arguments = match serde_json::from_slice::<Value>(rest) {
        Ok(Value::Object(map)) => Some(map),
        Ok(Value::Null) => None,
        _ => return,
    };
    let known_fields = [
        "query",
        "agentId",
        "message",
        "conversationId",
        "spaceId",
        "knowledgeBaseId",
        "topK",
        "tagsIn",
        "tagsNot",
        "timestampGt",
        "timestampLt",
        "limit",
        "offset",
        "documentId",
        "text",
        "title",
        "sourceUrl",
        "tags",
        "tableId",
        "rowId",
        "rows",
    ];
    let has_unknown = arguments
        .as_ref()
        .is_some_and(|a| a.keys().any(|k| !known_fields.contains(&k.as_str())));
    match parse_tool_arguments(tool, arguments) {
        Ok(ids) => {
            assert!(!has_unknown, "{tool} accepted an unknown field");
            // What the handlers then check before anything reaches Dust.
            for (field, value) in ids {
                match field {
                    "documentId" | "tableId" | "rowId" => check_identifier(field, &value),
                    "sourceUrl" => {
                        let _ = check_source_url(&value);
                    }
                    _ => check_identifier(field, &value),
                }
            }
        }
        Err(message) => assert!(message.starts_with("invalid arguments for ")),
    }
}
