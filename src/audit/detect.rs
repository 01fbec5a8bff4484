//! A small, conservative check for free text that looks like SQL or script injection.
//!
//! This server has no SQL backend and renders nothing it receives, so the check protects
//! nothing by itself: it exists so that probing shows up in the audit trail as a
//! `malicious_input` record of low severity. It never blocks and never changes the text; the
//! text reaches Dust byte for byte (decision 6.10, catalogue V11). Identifiers are protected by
//! allowlists elsewhere, not by this. Being log-only, it may flag a question about SQL; it
//! should not flag ordinary prose ("select a colour", "drop me a line").

use std::sync::LazyLock;

use regex::Regex;

/// The label for SQL-injection-looking text.
pub const SQL_INJECTION: &str = "sql_injection";

/// The label for script-injection-looking text.
pub const SCRIPT_INJECTION: &str = "script_injection";

/// Classic SQL injection shapes: a tautology after a quote or in a condition, `UNION SELECT`,
/// a stacked destructive statement, a comment that cuts a quoted string.
static SQL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)",
        r#"'\s*(?:or|and)\s+['"]?\w+['"]?\s*=\s*['"]?\w+"#,
        r"|\bor\s+1\s*=\s*1\b",
        r"|\bunion\s+(?:all\s+)?select\b",
        r"|;\s*(?:drop\s+(?:table|database)|delete\s+from|truncate\s+table|insert\s+into|update\s+\w+\s+set)\b",
        r"|'\s*\)?\s*(?:;\s*)?--",
        r"|\bwaitfor\s+delay\b",
    ))
    .expect("the SQL pattern compiles")
});

/// Script injection shapes: a script or frame tag, a `javascript:`/`vbscript:` URL, an inline
/// event handler.
static SCRIPT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)",
        r"<\s*(?:script|iframe)\b",
        r"|\b(?:java|vb)script\s*:",
        r"|\bon(?:error|load|click|mouseover|focus|toggle)\s*=",
    ))
    .expect("the script pattern compiles")
});

/// `Some(label)` ([`SQL_INJECTION`] or [`SCRIPT_INJECTION`]) when the text looks like an
/// injection attempt. The caller records a low-severity `malicious_input` event with the label
/// and passes the text on unchanged.
pub fn detect_suspicious(text: &str) -> Option<&'static str> {
    if SQL.is_match(text) {
        Some(SQL_INJECTION)
    } else if SCRIPT.is_match(text) {
        Some(SCRIPT_INJECTION)
    } else {
        None
    }
}
