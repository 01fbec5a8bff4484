//! Content fragments: the attachments of a conversation, and what the agents read of them.
//!
//! `POST /assistant/conversations/{cId}/content_fragments` takes one of the three bodies of the
//! SDK's `PublicPostContentFragmentRequestBodySchema`, and `POST /assistant/conversations`
//! takes the same objects in `contentFragments[]` (and the legacy `contentFragment`, posted
//! after them), as Dust's handlers do (`front-api/routes/.../content_fragments.ts`,
//! `lib/api/assistant/conversation/content_fragment.ts`):
//! - inline `{title, content, contentType, url?, context?}`: the content must be 1 to 512 Ki
//!   UTF-16 units (JavaScript's `length`; else 400 "The content must be a non-empty string of
//!   less than 512kB.") and its type a supported non-image type (else 400 "Unsupported content
//!   fragment type.", "Invalid content fragment type." on create); Dust turns it into a `ready`
//!   file of the conversation use case, whose `fileId` the fragment carries;
//! - `{title, fileId, url?, context?}`: the file must be the workspace's, of the `conversation`
//!   use case and `ready`; Dust answers each failure with 400 `invalid_request_error` ("File not
//!   found.", "File not meant to be used in a conversation.", "The file is not ready. Please
//!   re-upload the file to proceed."), not a 404;
//! - `{title, nodeId, nodeDataSourceViewId}`: a document reachable through that view of a
//!   space the key sees (400 "Unknown data source view for content fragment input", 400
//!   "Content node not found for content fragment node id: …"). Only documents: the
//!   simulator's content nodes are its documents.
//!
//! A file fragment's `textUrl` is `{file route}?action=view` and its `sourceUrl` the given `url`,
//! else `{file route}?action=download` (Dust gives a signed storage URL and its app's private
//! file URL: neither is reachable with a key); `snippet` is the first 256 characters of a text
//! file (null otherwise), `textBytes` its size in bytes (UTF-8 for inline content).
//!
//! A fragment takes a rank in the conversation like a message. Dust creates the conversation
//! before it resolves the fragments of a create call, so a refused fragment leaves an empty
//! conversation behind; the simulator checks every fragment first and stores nothing.
//!
//! An agent reads every fragment posted before its user message (the whole conversation, as
//! Dust's model sees it, not only those since the previous message), and its answer ends with
//! one sentence naming them, in rank order ([`attachments_read`]).

use std::sync::Arc;

use axum::{
    Extension, Json,
    body::Bytes,
    extract::{Path, State},
};
use serde_json::{Value, json};

use super::{
    conversations::conversation_not_found,
    error::{ApiError, ApiResult, Fields, parse_json},
    files::{self, Category},
    now_ms, random_s_id,
    state::{AppState, Workspace},
    world::{Conversation, FileStatus, Fragment, FragmentSource, Slot, StoredFile, World},
};

/// Longest inline content, in UTF-16 units (Dust checks JavaScript's `content.length`).
const MAX_INLINE_UNITS: usize = 512 * 1024;
/// Longest quoted first line of a text attachment, in characters.
const QUOTE_CHARS: usize = 80;
/// Longest `snippet` of a text file, in characters.
const SNIPPET_CHARS: usize = 256;

/// A fragment as posted, once it matched one member of the schema's union.
#[derive(Debug, Clone)]
pub(crate) enum FragmentInput {
    Inline {
        title: String,
        content: String,
        content_type: String,
        url: Option<String>,
        context: Value,
    },
    File {
        title: String,
        file_id: String,
        url: Option<String>,
        context: Value,
    },
    Node {
        title: String,
        node_id: String,
        view_id: String,
        context: Value,
    },
}

/// Validates the fragment object at `path` against `PublicPostContentFragmentRequestBodySchema`.
pub(crate) fn parse_fragment(value: &Value, path: &str) -> ApiResult<FragmentInput> {
    let f = Fields::of(value, path)?;
    let title = f.req_str("title")?.to_owned();
    let context = parse_context(&f)?;
    let url = f.opt_str("url")?.map(str::to_owned);
    f.opt_str("supersededContentFragmentId")?;
    let content = f.opt_str("content")?;
    let content_type = f.opt_str("contentType")?;
    let file_id = f.opt_str("fileId")?;
    let node_id = f.opt_str("nodeId")?;
    let view_id = f.opt_str("nodeDataSourceViewId")?;
    match (content, content_type, file_id, node_id, view_id) {
        (Some(content), Some(content_type), None, None, None) => Ok(FragmentInput::Inline {
            title,
            content: content.to_owned(),
            content_type: content_type.to_owned(),
            url,
            context,
        }),
        (None, None, Some(file_id), None, None) => Ok(FragmentInput::File {
            title,
            file_id: file_id.to_owned(),
            url,
            context,
        }),
        (None, None, None, Some(node_id), Some(view_id)) if url.is_none() => {
            Ok(FragmentInput::Node {
                title,
                node_id: node_id.to_owned(),
                view_id: view_id.to_owned(),
                context,
            })
        }
        _ => Err(ApiError::invalid_body(
            path,
            "Invalid input: expected {title, content, contentType} or {title, fileId} or \
             {title, nodeId, nodeDataSourceViewId}",
        )),
    }
}

/// `ContentFragmentContextSchema`, as Dust stores it (every member a string or null).
fn parse_context(f: &Fields<'_>) -> ApiResult<Value> {
    let path = f.path_of("context");
    let Some(value) = f.get("context") else {
        return Ok(
            json!({ "username": null, "fullName": null, "email": null, "profilePictureUrl": null }),
        );
    };
    let ctx = Fields::of(value, &path)?;
    Ok(json!({
        "username": ctx.opt_str("username")?,
        "fullName": ctx.opt_str("fullName")?,
        "email": ctx.opt_str("email")?.map(str::to_lowercase),
        "profilePictureUrl": ctx.opt_str("profilePictureUrl")?,
    }))
}

/// The checks Dust makes before it touches any file: the inline content's length, then its
/// type (`unsupported` is the route's message for a type it does not inline).
pub(crate) fn check_input(input: &FragmentInput, unsupported: &str) -> ApiResult<()> {
    let FragmentInput::Inline {
        content,
        content_type,
        ..
    } = input
    else {
        return Ok(());
    };
    let units = content.encode_utf16().count();
    if units == 0 || units > MAX_INLINE_UNITS {
        return Err(ApiError::invalid_request(
            "The content must be a non-empty string of less than 512kB.",
        ));
    }
    match files::category(content_type) {
        Some(Category::Image) | None => Err(ApiError::invalid_request(unsupported)),
        Some(_) => Ok(()),
    }
}

/// A fragment ready to be appended (id, rank and date are given then), and the file it makes.
#[derive(Debug)]
pub(crate) struct Prepared {
    fragment: Fragment,
    file: Option<StoredFile>,
}

/// Resolves `input` against the workspace without changing it: Dust's 400s for a file or node
/// it cannot use.
pub(crate) fn prepare(
    world: &World,
    state: &AppState,
    ws: &Workspace,
    input: FragmentInput,
) -> ApiResult<Prepared> {
    match input {
        FragmentInput::Inline {
            title,
            content,
            content_type,
            url,
            context,
        } => {
            let file = StoredFile {
                s_id: files::new_file_id(),
                file_name: format!("content{}", extension_of(&content_type)),
                content_type,
                file_size: content.len() as u64,
                use_case: "conversation".to_owned(),
                use_case_metadata: None,
                status: FileStatus::Ready,
                created: std::time::Instant::now(),
                content: Some(Bytes::from(content)),
            };
            let fragment = file_fragment(state, ws, &file, title, url, context);
            Ok(Prepared {
                fragment,
                file: Some(file),
            })
        }
        FragmentInput::File {
            title,
            file_id,
            url,
            context,
        } => {
            let refuse = |m: &str| Err(ApiError::invalid_request(m));
            let Some(file) = world.files.get(&file_id) else {
                return refuse("File not found.");
            };
            if file.use_case != "conversation" {
                return refuse("File not meant to be used in a conversation.");
            }
            if file.status != FileStatus::Ready {
                return refuse("The file is not ready. Please re-upload the file to proceed.");
            }
            Ok(Prepared {
                fragment: file_fragment(state, ws, file, title, url, context),
                file: None,
            })
        }
        FragmentInput::Node {
            title,
            node_id,
            view_id,
            context,
        } => {
            let view = world
                .views
                .iter()
                .find(|v| v.s_id == view_id)
                .and_then(|v| Some((v, world.space(v.space_id)?)));
            let Some((view, space)) = view else {
                return Err(ApiError::invalid_request(
                    "Unknown data source view for content fragment input",
                ));
            };
            let found = world
                .data_source_by_id(view.data_source_id)
                .and_then(|ds| Some((ds, ds.documents.get(&node_id)?)))
                .filter(|(_, doc)| view.covers(doc));
            let Some((ds, doc)) = found else {
                return Err(ApiError::invalid_request(format!(
                    "Content node not found for content fragment node id: {node_id}"
                )));
            };
            let fragment = Fragment {
                id: 0,
                s_id: String::new(),
                content_fragment_id: String::new(),
                created: 0,
                rank: 0,
                title,
                content_type: doc.mime_type.clone(),
                source_url: doc.source_url.clone(),
                context,
                source: FragmentSource::Node {
                    node_id,
                    view_id,
                    provider: ds.connector_provider.map(str::to_owned),
                    space_name: space.name.to_owned(),
                },
                size: doc.text.len() as u64,
                first_line: first_line(&doc.text),
            };
            Ok(Prepared {
                fragment,
                file: None,
            })
        }
    }
}

/// The fragment of a `ready` file.
fn file_fragment(
    state: &AppState,
    ws: &Workspace,
    file: &StoredFile,
    title: String,
    url: Option<String>,
    context: Value,
) -> Fragment {
    let file_url = files::file_url(state, ws, &file.s_id);
    let text = file
        .content
        .as_deref()
        .filter(|_| files::category(&file.content_type) == Some(Category::Text))
        .and_then(|bytes| std::str::from_utf8(bytes).ok());
    let metadata = |key: &str| {
        file.use_case_metadata
            .as_ref()
            .and_then(|m| m[key].as_str())
            .map(str::to_owned)
    };
    Fragment {
        id: 0,
        s_id: String::new(),
        content_fragment_id: String::new(),
        created: 0,
        rank: 0,
        title,
        content_type: file.content_type.clone(),
        source_url: Some(url.unwrap_or_else(|| format!("{file_url}?action=download"))),
        context,
        source: FragmentSource::File {
            file_id: file.s_id.clone(),
            snippet: text.map(|t| t.chars().take(SNIPPET_CHARS).collect()),
            text_url: format!("{file_url}?action=view"),
            source_provider: metadata("sourceProvider"),
            source_icon: metadata("sourceIcon"),
        },
        size: file
            .content
            .as_ref()
            .map_or(file.file_size, |c| c.len() as u64),
        first_line: text.and_then(first_line),
    }
}

/// The first non-blank line, cut at [`QUOTE_CHARS`] (with `…` when cut).
fn first_line(text: &str) -> Option<String> {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    let mut quoted: String = line.chars().take(QUOTE_CHARS).collect();
    if line.chars().count() > QUOTE_CHARS {
        quoted.push('…');
    }
    Some(quoted)
}

/// The first extension Dust gives the file of an inline fragment (`content.txt`, ...).
fn extension_of(content_type: &str) -> &'static str {
    match content_type {
        "text/markdown" => ".md",
        "text/csv" | "text/comma-separated-values" => ".csv",
        "text/tsv" | "text/tab-separated-values" => ".tsv",
        "text/html" => ".html",
        "application/json" => ".json",
        "text/xml" | "application/xml" => ".xml",
        "application/pdf" => ".pdf",
        t if t.starts_with("text/") => ".txt",
        _ => "",
    }
}

/// The files `prepared` would add, checked against the simulator's bound before anything is
/// stored.
pub(crate) fn ensure_room(world: &World, prepared: &[Prepared]) -> ApiResult<()> {
    let new: Vec<&StoredFile> = prepared.iter().filter_map(|p| p.file.as_ref()).collect();
    files::ensure_room(world, new.len(), new.iter().map(|f| f.file_size).sum())
}

/// Appends `prepared` to conversation `c_id` (which exists); returns the stored fragment.
pub(crate) fn append(world: &mut World, c_id: &str, prepared: Prepared) -> Option<Fragment> {
    let Prepared { mut fragment, file } = prepared;
    fragment.id = world.next_id();
    fragment.s_id = random_s_id();
    fragment.content_fragment_id = random_s_id();
    fragment.created = now_ms();
    let conversation = world.conversations.get_mut(c_id)?;
    fragment.rank = conversation.slots.len();
    conversation.slots.push(Slot::Fragment(fragment.clone()));
    conversation.updated = fragment.created;
    if let Some(file) = file {
        world.files.insert(file.s_id.clone(), file);
    }
    Some(fragment)
}

/// Dust's `ContentFragmentType` (`FileContentFragmentSchema` or
/// `ContentNodeContentFragmentSchema`, never expired here).
pub(crate) fn fragment_json(f: &Fragment) -> Value {
    let mut out = json!({
        "type": "content_fragment",
        "id": f.id,
        "sId": f.s_id,
        "created": f.created,
        "visibility": "visible",
        "version": 0,
        "rank": f.rank,
        "sourceUrl": f.source_url,
        "title": f.title,
        "contentType": f.content_type,
        "context": f.context,
        "contentFragmentId": f.content_fragment_id,
        "contentFragmentVersion": "latest",
        "expiredReason": null,
    });
    let extra = match &f.source {
        FragmentSource::File {
            file_id,
            snippet,
            text_url,
            source_provider,
            source_icon,
        } => json!({
            "contentFragmentType": "file",
            "fileId": file_id,
            "snippet": snippet,
            "generatedTables": [],
            "textUrl": text_url,
            "textBytes": f.size,
            "sourceProvider": source_provider,
            "sourceIcon": source_icon,
        }),
        FragmentSource::Node {
            node_id,
            view_id,
            provider,
            space_name,
        } => json!({
            "contentFragmentType": "content_node",
            "nodeId": node_id,
            "nodeDataSourceViewId": view_id,
            "nodeType": "document",
            "contentNodeData": {
                "nodeId": node_id,
                "nodeDataSourceViewId": view_id,
                "nodeType": "document",
                "provider": provider,
                "spaceName": space_name,
            },
        }),
    };
    if let (Some(out), Value::Object(extra)) = (out.as_object_mut(), extra) {
        out.extend(extra);
    }
    out
}

/// The sentence an agent's answer ends with when fragments precede its user message, e.g.
/// `Attachments I read: "note.txt" (text/plain, 42 bytes: "first line of the note"); "report.pdf"
/// (application/pdf, 1234 bytes).`: each fragment's title, type and size in rank order, and the
/// first non-blank line of a text one (at most 80 characters, `…` when cut).
pub(crate) fn attachments_read(
    conversation: &Conversation,
    agent_message_id: &str,
) -> Option<String> {
    let parent = conversation.slots.iter().find_map(|slot| match slot {
        Slot::Agent(m) if m.s_id == agent_message_id => Some(m.parent_message_id.as_str()),
        _ => None,
    })?;
    let before = conversation.slots.iter().find_map(|slot| match slot {
        Slot::User(m) if m.s_id == parent => Some(m.rank),
        _ => None,
    })?;
    let read: Vec<String> = conversation.slots[..before]
        .iter()
        .filter_map(|slot| match slot {
            Slot::Fragment(f) => Some(match &f.first_line {
                Some(line) => format!(
                    "\"{}\" ({}, {} bytes: \"{line}\")",
                    f.title, f.content_type, f.size
                ),
                None => format!("\"{}\" ({}, {} bytes)", f.title, f.content_type, f.size),
            }),
            _ => None,
        })
        .collect();
    (!read.is_empty()).then(|| format!("Attachments I read: {}.", read.join("; ")))
}

/// `POST /assistant/conversations/{cId}/content_fragments` → `{contentFragment}`.
pub(crate) async fn post_content_fragment(
    State(state): State<AppState>,
    Extension(ws): Extension<Arc<Workspace>>,
    Path((_w_id, c_id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let value = parse_json(&body)?;
    let input = parse_fragment(&value, "")?;
    let mut world = ws.world();
    if !world.conversations.contains_key(&c_id) {
        return Err(conversation_not_found());
    }
    check_input(&input, "Unsupported content fragment type.")?;
    let prepared = [prepare(&world, &state, &ws, input)?];
    ensure_room(&world, &prepared)?;
    let [prepared] = prepared;
    let fragment = append(&mut world, &c_id, prepared).ok_or_else(conversation_not_found)?;
    Ok(Json(json!({ "contentFragment": fragment_json(&fragment) })))
}
