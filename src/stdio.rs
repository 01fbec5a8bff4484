//! `mcp-dust-server stdio`: one person's MCP server on standard input and output.
//!
//! The key and workspace come from the environment and are checked against Dust before the
//! server answers anything, so a wrong key fails at start with a clear message (and a non-zero
//! exit) instead of failing every tool call later. The same permission policy as HTTP applies:
//! the principal gets `PERMISSIONS_DEFAULT`.
//!
//! Ending follows the MCP stdio lifecycle: the client closes our input, waits, then sends
//! SIGTERM (and SIGKILL a little later) if we have not exited. SIGTERM while the input is
//! still open is a supervisor stopping us: calls in flight get `SHUTDOWN_GRACE_PERIOD` to
//! finish. SIGTERM after the input closed is the client saying "exit now": calls in flight
//! are cancelled at once (their Dust runs too) so that happens before the SIGKILL.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context as TaskContext, Poll},
    time::Duration,
};

use anyhow::{Context, bail};
use rmcp::ServiceExt;
use tokio::io::{AsyncRead, ReadBuf};
use tokio_util::sync::CancellationToken;

use crate::{
    app,
    audit::AuditSink,
    auth::{
        Principal,
        credentials::{self, CredentialRefusal},
    },
    config::Config,
    dust::{DustApi, DustErrorKind},
    mcp::DustMcp,
    store::MemoryConversationStore,
};

/// Checks the stdio credentials and builds the principal they stand for.
pub async fn authenticate(config: &Config, dust: &dyn DustApi) -> anyhow::Result<Principal> {
    let Some(key) = &config.dust_api_key else {
        bail!("DUST_API_KEY is not set: stdio needs a Dust API key (Dust → Admin → API keys)");
    };
    let Some(workspace_id) = &config.dust_workspace_id else {
        bail!("DUST_WORKSPACE_ID is not set: stdio needs the id of your Dust workspace");
    };
    // The same format checks as a login (auth::credentials); stdio has no lockout: its one
    // key comes from the operator's environment, not from strangers.
    let credentials = match credentials::check_format(key.clone(), Some(workspace_id.clone()), None)
    {
        Ok(credentials) => credentials,
        Err(CredentialRefusal::KeyFormat(problem)) => {
            bail!("DUST_API_KEY is not a Dust API key: {problem}")
        }
        Err(_) => bail!("DUST_WORKSPACE_ID must be 1 to 64 ASCII letters or digits"),
    };
    if let Err(e) = dust.check_key(&credentials).await {
        match e.kind {
            DustErrorKind::Unauthorized | DustErrorKind::NotFound | DustErrorKind::Forbidden => {
                bail!(
                    "Dust rejected DUST_API_KEY for workspace {workspace_id}: {} (check the key, the workspace id and DUST_BASE_URL {})",
                    e.message,
                    config.dust_base_url
                )
            }
            _ => bail!(
                "cannot check DUST_API_KEY against Dust at {}: {}",
                config.dust_base_url,
                e.message
            ),
        }
    }
    Ok(Principal {
        user_id: Principal::user_id_for_key(b"", &credentials),
        username: config.dust_username.clone(),
        email: config.dust_email.clone(),
        full_name: config.dust_full_name.clone(),
        workspace_id: workspace_id.clone(),
        permissions: config.permissions_default,
        token_id: None,
        credentials,
    })
}

/// How long rmcp may take to write the last answers once every call has settled.
const RMCP_DRAIN_LIMIT: Duration = Duration::from_millis(500);

/// Standard input that reports its end (a read of zero bytes into a non-empty buffer).
struct WatchedInput<R> {
    inner: R,
    closed: CancellationToken,
}

impl<R: AsyncRead + Unpin> AsyncRead for WatchedInput<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(poll, Poll::Ready(Ok(())))
            && buf.filled().len() == before
            && buf.remaining() > 0
        {
            self.closed.cancel();
        }
        poll
    }
}

/// Runs the stdio server until the client closes standard input, or until SIGTERM or SIGINT
/// (then the calls in flight finish, up to `SHUTDOWN_GRACE_PERIOD`, or are cancelled at once
/// if the input is already closed, and it exits 0).
pub async fn run(config: Config) -> anyhow::Result<()> {
    // Standard output is the protocol: audit records go to AUDIT_LOG_FILE or standard error.
    let auditor = app::auditor(&config, AuditSink::Stderr)?;
    let dust: Arc<dyn DustApi> = Arc::new(app::guarded_dust(
        Arc::new(app::dust_client(&config)?),
        &config,
        &auditor,
    ));
    let principal = authenticate(&config, dust.as_ref()).await?;
    tracing::info!(
        workspace.id = %principal.workspace_id,
        principal.id = %principal.user_id,
        permissions = ?principal.permissions,
        "stdio server ready"
    );
    let ctx = app::ops_context(
        &config,
        dust,
        Arc::new(MemoryConversationStore::with_limits(
            config.memory_limits.conversations,
        )),
        &auditor,
        // One process, one client: a key of this process's own is enough.
        crate::ops::pause::Pauses::ephemeral(config.agent_timeout),
    );
    let drain = ctx.drain.clone();
    let input_closed = CancellationToken::new();
    let input = WatchedInput {
        inner: tokio::io::stdin(),
        closed: input_closed.clone(),
    };
    let service = DustMcp::with_principal(ctx.clone(), principal)
        .serve((input, tokio::io::stdout()))
        .await
        .context("MCP handshake on stdio failed")?;
    let stop = service.cancellation_token();
    let waiting = service.waiting();
    tokio::pin!(waiting);
    tokio::select! {
        quit = &mut waiting => {
            quit.context("stdio server stopped")?;
        }
        () = crate::shutdown_signal() => {
            // Calls already running finish (or are cancelled after the grace period, or at
            // once when the client has closed our input), then rmcp writes the answers still
            // queued and stops reading.
            let grace = if input_closed.is_cancelled() {
                Duration::ZERO
            } else {
                config.shutdown_grace
            };
            drain.begin();
            tracing::info!(
                tool_calls = drain.calls_in_flight(),
                grace_secs = grace.as_secs(),
                input_closed = input_closed.is_cancelled(),
                "drain started"
            );
            let cancelled = drain.settle(grace).await;
            stop.cancel();
            // Every call has answered by now; rmcp's own drain would wait seconds more for
            // its channel to close (and the client's SIGKILL may be on its way).
            let _ = tokio::time::timeout(RMCP_DRAIN_LIMIT, waiting).await;
            tracing::info!(tool_calls_cancelled = cancelled, "drain finished");
        }
    }
    // Calls that were cut (input closed, or the grace period over) have their Dust runs being
    // cancelled in the background: that must reach Dust before the process exits.
    app::finish(&ctx, auditor).await;
    Ok(())
}
