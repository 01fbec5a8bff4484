//! Attachments to a question: what a caller may attach, how it is checked, and how it reaches
//! Dust.
//!
//! A caller attaches text (`{title, text, contentType?}`), a file (`{title, contentType, data}`,
//! `data` in base64), or what an MCP client puts in a tool call of its own accord: an embedded
//! resource (`{type: "resource", resource: {uri, mimeType?, text | blob}}`). A resource link
//! carries no content and is refused by name. Everything is checked here, before anything
//! reaches Dust: at most [`MAX_ATTACHMENTS`], a title without control characters (it becomes a
//! file name in Dust and in a multipart header), a content type Dust supports (the list of the
//! official SDK, `supportedOtherFileFormats`, `supportedImageFileFormats` and
//! `supportedAudioFileFormats`), text of at most [`MAX_TEXT_ATTACHMENT_BYTES`] (Dust's limit of
//! an inline content fragment), and files of at most [`MAX_ATTACHMENTS_BYTES`] in all: under
//! Dust's smallest per-file limit (5 MiB for images) and small enough that their base64 fits
//! the request body limit of both surfaces (`MAX_MCP_BODY`).
//!
//! Text becomes an inline content fragment (Dust turns it into a file itself); a file goes
//! through Dust's two-step upload (`POST /files`, then the bytes to the `uploadUrl` Dust
//! returned, which the client only accepts on Dust's own origin) and is attached by its
//! `fileId`. The fragments are attached before the message, in the caller's order, so the agent
//! reads them with the question: in the new conversation's `contentFragments`, or posted to an
//! existing conversation one by one. Text and bytes reach Dust as sent.

use base64::Engine as _;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::{
    OpError,
    args::{InvalidArgument, invalid_params as invalid},
};
use crate::dust::{DustCredentials, DustFile, NewContentFragment, NewFile};

/// Most attachments on one question.
pub const MAX_ATTACHMENTS: usize = 10;

/// Largest text attachment, in bytes (Dust refuses inline content fragments above 512 kB).
pub const MAX_TEXT_ATTACHMENT_BYTES: usize = 512 * 1024;

/// Most bytes of files on one question, decoded.
pub const MAX_ATTACHMENTS_BYTES: usize = 5 * 1024 * 1024;

/// Longest title, in bytes.
pub const MAX_TITLE_BYTES: usize = 256;

/// The content types Dust takes for a file in a conversation: those the official SDK lists
/// (`@dust-tt/client` 1.2.8), but `application/octet-stream` and
/// `application/vnd.dust.section.json`, which Dust knows but refuses in a conversation.
const SUPPORTED_TYPES: &[&str] = &[
    "application/msword",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.google-apps.document",
    "application/vnd.google-apps.presentation",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.google-apps.spreadsheet",
    "application/vnd.ms-excel",
    "application/pdf",
    "message/rfc822",
    "text/comma-separated-values",
    "text/csv",
    "text/markdown",
    "text/plain",
    "text/tab-separated-values",
    "text/tsv",
    "text/vnd.dust.attachment.slack.thread",
    "text/vnd.dust.attachment.pasted",
    "text/html",
    "text/xml",
    "text/calendar",
    "text/css",
    "text/javascript",
    "text/typescript",
    "application/json",
    "application/xml",
    "application/x-sh",
    "text/x-sh",
    "text/x-python",
    "text/x-python-script",
    "application/x-yaml",
    "text/yaml",
    "text/vnd.yaml",
    "text/x-c",
    "text/x-csharp",
    "text/x-java-source",
    "text/x-php",
    "text/x-ruby",
    "text/x-sql",
    "text/x-swift",
    "text/x-rust",
    "text/x-go",
    "text/x-kotlin",
    "text/x-scala",
    "text/x-groovy",
    "text/x-perl",
    "text/x-perl-script",
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "image/svg+xml",
    "image/bmp",
    "image/x-icon",
    "audio/mpeg",
    "audio/x-m4a",
    "audio/ogg",
    "audio/wav",
    "audio/x-wav",
    "audio/webm",
    "video/webm",
];

/// Whether Dust reads a content type as text (what an inline fragment may be).
fn is_text_type(content_type: &str) -> bool {
    content_type.starts_with("text/")
        || matches!(
            content_type,
            "application/json" | "application/xml" | "application/x-sh" | "application/x-yaml"
        )
}

/// One attachment, checked: what reaches Dust. Its `Debug` shows the title, type and size,
/// never the content (a user's document has no place in a log line).
#[derive(Clone, PartialEq, Eq)]
pub enum Attachment {
    /// Posted as an inline content fragment.
    Text {
        title: String,
        content_type: String,
        text: String,
    },
    /// Uploaded to Dust, then attached by its file id.
    File {
        title: String,
        content_type: String,
        data: Vec<u8>,
    },
}

impl std::fmt::Debug for Attachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (kind, title, content_type, bytes) = match self {
            Self::Text {
                title,
                content_type,
                text,
            } => ("Text", title, content_type, text.len()),
            Self::File {
                title,
                content_type,
                data,
            } => ("File", title, content_type, data.len()),
        };
        f.debug_struct(kind)
            .field("title", title)
            .field("content_type", content_type)
            .field("bytes", &bytes)
            .finish()
    }
}

impl Attachment {
    /// A digest of the whole attachment: what a paused call is bound to.
    fn digest(&self, hasher: &mut Sha256) {
        let (kind, title, content_type, bytes): (&[u8], _, _, &[u8]) = match self {
            Self::Text {
                title,
                content_type,
                text,
            } => (b"text", title, content_type, text.as_bytes()),
            Self::File {
                title,
                content_type,
                data,
            } => (b"file", title, content_type, data),
        };
        for part in [kind, title.as_bytes(), content_type.as_bytes(), bytes] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part);
        }
    }
}

/// The attachments of a question, checked as a whole (count, total size) and one by one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Vec<Value>")]
pub struct Attachments(Vec<Attachment>);

impl Attachments {
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Attachment> {
        self.0.iter()
    }

    /// SHA-256 of every attachment in order (empty when there are none).
    #[must_use]
    pub fn digest(&self) -> String {
        if self.0.is_empty() {
            return String::new();
        }
        let mut hasher = Sha256::new();
        for attachment in &self.0 {
            attachment.digest(&mut hasher);
        }
        hex::encode(hasher.finalize())
    }
}

impl TryFrom<Vec<Value>> for Attachments {
    type Error = InvalidArgument;

    fn try_from(values: Vec<Value>) -> Result<Self, Self::Error> {
        if values.len() > MAX_ATTACHMENTS {
            return Err(invalid(format!(
                "attachments holds {} items; at most {MAX_ATTACHMENTS} are accepted",
                values.len()
            )));
        }
        let mut file_bytes = 0usize;
        let mut out = Vec::with_capacity(values.len());
        for (i, value) in values.iter().enumerate() {
            let attachment = parse(&format!("attachments[{i}]"), value)?;
            if let Attachment::File { data, .. } = &attachment {
                file_bytes += data.len();
                if file_bytes > MAX_ATTACHMENTS_BYTES {
                    return Err(invalid(format!(
                        "attachments hold more than {MAX_ATTACHMENTS_BYTES} bytes of files \
                         ({} MiB) in all; attach fewer or smaller files",
                        MAX_ATTACHMENTS_BYTES / (1024 * 1024)
                    )));
                }
            }
            out.push(attachment);
        }
        Ok(Self(out))
    }
}

fn parse(at: &str, value: &Value) -> Result<Attachment, InvalidArgument> {
    let Some(object) = value.as_object() else {
        return Err(invalid(format!("{at} must be an object")));
    };
    let string = |name: &str| -> Result<Option<&str>, InvalidArgument> {
        match object.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(invalid(format!("{at}.{name} must be a string"))),
        }
    };
    let known: &[&str] = match string("type")? {
        None => &["title", "text", "contentType", "data"],
        // What MCP writes beside an embedded resource (`annotations`, `_meta`) is ignored.
        Some("resource") => &["type", "resource", "title", "annotations", "_meta"],
        _ => &[],
    };
    if let Some(unknown) = object
        .keys()
        .find(|k| !known.is_empty() && !known.contains(&k.as_str()))
    {
        return Err(invalid(format!("{at} has an unknown member {unknown:?}")));
    }
    match string("type")? {
        None => {}
        Some("resource") => return parse_resource(at, object.get("resource"), string("title")?),
        Some("resource_link") => {
            return Err(invalid(format!(
                "{at} is a resource link, which carries no content: embed the resource \
                 (type \"resource\" with its text or blob) or attach its text"
            )));
        }
        Some(other) => {
            return Err(invalid(format!(
                "{at}.type {other:?} is not an attachment: use text, a file (data in base64) \
                 or an embedded resource (type \"resource\")"
            )));
        }
    }
    let title = string("title")?.ok_or_else(|| invalid(format!("{at}.title is required")))?;
    check_title(at, title)?;
    match (string("text")?, string("data")?) {
        (Some(text), None) => {
            let content_type =
                text_content_type(at, string("contentType")?.unwrap_or("text/plain"))?;
            text_attachment(at, title, content_type, text)
        }
        (None, Some(data)) => {
            let content_type = string("contentType")?.ok_or_else(|| {
                invalid(format!(
                    "{at}.contentType is required with data (e.g. application/pdf)"
                ))
            })?;
            let content_type = content_type_of(at, content_type)?;
            file_attachment(at, title, content_type, data, "data")
        }
        (Some(_), Some(_)) => Err(invalid(format!(
            "{at} has both text and data: attach text or a file, not both"
        ))),
        (None, None) => Err(invalid(format!(
            "{at} needs text (an inline note) or data (a file in base64)"
        ))),
    }
}

/// An embedded resource, as MCP writes one in content: `{type: "resource", resource: {uri,
/// mimeType?, text | blob}}`, titled by the last segment of its URI unless a title is given.
fn parse_resource(
    at: &str,
    resource: Option<&Value>,
    title: Option<&str>,
) -> Result<Attachment, InvalidArgument> {
    let Some(resource) = resource.and_then(Value::as_object) else {
        return Err(invalid(format!("{at}.resource must be an object")));
    };
    let at_resource = format!("{at}.resource");
    let string = |name: &str| -> Result<Option<&str>, InvalidArgument> {
        match resource.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(invalid(format!("{at_resource}.{name} must be a string"))),
        }
    };
    let uri = string("uri")?.ok_or_else(|| invalid(format!("{at_resource}.uri is required")))?;
    let title = match title {
        Some(title) => title.to_owned(),
        None => title_of_uri(uri),
    };
    check_title(at, &title)?;
    match (string("text")?, string("blob")?) {
        (Some(text), None) => {
            let content_type =
                text_content_type(&at_resource, string("mimeType")?.unwrap_or("text/plain"))?;
            text_attachment(&at_resource, &title, content_type, text)
        }
        (None, Some(blob)) => {
            let content_type = string("mimeType")?.ok_or_else(|| {
                invalid(format!("{at_resource}.mimeType is required with a blob"))
            })?;
            let content_type = content_type_of(&at_resource, content_type)?;
            file_attachment(&at_resource, &title, content_type, blob, "blob")
        }
        _ => Err(invalid(format!(
            "{at_resource} must carry its content: text or blob"
        ))),
    }
}

/// The last non-empty path segment of a URI (percent-decoded), or the URI itself.
fn title_of_uri(uri: &str) -> String {
    let last = url::Url::parse(uri).ok().and_then(|u| {
        let segment = u.path_segments()?.rev().find(|s| !s.is_empty())?.to_owned();
        Some(
            percent_encoding::percent_decode_str(&segment)
                .decode_utf8_lossy()
                .into_owned(),
        )
    });
    last.filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| uri.to_owned())
}

fn check_title(at: &str, title: &str) -> Result<(), InvalidArgument> {
    if title.trim().is_empty()
        || title.len() > MAX_TITLE_BYTES
        || title.chars().any(char::is_control)
    {
        return Err(invalid(format!(
            "{at}.title must be 1 to {MAX_TITLE_BYTES} bytes of text without control characters"
        )));
    }
    Ok(())
}

/// A content type Dust supports, lower-cased and without parameters (`; charset=...`).
fn content_type_of(at: &str, given: &str) -> Result<String, InvalidArgument> {
    let essence = given
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if SUPPORTED_TYPES.contains(&essence.as_str()) {
        Ok(essence)
    } else {
        Err(invalid(format!(
            "{at}: Dust does not take files of type {:?}; attach PDF, Office documents, text, \
             CSV, JSON, code, images (JPEG, PNG, GIF, WebP) or audio",
            given.chars().take(100).collect::<String>()
        )))
    }
}

/// A content type text may be sent as.
fn text_content_type(at: &str, given: &str) -> Result<String, InvalidArgument> {
    let essence = content_type_of(at, given)?;
    if is_text_type(&essence) {
        Ok(essence)
    } else {
        Err(invalid(format!(
            "{at}: text cannot be sent as {essence}; attach it as a file (data in base64) or \
             use a text type such as text/plain"
        )))
    }
}

fn text_attachment(
    at: &str,
    title: &str,
    content_type: String,
    text: &str,
) -> Result<Attachment, InvalidArgument> {
    if text.is_empty() {
        return Err(invalid(format!("{at}.text must not be empty")));
    }
    if text.len() > MAX_TEXT_ATTACHMENT_BYTES {
        return Err(invalid(format!(
            "{at}.text is {} bytes; Dust takes at most {MAX_TEXT_ATTACHMENT_BYTES} bytes of \
             inline text: attach it as a file instead",
            text.len()
        )));
    }
    Ok(Attachment::Text {
        title: title.to_owned(),
        content_type,
        text: text.to_owned(),
    })
}

fn file_attachment(
    at: &str,
    title: &str,
    content_type: String,
    base64: &str,
    field: &str,
) -> Result<Attachment, InvalidArgument> {
    // Refused before decoding: a base64 text this long cannot decode to an allowed size.
    if base64.len() / 4 * 3 > MAX_ATTACHMENTS_BYTES + 3 {
        return Err(invalid(format!(
            "{at}.{field} decodes to more than {MAX_ATTACHMENTS_BYTES} bytes; attach a smaller file"
        )));
    }
    let data = base64::engine::general_purpose::STANDARD
        .decode(base64.trim())
        .map_err(|_| invalid(format!("{at}.{field} is not valid base64")))?;
    if data.is_empty() {
        return Err(invalid(format!("{at}.{field} holds an empty file")));
    }
    if data.len() > MAX_ATTACHMENTS_BYTES {
        return Err(invalid(format!(
            "{at}.{field} is a file of {} bytes; at most {MAX_ATTACHMENTS_BYTES} are accepted",
            data.len()
        )));
    }
    Ok(Attachment::File {
        title: title.to_owned(),
        content_type,
        data,
    })
}

/// Attaches `attachments` in Dust: files uploaded (for `conversation_id`, when the question
/// continues one), and the content fragments that carry them all, in order.
///
/// # Errors
///
/// Dust's, naming the attachment.
pub async fn fragments(
    dust: &dyn crate::dust::DustApi,
    creds: &DustCredentials,
    attachments: &Attachments,
) -> Result<Vec<NewContentFragment>, OpError> {
    let mut out = Vec::with_capacity(attachments.len());
    for attachment in attachments.iter() {
        out.push(match attachment {
            Attachment::Text {
                title,
                content_type,
                text,
            } => NewContentFragment::Text {
                title: title.clone(),
                content: text.clone(),
                content_type: content_type.clone(),
            },
            Attachment::File {
                title,
                content_type,
                data,
            } => {
                let file = upload(dust, creds, title, content_type, data).await?;
                NewContentFragment::File {
                    title: title.clone(),
                    file_id: file.s_id,
                }
            }
        });
    }
    Ok(out)
}

async fn upload(
    dust: &dyn crate::dust::DustApi,
    creds: &DustCredentials,
    title: &str,
    content_type: &str,
    data: &[u8],
) -> Result<DustFile, OpError> {
    let what = format!("uploading the attachment {title:?}");
    let request = NewFile {
        content_type: content_type.to_owned(),
        file_name: title.to_owned(),
        file_size: data.len() as u64,
        use_case: "conversation".to_owned(),
    };
    let file = dust
        .create_file(creds, &request)
        .await
        .map_err(|e| OpError::dust(&what, e))?;
    dust.upload_file(creds, &file, data)
        .await
        .map_err(|e| OpError::dust(&what, e))
}

// The shape of one attachment, for the schemas of both surfaces: the checks above are the rule,
// this is what a model and the OpenAPI document read. Inlined, for clients that do not follow
// `$ref`.
/// One attachment: inline text, a file in base64, or an MCP embedded resource.
#[derive(Debug, Deserialize, JsonSchema, utoipa::ToSchema)]
#[serde(untagged)]
#[schemars(inline)]
#[allow(dead_code)]
pub enum AttachmentShape {
    /// Inline text: a note, a pasted document.
    Text {
        /// A name for it, e.g. `notes.txt`.
        title: String,
        /// The text, sent as is (at most 512 KiB).
        text: String,
        /// A text type Dust takes; `text/plain` when omitted.
        #[serde(rename = "contentType")]
        content_type: Option<String>,
    },
    /// A file: PDF, Office document, CSV, image, ... (at most 5 MiB of files in all).
    File {
        /// Its file name, e.g. `report.pdf`.
        title: String,
        /// Its content type, e.g. `application/pdf`.
        #[serde(rename = "contentType")]
        content_type: String,
        /// Its bytes in base64.
        data: String,
    },
    /// An MCP embedded resource, as in tool results: `{"type": "resource", "resource": {uri,
    /// mimeType?, text | blob}}`.
    Resource {
        #[serde(rename = "type")]
        #[schema(value_type = String)]
        kind: ResourceTag,
        /// `{uri, mimeType?, text}` or `{uri, mimeType, blob}` (base64).
        #[schema(value_type = Object)]
        #[schemars(with = "serde_json::Map<String, Value>")]
        resource: Value,
    },
}

/// The one tag an embedded resource has.
#[derive(Debug, Deserialize, JsonSchema, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(inline)]
pub enum ResourceTag {
    Resource,
}

impl JsonSchema for Attachments {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Attachments".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let mut schema = <Vec<AttachmentShape>>::json_schema(generator);
        schema.insert("maxItems".to_owned(), Value::from(MAX_ATTACHMENTS));
        schema
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse_all(value: Value) -> Result<Attachments, String> {
        let values: Vec<Value> = serde_json::from_value(value).unwrap();
        Attachments::try_from(values).map_err(|e| e.message)
    }

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn text_files_and_embedded_resources_are_taken_as_sent() {
        let attachments = parse_all(json!([
            {"title": "notes.txt", "text": "  line one\r\nline two  "},
            {"title": "data.md", "text": "# x", "contentType": "Text/Markdown; charset=utf-8"},
            {"title": "report.pdf", "contentType": "application/pdf", "data": b64(b"%PDF-1.4 \x00\xff")},
            {"type": "resource", "resource": {"uri": "file:///home/me/Q3%20plan.txt", "text": "plan"}},
            {"type": "resource", "resource": {"uri": "file:///logo.png", "mimeType": "image/png", "blob": b64(b"\x89PNG")}},
        ]))
        .unwrap();
        let all: Vec<_> = attachments.iter().cloned().collect();
        assert_eq!(
            all,
            vec![
                Attachment::Text {
                    title: "notes.txt".into(),
                    content_type: "text/plain".into(),
                    text: "  line one\r\nline two  ".into()
                },
                Attachment::Text {
                    title: "data.md".into(),
                    content_type: "text/markdown".into(),
                    text: "# x".into()
                },
                Attachment::File {
                    title: "report.pdf".into(),
                    content_type: "application/pdf".into(),
                    data: b"%PDF-1.4 \x00\xff".to_vec()
                },
                Attachment::Text {
                    title: "Q3 plan.txt".into(),
                    content_type: "text/plain".into(),
                    text: "plan".into()
                },
                Attachment::File {
                    title: "logo.png".into(),
                    content_type: "image/png".into(),
                    data: b"\x89PNG".to_vec()
                },
            ]
        );
        // Debug names, never content.
        let shown = format!("{attachments:?}");
        assert!(
            shown.contains("report.pdf") && !shown.contains("line one"),
            "{shown}"
        );
    }

    #[test]
    fn every_refusal_names_the_attachment_and_the_problem() {
        let big_text = "x".repeat(MAX_TEXT_ATTACHMENT_BYTES + 1);
        let big_file = b64(&vec![0u8; MAX_ATTACHMENTS_BYTES + 10]);
        let just_over = b64(&vec![0u8; MAX_ATTACHMENTS_BYTES + 1]);
        let half = b64(&vec![0u8; MAX_ATTACHMENTS_BYTES / 2 + 1]);
        let cases = [
            (
                json!([{"title": "a.exe", "contentType": "application/x-msdownload", "data": "AAAA"}]),
                "attachments[0]: Dust does not take files of type \"application/x-msdownload\"",
            ),
            (
                json!([{"title": "a.pdf", "contentType": "application/pdf", "data": "not base64!"}]),
                "attachments[0].data is not valid base64",
            ),
            (
                json!([{"title": "a.pdf", "data": "AAAA"}]),
                "attachments[0].contentType is required with data",
            ),
            (
                json!([{"title": "a.png", "text": "x", "contentType": "image/png"}]),
                "attachments[0]: text cannot be sent as image/png",
            ),
            (
                json!([{"title": "a", "text": ""}]),
                "attachments[0].text must not be empty",
            ),
            (
                json!([{"title": "a", "text": big_text}]),
                "attachments[0].text is 524289 bytes",
            ),
            (
                json!([{"title": "a", "contentType": "application/pdf", "data": big_file}]),
                "attachments[0].data decodes to more than",
            ),
            (
                json!([{"title": "a", "contentType": "application/pdf", "data": just_over}]),
                "attachments[0].data is a file of 5242881 bytes; at most 5242880 are accepted",
            ),
            (
                json!([{"title": "a", "contentType": "application/pdf", "data": half},
                    {"title": "b", "contentType": "application/pdf", "data": half}]),
                "attachments hold more than 5242880 bytes of files",
            ),
            (
                json!([{"title": "a\nb", "text": "x"}]),
                "attachments[0].title must be 1 to 256 bytes",
            ),
            (json!([{"text": "x"}]), "attachments[0].title is required"),
            (
                json!([{"title": "a", "text": "x", "data": "AAAA"}]),
                "attachments[0] has both text and data",
            ),
            (
                json!([{"title": "a"}]),
                "attachments[0] needs text (an inline note) or data",
            ),
            (
                json!([{"title": "a", "text": "x", "path": "/etc/passwd"}]),
                "attachments[0] has an unknown member \"path\"",
            ),
            (
                json!([{"type": "resource_link", "uri": "file:///a.txt", "name": "a"}]),
                "attachments[0] is a resource link, which carries no content",
            ),
            (
                json!([{"type": "resource", "resource": {"uri": "file:///a.txt"}}]),
                "attachments[0].resource must carry its content",
            ),
            (
                json!([{"type": "image", "data": "AAAA"}]),
                "attachments[0].type \"image\" is not an attachment",
            ),
            (json!(["text"]), "attachments[0] must be an object"),
            (
                json!(
                    (0..11)
                        .map(|i| json!({"title": format!("{i}"), "text": "x"}))
                        .collect::<Vec<_>>()
                ),
                "attachments holds 11 items; at most 10 are accepted",
            ),
        ];
        for (value, expected) in cases {
            let error = parse_all(value).unwrap_err();
            assert!(
                error.starts_with(expected),
                "{error:?} does not start with {expected:?}"
            );
        }
    }

    #[test]
    fn the_digest_tells_attachments_apart() {
        let one = parse_all(json!([{"title": "a", "text": "x"}])).unwrap();
        let other = parse_all(json!([{"title": "a", "text": "y"}])).unwrap();
        assert_ne!(one.digest(), other.digest());
        assert_eq!(
            one.digest(),
            parse_all(json!([{"title": "a", "text": "x"}]))
                .unwrap()
                .digest()
        );
        assert_eq!(Attachments::default().digest(), "");
    }

    #[test]
    fn the_schema_lists_the_three_shapes() {
        let schema = schemars::schema_for!(Attachments);
        let text = serde_json::to_string(&schema).unwrap();
        assert!(text.contains("\"maxItems\":10"), "{text}");
        for member in ["\"text\"", "\"data\"", "\"resource\""] {
            assert!(text.contains(member), "{member} missing from {text}");
        }
    }
}
