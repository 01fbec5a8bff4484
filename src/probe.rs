//! `mcp-dust-server probe`: the container health check.
//!
//! The runtime image is distroless (no shell, no curl), so the binary checks itself: one GET with
//! a short timeout, success only on a 2xx. `/ready` rather than `/live`, so an instance whose
//! stores are unreachable is reported unhealthy and taken out of rotation.

use std::time::Duration;

use anyhow::{Context, bail};

/// How long the whole probe may take; orchestrators kill slower checks anyway.
const TIMEOUT: Duration = Duration::from_secs(3);

/// Fetches `url` and fails unless it answers 2xx.
pub async fn run(url: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("building the probe's HTTP client")?;
    let response = client
        .get(url)
        .send()
        .await
        .with_context(|| format!("probe {url}: no answer"))?;
    let status = response.status();
    if !status.is_success() {
        bail!("probe {url}: {status}");
    }
    Ok(())
}
