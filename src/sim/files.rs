//! File upload (`/files`): Dust's two steps, create then upload, and the file's own route.
//!
//! `POST /files` with `{contentType, fileName, fileSize, useCase, useCaseMetadata?}` checks in
//! the order of Dust's handler (`front-api/routes/v1/w/[wId]/files/index.ts`), because each
//! check has its own status and type: the body's schema (400 `invalid_request_error`), Dust's
//! 40 creations a minute per workspace for non-system keys (429 `rate_limit_error`), the use case
//! (a simulator key is never a system key, so only `conversation`: else 400
//! `invalid_request_error` "The file use case is not supported by the API."), the content type
//! (the SDK's `supportedOtherFileFormats`, `supportedImageFileFormats` and
//! `supportedAudioFileFormats`: else 400 `file_type_not_supported`; `application/octet-stream`
//! and `application/vnd.dust.section.json` are known but not processable for a conversation,
//! also `file_type_not_supported`), and the size. The size limits are Dust's `MAX_FILE_SIZES`
//! (`front/types/files.ts`): 5 MiB for images, 100 MiB for audio, 50 MiB for everything else
//! (data, code, delimited), a `fileSize` above it is 400 `file_too_large`.
//!
//! The answer's `uploadUrl` is this file's route on the simulator itself. Uploading is a
//! `multipart/form-data` POST whose `file` part (a part with a file name; Dust's formidable
//! takes a part without one for a plain field) carries the bytes; the part's type must be
//! absent, `application/octet-stream` or the declared one. The refusals are those of Dust's
//! `processAndStoreFile`: a file not `created` any more (400 `invalid_request_error`), an
//! upload more than a minute after creation (400, and the file fails), no usable `file` part
//! (400 `file_type_not_supported` "No file postprocessed."), more bytes than declared (400
//! `file_too_large`), no bytes (400 `file_is_empty`), an unreadable multipart body (500
//! `internal_server_error`). Like Dust, every refusal after the parsing began marks the file
//! `failed`, which a new upload cannot revive; no byte is kept.
//!
//! `GET /files/{fileId}` serves the bytes (Dust streams them for `action=view` and redirects
//! to a signed URL otherwise; the simulator serves them either way), `DELETE` forgets the file
//! (204). The simulator runs for days in a demo, so a workspace keeps at most [`MAX_FILES`]
//! files and [`MAX_TOTAL_BYTES`] of declared sizes; beyond, creation is refused with 400
//! `invalid_request_error` saying so (a simulator limit, not Dust's).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    Extension, Json,
    body::{Body, Bytes},
    extract::{
        Multipart, Path, RawQuery, State,
        multipart::{Field, MultipartRejection},
    },
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use super::{
    error::{ApiError, ApiResult, Fields, parse_json},
    random_s_id,
    state::{AppState, Workspace},
    world::{FileStatus, StoredFile, World},
};

/// Files a workspace may hold in the simulator.
pub(crate) const MAX_FILES: usize = 200;
/// Declared bytes a workspace may hold in the simulator (256 MiB).
pub(crate) const MAX_TOTAL_BYTES: u64 = 256 * MIB;
/// Largest `fileName` Dust's schema accepts.
const MAX_FILE_NAME_CHARS: usize = 4096;
/// Dust's file creations a minute per workspace (non-system keys).
const CREATIONS_PER_MINUTE: usize = 40;
/// How long after creation the upload is accepted (`UPLOAD_DELAY_AFTER_CREATION_MS`).
const UPLOAD_WINDOW: Duration = Duration::from_secs(60);
const MIB: u64 = 1024 * 1024;

/// What limits a content type's size and decides how the agents read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Category {
    Image,
    Audio,
    /// Text the agents can quote (plain text, markup, code, CSV).
    Text,
    /// Documents whose text Dust extracts (PDF, Office, Google Docs, Excel).
    Document,
}

/// Dust's supported upload types (`FILE_FORMATS`, as the SDK 1.2.8 lists them) by category.
const FORMATS: &[(&str, Category)] = &[
    ("application/msword", Category::Document),
    (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        Category::Document,
    ),
    ("application/vnd.ms-powerpoint", Category::Document),
    (
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        Category::Document,
    ),
    ("application/vnd.google-apps.document", Category::Document),
    (
        "application/vnd.google-apps.presentation",
        Category::Document,
    ),
    (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        Category::Document,
    ),
    (
        "application/vnd.google-apps.spreadsheet",
        Category::Document,
    ),
    ("application/vnd.ms-excel", Category::Document),
    ("application/pdf", Category::Document),
    ("application/vnd.dust.section.json", Category::Text),
    ("message/rfc822", Category::Text),
    ("text/comma-separated-values", Category::Text),
    ("text/csv", Category::Text),
    ("text/markdown", Category::Text),
    ("text/plain", Category::Text),
    ("text/tab-separated-values", Category::Text),
    ("text/tsv", Category::Text),
    ("text/vnd.dust.attachment.slack.thread", Category::Text),
    ("text/vnd.dust.attachment.pasted", Category::Text),
    ("text/html", Category::Text),
    ("text/xml", Category::Text),
    ("text/calendar", Category::Text),
    ("text/css", Category::Text),
    ("text/javascript", Category::Text),
    ("text/typescript", Category::Text),
    ("application/json", Category::Text),
    ("application/xml", Category::Text),
    ("application/x-sh", Category::Text),
    ("text/x-sh", Category::Text),
    ("text/x-python", Category::Text),
    ("text/x-python-script", Category::Text),
    ("application/x-yaml", Category::Text),
    ("text/yaml", Category::Text),
    ("text/vnd.yaml", Category::Text),
    ("text/x-c", Category::Text),
    ("text/x-csharp", Category::Text),
    ("text/x-java-source", Category::Text),
    ("text/x-php", Category::Text),
    ("text/x-ruby", Category::Text),
    ("text/x-sql", Category::Text),
    ("text/x-swift", Category::Text),
    ("text/x-rust", Category::Text),
    ("text/x-go", Category::Text),
    ("text/x-kotlin", Category::Text),
    ("text/x-scala", Category::Text),
    ("text/x-groovy", Category::Text),
    ("text/x-perl", Category::Text),
    ("text/x-perl-script", Category::Text),
    ("application/octet-stream", Category::Document),
    ("image/jpeg", Category::Image),
    ("image/png", Category::Image),
    ("image/gif", Category::Image),
    ("image/webp", Category::Image),
    ("image/svg+xml", Category::Image),
    ("image/bmp", Category::Image),
    ("image/x-icon", Category::Image),
    ("audio/mpeg", Category::Audio),
    ("audio/x-m4a", Category::Audio),
    ("audio/ogg", Category::Audio),
    ("audio/wav", Category::Audio),
    ("audio/x-wav", Category::Audio),
    ("audio/webm", Category::Audio),
    ("video/webm", Category::Audio),
];

/// Supported types Dust has no processing for in a conversation.
const NOT_FOR_CONVERSATIONS: &[&str] = &[
    "application/octet-stream",
    "application/vnd.dust.section.json",
];

/// The category of a supported content type.
pub(crate) fn category(content_type: &str) -> Option<Category> {
    FORMATS
        .iter()
        .find(|(t, _)| *t == content_type)
        .map(|(_, c)| *c)
}

/// Dust's `MAX_FILE_SIZES` for a category.
fn max_size(category: Category) -> u64 {
    match category {
        Category::Image => 5 * MIB,
        Category::Audio => 100 * MIB,
        Category::Text | Category::Document => 50 * MIB,
    }
}

/// The largest upload body accepted (the largest file and room for the multipart framing).
pub(crate) const MAX_UPLOAD_BODY: usize = (100 * MIB + MIB) as usize;

fn file_not_found() -> ApiError {
    ApiError::not_found("file_not_found", "The file was not found.")
}

/// The file's route, which is also its `uploadUrl`.
pub(crate) fn file_url(state: &AppState, ws: &Workspace, s_id: &str) -> String {
    format!("{}/api/v1/w/{}/files/{s_id}", state.base_url, ws.id)
}

/// Dust's `FileType` of `file` (`uploadUrl` only in the creation answer; `downloadUrl` once
/// ready).
pub(crate) fn file_json(state: &AppState, ws: &Workspace, file: &StoredFile) -> Value {
    let mut out = json!({
        "id": file.s_id,
        "sId": file.s_id,
        "contentType": file.content_type,
        "fileName": file.file_name,
        "fileSize": file.file_size,
        "status": file.status.as_str(),
        "useCase": file.use_case,
    });
    if let Some(metadata) = &file.use_case_metadata {
        out["useCaseMetadata"] = metadata.clone();
    }
    if file.status == FileStatus::Ready {
        out["downloadUrl"] = json!(format!(
            "{}?action=download",
            file_url(state, ws, &file.s_id)
        ));
    }
    out
}

/// Refuses `count` more files of `bytes` declared bytes beyond the simulator's bound.
pub(crate) fn ensure_room(world: &World, count: usize, bytes: u64) -> ApiResult<()> {
    let held: u64 = world.files.values().map(|f| f.file_size).sum();
    if world.files.len() + count > MAX_FILES || held + bytes > MAX_TOTAL_BYTES {
        return Err(ApiError::invalid_request(format!(
            "The simulator keeps at most {MAX_FILES} files and {} MiB per workspace: delete \
             files (DELETE /files/{{fileId}}) before creating more.",
            MAX_TOTAL_BYTES / MIB
        )));
    }
    Ok(())
}

/// A new `fil_` id.
pub(crate) fn new_file_id() -> String {
    format!("fil_{}", random_s_id())
}

/// Checks `useCaseMetadata` (`{conversationId, sourceProvider?, sourceIcon?}`).
fn parse_metadata(value: &Value) -> ApiResult<Value> {
    let fields = Fields::of(value, "useCaseMetadata")?;
    fields.req_str("conversationId")?;
    fields.opt_str("sourceProvider")?;
    fields.opt_str("sourceIcon")?;
    Ok(value.clone())
}

/// `POST /files`: a file in state `created`, and where to upload it.
pub(crate) async fn create_file(
    State(state): State<AppState>,
    Extension(ws): Extension<Arc<Workspace>>,
    _w_id: Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let value = parse_json(&body)?;
    let root = Fields::of(&value, "")?;
    let content_type = root.req_str("contentType")?;
    let file_name = root.req_str("fileName")?;
    if file_name.chars().count() > MAX_FILE_NAME_CHARS {
        return Err(ApiError::invalid_body(
            "fileName",
            "File name must be less than 4096 characters",
        ));
    }
    let file_size = match root.required("fileSize")? {
        Value::Number(n) => n.as_f64().unwrap_or(f64::MAX),
        other => {
            return Err(ApiError::invalid_body(
                "fileSize",
                &format!(
                    "Expected number, received {}",
                    super::error::kind_name(other)
                ),
            ));
        }
    };
    let Some(use_case @ ("conversation" | "upsert_table")) = root.required("useCase")?.as_str()
    else {
        return Err(ApiError::invalid_body(
            "useCase",
            "Invalid input: expected 'conversation' | 'upsert_table'",
        ));
    };
    let metadata = root
        .get("useCaseMetadata")
        .map(parse_metadata)
        .transpose()?;

    if !ws.allow_file_creation(CREATIONS_PER_MINUTE) {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "You have reached the rate limit for this workspace.",
        ));
    }
    if use_case != "conversation" {
        return Err(ApiError::invalid_request(
            "The file use case is not supported by the API.",
        ));
    }
    let Some(category) = category(content_type) else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "file_type_not_supported",
            format!("Content type \"{content_type}\" is not supported."),
        ));
    };
    if NOT_FOR_CONVERSATIONS.contains(&content_type) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "file_type_not_supported",
            format!("Content type \"{content_type}\" is not supported for use-case {use_case}."),
        ));
    }
    // A negative or fractional size passes Dust's `z.number()`; the simulator keeps whole bytes.
    if file_size > max_size(category) as f64 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "file_too_large",
            format!("File \"{file_name}\" is too large."),
        ));
    }
    let file = StoredFile {
        s_id: new_file_id(),
        content_type: content_type.to_owned(),
        file_name: file_name.to_owned(),
        file_size: file_size.max(0.0) as u64,
        use_case: use_case.to_owned(),
        use_case_metadata: metadata,
        status: FileStatus::Created,
        created: Instant::now(),
        content: None,
    };
    let mut answer = file_json(&state, &ws, &file);
    answer["uploadUrl"] = json!(file_url(&state, &ws, &file.s_id));
    let mut world = ws.world();
    ensure_room(&world, 1, file.file_size)?;
    world.files.insert(file.s_id.clone(), file);
    Ok(Json(json!({ "file": answer })))
}

/// Why an upload was refused (the file fails, as Dust marks it).
fn upload_refused(ws: &Workspace, file_id: &str, error: ApiError) -> ApiError {
    if let Some(file) = ws.world().files.get_mut(file_id) {
        file.status = FileStatus::Failed;
    }
    error
}

fn no_file() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "file_type_not_supported",
        "No file postprocessed.",
    )
}

/// Whether `field` is the file Dust's formidable keeps: named `file`, with a file name, and a
/// part type that is absent, `application/octet-stream` or the declared one.
fn is_the_file(field: &Field<'_>, declared: &str) -> bool {
    field.name() == Some("file")
        && field.file_name().is_some()
        && field
            .content_type()
            .is_none_or(|t| t == "application/octet-stream" || t == declared)
}

/// `POST /files/{fileId}` with `multipart/form-data`: stores the `file` part, the file becomes
/// `ready`.
pub(crate) async fn upload_file(
    State(state): State<AppState>,
    Extension(ws): Extension<Arc<Workspace>>,
    Path((_w_id, file_id)): Path<(String, String)>,
    multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult<Json<Value>> {
    let (declared_type, declared_size) = {
        let mut world = ws.world();
        let file = world.files.get_mut(&file_id).ok_or_else(file_not_found)?;
        if file.status != FileStatus::Created {
            return Err(ApiError::invalid_request(
                "The file has already been uploaded or the upload has failed.",
            ));
        }
        if file.created.elapsed() > UPLOAD_WINDOW {
            file.status = FileStatus::Failed;
            return Err(ApiError::invalid_request(
                "File upload has expired. Create a new file.",
            ));
        }
        (file.content_type.clone(), file.file_size)
    };
    // A body that is not multipart holds no file for formidable either.
    let Ok(mut multipart) = multipart else {
        return Err(upload_refused(&ws, &file_id, no_file()));
    };
    let mut content: Option<Vec<u8>> = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => {
                let error = ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_server_error",
                    format!("Error uploading file : {e}"),
                );
                return Err(upload_refused(&ws, &file_id, error));
            }
        };
        if !is_the_file(&field, &declared_type) {
            continue;
        }
        match read_at_most(field, declared_size).await {
            Ok(bytes) => content = Some(bytes),
            Err(error) => return Err(upload_refused(&ws, &file_id, error)),
        }
        break;
    }
    let Some(content) = content else {
        return Err(upload_refused(&ws, &file_id, no_file()));
    };
    if content.is_empty() {
        let error = ApiError::new(StatusCode::BAD_REQUEST, "file_is_empty", "File is empty.");
        return Err(upload_refused(&ws, &file_id, error));
    }
    let mut world = ws.world();
    let file = world.files.get_mut(&file_id).ok_or_else(file_not_found)?;
    // Another upload of the same file may have finished meanwhile.
    if file.status != FileStatus::Created {
        return Err(ApiError::invalid_request(
            "The file has already been uploaded or the upload has failed.",
        ));
    }
    file.status = FileStatus::Ready;
    file.content = Some(Bytes::from(content));
    Ok(Json(json!({ "file": file_json(&state, &ws, file) })))
}

/// The part's bytes, refused past `limit` without reading further.
async fn read_at_most(mut field: Field<'_>, limit: u64) -> ApiResult<Vec<u8>> {
    let mut bytes = Vec::new();
    loop {
        match field.chunk().await {
            Ok(Some(chunk)) => {
                if (bytes.len() + chunk.len()) as u64 > limit {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "file_too_large",
                        "File is too large or the size passed to the File instance in the DB \
                         does not match the size of the uploaded file.",
                    ));
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(bytes),
            Err(e) => {
                return Err(ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_server_error",
                    format!("Error uploading file : {e}"),
                ));
            }
        }
    }
}

/// `GET /files/{fileId}[?action=view|download]`: the bytes, once uploaded.
pub(crate) async fn get_file(
    Extension(ws): Extension<Arc<Workspace>>,
    Path((_w_id, file_id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let world = ws.world();
    let file = world.files.get(&file_id).ok_or_else(file_not_found)?;
    let content = file
        .content
        .clone()
        .ok_or_else(|| ApiError::not_found("file_not_found", "File not found."))?;
    let view = query
        .as_deref()
        .is_some_and(|q| q.split('&').any(|pair| pair == "action=view"));
    let disposition = match view {
        true => "inline".to_owned(),
        false => format!(
            "attachment; filename=\"{}\"",
            file.file_name.replace('"', "")
        ),
    };
    Ok((
        [
            (header::CONTENT_TYPE, file.content_type.clone()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        Body::from(content),
    )
        .into_response())
}

/// `DELETE /files/{fileId}`: 204; the conversations that quote it keep their fragments.
pub(crate) async fn delete_file(
    Extension(ws): Extension<Arc<Workspace>>,
    Path((_w_id, file_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    ws.world()
        .files
        .remove(&file_id)
        .map(|_| StatusCode::NO_CONTENT)
        .ok_or_else(file_not_found)
}
