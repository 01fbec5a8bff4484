//! Request deadlines: the whole request, and its body. Both end in a 408 with the JSON envelope.
//!
//! A body that arrives slowly (`slowhttptest -B`, catalogue D2) would otherwise hold a handler,
//! its buffers and a connection slot for as long as the client keeps dribbling. The request's
//! body is wrapped so that reading it fails once `HTTP_BODY_TIMEOUT` has passed since the head
//! arrived; whatever the handler made of that failure (rmcp and `read_json` each see only "the
//! body broke"), the answer becomes `408 request_timeout` with `Connection: close`, since the
//! rest of the body is still on the wire. The clock only matters while the body is awaited: a
//! body already received is read at once whatever the time.
//!
//! The whole request is bounded by the agent timeout plus a margin, as `TimeoutLayer` did
//! before, but with the envelope instead of an empty 408. Neither deadline covers streaming the
//! response; the listener's write timeout does (`super::listener`).

use axum::response::IntoResponse as _;
use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    body::{Body, Bytes},
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::Response,
};
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::Sleep;

use crate::{error::ApiError, state::AppState};

/// Time a request may take beyond the agent timeout before the server gives up on it.
pub(super) const REQUEST_TIMEOUT_MARGIN: Duration = Duration::from_secs(15);

/// Bounds the request (agent timeout + margin) and its body (`HTTP_BODY_TIMEOUT`).
pub(super) async fn enforce(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let body_timed_out = Arc::new(AtomicBool::new(false));
    let request = if request.body().is_end_stream() {
        request
    } else {
        let flag = body_timed_out.clone();
        let timeout = state.config.listener.body_timeout;
        request.map(|body| {
            Body::new(DeadlineBody {
                inner: body,
                deadline: Box::pin(tokio::time::sleep(timeout)),
                timed_out: flag,
            })
        })
    };
    let total = state.config.agent_timeout + REQUEST_TIMEOUT_MARGIN;
    match tokio::time::timeout(total, next.run(request)).await {
        Ok(response) if !body_timed_out.load(Ordering::SeqCst) => response,
        Ok(_) => {
            metrics::counter!("http_body_timeouts_total").increment(1);
            let mut response = ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                "the request body did not arrive in time",
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "the request took too long",
        )
        .into_response(),
    }
}

/// A request body that fails once its deadline has passed while it was still being awaited.
struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<Sleep>>,
    timed_out: Arc<AtomicBool>,
}

/// The error a late body ends with.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
struct BodyTimedOut;

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.timed_out.store(true, Ordering::SeqCst);
            return Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
