//! The ceiling for `docs/PERFORMANCE.md`: a bare axum route (`GET /` answers `ok`) on the same
//! runtime settings as `serve` (tokio multi-thread, default workers), with nothing in front of
//! it. `tools/list` through the full stack is measured against it in the same run.
//!
//! `cargo run --release --example bare -- 127.0.0.1:5002`

use anyhow::Result;
use axum::{Router, routing::get};

/// The server's allocator, so that the figures describe the server.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:5002".to_owned());
    let app = Router::new().route("/", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("bare route on http://{}/", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
