//! Graceful shutdown: the stop signals and the drain every command shares.
//!
//! A deployment stops a process with SIGTERM (Kubernetes, systemd, Docker) or a person with
//! Ctrl-C (SIGINT). Either starts the drain:
//!
//! 1. the listener closes at once (new connections are refused; `/ready` answers 503 on the
//!    connections that are still open), and [`Drain::is_draining`] turns true;
//! 2. requests in flight (tool calls, MCP and REST streams) run on for up to
//!    `SHUTDOWN_GRACE_PERIOD`;
//! 3. then [`Drain::aborted`] fires: a running agent call ends with a clear "shutting down"
//!    error to its client and its Dust run is cancelled; [`ABORT_WINDOW`] later whatever is
//!    still open is closed;
//! 4. the audit queue is flushed to its sink and the process exits 0.
//!
//! A second signal during the drain exits at once with `128 + signal` (143 for SIGTERM, 130
//! for SIGINT): the operator asked twice, so nothing more is waited for, not even the audit
//! queue.

use std::{sync::Arc, time::Duration};

use tokio::sync::watch;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

/// How long requests cut at the end of the grace period have to write their error before their
/// connections are closed.
pub const ABORT_WINDOW: Duration = Duration::from_secs(5);

/// The drain state every request can see: whether the server is stopping, whether the grace
/// period is over, and how many tool calls are running.
#[derive(Debug, Clone)]
pub struct Drain(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    draining: CancellationToken,
    aborted: CancellationToken,
    calls: watch::Sender<usize>,
}

impl Default for Drain {
    fn default() -> Self {
        Self(Arc::new(Inner {
            draining: CancellationToken::new(),
            aborted: CancellationToken::new(),
            calls: watch::channel(0).0,
        }))
    }
}

impl Drain {
    /// Starts the drain (the stop signal arrived).
    pub fn begin(&self) {
        self.0.draining.cancel();
    }

    /// Whether the server is stopping (`/ready` then answers 503).
    pub fn is_draining(&self) -> bool {
        self.0.draining.is_cancelled()
    }

    /// Ends the grace period: calls still running stop with a "shutting down" error.
    pub fn abort(&self) {
        self.0.draining.cancel();
        self.0.aborted.cancel();
    }

    /// Resolves when the grace period is over (never, unless the server stops).
    pub fn aborted(&self) -> WaitForCancellationFuture<'_> {
        self.0.aborted.cancelled()
    }

    /// Counts a tool call as running until the guard drops.
    pub fn track(&self) -> CallGuard {
        self.0.calls.send_modify(|n| *n += 1);
        CallGuard(self.clone())
    }

    /// Tool calls running now.
    pub fn calls_in_flight(&self) -> usize {
        *self.0.calls.borrow()
    }

    /// Resolves once no tool call is running.
    pub async fn idle(&self) {
        let mut calls = self.0.calls.subscribe();
        let _ = calls.wait_for(|n| *n == 0).await;
    }

    /// Waits up to `grace` for the running tool calls, then aborts the rest and waits up to
    /// [`ABORT_WINDOW`] for them to answer. Returns the number of calls that were aborted.
    /// (stdio uses this; HTTP waits on connections instead, see `http::listener`.)
    pub async fn settle(&self, grace: Duration) -> usize {
        if tokio::time::timeout(grace, self.idle()).await.is_ok() {
            return 0;
        }
        let aborted = self.calls_in_flight();
        self.abort();
        let _ = tokio::time::timeout(ABORT_WINDOW, self.idle()).await;
        aborted
    }
}

/// One running tool call (see [`Drain::track`]).
#[derive(Debug)]
pub struct CallGuard(Drain);

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.0.0.calls.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// The stop signals: SIGTERM and SIGINT on Unix, Ctrl-C elsewhere.
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Self {
                term: signal(SignalKind::terminate()).ok(),
                int: signal(SignalKind::interrupt()).ok(),
            }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// The next signal: its name and the exit status a process killed by it would have.
    async fn next(&mut self) -> (&'static str, i32) {
        #[cfg(unix)]
        {
            async fn recv(signal: Option<&mut tokio::signal::unix::Signal>) {
                match signal {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            tokio::select! {
                () = recv(self.term.as_mut()) => ("SIGTERM", 128 + 15),
                () = recv(self.int.as_mut()) => ("SIGINT", 128 + 2),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            ("Ctrl-C", 130)
        }
    }
}

/// Resolves on the first SIGTERM or SIGINT (Ctrl-C): the graceful-shutdown trigger of every
/// command. From then on a second signal exits the process at once (see the module doc).
pub async fn shutdown_signal() {
    let mut signals = Signals::new();
    let (name, _) = signals.next().await;
    tracing::info!(
        signal = name,
        "stop signal received: draining (send it again to exit at once)"
    );
    tokio::spawn(async move {
        let (name, status) = signals.next().await;
        tracing::error!(
            signal = name,
            "second stop signal: exiting now without draining"
        );
        eprintln!("mcp-dust-server: second {name}: exiting without draining");
        std::process::exit(status);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_waits_for_the_last_call() {
        let drain = Drain::default();
        let call = drain.track();
        assert_eq!(drain.calls_in_flight(), 1);
        let idle = tokio::spawn({
            let drain = drain.clone();
            async move { drain.idle().await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!idle.is_finished());
        drop(call);
        idle.await.unwrap();
        assert_eq!(drain.calls_in_flight(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn settle_aborts_what_outlives_the_grace_period() {
        let drain = Drain::default();
        assert_eq!(drain.settle(Duration::from_secs(1)).await, 0);
        assert!(!drain.is_draining());

        let call = drain.track();
        let worker = tokio::spawn({
            let drain = drain.clone();
            async move {
                drain.aborted().await;
                drop(call);
            }
        });
        assert_eq!(drain.settle(Duration::from_secs(30)).await, 1);
        assert!(drain.is_draining());
        worker.await.unwrap();
        assert_eq!(drain.calls_in_flight(), 0);
    }
}
