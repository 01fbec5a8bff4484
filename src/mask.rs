//! Masking of secrets in free text, URLs, headers and JSON: the one set of functions used by
//! logs, audit records, error messages and request/response logging.
//!
//! Why one module: a secret leaks through the path nobody thought of, so every path that writes
//! something a person or a log pipeline reads goes through the same rules (catalogue L1–L3, L6,
//! L8). The rules recognise secrets two ways:
//!
//! - **by shape**, wherever they appear: Dust API keys (`sk-…`), JWTs (`eyJ….eyJ…`),
//!   `Bearer`/`Basic` credentials, passwords in URL userinfo, and the base64 encoding of a key
//!   or a JWT when it starts on an encoding boundary (the L1 canary sweep looks for exactly that);
//! - **by name**, as the value of a query/form parameter, a cookie, a `name: value` field or a
//!   `"name": "value"` JSON pair whose name looks secret ([`classify_name`]). A quoted value
//!   ends at its closing quote; a bare one (`NAME=value`, `Authorization: Token abc`) runs to
//!   the end of its line, or to the delimiter (`& ; , " ' < >`, white space) that starts the
//!   next field (`; other=`, `&x=`, `, key:`): a query string or a cookie header stays
//!   readable, and a value that starts with or contains a delimiter (`SECRET=;a b`) is
//!   redacted whole. See [`bare_value_end`].
//!
//! What cannot be recognised is anything opaque without a telling name: a session id in the
//! middle of prose, or the base64 of a secret glued to other bytes. Masking is the last line of
//! defence; the first is never to log such values at all (secrets are `SecretString`, bodies are
//! not logged, session ids are logged as a [`fingerprint`]).
//!
//! Masking errs on the side of redacting: `Bearer tokens are…` loses its second word, `task-…`
//! with sixteen letters after the dash may be taken for a key. A false positive costs a less
//! readable log line; a false negative costs a credential.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::LazyLock;

use axum::http::HeaderMap;
use regex::{Captures, Regex};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// What a masked secret is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// What [`mask_headers`] shows for a header value that is not visible ASCII.
pub const BINARY: &str = "[binary]";

/// How many bytes past `max_len` [`sanitize_for_log`] still masks before it truncates.
///
/// Masking a 1 MB user agent for a 256-byte log field would be wasted work on a path an attacker
/// controls, so the input is cut first at `max_len` plus this margin. The margin is there so a
/// secret that starts before the cut is still seen whole (or long enough to match) by the rules.
pub const MASK_LOOKAHEAD_BYTES: usize = 4096;

/// How deep the masking of a pair's name and value may recurse.
///
/// A pair whose name is not secret still has its value masked (`note=Bearer …`), which is a
/// recursive call on a shorter string. Past this depth the matched text is redacted whole: fail
/// closed, and keep the work linear on hostile input such as `a=b=c=…`.
const MAX_DEPTH: usize = 4;

/// Length in hex characters of a [`fingerprint`] (48 bits: enough to correlate the sessions or
/// keys of one deployment, far too little to help anyone guess a 256-bit secret).
pub const FINGERPRINT_HEX_LEN: usize = 12;

/// Domain label hashed before the secret, so a fingerprint cannot be matched against a plain
/// SHA-256 of the same value computed for some other purpose.
const FINGERPRINT_DOMAIN: &[u8] = b"mcp-dust-server/fingerprint/v1\0";

/// Headers whose value is always redacted, whatever it looks like (catalogue L2).
const SENSITIVE_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-xsrf-token",
    "x-csrf-token",
    "x-api-key",
];

/// Substrings of a normalised name (lowercase, letters and digits only) that make it secret.
const SECRET_WORDS: &[&str] = &[
    "apikey",
    "token",
    "secret",
    "password",
    "passwd",
    "passphrase",
    "authorization",
    "cookie",
    "session",
    "csrf",
    "xsrf",
    "credential",
    "privatekey",
    "codeverifier",
    "jwt",
];

/// Endings of a normalised name that describe a secret rather than hold it (`tokenType`,
/// `sessionExpiresAt`, `session_id_hash`, `token_endpoint`): such a name stays readable. Its
/// value still goes through [`mask_text`], so a real secret put there is caught by its shape.
const METADATA_SUFFIXES: &[&str] = &[
    "type",
    "expiresat",
    "expiresin",
    "expiry",
    "expiration",
    "ttl",
    "count",
    "idhash",
    "fingerprint",
    "length",
    "limit",
    "endpoint",
    "url",
    "uri",
    "supported",
    "method",
    "methods",
    "required",
    "enabled",
    "name",
];

/// Normalised names that contain a secret word but are identifiers, not credentials: the `jti`
/// of a token names it in revocation events and grants nothing by itself.
const IDENTIFIER_NAMES: &[&str] = &["tokenid", "jti"];

/// Normalised names that are secret only as query-string or form parameters: `code` is an OAuth
/// authorization code in a redirect but an error code in a JSON body; `key` is an API key in a
/// query string but a map key in JSON.
const SECRET_PARAMS: &[&str] = &["key", "code"];

/// How a field, parameter, cookie or header name is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// The value is a secret: redact it.
    Secret,
    /// A count of tokens (`tokens`, `inputTokens`, `max_tokens`): numbers stay readable, text is
    /// redacted in case it is a list of tokens.
    Count,
    /// An ordinary name: its value is masked by shape only.
    Plain,
}

/// Classifies a JSON key, header name or `name: value` field name.
///
/// The name is lowercased and stripped to letters and digits, so `api_key`, `apiKey` and
/// `X-Api-Key` are one name. Then, in order: identifiers (`tokenId`) and metadata (`tokenType`,
/// `expiresAt`, `…_id_hash`) are plain; a secret word anywhere (`token`, `secret`, `password`,
/// `session`, `cookie`, `csrf`, …) makes it secret, except that the plural `tokens` is a count;
/// a segment `auth` (`x-auth`, `authHeader`, but not `author` or `oauth`) or an ending `sid`
/// (`mcp.sid`, `__Host-mcp.sid`, `PHPSESSID`) makes it secret.
pub fn classify_name(name: &str) -> NameKind {
    let normalised: String = name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if IDENTIFIER_NAMES.contains(&normalised.as_str())
        || METADATA_SUFFIXES.iter().any(|s| normalised.ends_with(s))
    {
        return NameKind::Plain;
    }
    let singular = normalised.replace("tokens", "");
    if SECRET_WORDS.iter().any(|w| singular.contains(w)) {
        return NameKind::Secret;
    }
    if singular.len() != normalised.len() {
        return NameKind::Count;
    }
    if normalised.ends_with("sid") || segments(name).any(|s| s.eq_ignore_ascii_case("auth")) {
        return NameKind::Secret;
    }
    NameKind::Plain
}

/// Whether a query-string, form or cookie parameter of this name holds a secret: the rule of
/// [`classify_name`] plus the names `key` and `code`.
pub fn is_secret_param(name: &str) -> bool {
    if classify_name(name) == NameKind::Secret {
        return true;
    }
    let normalised: String = name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    SECRET_PARAMS.contains(&normalised.as_str())
}

/// The words of a name: split on anything not a letter or digit and on lower-to-upper case
/// changes (`authHeader` → `auth`, `Header`).
fn segments(name: &str) -> impl Iterator<Item = &str> {
    let mut cuts = Vec::new();
    let mut prev_lower = false;
    for (i, c) in name.char_indices() {
        if c.is_ascii_uppercase() && prev_lower {
            cuts.push(i);
        }
        prev_lower = c.is_ascii_lowercase();
    }
    let mut start = 0;
    cuts.into_iter()
        .chain(std::iter::once(name.len()))
        .flat_map(move |end| {
            let piece = &name[start..end];
            start = end;
            piece.split(|c: char| !c.is_ascii_alphanumeric())
        })
        .filter(|s| !s.is_empty())
}

/// The masking rules as one regular expression, so clean text costs one scan and no allocation.
///
/// Alternatives are tried leftmost-first; at one position the structural ones (pairs) come
/// before the shapes, so `token=sk-…` is redacted as a pair and the name stays readable. The
/// name part of a pair is a superset ("contains `key`, `token`, `sid`, …"); [`classify_name`]
/// and [`is_secret_param`] decide. Names and values of pairs that are not secret are masked
/// again, so a match never hides a secret from the other rules.
static PATTERN: LazyLock<Regex> = LazyLock::new(|| {
    const NAME: &str = r"(?i:[A-Za-z0-9_.\-]*(?:key|token|secret|passw|pwd|auth|cookie|sess|sid|csrf|xsrf|credential|code|verifier|jwt)[A-Za-z0-9_.\-]*)";
    let alternatives = [
        // A JSON pair inside a JSON string (a logged upstream body): \"name\": \"value\". In
        // the value, `\\\"` is a quote escaped twice (a quote in the inner value), not its end.
        format!(
            r#"\\"(?P<e_name>{NAME})(?P<e_sep>\\"\s*:\s*)(?P<e_val>\\"(?:[^"\\]|\\\\\\"|\\[^"])*\\"|[^\s,}}\]\\]+)"#
        ),
        // A JSON-ish pair: "name": "value", 'name': 'value', "name": 123.
        format!(
            r#"(?P<j_open>["'])(?P<j_name>{NAME})(?P<j_sep>["']\s*:\s*)(?P<j_val>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\s,}}\]]+)"#
        ),
        // A parameter, cookie or field: name=value, name: value, name%3Dvalue (URL-encoded).
        // A bare value is only its first token here; `bare_value_end` finds where it ends. The
        // last alternative, one delimiter, is a value that starts with one (`SECRET=;abc`).
        format!(
            r#"(?P<p_pre>^|[^A-Za-z0-9_.\-])(?P<p_name>{NAME})(?P<p_sep>\s*(?:=|:|%3[Dd])\s*)(?:(?P<p_quoted>"(?:[^"\\]|\\.)*"|'[^']*')|(?P<p_val>(?i:bearer|basic)\s+[^\s&;,"'<>]+|[^\s&;,"'<>]+)|(?P<p_delim>[&;,"'<>]))"#
        ),
        // A password in URL userinfo: scheme://user:password@host (REDIS_URL and friends).
        r"(?P<u_scheme>[A-Za-z][A-Za-z0-9+.\-]*://)[^\s/?#@:]*:[^\s/?#@]*@".to_owned(),
        // An HTTP credential: Bearer <token>, Basic <base64>.
        r"(?P<scheme>\b(?i:bearer|basic))\s+[A-Za-z0-9._~+/\-]+=*".to_owned(),
        // A Dust API key.
        r"sk-[A-Za-z0-9]{16,}".to_owned(),
        // A JWT (header.payload.signature), or its first two parts.
        r"eyJ[A-Za-z0-9_\-]+\.eyJ[A-Za-z0-9_\-]*(?:\.[A-Za-z0-9_\-]+)?".to_owned(),
        // The base64 or base64url of a string starting `sk-` or `eyJ`, when it starts on an
        // encoding boundary (`c2st` = "sk-", `ZXlK` = "eyJ").
        r"(?:c2st|ZXlK)[A-Za-z0-9+/_\-]{20,}={0,2}".to_owned(),
    ];
    Regex::new(&alternatives.join("|")).expect("the masking pattern compiles")
});

/// Userinfo of any kind at the start of a URL (`https://token@host`), for [`mask_url`].
static URL_USERINFO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)[^\s/?#@]+@")
        .expect("the userinfo pattern compiles")
});

/// Redacts secrets in free text (see the module doc for the rules).
///
/// Returns `Cow::Borrowed` when nothing was redacted, so the common case allocates nothing.
pub fn mask_text(input: &str) -> Cow<'_, str> {
    mask_at_depth(input, 0)
}

fn mask_at_depth(input: &str, depth: usize) -> Cow<'_, str> {
    if depth > MAX_DEPTH {
        return if PATTERN.is_match(input) {
            Cow::Owned(REDACTED.to_owned())
        } else {
            Cow::Borrowed(input)
        };
    }
    let mut out: Option<String> = None;
    let mut last = 0;
    let mut at = 0;
    while let Some(caps) = PATTERN.captures_at(input, at) {
        let whole = caps.get(0).expect("group 0 is the whole match");
        let (replacement, end) = replacement(&caps, input, depth);
        if let Some(replacement) = replacement {
            let buf = out.get_or_insert_with(|| String::with_capacity(input.len()));
            buf.push_str(&input[last..whole.start()]);
            buf.push_str(&replacement);
            last = end;
        }
        // Every match is non-empty and `end` is past its start: the scan always moves on.
        at = end;
    }
    match out {
        None => Cow::Borrowed(input),
        Some(mut buf) => {
            buf.push_str(&input[last..]);
            Cow::Owned(buf)
        }
    }
}

/// The replacement for one match (`None`: the text stays as it is, a pair whose name is not
/// secret and whose parts hold nothing to mask) and where the replaced text ends in `input`.
fn replacement(caps: &Captures<'_>, input: &str, depth: usize) -> (Option<String>, usize) {
    let text = |name: &str| caps.name(name).map_or("", |m| m.as_str());
    let whole_end = caps.get(0).expect("group 0 is the whole match").end();
    if let Some(name) = caps.name("e_name") {
        let secret = classify_name(name.as_str()) == NameKind::Secret;
        let replaced = pair(
            r#"\""#,
            name.as_str(),
            text("e_sep"),
            text("e_val"),
            secret,
            depth,
        );
        return (replaced, whole_end);
    }
    if let Some(name) = caps.name("j_name") {
        let secret = classify_name(name.as_str()) == NameKind::Secret;
        let replaced = pair(
            text("j_open"),
            name.as_str(),
            text("j_sep"),
            text("j_val"),
            secret,
            depth,
        );
        return (replaced, whole_end);
    }
    if let Some(name) = caps.name("p_name") {
        let sep = text("p_sep");
        let secret = if sep.contains(':') {
            classify_name(name.as_str()) == NameKind::Secret
        } else {
            is_secret_param(name.as_str())
        };
        if let Some(quoted) = caps.name("p_quoted") {
            let end = if secret {
                quoted_value_end(input, quoted.end())
            } else {
                quoted.end()
            };
            if end != quoted.end() {
                // The quote was part of the value (`KEY="ab"cd`): redacted like a bare one.
                let replaced = pair(text("p_pre"), name.as_str(), sep, "", true, depth);
                return (replaced, end);
            }
            let replaced = pair(
                text("p_pre"),
                name.as_str(),
                sep,
                quoted.as_str(),
                secret,
                depth,
            );
            return (replaced, whole_end);
        }
        if secret {
            // A bare value: redacted up to the end of its line or the next field.
            let end = match (caps.name("p_val"), caps.name("p_delim")) {
                (Some(value), _) => bare_value_end(input, value.end()),
                (None, Some(delim)) => bare_value_end(input, first_token_end(input, delim.start())),
                (None, None) => whole_end,
            };
            let replaced = pair(text("p_pre"), name.as_str(), sep, "", true, depth);
            return (replaced, end);
        }
        if let Some(delim) = caps.name("p_delim") {
            // Not a secret and no value: the delimiter may open the next match (`&token=`).
            let replaced = pair(text("p_pre"), name.as_str(), sep, "", false, depth);
            return (replaced, delim.start());
        }
        let replaced = pair(
            text("p_pre"),
            name.as_str(),
            sep,
            text("p_val"),
            false,
            depth,
        );
        return (replaced, whole_end);
    }
    if let Some(scheme) = caps.name("u_scheme") {
        // The scheme is masked too: `sk-…://x:y@` must not keep the key.
        let scheme = mask_at_depth(scheme.as_str(), depth + 1);
        return (Some(format!("{scheme}{REDACTED}@")), whole_end);
    }
    if let Some(scheme) = caps.name("scheme") {
        return (Some(format!("{} {REDACTED}", scheme.as_str())), whole_end);
    }
    (Some(REDACTED.to_owned()), whole_end)
}

/// Whether a byte ends a bare value's token: the delimiters of a query string, a cookie
/// header, a list of fields or a tag, and white space other than a line break.
fn is_value_delimiter(b: u8) -> bool {
    matches!(
        b,
        b' ' | b'\t' | b'&' | b';' | b',' | b'"' | b'\'' | b'<' | b'>'
    )
}

/// The end of the first token at or after `from`, past the delimiters before it: a value that
/// starts with delimiters (`SECRET=; abc`) keeps at least its first token, so it is never empty.
fn first_token_end(input: &str, from: usize) -> usize {
    let bytes = input.as_bytes();
    let eol = |b: u8| b == b'\n' || b == b'\r';
    let mut end = from;
    while end < bytes.len() && is_value_delimiter(bytes[end]) {
        end += 1;
    }
    while end < bytes.len() && !eol(bytes[end]) && !is_value_delimiter(bytes[end]) {
        end += 1;
    }
    end
}

/// Where a quoted secret value whose closing quote ends at `from` ends: there, when what
/// follows ends the value (the end of the line or the next field, after any delimiters and
/// closing `}` `]` `)`); otherwise the quotes were part of a bare value (`KEY="ab"cd`,
/// `KEY='a' b`), and it ends as [`bare_value_end`] says.
fn quoted_value_end(input: &str, from: usize) -> usize {
    let bytes = input.as_bytes();
    let mut next = from;
    while next < bytes.len() && (is_value_delimiter(bytes[next]) || b"}])".contains(&bytes[next])) {
        next += 1;
    }
    match bytes.get(next) {
        None | Some(b'\n' | b'\r') => from,
        Some(_) if starts_a_field(&bytes[next..]) => from,
        Some(_) => bare_value_end(input, from),
    }
}

/// Where a bare secret value whose first token ends at `from` ends.
///
/// A value may hold delimiters (`p@ss; w0rd`, `Token abc`), so the value runs on over each run
/// of delimiters and the token after it, and stops only at the end of the line or before a run
/// of delimiters followed by what looks like the next field: a name (letters, digits, `_ . -`,
/// or `[REDACTED]` from an earlier pass), an optional closing quote, then `=`, `:` or `%3D`
/// (`; lang=en`, `&page=2`, `, user: bob`). Delimiters at the end of the line belong to the
/// value. Linear: every byte is looked at a bounded number of times.
fn bare_value_end(input: &str, from: usize) -> usize {
    let bytes = input.as_bytes();
    let eol = |b: u8| b == b'\n' || b == b'\r';
    let mut end = from;
    loop {
        while end < bytes.len() && !eol(bytes[end]) && !is_value_delimiter(bytes[end]) {
            end += 1;
        }
        let mut next = end;
        while next < bytes.len() && is_value_delimiter(bytes[next]) {
            next += 1;
        }
        if next == bytes.len() || eol(bytes[next]) {
            return next;
        }
        if starts_a_field(&bytes[next..]) {
            return end;
        }
        end = next;
    }
}

/// Whether `rest` starts with `name=`, `name:`, `name%3D` (a closing quote allowed after the
/// name), the start of the next field after a value.
fn starts_a_field(rest: &[u8]) -> bool {
    let name_len = rest
        .iter()
        .position(|&b| {
            !(b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'[' | b']'))
        })
        .unwrap_or(rest.len());
    if name_len == 0 {
        return false;
    }
    let mut after = &rest[name_len..];
    if let [b'"' | b'\'', tail @ ..] = after {
        after = tail;
    }
    while let [b' ' | b'\t', tail @ ..] = after {
        after = tail;
    }
    matches!(after, [b'=' | b':', ..])
        || after.len() >= 3 && after[..3].eq_ignore_ascii_case(b"%3d")
}

/// Rebuilds `prefix name sep value` with the value redacted (secret) or masked (not secret).
fn pair(
    prefix: &str,
    name: &str,
    sep: &str,
    value: &str,
    secret: bool,
    depth: usize,
) -> Option<String> {
    let name = mask_at_depth(name, depth + 1);
    if secret {
        return Some(format!("{prefix}{name}{sep}{}", redacted_value(value)));
    }
    let value = mask_at_depth(value, depth + 1);
    if matches!((&name, &value), (Cow::Borrowed(_), Cow::Borrowed(_))) {
        return None;
    }
    Some(format!("{prefix}{name}{sep}{value}"))
}

/// [`REDACTED`], keeping the quotes of a quoted value so JSON-ish text stays well formed.
fn redacted_value(value: &str) -> String {
    if value.starts_with(r#"\""#) {
        format!(r#"\"{REDACTED}\""#)
    } else if value.starts_with('"') {
        format!("\"{REDACTED}\"")
    } else if value.starts_with('\'') {
        format!("'{REDACTED}'")
    } else {
        REDACTED.to_owned()
    }
}

/// Recursively redacts the values of secret-looking keys ([`classify_name`]) and masks every
/// other string with [`mask_text`].
///
/// `null` and booleans under a secret key are kept (`"hasSession": true` carries nothing), and
/// count keys (`tokens`, `inputTokens`) keep numbers but lose text.
pub fn mask_json(value: &mut Value) {
    match value {
        Value::String(s) => {
            let masked = match mask_text(s) {
                Cow::Owned(masked) => Some(masked),
                Cow::Borrowed(_) => None,
            };
            if let Some(masked) = masked {
                *s = masked;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_json),
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                let redact = match classify_name(key) {
                    NameKind::Secret => !matches!(item, Value::Null | Value::Bool(_)),
                    NameKind::Count => match item {
                        Value::String(_) => true,
                        Value::Array(items) => items.iter().any(Value::is_string),
                        _ => false,
                    },
                    NameKind::Plain => false,
                };
                if redact {
                    *item = Value::String(REDACTED.to_owned());
                } else {
                    mask_json(item);
                }
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Masks a URL or a request target (`/mcp?token=…`): any userinfo, secret query or fragment
/// parameters, and secrets by shape anywhere.
pub fn mask_url(url: &str) -> Cow<'_, str> {
    match URL_USERINFO.replace(url, format!("${{scheme}}{REDACTED}@")) {
        Cow::Borrowed(_) => mask_text(url),
        Cow::Owned(without_userinfo) => Cow::Owned(mask_text(&without_userinfo).into_owned()),
    }
}

/// Header names and values for logging: credential headers redacted (catalogue L2), headers
/// with a secret-looking name redacted, other values masked by shape, non-visible-ASCII values
/// shown as [`BINARY`].
pub fn mask_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            let name = name.as_str();
            let shown =
                if SENSITIVE_HEADERS.contains(&name) || classify_name(name) == NameKind::Secret {
                    REDACTED.to_owned()
                } else {
                    match value.to_str() {
                        Ok(text) => mask_text(text).into_owned(),
                        Err(_) => BINARY.to_owned(),
                    }
                };
            (name.to_owned(), shown)
        })
        .collect()
}

/// Text made safe for one log line or audit field: masked, control characters escaped, at most
/// `max_len` bytes of content.
///
/// Escaped are CR, LF, tab, NUL, ESC and every other C0/C1 control, DEL, the Unicode line and
/// paragraph separators and the bidirectional overrides and isolates: a forged second line or
/// a visually reordered one can never appear (catalogue L6). Past `max_len` bytes the text is
/// cut on a character boundary, never inside an escape, and `…[truncated N bytes]` says how
/// many bytes of the masked input were left out (catalogue L8); the marker comes on top of
/// `max_len`.
pub fn sanitize_for_log(input: &str, max_len: usize) -> String {
    sanitize_with(input, max_len, mask_text)
}

/// [`sanitize_for_log`] for a URL or request target: masked with [`mask_url`] (userinfo too).
pub fn sanitize_url_for_log(url: &str, max_len: usize) -> String {
    sanitize_with(url, max_len, mask_url)
}

fn sanitize_with(input: &str, max_len: usize, mask: fn(&str) -> Cow<'_, str>) -> String {
    let window = floor_char_boundary(input, max_len.saturating_add(MASK_LOOKAHEAD_BYTES));
    let masked = mask(&input[..window]);
    let mut out = String::with_capacity(masked.len().min(max_len) + 32);
    let mut omitted = input.len() - window;
    let mut piece = String::with_capacity(12);
    for (at, c) in masked.char_indices() {
        piece.clear();
        match c {
            '\n' => piece.push_str("\\n"),
            '\r' => piece.push_str("\\r"),
            '\t' => piece.push_str("\\t"),
            '\0' => piece.push_str("\\0"),
            c if needs_escape(c) => {
                let _ = write!(piece, "\\u{{{:04x}}}", u32::from(c));
            }
            c => piece.push(c),
        }
        if out.len() + piece.len() > max_len {
            omitted += masked.len() - at;
            break;
        }
        out.push_str(&piece);
    }
    if omitted > 0 {
        let _ = write!(out, "…[truncated {omitted} bytes]");
    }
    out
}

/// Whether a character must not reach a log line as itself: controls (C0, DEL, C1), the line
/// and paragraph separators, and the bidirectional marks, embeddings, overrides and isolates.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// The largest index `<= at` that is a character boundary of `s`.
fn floor_char_boundary(s: &str, at: usize) -> usize {
    if at >= s.len() {
        return s.len();
    }
    let mut at = at;
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// A short, non-reversible fingerprint of a secret, safe to log: the first
/// [`FINGERPRINT_HEX_LEN`] hex characters of a domain-labelled SHA-256.
///
/// It lets an operator correlate the records of one session or one key (catalogue L7: the
/// session id appears only as a hash) without the log ever holding the secret. It is only as
/// strong as the secret is unguessable: fingerprint random session ids and keys, never passwords.
pub fn fingerprint(secret: &str) -> String {
    let digest = Sha256::new()
        .chain_update(FINGERPRINT_DOMAIN)
        .chain_update(secret.as_bytes())
        .finalize();
    hex::encode(&digest[..FINGERPRINT_HEX_LEN / 2])
}

#[cfg(test)]
mod tests;
