//! The Dust SSE parser (src/dust/sse.rs): arbitrary bytes, cut into chunks at the positions
//! the first bytes choose.
//!
//! Invariants: the frames do not depend on how the stream is cut into chunks (one chunk, the
//! fuzzer's cuts, byte by byte); a frame's `data` never holds a CR, and its `event` and `id`
//! hold neither CR nor LF; every frame maps to an event or a skip without panicking, and an
//! event has the `eventId` its JSON carries.
use mcp_dust_server::fuzzing::{DustFrame, SseFrame, SseParser, agent_frame};

fn parse(chunks: &[&[u8]]) -> Result<Vec<SseFrame>, String> {
    let mut parser = SseParser::new();
    let mut frames = Vec::new();
    for chunk in chunks {
        frames.extend(parser.push(chunk).map_err(|e| e.to_string())?);
    }
    Ok(frames)
}

pub(super) fn run(data: &[u8]) {
    let Some((&cuts, body)) = data.split_first() else {
        return;
    };
    let whole = parse(&[body]);
    // Cut at positions derived from the body itself (cheap, deterministic).
    let step = usize::from(cuts % 17) + 1;
    let chunked: Vec<&[u8]> = body.chunks(step).collect();
    assert_eq!(
        parse(&chunked),
        whole,
        "frames depend on chunking (step {step})"
    );
    if body.len() <= 4096 {
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(parse(&bytes), whole, "frames depend on chunking (bytes)");
    }
    let Ok(frames) = whole else {
        return;
    };
    for frame in &frames {
        assert!(!frame.data.contains('\r'));
        for field in [&frame.event, &frame.id].into_iter().flatten() {
            assert!(!field.contains(['\r', '\n']));
        }
        if let DustFrame::Event(event) = agent_frame(frame) {
            let value: serde_json::Value = serde_json::from_str(frame.data.trim()).unwrap();
            assert_eq!(value["eventId"].as_str(), Some(event.event_id.as_str()));
        }
    }
}
