//! A small incremental parser for `text/event-stream` bodies, the mapping of Dust's frames to
//! [`AgentEvent`]s, and the event stream of one connection built from both.
//!
//! We parse by hand rather than through `sse-stream` because the parser has to sit between a
//! `reqwest` byte stream and our own idle timeout, and because it must be bounded: a peer that
//! never sends a blank line must not make us buffer without end ([`MAX_FRAME_BYTES`]). The
//! parser follows the WHATWG rules that matter here: `\n`, `\r\n` and `\r` all end a line, a
//! blank line ends a frame, several `data:` lines join with `\n`, one space after the colon is
//! dropped, and lines starting with `:` are comments.

use std::{collections::VecDeque, time::Duration};

use bytes::Bytes;
use futures::{StreamExt, stream::BoxStream};
use serde_json::Value;

use super::{
    AgentEvent, AgentEventKind, DustError, DustErrorKind, EventStream, client::root_cause,
};

/// Largest frame (all its lines together) we accept. A final `agent_message_success` carries the
/// whole answer and its actions, so this is generous; past it the stream ends with a
/// [`DustErrorKind::Protocol`] error instead of buffering more.
pub(crate) const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// The UTF-8 byte order mark, dropped at the start of a stream (WHATWG).
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One server-sent event, before any interpretation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseFrame {
    /// The `event:` field, when the frame names one (Dust only does for its handshake).
    pub event: Option<String>,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
    /// The `id:` field (Dust puts its ids inside `data` instead).
    pub id: Option<String>,
}

/// Turns chunks of bytes, split anywhere, into complete frames.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of the line being read.
    line: Vec<u8>,
    /// The previous byte was a `\r`, so a `\n` right after it ends nothing.
    after_cr: bool,
    /// Still at the very start of the stream, where a UTF-8 byte order mark is dropped.
    at_start: bool,
    /// Bytes of the byte order mark matched so far at the start: the mark may arrive split
    /// over chunks like anything else, so it is matched byte by byte.
    bom_matched: usize,
    /// Fields of the frame being read.
    event: Option<String>,
    data: Option<String>,
    id: Option<String>,
    /// Bytes held for the current frame, for [`MAX_FRAME_BYTES`].
    frame_bytes: usize,
}

impl SseParser {
    pub fn new() -> Self {
        Self {
            at_start: true,
            ..Self::default()
        }
    }

    /// Feeds a chunk; returns the frames it completed, in order.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<SseFrame>, DustError> {
        let mut frames = Vec::new();
        let mut chunk = chunk;
        while self.at_start {
            let Some((&byte, rest)) = chunk.split_first() else {
                break;
            };
            if byte == BOM[self.bom_matched] {
                self.bom_matched += 1;
                chunk = rest;
                self.at_start = self.bom_matched < BOM.len();
            } else {
                // Not a byte order mark: what was held back is the start of the first line.
                self.at_start = false;
                self.line.extend_from_slice(&BOM[..self.bom_matched]);
            }
        }
        for &byte in chunk {
            match byte {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\n' | b'\r' => {
                    self.after_cr = byte == b'\r';
                    if let Some(frame) = self.end_line() {
                        frames.push(frame);
                    }
                }
                _ => {
                    self.after_cr = false;
                    self.line.push(byte);
                }
            }
            if self.frame_bytes + self.line.len() > MAX_FRAME_BYTES {
                return Err(DustError::new(
                    DustErrorKind::Protocol,
                    format!(
                        "Dust sent an event larger than {} MiB; the stream was dropped",
                        MAX_FRAME_BYTES / (1024 * 1024)
                    ),
                ));
            }
        }
        Ok(frames)
    }

    /// Ends the current line; returns a frame when the line was blank and a frame was pending.
    fn end_line(&mut self) -> Option<SseFrame> {
        let raw = std::mem::take(&mut self.line);
        if raw.is_empty() {
            self.frame_bytes = 0;
            let event = self.event.take();
            let id = self.id.take();
            // A frame without data is not dispatched (WHATWG), whatever its other fields.
            return self.data.take().map(|data| SseFrame { event, data, id });
        }
        self.frame_bytes += raw.len();
        let line = String::from_utf8_lossy(&raw);
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        match field {
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            "event" => self.event = Some(value.to_owned()),
            "id" => self.id = Some(value.to_owned()),
            _ => {}
        }
        None
    }
}

/// The frame's meaning on an agent message stream.
#[derive(Debug, Clone, PartialEq)]
pub enum DustFrame {
    /// An event of the message.
    Event(AgentEvent),
    /// The handshake, the `done` sentinel, or a frame we cannot read: nothing to deliver.
    Skip,
}

/// Interprets one frame of `GET .../messages/{mId}/events`.
///
/// Frames we cannot read are skipped (with a warning) rather than ending the stream: Dust may
/// add keep-alives or new framing, and losing one unknown frame is better than failing the run.
pub fn agent_frame(frame: &SseFrame) -> DustFrame {
    if frame.event.as_deref() == Some("dust-handshake") {
        return DustFrame::Skip;
    }
    let data = frame.data.trim();
    if data.is_empty() || data == "done" {
        return DustFrame::Skip;
    }
    let Ok(value) = serde_json::from_str::<Value>(data) else {
        tracing::warn!(
            frame.bytes = data.len(),
            "skipped an agent event frame that is not JSON"
        );
        return DustFrame::Skip;
    };
    match (
        value.get("eventId").and_then(Value::as_str),
        value.get("data"),
    ) {
        (Some(event_id), Some(data)) if data.is_object() => DustFrame::Event(AgentEvent {
            event_id: event_id.to_owned(),
            kind: AgentEventKind::from_event_data(data),
        }),
        _ => {
            tracing::warn!(
                frame.bytes = data.len(),
                "skipped an agent event frame without eventId and data"
            );
            DustFrame::Skip
        }
    }
}

/// Turns the byte stream of one SSE connection into agent events. A broken connection, an
/// idle timeout or an oversized frame yields one error and ends the stream; Dust closing it
/// ends it quietly.
pub(super) fn agent_event_stream(
    body: BoxStream<'static, reqwest::Result<Bytes>>,
    idle_timeout: Duration,
    origin: String,
) -> EventStream {
    struct State {
        body: BoxStream<'static, reqwest::Result<Bytes>>,
        parser: SseParser,
        ready: VecDeque<AgentEvent>,
        finished: bool,
    }
    let state = State {
        body,
        parser: SseParser::new(),
        ready: Default::default(),
        finished: false,
    };
    futures::stream::unfold(state, move |mut state| {
        let origin = origin.clone();
        async move {
            loop {
                if let Some(event) = state.ready.pop_front() {
                    return Some((Ok(event), state));
                }
                if state.finished {
                    return None;
                }
                let failure = match tokio::time::timeout(idle_timeout, state.body.next()).await {
                    Ok(None) => return None,
                    Ok(Some(Ok(chunk))) => match state.parser.push(&chunk) {
                        Ok(frames) => {
                            state.ready.extend(frames.iter().filter_map(
                                |frame| match agent_frame(frame) {
                                    DustFrame::Event(event) => Some(event),
                                    DustFrame::Skip => None,
                                },
                            ));
                            continue;
                        }
                        Err(error) => error,
                    },
                    Ok(Some(Err(error))) => DustError::new(
                        DustErrorKind::Network,
                        format!(
                            "the agent event stream from Dust at {origin} broke: {}",
                            root_cause(&error)
                        ),
                    ),
                    Err(_) => DustError::new(
                        DustErrorKind::Timeout,
                        format!(
                            "the agent event stream from Dust at {origin} was silent for {:.0} s",
                            idle_timeout.as_secs_f64()
                        ),
                    ),
                };
                state.finished = true;
                return Some((Err(failure), state));
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(chunks: &[&[u8]]) -> Vec<SseFrame> {
        let mut parser = SseParser::new();
        chunks
            .iter()
            .flat_map(|chunk| parser.push(chunk).unwrap())
            .collect()
    }

    #[test]
    fn frames_split_anywhere_and_any_line_ending() {
        let body = "event: dust-handshake\r\ndata: {}\r\n\r\ndata: a\rdata:b\r\rid: 7\ndata: c\n\n";
        let expected = vec![
            SseFrame {
                event: Some("dust-handshake".into()),
                data: "{}".into(),
                id: None,
            },
            SseFrame {
                event: None,
                data: "a\nb".into(),
                id: None,
            },
            SseFrame {
                event: None,
                data: "c".into(),
                id: Some("7".into()),
            },
        ];
        assert_eq!(parse_all(&[body.as_bytes()]), expected);
        // Byte by byte, so that `\r` and `\n` of one `\r\n` arrive in different chunks.
        let bytes: Vec<&[u8]> = body.as_bytes().chunks(1).collect();
        assert_eq!(parse_all(&bytes), expected);
    }

    #[test]
    fn comments_bom_and_unfinished_frames() {
        let frames = parse_all(&[b"\xEF\xBB\xBF: keep-alive\n\ndata: x\n\ndata: cut"]);
        assert_eq!(
            frames,
            vec![SseFrame {
                data: "x".into(),
                ..SseFrame::default()
            }]
        );
    }

    #[test]
    fn a_byte_order_mark_split_over_chunks_is_dropped() {
        // Found by the `sse_parser` fuzz target: the mark was only recognised whole in the
        // first chunk, so a split one was kept and the first frame's `data` field was lost.
        let body: &[u8] = b"\xEF\xBB\xBFdata: x\n\n";
        let expected = vec![SseFrame {
            data: "x".into(),
            ..SseFrame::default()
        }];
        assert_eq!(parse_all(&[body]), expected);
        assert_eq!(parse_all(&body.chunks(1).collect::<Vec<_>>()), expected);
        assert_eq!(parse_all(&[&body[..2], &body[2..]]), expected);
        assert_eq!(parse_all(&[b"", &body[..1], b"", &body[1..]]), expected);
        // Two bytes of a mark followed by something else are content, not dropped.
        let frames = parse_all(&[b"\xEF\xBB", b"data: y\n\n"]);
        assert!(frames.is_empty(), "{frames:?}");
        let frames = parse_all(&[b"\xEF", b"\xEF\xBB\xBFdata: z\n\n"]);
        assert!(frames.is_empty(), "{frames:?}");
    }

    #[test]
    fn oversized_frame_is_refused() {
        let mut parser = SseParser::new();
        let big = vec![b'a'; MAX_FRAME_BYTES + 1];
        let error = parser.push(&big).unwrap_err();
        assert_eq!(error.kind, DustErrorKind::Protocol);
    }

    #[test]
    fn dust_frames() {
        let frame = |event: Option<&str>, data: &str| SseFrame {
            event: event.map(str::to_owned),
            data: data.to_owned(),
            id: None,
        };
        assert_eq!(
            agent_frame(&frame(Some("dust-handshake"), "{}")),
            DustFrame::Skip
        );
        assert_eq!(agent_frame(&frame(None, "done")), DustFrame::Skip);
        assert_eq!(agent_frame(&frame(None, "{}")), DustFrame::Skip);
        assert_eq!(agent_frame(&frame(None, "not json")), DustFrame::Skip);
        let DustFrame::Event(event) = agent_frame(&frame(
            None,
            r#"{"eventId":"1-0","data":{"type":"agent_generation_cancelled"}}"#,
        )) else {
            panic!("expected an event");
        };
        assert_eq!(event.event_id, "1-0");
        assert_eq!(event.kind, AgentEventKind::Cancelled);
    }
}
