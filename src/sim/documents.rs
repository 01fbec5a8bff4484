//! Documents of folder data sources: list, get, upsert, delete.
//!
//! Document ids arrive percent-decoded by the router (`%2F` is a slash inside the id, not a
//! path separator). Upserts follow Dust's rules: folders only (connectors are managed, 403),
//! `text` or `section` required, `source_url` must parse as a URL, the title defaults to the
//! `title:` tag or the id and a `title:<title>` tag is added, and a workspace may upsert at
//! most `--upsert-limit-per-minute` documents per minute. Without `light_document_output: true`
//! the answer carries every chunk with its embedding vector, as Dust's does (about 15 times the
//! text); with it, only `{hash, text_size, chunk_count, token_count, created}`. Document ids are
//! free strings (Dust's own upload page uses file names such as `Q3 report.pdf`).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    Extension, Json,
    body::Bytes,
    extract::{Path, RawQuery, State},
    http::StatusCode,
};
use serde_json::{Value, json};

use super::{
    data_sources::{
        data_source_json, data_source_not_found, find_data_source, fnv, space_not_found,
    },
    error::{ApiError, ApiResult, Fields, parse_json},
    now_ms,
    query::Query,
    search,
    state::{AppState, Workspace},
    world::{DataSource, Document},
};

/// Default page size of `GET .../documents`.
const DEFAULT_PAGE_LIMIT: usize = 10;
/// The window of the upsert rate limit.
const UPSERT_WINDOW: Duration = Duration::from_secs(60);
/// Longest accepted title; longer titles get a 400 (Dust's exact limit is unconfirmed).
const MAX_TITLE_LEN: usize = 512;
/// Mime type of a document upserted without one.
const DEFAULT_MIME_TYPE: &str = "application/octet-stream";

type DocPath = Path<(String, String, String, String)>;

/// The core document JSON (`CoreAPIDocumentSchema`); `text` only when asked for.
pub(crate) fn document_json(ds: &DataSource, doc: &Document, with_text: bool) -> Value {
    json!({
        "data_source_id": ds.s_id,
        "created": doc.created,
        "document_id": doc.document_id,
        "timestamp": doc.timestamp,
        "tags": doc.tags,
        "parents": doc.parents().collect::<Vec<_>>(),
        "parent_id": null,
        "source_url": doc.source_url,
        "hash": format!("{:016x}", fnv(&doc.text)),
        "text_size": doc.text.len(),
        "chunk_count": search::chunks(&doc.text).len(),
        "chunks": [],
        "title": doc.title,
        "mime_type": doc.mime_type,
        "text": if with_text { Value::String(doc.text.clone()) } else { Value::Null },
    })
}

fn document_not_found(document_id: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "data_source_error", "There was an error retrieving the data source document.")
        .with_extra(
            "data_source_error",
            json!({ "code": "document_not_found", "message": format!("Document not found: {document_id}") }),
        )
}

/// `GET .../documents?limit&offset&document_ids=`.
pub(crate) async fn list_documents(
    Extension(ws): Extension<Arc<Workspace>>,
    Path((_w_id, space_id, ds_id)): Path<(String, String, String)>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let query = Query::parse(raw.as_deref());
    let number = |key: &str, default: usize| -> ApiResult<usize> {
        query.first(key).map_or(Ok(default), |v| {
            v.trim()
                .parse()
                .map_err(|_| ApiError::invalid_query(key, "Expected number, received nan"))
        })
    };
    let (limit, offset) = (number("limit", DEFAULT_PAGE_LIMIT)?, number("offset", 0)?);
    let only = query.all("document_ids");
    let world = ws.world();
    let ds = find_data_source(&world, &space_id, &ds_id)?;
    let matching: Vec<&Document> = ds
        .documents
        .values()
        .filter(|d| only.is_empty() || only.contains(&d.document_id))
        .collect();
    let documents: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(limit)
        .map(|d| document_json(ds, d, true))
        .collect();
    Ok(Json(
        json!({ "documents": documents, "total": matching.len() }),
    ))
}

/// `GET .../documents/{documentId}`.
pub(crate) async fn get_document(
    Extension(ws): Extension<Arc<Workspace>>,
    Path((_w_id, space_id, ds_id, doc_id)): DocPath,
) -> ApiResult<Json<Value>> {
    let world = ws.world();
    let ds = find_data_source(&world, &space_id, &ds_id)?;
    let doc = ds
        .documents
        .get(&doc_id)
        .ok_or_else(|| document_not_found(&doc_id))?;
    Ok(Json(json!({ "document": document_json(ds, doc, true) })))
}

/// `DELETE .../documents/{documentId}`.
pub(crate) async fn delete_document(
    Extension(ws): Extension<Arc<Workspace>>,
    Path((_w_id, space_id, ds_id, doc_id)): DocPath,
) -> ApiResult<Json<Value>> {
    let mut world = ws.world();
    world.space(&space_id).ok_or_else(space_not_found)?;
    let ds = world
        .data_source_mut(&space_id, &ds_id)
        .ok_or_else(data_source_not_found)?;
    if ds.connector_provider.is_some() {
        return Err(managed_data_source());
    }
    ds.documents.remove(&doc_id);
    Ok(Json(json!({ "document": { "document_id": doc_id } })))
}

fn managed_data_source() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "data_source_auth_error",
        "You cannot upsert a document on a managed data source.",
    )
}

/// `POST .../documents/{documentId}` (upsert).
pub(crate) async fn upsert_document(
    State(state): State<AppState>,
    Extension(ws): Extension<Arc<Workspace>>,
    Path((_w_id, space_id, ds_id, doc_id)): DocPath,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    {
        let world = ws.world();
        let ds = find_data_source(&world, &space_id, &ds_id)?;
        if ds.connector_provider.is_some() {
            return Err(managed_data_source());
        }
    }
    check_upsert_rate(&ws, state.config.upsert_limit_per_minute)?;
    let value = parse_json(&body)?;
    let upsert = parse_upsert(&value, &doc_id)?;
    let mut world = ws.world();
    let ds = world
        .data_source_mut(&space_id, &ds_id)
        .ok_or_else(data_source_not_found)?;
    let created = ds
        .documents
        .get(&doc_id)
        .map_or(upsert.timestamp, |d| d.created);
    let document = Document { created, ..upsert };
    ds.documents.insert(doc_id.clone(), document.clone());
    let ds = &*ds;
    if Fields::of(&value, "")?.opt_bool("async")? == Some(true) {
        return Ok(Json(json!({ "document": { "document_id": doc_id } })));
    }
    let doc_value = if Fields::of(&value, "")?.opt_bool("light_document_output")? == Some(true) {
        json!({
            "hash": format!("{:016x}", fnv(&document.text)),
            "text_size": document.text.len(),
            "chunk_count": search::chunks(&document.text).len(),
            "token_count": search::terms(&document.text).len(),
            "created": document.created,
        })
    } else {
        let mut full = document_json(ds, &document, true);
        full["chunks"] = embedded_chunks(&document.text);
        full
    };
    Ok(Json(
        json!({ "document": doc_value, "data_source": data_source_json(ds) }),
    ))
}

/// Bytes of text per embedded chunk: about Dust's 512 tokens.
const EMBEDDED_CHUNK_BYTES: usize = 2048;
/// Dimensions of the default embedder's vectors.
const EMBEDDING_DIMENSIONS: usize = 1536;

/// The chunks of an upsert answer without `light_document_output`: each with its embedding
/// vector, as Dust sends them (about 30 KB of JSON per chunk; the vectors here are
/// deterministic noise from the chunk's hash).
fn embedded_chunks(text: &str) -> Value {
    let mut chunks = Vec::new();
    let mut offset = 0;
    while offset < text.len() {
        let mut end = (offset + EMBEDDED_CHUNK_BYTES).min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let piece = &text[offset..end];
        let mut state = fnv(piece) | 1;
        let vector: Vec<f64> = (0..EMBEDDING_DIMENSIONS)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
            })
            .collect();
        chunks.push(json!({
            "text": piece,
            "hash": format!("{:016x}", fnv(piece)),
            "offset": offset,
            "vector": vector,
            "score": null,
        }));
        offset = end;
    }
    Value::Array(chunks)
}

/// Counts this upsert against the workspace's per-minute budget, or answers 429.
fn check_upsert_rate(ws: &Workspace, limit: u32) -> ApiResult<()> {
    let now = Instant::now();
    let mut upserts = ws.upserts.lock().unwrap_or_else(|e| e.into_inner());
    while upserts
        .front()
        .is_some_and(|t| now.duration_since(*t) >= UPSERT_WINDOW)
    {
        upserts.pop_front();
    }
    if upserts.len() >= limit as usize {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            format!("You have reached the maximum number of {limit} upserts per minute."),
        ));
    }
    upserts.push_back(now);
    Ok(())
}

fn parse_upsert(value: &Value, doc_id: &str) -> ApiResult<Document> {
    let body = Fields::of(value, "")?;
    let text = match (body.opt_str("text")?, body.get("section")) {
        (Some(text), _) => text.to_owned(),
        (None, Some(section)) => flatten_section(section),
        (None, None) => {
            return Err(ApiError::invalid_request(
                "Invalid request body, `text` or `section` must be provided.",
            ));
        }
    };
    if body.get("parents").is_some() || body.get("parent_id").is_some() {
        return Err(ApiError::invalid_request(
            "Setting a custom hierarchy is not supported yet. Please omit the parents field.",
        ));
    }
    let source_url = body.opt_str("source_url")?;
    if source_url.is_some_and(|u| url::Url::parse(u).is_err()) {
        return Err(ApiError::invalid_request(
            "Invalid request body, `source_url` if provided must be a valid URL.",
        ));
    }
    let mut tags = body.opt_str_array("tags")?;
    let title = match body.opt_str("title")? {
        Some(t) => t.to_owned(),
        None => tags
            .iter()
            .find_map(|t| t.strip_prefix("title:"))
            .unwrap_or(doc_id)
            .to_owned(),
    };
    if title.chars().count() > MAX_TITLE_LEN {
        return Err(ApiError::invalid_request(format!(
            "Invalid request body, `title` must be at most {MAX_TITLE_LEN} characters."
        )));
    }
    let title_tag = format!("title:{title}");
    if !tags.contains(&title_tag) {
        tags.push(title_tag);
    }
    Ok(Document {
        ancestors: Vec::new(),
        document_id: doc_id.to_owned(),
        title,
        source_url: source_url.map(str::to_owned),
        tags,
        timestamp: body.opt_i64("timestamp")?.unwrap_or_else(now_ms),
        created: now_ms(),
        mime_type: body
            .opt_str("mime_type")?
            .unwrap_or(DEFAULT_MIME_TYPE)
            .to_owned(),
        text,
    })
}

/// The text of a `section` tree: prefix, content, then sub-sections, one per line.
fn flatten_section(section: &Value) -> String {
    let mut parts = Vec::new();
    for key in ["prefix", "content"] {
        if let Some(text) = section.get(key).and_then(Value::as_str) {
            parts.push(text.to_owned());
        }
    }
    if let Some(children) = section.get("sections").and_then(Value::as_array) {
        parts.extend(children.iter().map(flatten_section));
    }
    parts.join("\n")
}
