//! A transparent HTTP proxy that adds `Authorization: Bearer <token>` to every request.
//!
//! Some independent clients cannot send a header of their own (the MCP conformance suite is
//! one). Rather than giving the server a way in without a token, the test logs in as usual and
//! puts this proxy in front of it: the server still authenticates every request with a real
//! token, and nothing in the server knows about tests.
//!
//! Everything else goes through untouched and streamed both ways (SSE answers and their
//! closing included): method, path, query, body and headers, `Host` and `Origin` too, so the
//! server's DNS-rebinding checks see what the client sent.

use std::net::SocketAddr;

use axum::{
    Router,
    body::Body,
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use tokio::net::TcpListener;

#[derive(Clone)]
struct Upstream {
    base: String,
    authorization: HeaderValue,
    client: reqwest::Client,
}

/// A running proxy; stops when dropped.
pub(crate) struct TokenProxy {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TokenProxy {
    /// Starts a proxy on 127.0.0.1 in front of `upstream` (`http://host:port`).
    pub(crate) async fn start(upstream: &str, token: &str) -> Self {
        let state = Upstream {
            base: upstream.trim_end_matches('/').to_owned(),
            authorization: HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        };
        let app = Router::new().fallback(forward).with_state(state);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
        });
        Self {
            addr,
            stop: Some(tx),
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for TokenProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1).
const HOP_BY_HOP: [header::HeaderName; 4] = [
    header::CONNECTION,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::TE,
];

async fn forward(State(upstream): State<Upstream>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut headers = parts.headers;
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    headers.insert(header::AUTHORIZATION, upstream.authorization.clone());
    // `Host` stays as the client sent it (hyper only adds one when it is missing).
    let sent = upstream
        .client
        .request(parts.method, format!("{}{path}", upstream.base))
        .headers(headers)
        .body(reqwest::Body::wrap_stream(body.into_data_stream()))
        .send()
        .await;
    let answer = match sent {
        Ok(answer) => answer,
        Err(e) => return (StatusCode::BAD_GATEWAY, format!("proxy: {e}")).into_response(),
    };
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if !HOP_BY_HOP.contains(name) {
            response = response.header(name, value);
        }
    }
    response
        .body(Body::from_stream(answer.bytes_stream()))
        .unwrap()
}
