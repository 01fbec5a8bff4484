//! Agent message events over SSE, with Dust's redirect, framing and connection limits.
//!
//! `GET /api/v1/.../events` answers 307 to the same path under `/api/sse/v1/`, which streams:
//! the `dust-handshake` frame, the events after `lastEventId` (all of them without it), then
//! live events until the terminal one, followed by `data: done`. A connection also ends after
//! `--stream-max-secs`, or after `--drop-stream-after` events, without a terminal event: that
//! is what makes clients exercise their reconnect-with-`lastEventId` loop.

use std::{sync::Arc, time::Duration};

use axum::{
    Extension,
    body::{Body, Bytes},
    extract::{Path, RawQuery, State},
    http::{HeaderValue, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::{
    error::{ApiError, ApiResult},
    event_log::MessageLog,
    query::Query,
    state::{AppState, Workspace},
    world::Slot,
};

/// Frames buffered between the event log and a slow client.
const STREAM_BUFFER_FRAMES: usize = 64;
/// The first frame of every stream; clients ignore it.
const HANDSHAKE_FRAME: &str = "event: dust-handshake\ndata: {}\n\n";
/// The last frame after a terminal event.
const DONE_FRAME: &str = "data: done\n\n";

/// `GET /api/v1/.../events`: 307 to the `/api/sse/v1/...` twin, query kept.
pub(crate) async fn redirect_to_sse(uri: Uri) -> Response {
    let path = uri.path().replacen("/api/", "/api/sse/", 1);
    let location = match uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    match HeaderValue::from_str(&location) {
        Ok(value) => (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, value)]).into_response(),
        Err(_) => ApiError::invalid_request("Invalid path").into_response(),
    }
}

/// `GET /api/sse/v1/.../conversations/{cId}/messages/{mId}/events?lastEventId=`.
pub(crate) async fn stream_agent_events(
    State(state): State<AppState>,
    Extension(ws): Extension<Arc<Workspace>>,
    Path((_w_id, c_id, m_id)): Path<(String, String, String)>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let log = find_agent_log(&ws, &c_id, &m_id)?;
    let query = Query::parse(raw.as_deref());
    let start = log.position_after(query.first("lastEventId"));
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(STREAM_BUFFER_FRAMES);
    let limits = Limits {
        max_duration: Duration::from_secs(state.config.stream_max_secs),
        max_events: state.config.drop_stream_after,
    };
    let shutdown = state.shutdown.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = pump(&log, start, limits, &tx) => {}
            () = tokio::time::sleep(limits.max_duration) => {}
            () = shutdown.cancelled() => {}
        }
    });
    let mut response = Response::new(Body::from_stream(ReceiverStream::new(rx)));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// When a connection ends without a terminal event.
#[derive(Debug, Clone, Copy)]
struct Limits {
    max_duration: Duration,
    max_events: Option<usize>,
}

/// Writes frames until the terminal event, the event budget, or a gone client.
async fn pump(
    log: &MessageLog,
    mut next: usize,
    limits: Limits,
    tx: &mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    let send = |frame: String| tx.send(Ok(Bytes::from(frame)));
    if send(HANDSHAKE_FRAME.to_owned()).await.is_err() {
        return;
    }
    let mut changes = log.subscribe();
    let mut sent = 0usize;
    loop {
        let (events, done) = log.events_from(next);
        for (id, data) in events {
            if limits.max_events.is_some_and(|max| sent >= max) {
                return;
            }
            let frame = json!({ "eventId": id.to_string(), "data": data });
            if send(format!("data: {frame}\n\n")).await.is_err() {
                return;
            }
            next += 1;
            sent += 1;
        }
        if done {
            let _ = send(DONE_FRAME.to_owned()).await;
            return;
        }
        if changes.changed().await.is_err() {
            return;
        }
    }
}

/// The log of agent message `m_id` of conversation `c_id`, or Dust's 400/404.
fn find_agent_log(ws: &Workspace, c_id: &str, m_id: &str) -> ApiResult<Arc<MessageLog>> {
    let world = ws.world();
    let conversation = world
        .conversations
        .get(c_id)
        .ok_or_else(|| ApiError::not_found("conversation_not_found", "Conversation not found"))?;
    let slot = conversation.slots.iter().find(|slot| match slot {
        Slot::User(m) => m.s_id == m_id,
        Slot::Agent(m) => m.s_id == m_id,
        Slot::Fragment(f) => f.s_id == m_id,
    });
    match slot {
        Some(Slot::Agent(_)) => world
            .message_logs
            .get(m_id)
            .cloned()
            .ok_or_else(message_not_found),
        Some(Slot::User(_) | Slot::Fragment(_)) => Err(ApiError::invalid_request(
            "Events are only available for agent messages.",
        )),
        None => Err(message_not_found()),
    }
}

fn message_not_found() -> ApiError {
    ApiError::not_found("message_not_found", "Message not found")
}
