//! Graceful shutdown: the stop signals and the drain every command shares.
//!
//! A deployment stops a process with SIGTERM (Kubernetes, systemd, Docker) or a person with
//! Ctrl-C (SIGINT). Either starts the drain:
//!
//! 1. the listener closes at once (new connections are refused, which is what load balancers
//!    and probes act on; idle keep-alive connections are closed; a request already being read
//!    gets `/ready` 503), and [`Drain::is_draining`] turns true;
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
//!
//! `stdio` has no listener: it waits for its running calls the same way ([`Drain::settle`]).

use std::time::Duration;

use tokio_util::{
    sync::{CancellationToken, WaitForCancellationFuture},
    task::TaskTracker,
};

/// How long requests cut at the end of the grace period have to write their error before their
/// connections are closed.
pub const ABORT_WINDOW: Duration = Duration::from_secs(5);

/// The drain state every request can see: whether the server is stopping and whether the
/// grace period is over. The calls it counts are the ones holding a slot toward Dust (MCP tool
/// calls and REST operations, see `ops::Call::begin`) plus queued Dust cancellations: the
/// `ops::Context::background` tracker.
#[derive(Debug, Clone)]
pub struct Drain {
    draining: CancellationToken,
    aborted: CancellationToken,
    running: TaskTracker,
}

impl Drain {
    /// A drain that counts the calls of `running`.
    pub fn new(running: TaskTracker) -> Self {
        Self {
            draining: CancellationToken::new(),
            aborted: CancellationToken::new(),
            running,
        }
    }

    /// Starts the drain (the stop signal arrived).
    pub fn begin(&self) {
        self.draining.cancel();
    }

    /// Whether the server is stopping (`/ready` then answers 503).
    pub fn is_draining(&self) -> bool {
        self.draining.is_cancelled()
    }

    /// Ends the grace period: calls still running stop with a "shutting down" error.
    pub fn abort(&self) {
        self.draining.cancel();
        self.aborted.cancel();
    }

    /// Resolves when the grace period is over (never, unless the server stops).
    pub fn aborted(&self) -> WaitForCancellationFuture<'_> {
        self.aborted.cancelled()
    }

    /// Calls running now (and Dust cancellations still being sent).
    pub fn calls_in_flight(&self) -> usize {
        self.running.len()
    }

    /// Waits up to `grace` for the running calls, then aborts the rest and waits up to
    /// [`ABORT_WINDOW`] for them to answer. Returns how many were aborted. (stdio uses this;
    /// HTTP waits on its connections instead, see `http::listener`.)
    pub async fn settle(&self, grace: Duration) -> usize {
        let idle = || async {
            while !self.running.is_empty() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        if tokio::time::timeout(grace, idle()).await.is_ok() {
            return 0;
        }
        let aborted = self.calls_in_flight();
        self.abort();
        let _ = tokio::time::timeout(ABORT_WINDOW, idle()).await;
        aborted
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
    async fn aborting_ends_the_grace_period_and_counts_running_calls() {
        let running = TaskTracker::new();
        let drain = Drain::new(running.clone());
        let call = running.token();
        assert_eq!(drain.calls_in_flight(), 1);
        assert!(!drain.is_draining());
        drain.begin();
        assert!(drain.is_draining());
        let waiter = tokio::spawn({
            let drain = drain.clone();
            async move { drain.aborted().await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !waiter.is_finished(),
            "aborted before the grace period ended"
        );
        drain.abort();
        waiter.await.unwrap();
        drop(call);
        assert_eq!(drain.calls_in_flight(), 0);
    }
}
