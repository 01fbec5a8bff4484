//! The ceiling for `docs/PERFORMANCE.md`: a bare axum route (`GET /` answers `ok`) on the same
//! runtime settings as `serve` (tokio multi-thread, default workers), with nothing in front of
//! it. `tools/list` through the full stack is measured against it in the same run.
//!
//! `GET /10k` answers a JSON body of 10,000 bytes, the size of a `tools/list` answer with every
//! tool (9.9 KB): the same route with the payload's cost (writing it, loopback, reading it)
//! and none of the stack's, to tell the two apart.
//!
//! `cargo run --release --example bare -- 127.0.0.1:5002`

use anyhow::Result;
use axum::{Router, body::Bytes, http::header, routing::get};

/// The server's allocator, so that the figures describe the server.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:5002".to_owned());
    let sized = Bytes::from(format!("{{\"pad\":\"{}\"}}", "x".repeat(10_000 - 10)));
    let app = Router::new().route("/", get(|| async { "ok" })).route(
        "/10k",
        get(move || {
            let body = sized.clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("bare route on http://{}/", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
