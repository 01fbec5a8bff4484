//! Following an agent message to its end across dropped connections.
//!
//! Dust closes an event stream after about a minute, or earlier when something in between drops
//! it; the answer is only complete at a terminal event. [`follow_agent_message`] reconnects with
//! `lastEventId` (so nothing is replayed twice and nothing is lost) until a terminal event
//! arrives, the way Dust's own SDK does, but with a short first delay: a dropped stream is
//! usually resumed at once.

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tracing::Instrument;

use super::{AgentEvent, DustApi, DustCredentials, DustError, DustErrorKind, EventStream};

/// Consecutive connections that may end without delivering an event before we give up. The
/// count resets whenever a connection delivers something.
pub(super) const MAX_EMPTY_RECONNECTS: u32 = 10;

/// Delay before the first reconnection; it doubles up to [`MAX_RECONNECT_DELAY`].
const FIRST_RECONNECT_DELAY: Duration = Duration::from_millis(100);
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(5);
/// Longest wait a `Retry-After` may impose before a reconnection.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// The events of one agent message, from the start to its terminal event, resuming dropped
/// connections. The stream ends after the terminal event, or with one error when Dust refuses
/// the stream or keeps closing it without progress.
pub fn follow_agent_message(
    api: Arc<dyn DustApi>,
    creds: DustCredentials,
    conversation_id: String,
    message_id: String,
) -> EventStream {
    follow_agent_message_after(api, creds, conversation_id, message_id, None)
}

/// [`follow_agent_message`] from the event after `after` (a run resumed where it paused), or
/// from the start.
pub fn follow_agent_message_after(
    api: Arc<dyn DustApi>,
    creds: DustCredentials,
    conversation_id: String,
    message_id: String,
    after: Option<String>,
) -> EventStream {
    let (tx, rx) = mpsc::channel::<Result<AgentEvent, DustError>>(64);
    let follow = async move {
        let mut last_event_id: Option<String> = after;
        let mut empty_connections = 0u32;
        let mut delay = FIRST_RECONNECT_DELAY;
        loop {
            let connection = api
                .agent_message_events(
                    &creds,
                    &conversation_id,
                    &message_id,
                    last_event_id.as_deref(),
                )
                .await;
            let mut events = match connection {
                Ok(events) => events,
                Err(error) if matches!(error.status, Some(408 | 429)) => {
                    empty_connections += 1;
                    if empty_connections > MAX_EMPTY_RECONNECTS {
                        let _ = tx.send(Err(error)).await;
                        return;
                    }
                    tokio::time::sleep(error.retry_after.unwrap_or(delay).min(MAX_RETRY_AFTER))
                        .await;
                    delay = (delay * 2).min(MAX_RECONNECT_DELAY);
                    continue;
                }
                Err(error) => {
                    let _ = tx.send(Err(error)).await;
                    return;
                }
            };
            let mut delivered = false;
            loop {
                // Stop reading (and drop the connection) as soon as nobody listens, instead of
                // holding it open until Dust's next event or its ~60 s close.
                let item = tokio::select! {
                    item = events.next() => item,
                    () = tx.closed() => return,
                };
                let Some(item) = item else { break };
                match item {
                    Ok(event) => {
                        if last_event_id.as_deref() == Some(event.event_id.as_str()) {
                            continue;
                        }
                        delivered = true;
                        last_event_id = Some(event.event_id.clone());
                        let terminal = event.kind.is_terminal();
                        if tx.send(Ok(event)).await.is_err() || terminal {
                            return;
                        }
                    }
                    // A connection broken mid-stream is resumed like a closed one.
                    Err(error) => {
                        tracing::debug!(error = %error, "agent event stream broke; resuming");
                        break;
                    }
                }
            }
            if delivered {
                empty_connections = 0;
                delay = FIRST_RECONNECT_DELAY;
            } else {
                empty_connections += 1;
                if empty_connections > MAX_EMPTY_RECONNECTS {
                    let _ = tx
                        .send(Err(DustError::new(
                            DustErrorKind::Protocol,
                            "Dust kept closing the agent's event stream before the answer was complete",
                        )))
                        .await;
                    return;
                }
            }
            if tx.is_closed() {
                return;
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_RECONNECT_DELAY);
        }
    };
    // The follower runs in the caller's span, so its connections are the caller's in a trace.
    tokio::spawn(follow.in_current_span());
    ReceiverStream::new(rx).boxed()
}
