//! Operation arguments: their schemas (what a model sees as a tool's `inputSchema`) and their
//! validation.
//!
//! Every struct denies unknown fields, so its `inputSchema` says `additionalProperties: false`
//! and a stray argument is refused rather than ignored. Identifiers are checked against an ASCII
//! allowlist before anything reaches Dust (catalogue V8, V14): they become URL path segments.
//! Free text (`message`, `query`, `text`) is never altered; it reaches Dust byte for byte (V11).

use schemars::JsonSchema;
use serde::Deserialize;

pub use super::attach::Attachments;

/// An argument a check refused: which and why, never the value itself. The operations turn it
/// into [`super::OpError::Invalid`], which MCP says as a JSON-RPC `-32602` and REST as a 400.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidArgument {
    pub message: String,
}

impl std::fmt::Display for InvalidArgument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

pub(super) fn invalid_params(message: impl Into<String>) -> InvalidArgument {
    InvalidArgument {
        message: message.into(),
    }
}

/// Longest identifier accepted (Dust sIds are 10 characters; document ids are caller-chosen).
pub const MAX_ID_LEN: usize = 256;

/// Most search results asked of Dust at once.
pub(crate) const MAX_TOP_K: u32 = 64;

/// Most documents listed at once.
pub(crate) const MAX_LIST_LIMIT: u32 = 100;

/// Results of `search_workspace` when the caller does not say.
pub(crate) const DEFAULT_WORKSPACE_SEARCH_LIMIT: u32 = 20;

/// Largest message or query accepted, in bytes (Dust refuses far smaller content fragments).
pub(crate) const MAX_TEXT_BYTES: usize = 512 * 1024;

/// Longest search query, in bytes. Dust takes it in the URL's query string, where proxies and
/// servers refuse lines of about 8 KB; percent-encoding triples a non-ASCII byte.
pub(crate) const MAX_QUERY_BYTES: usize = 2048;

/// Largest document text accepted for an upsert, in bytes.
pub(crate) const MAX_DOCUMENT_BYTES: usize = 5 * 1024 * 1024;

/// Most rows written by one `upsert_table_rows` call.
pub(crate) const MAX_TABLE_ROWS: usize = 500;

/// Largest set of rows written at once, in bytes of JSON (under the REST body limit, so the
/// same rows pass both surfaces).
pub(crate) const MAX_TABLE_ROWS_BYTES: usize = 1000 * 1000;

/// Longest column name, in bytes.
pub(crate) const MAX_COLUMN_NAME_LEN: usize = 256;

/// A tool without arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListAgentsArgs {
    /// Only agents whose name or description contains this text (case-insensitive).
    pub query: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AgentIdArgs {
    /// The agent's id (`sId`), e.g. `dust`, as returned by `list_agents`.
    pub agent_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AskAgentArgs {
    /// The agent to ask (`sId` from `list_agents`). Defaults to the server's configured agent.
    pub agent_id: Option<String>,
    /// The question or instruction for the agent, sent as is.
    pub message: String,
    /// Continue this conversation (from an earlier `ask_agent` result) instead of starting one.
    pub conversation_id: Option<String>,
    /// Text or files the agent reads with the question: `{title, text, contentType?}` for a
    /// note, `{title, contentType, data}` for a file (`data` in base64: PDF, Office, CSV,
    /// images, ...; at most 5 MiB of files in all).
    #[serde(default)]
    pub attachments: Attachments,
}

/// The arguments of an agent's own tool (`ask_<name>`, `DUST_AGENT_TOOLS`): those of
/// [`AskAgentArgs`] but the agent, which the tool's name chooses.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AskNamedAgentArgs {
    /// The question or instruction for the agent, sent as is.
    pub message: String,
    /// Continue this conversation (from an earlier result of this tool or `ask_agent`) instead of starting one.
    pub conversation_id: Option<String>,
    /// Text or files the agent reads with the question: `{title, text, contentType?}` for a
    /// note, `{title, contentType, data}` for a file (`data` in base64: PDF, Office, CSV,
    /// images, ...; at most 5 MiB of files in all).
    #[serde(default)]
    pub attachments: Attachments,
}

impl AskNamedAgentArgs {
    /// The `ask_agent` arguments that ask `agent_id` the same.
    #[must_use]
    pub fn for_agent(self, agent_id: String) -> AskAgentArgs {
        AskAgentArgs {
            agent_id: Some(agent_id),
            message: self.message,
            conversation_id: self.conversation_id,
            attachments: self.attachments,
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConversationIdArgs {
    /// A conversation id returned by `ask_agent` or `list_conversations`.
    pub conversation_id: String,
    /// How many messages to return, oldest first (1 to 100, default 50).
    pub limit: Option<u32>,
    /// Continue after this point: the `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ListKnowledgeBasesArgs {
    /// Only the knowledge bases of this space (`vlt_...` from `list_spaces`).
    pub space_id: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SearchKnowledgeArgs {
    /// What to look for, in natural language.
    pub query: String,
    /// Search only this knowledge base (`dts_...`); all the caller can see when absent.
    pub knowledge_base_id: Option<String>,
    /// How many results to return (1 to 64, default 8).
    pub top_k: Option<u32>,
    /// Only documents carrying one of these tags.
    pub tags_in: Option<Vec<String>>,
    /// Exclude documents carrying any of these tags.
    pub tags_not: Option<Vec<String>>,
    /// Only documents newer than this time (milliseconds since the epoch).
    pub timestamp_gt: Option<i64>,
    /// Only documents older than this time (milliseconds since the epoch).
    pub timestamp_lt: Option<i64>,
}

/// What `search_workspace` looks for (Dust's `viewType`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    /// Documents, tables and folders.
    #[default]
    All,
    /// Documents (and the folders that hold them).
    Document,
    /// Tables.
    Table,
}

/// A title search across every space the key sees; also the REST body of
/// `POST /api/v1/workspaces/{workspaceId}/search`.
#[derive(Debug, Deserialize, JsonSchema, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SearchWorkspaceArgs {
    /// Words of the title to look for (e.g. "roadmap 2026"); matched against titles, not
    /// meaning. Sent to Dust as is.
    pub query: String,
    /// `all` (default), `document` or `table`.
    pub kind: Option<NodeKind>,
    /// How many results (1 to 100, default 20).
    #[schema(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ListDocumentsArgs {
    /// The knowledge base (`dts_...`).
    pub knowledge_base_id: String,
    /// How many documents (1 to 100, default 10).
    pub limit: Option<u32>,
    /// How many to skip, for paging (default 0).
    pub offset: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DocumentArgs {
    /// The knowledge base (`dts_...`).
    pub knowledge_base_id: String,
    /// The document's id within the knowledge base.
    pub document_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpsertDocumentArgs {
    /// The knowledge base (`dts_...`); it must be a folder, not a connector.
    pub knowledge_base_id: String,
    /// The document's id; an existing document with this id is replaced.
    pub document_id: String,
    /// The full text of the document.
    pub text: String,
    /// A title (defaults to the document id).
    pub title: Option<String>,
    /// Where the document comes from (an http or https URL).
    pub source_url: Option<String>,
    /// Tags, e.g. `lang:en`.
    pub tags: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ListTablesArgs {
    /// The knowledge base (`dts_...`); it must be a folder (`documentsReadable: true`).
    pub knowledge_base_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TableArgs {
    /// The knowledge base (`dts_...`).
    pub knowledge_base_id: String,
    /// The table's id within the knowledge base (`tableId` from `list_tables`).
    pub table_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ListTableRowsArgs {
    /// The knowledge base (`dts_...`).
    pub knowledge_base_id: String,
    /// The table's id (`tableId` from `list_tables`).
    pub table_id: String,
    /// How many rows (1 to 100, default 10).
    pub limit: Option<u32>,
    /// How many to skip, for paging (default 0).
    pub offset: Option<u32>,
}

/// One row to write: its id and its cells by column name.
#[derive(Debug, Clone, Deserialize, JsonSchema, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TableRowArg {
    /// The row's id; an existing row with this id is replaced.
    pub row_id: String,
    /// The cells by column name, e.g. `{"city": "Paris", "seats": 120, "opened": {"type":
    /// "datetime", "epoch": 1735689600000}}`. Each is a string, a number, a boolean, null, or
    /// `{"type": "datetime", "epoch": <milliseconds since the epoch>}`.
    #[schemars(schema_with = "cells_schema")]
    #[schema(value_type = Object)]
    pub value: serde_json::Map<String, serde_json::Value>,
}

/// The schema of a row's cells: what Dust's `UpsertTableRowsRequestSchema` accepts.
fn cells_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "additionalProperties": {
            "anyOf": [
                {"type": "string"},
                {"type": "number"},
                {"type": "boolean"},
                {"type": "null"},
                {
                    "type": "object",
                    "properties": {
                        "type": {"const": "datetime"},
                        "epoch": {"type": "number"}
                    },
                    "required": ["type", "epoch"],
                    "additionalProperties": false
                }
            ]
        }
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpsertTableRowsArgs {
    /// The knowledge base (`dts_...`); it must be a folder, not a connector.
    pub knowledge_base_id: String,
    /// The table's id (`tableId` from `list_tables`).
    pub table_id: String,
    /// The rows to create or replace (1 to 500); other rows are kept.
    pub rows: Vec<TableRowArg>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TableRowIdArgs {
    /// The knowledge base (`dts_...`); it must be a folder, not a connector.
    pub knowledge_base_id: String,
    /// The table's id (`tableId` from `list_tables`).
    pub table_id: String,
    /// The id of the row to delete.
    pub row_id: String,
}

/// Checks an identifier: 1 to [`MAX_ID_LEN`] ASCII letters, digits, `_` or `-` (Dust's sIds
/// and prefixed ids), so it can never change a URL path.
pub fn check_id(field: &str, value: &str) -> Result<(), InvalidArgument> {
    let ok = !value.is_empty()
        && value.len() <= MAX_ID_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(invalid_params(format!(
            "{field} must be 1 to {MAX_ID_LEN} ASCII letters, digits, '_' or '-'"
        )))
    }
}

/// Longest document id, in bytes.
pub const MAX_DOCUMENT_ID_LEN: usize = 512;

/// Checks a document id. Dust's ids are free strings (its own upload page uses file names such
/// as `Q3 report.pdf`, connectors use paths such as `runbooks/deploy.md`), so any text is
/// accepted but: empty, longer than [`MAX_DOCUMENT_ID_LEN`] bytes, a control character (which
/// no file name holds and logs would render), or exactly `.` or `..`. The client
/// percent-encodes the id as one path segment, so `/`, `%`, `?` or `#` inside it never change
/// the route; `.` and `..` are the only segments URL parsers resolve whatever their encoding
/// (the client refuses them too).
pub fn check_document_id(field: &str, value: &str) -> Result<(), InvalidArgument> {
    let ok = !value.is_empty()
        && value.len() <= MAX_DOCUMENT_ID_LEN
        && value != "."
        && value != ".."
        && !value.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(invalid_params(format!(
            "{field} must be 1 to {MAX_DOCUMENT_ID_LEN} bytes of text without control characters, and not \".\" or \"..\""
        )))
    }
}

/// Checks free text: not empty (unless allowed), at most `max` bytes. The text is not changed.
pub fn check_text(field: &str, value: &str, max: usize) -> Result<(), InvalidArgument> {
    if value.trim().is_empty() {
        return Err(invalid_params(format!("{field} must not be empty")));
    }
    if value.len() > max {
        return Err(invalid_params(format!(
            "{field} is {} bytes; at most {max} are accepted",
            value.len()
        )));
    }
    Ok(())
}

/// Checks a number against an inclusive range.
pub(crate) fn check_range(
    field: &str,
    value: u32,
    min: u32,
    max: u32,
) -> Result<u32, InvalidArgument> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(invalid_params(format!(
            "{field} must be between {min} and {max}, got {value}"
        )))
    }
}

/// Checks tags: each 1 to 256 bytes without control characters, at most 32 of them.
pub fn check_tags(field: &str, tags: &[String]) -> Result<(), InvalidArgument> {
    if tags.len() > 32 {
        return Err(invalid_params(format!("{field} has more than 32 tags")));
    }
    for tag in tags {
        if tag.is_empty() || tag.len() > 256 || tag.chars().any(char::is_control) {
            return Err(invalid_params(format!(
                "{field}: each tag must be 1 to 256 bytes without control characters"
            )));
        }
    }
    Ok(())
}

/// Checks an optional source URL: absolute http or https.
pub fn check_source_url(value: &str) -> Result<(), InvalidArgument> {
    match url::Url::parse(value) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        _ => Err(invalid_params(
            "sourceUrl must be an absolute http or https URL",
        )),
    }
}

/// Checks rows to write: 1 to [`MAX_TABLE_ROWS`] of them, at most [`MAX_TABLE_ROWS_BYTES`] of
/// JSON, each with a row id like a document id (unique in the call), at least one column,
/// column names of 1 to [`MAX_COLUMN_NAME_LEN`] bytes without control characters, and cells of
/// the kinds Dust takes (string, number, boolean, null, `{"type": "datetime", "epoch": n}`).
/// The first problem is named with its place (`rows[2].value.opened`).
pub fn check_table_rows(rows: &[TableRowArg]) -> Result<(), InvalidArgument> {
    if rows.is_empty() || rows.len() > MAX_TABLE_ROWS {
        return Err(invalid_params(format!(
            "rows must hold 1 to {MAX_TABLE_ROWS} rows, got {}",
            rows.len()
        )));
    }
    let mut seen = std::collections::HashSet::new();
    let mut bytes = 0;
    for (i, row) in rows.iter().enumerate() {
        check_document_id(&format!("rows[{i}].rowId"), &row.row_id)?;
        if !seen.insert(row.row_id.as_str()) {
            return Err(invalid_params(format!(
                "rows[{i}].rowId repeats an earlier row's id; each row id may appear once"
            )));
        }
        if row.value.is_empty() {
            return Err(invalid_params(format!(
                "rows[{i}].value must have at least one column"
            )));
        }
        for (column, cell) in &row.value {
            if column.is_empty()
                || column.len() > MAX_COLUMN_NAME_LEN
                || column.chars().any(char::is_control)
            {
                return Err(invalid_params(format!(
                    "rows[{i}].value: each column name must be 1 to {MAX_COLUMN_NAME_LEN} bytes without control characters"
                )));
            }
            if !is_cell(cell) {
                return Err(invalid_params(format!(
                    "rows[{i}].value.{column} must be a string, a number, a boolean, null or {{\"type\": \"datetime\", \"epoch\": <milliseconds>}}"
                )));
            }
        }
        bytes += row.row_id.len()
            + serde_json::Value::Object(row.value.clone())
                .to_string()
                .len();
        if bytes > MAX_TABLE_ROWS_BYTES {
            return Err(invalid_params(format!(
                "rows are more than {MAX_TABLE_ROWS_BYTES} bytes of JSON; write them in several calls"
            )));
        }
    }
    Ok(())
}

/// Whether a cell is of a kind Dust's row upsert takes.
fn is_cell(cell: &serde_json::Value) -> bool {
    use serde_json::Value;
    match cell {
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => true,
        Value::Object(map) => {
            map.len() == 2
                && map.get("type").and_then(Value::as_str) == Some("datetime")
                && map.get("epoch").is_some_and(Value::is_number)
        }
        Value::Array(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_refuse_traversal_and_lookalikes() {
        for bad in [
            "",
            "../../w/other",
            "%2e%2e%2f",
            "a/../b",
            "abc?x=1",
            "abc#f",
            "abc%00",
            "abc\0",
            "ａｂｃ",
            "abc\u{202e}",
            "a b",
            "a\r\nb",
        ] {
            assert!(check_id("id", bad).is_err(), "{bad:?}");
        }
        assert!(check_id("id", &"a".repeat(257)).is_err());
        for good in ["dust", "dts_AbC123xyz0", "3d8f6a2c1b", "vlt-1"] {
            assert!(check_id("id", good).is_ok(), "{good}");
        }
    }

    /// Document ids are Dust's free strings (issue 16): file names with spaces, paths, any
    /// script. Only what no id holds (control characters) and what URL parsers resolve as a
    /// path step (`.`, `..`) are refused; the client encodes the rest as one path segment.
    #[test]
    fn document_ids_are_free_text_but_never_a_path_step() {
        for good in [
            "faq-1",
            "notion:page.42",
            "report@2024",
            "a.b",
            "a..b",
            "Q3 report.pdf",
            "runbooks/deploy.md",
            "../../w/other",
            "%2e%2e%2f",
            "abc?x=1#f",
            "ａｂｃ",
            "Résumé – été 2026.docx",
        ] {
            assert!(check_document_id("id", good).is_ok(), "{good}");
        }
        for bad in [".", "..", "", "a\r\nb", "abc\0", "tab\there", "\u{85}next"] {
            assert!(check_document_id("id", bad).is_err(), "{bad:?}");
        }
        assert!(check_document_id("id", &"é".repeat(MAX_DOCUMENT_ID_LEN / 2)).is_ok());
        assert!(check_document_id("id", &"a".repeat(MAX_DOCUMENT_ID_LEN + 1)).is_err());
    }

    #[test]
    fn text_is_checked_not_changed() {
        assert!(check_text("message", "   ", 10).is_err());
        assert!(check_text("message", "SELECT * FROM users; --", 100).is_ok());
        assert!(check_text("message", "abcdef", 5).is_err());
    }

    #[test]
    fn ranges_and_urls() {
        assert!(check_range("topK", 0, 1, 64).is_err());
        assert!(check_range("topK", 65, 1, 64).is_err());
        assert_eq!(check_range("topK", 8, 1, 64).unwrap(), 8);
        assert!(check_source_url("https://example.com/a").is_ok());
        assert!(check_source_url("javascript:alert(1)").is_err());
        assert!(check_source_url("/relative").is_err());
    }

    fn row(id: &str, value: serde_json::Value) -> TableRowArg {
        let serde_json::Value::Object(value) = value else {
            panic!("a row's value is an object");
        };
        TableRowArg {
            row_id: id.to_owned(),
            value,
        }
    }

    #[test]
    fn table_rows_take_dusts_cells_and_name_the_first_problem() {
        use serde_json::json;
        let good = row(
            "paris",
            json!({"city": "Paris", "seats": 12, "ratio": 0.5, "open": true, "note": null,
                   "opened": {"type": "datetime", "epoch": 1735689600000_i64}}),
        );
        assert!(check_table_rows(std::slice::from_ref(&good)).is_ok());
        for (rows, needle) in [
            (vec![], "1 to 500"),
            (vec![good.clone(), good.clone()], "rows[1].rowId repeats"),
            (vec![row("..", json!({"a": 1}))], "rows[0].rowId"),
            (vec![row("a", json!({}))], "rows[0].value must have"),
            (vec![row("a", json!({"x": [1]}))], "rows[0].value.x"),
            (
                vec![row("a", json!({"x": {"epoch": 1}}))],
                "rows[0].value.x",
            ),
            (
                vec![row("a", json!({"x": {"type": "datetime", "epoch": "1"}}))],
                "rows[0].value.x",
            ),
            (vec![row("a", json!({"": 1}))], "column name"),
        ] {
            let error = check_table_rows(&rows).unwrap_err().message;
            assert!(error.contains(needle), "{needle}: {error}");
        }
        let many: Vec<_> = (0..501)
            .map(|i| row(&i.to_string(), json!({"a": 1})))
            .collect();
        assert!(
            check_table_rows(&many)
                .unwrap_err()
                .message
                .contains("1 to 500")
        );
        let big: Vec<_> = (0..3)
            .map(|i| row(&i.to_string(), json!({"a": "x".repeat(400_000)})))
            .collect();
        assert!(
            check_table_rows(&big)
                .unwrap_err()
                .message
                .contains("bytes")
        );
    }
}
