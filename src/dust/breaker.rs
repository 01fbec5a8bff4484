//! A circuit breaker in front of Dust: when Dust keeps failing, stop calling it for a while.
//!
//! Without it, a Dust outage costs every tool call a full timeout (and its retries), and every
//! caller keeps hammering a service that is trying to come back. [`CircuitBreaker`] wraps any
//! [`DustApi`] and keeps one circuit **per workspace** of the configured base URL:
//!
//! - **closed**: calls go through; `threshold` consecutive failed calls open it;
//! - **open**: calls fail at once with [`DustErrorKind::Unavailable`] ("Dust is unavailable,
//!   retrying in N s") and send nothing upstream, for `cooldown`;
//! - **half-open**: after the cool-down one call goes through as a probe (others still fail
//!   fast); its success closes the circuit, its failure opens it for another cool-down.
//!
//! Why per workspace and not per base URL: the server talks to one base URL, and Dust's failures
//! that matter here are often a workspace's own (a workspace in maintenance answers 503, one
//! workspace's data makes its calls time out). Keying by workspace keeps one tenant's trouble
//! from shutting every other tenant out, the same reasoning as the per-principal bulkhead; a
//! whole-region outage still opens every active workspace's circuit after `threshold` failures
//! each, which is few calls (a deployment usually serves one or a handful of workspaces).
//!
//! Only failures that say "Dust is not well" count: timeouts, connection failures and 5xx. A
//! 4xx is Dust working normally and saying no, and a 429 is Dust asking us to slow down, which
//! the retry logic already honours. A call counts once, after the client's own retries.
//!
//! Every transition is logged once, counted in `dust_breaker_transitions_total{to}`, and handed
//! to a hook (the server audits it as `upstream_failure`); rejections are counted in
//! `dust_breaker_rejections_total`.

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use super::{DustApi, DustCredentials, DustError, DustErrorKind, Intercepted, Interceptor, Result};

/// Circuits kept at most; past it, closed circuits without failures are dropped first, then
/// closed ones with failures (they lose their count), and only then the circuit that opened
/// longest ago (its workspace's calls reach Dust again): a hard bound, whatever fails.
const MAX_CIRCUITS: usize = 4096;

/// When the breaker opens and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Consecutive failed calls that open a circuit (`DUST_BREAKER_THRESHOLD`).
    pub threshold: u32,
    /// How long an open circuit refuses calls before a probe (`DUST_BREAKER_COOLDOWN`).
    pub cooldown: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            threshold: 5,
            cooldown: Duration::from_secs(30),
        }
    }
}

/// The state of one circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

/// A circuit changed state.
#[derive(Debug, Clone)]
pub struct BreakerTransition {
    /// The workspace whose circuit changed.
    pub workspace_id: String,
    pub from: BreakerState,
    pub to: BreakerState,
    /// Why, in words: "5 consecutive failures, the last: Dust did not answer in time ...".
    pub reason: String,
}

/// Called once per transition.
pub type TransitionHook = Arc<dyn Fn(&BreakerTransition) + Send + Sync>;

#[derive(Debug)]
struct Circuit {
    state: BreakerState,
    /// Consecutive failed calls while closed.
    failures: u32,
    /// When the circuit last opened.
    opened_at: Instant,
    /// A half-open probe is on its way.
    probing: bool,
}

impl Circuit {
    fn new() -> Self {
        Self {
            state: BreakerState::Closed,
            failures: 0,
            opened_at: Instant::now(),
            probing: false,
        }
    }
}

/// The circuits and what happens at transitions, shared by the wrapper and its call guards.
struct Circuits {
    settings: BreakerSettings,
    circuits: Mutex<HashMap<String, Circuit>>,
    hook: Option<TransitionHook>,
}

/// The interceptor of [`CircuitBreaker`]: one circuit per workspace.
pub struct Breaker {
    circuits: Arc<Circuits>,
}

impl fmt::Debug for Breaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Breaker")
            .field("settings", &self.circuits.settings)
            .finish_non_exhaustive()
    }
}

/// A [`DustApi`] that stops calling a workspace's Dust while it keeps failing.
pub type CircuitBreaker = Intercepted<Breaker>;

impl Interceptor for Breaker {
    type Ticket = Ticket;

    fn admit(&self, creds: &DustCredentials, _: &'static str) -> Result<Ticket> {
        self.circuits.admit(&creds.workspace_id)
    }

    fn settle(
        &self,
        ticket: Ticket,
        _: &DustCredentials,
        _: &'static str,
        error: Option<&DustError>,
    ) {
        ticket.report(error);
    }
}

/// Whether a failure says Dust is unwell (and so counts towards opening the circuit).
fn counts_as_failure(error: &DustError) -> bool {
    match error.kind {
        DustErrorKind::Timeout | DustErrorKind::Network => true,
        DustErrorKind::Upstream => error.status.is_none_or(|status| status >= 500),
        _ => false,
    }
}

/// One admitted call; reports its outcome. Dropped without a report (the caller gave up), it
/// frees the probe slot so the circuit is not stuck half-open.
pub struct Ticket {
    circuits: Arc<Circuits>,
    workspace_id: String,
    probe: bool,
    reported: bool,
}

impl fmt::Debug for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticket")
            .field("workspace_id", &self.workspace_id)
            .field("probe", &self.probe)
            .finish_non_exhaustive()
    }
}

impl Ticket {
    fn report(mut self, error: Option<&DustError>) {
        self.reported = true;
        let failure = error
            .filter(|e| counts_as_failure(e))
            .map(|e| e.message.as_str());
        self.circuits
            .record(&self.workspace_id, self.probe, failure);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.reported && self.probe {
            self.circuits.abandon_probe(&self.workspace_id);
        }
    }
}

impl Circuits {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Circuit>> {
        self.circuits.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lets a call through, or refuses it while the circuit is open.
    fn admit(self: &Arc<Self>, workspace_id: &str) -> Result<Ticket> {
        let mut transition = None;
        let outcome = {
            let mut circuits = self.lock();
            if circuits.len() >= MAX_CIRCUITS && !circuits.contains_key(workspace_id) {
                circuits.retain(|_, c| c.state != BreakerState::Closed || c.failures > 0);
                if circuits.len() >= MAX_CIRCUITS {
                    circuits.retain(|_, c| c.state != BreakerState::Closed);
                }
                if circuits.len() >= MAX_CIRCUITS
                    && let Some(oldest) = circuits
                        .iter()
                        .min_by_key(|(_, c)| c.opened_at)
                        .map(|(k, _)| k.clone())
                {
                    circuits.remove(&oldest);
                }
            }
            let circuit = circuits
                .entry(workspace_id.to_owned())
                .or_insert_with(Circuit::new);
            match circuit.state {
                BreakerState::Closed => Ok(false),
                BreakerState::Open => {
                    let waited = circuit.opened_at.elapsed();
                    if waited >= self.settings.cooldown {
                        circuit.state = BreakerState::HalfOpen;
                        circuit.probing = true;
                        transition = Some((
                            BreakerState::Open,
                            BreakerState::HalfOpen,
                            "cool-down over: one probe call goes through".to_owned(),
                        ));
                        Ok(true)
                    } else {
                        Err(self.settings.cooldown - waited)
                    }
                }
                BreakerState::HalfOpen if circuit.probing => Err(Duration::from_secs(1)),
                BreakerState::HalfOpen => {
                    circuit.probing = true;
                    Ok(true)
                }
            }
        };
        if let Some((from, to, reason)) = transition {
            self.announce(workspace_id, from, to, reason);
        }
        match outcome {
            Ok(probe) => Ok(Ticket {
                circuits: Arc::clone(self),
                workspace_id: workspace_id.to_owned(),
                probe,
                reported: false,
            }),
            Err(remaining) => {
                metrics::counter!("dust_breaker_rejections_total").increment(1);
                Err(unavailable(remaining))
            }
        }
    }

    /// Records a call's outcome: `failure` holds its message when it counts as a failure.
    fn record(&self, workspace_id: &str, probe: bool, failure: Option<&str>) {
        let transition = {
            let mut circuits = self.lock();
            let circuit = match (failure, circuits.contains_key(workspace_id)) {
                (None, false) => return,
                _ => circuits
                    .entry(workspace_id.to_owned())
                    .or_insert_with(Circuit::new),
            };
            if probe {
                circuit.probing = false;
            }
            let from = circuit.state;
            match failure {
                None => {
                    circuit.failures = 0;
                    circuit.state = BreakerState::Closed;
                    let transition = (from != BreakerState::Closed)
                        .then(|| (from, BreakerState::Closed, "a call succeeded".to_owned()));
                    circuits.remove(workspace_id);
                    transition
                }
                Some(message) => match from {
                    BreakerState::Closed => {
                        circuit.failures += 1;
                        (circuit.failures >= self.settings.threshold).then(|| {
                            circuit.state = BreakerState::Open;
                            circuit.opened_at = Instant::now();
                            (
                                from,
                                BreakerState::Open,
                                format!(
                                    "{} consecutive failed calls, the last: {message}",
                                    circuit.failures
                                ),
                            )
                        })
                    }
                    BreakerState::HalfOpen if probe => {
                        circuit.state = BreakerState::Open;
                        circuit.opened_at = Instant::now();
                        Some((
                            from,
                            BreakerState::Open,
                            format!("the probe call failed: {message}"),
                        ))
                    }
                    // A call admitted before the circuit opened: already counted as down.
                    _ => None,
                },
            }
        };
        if let Some((from, to, reason)) = transition {
            self.announce(workspace_id, from, to, reason);
        }
    }

    fn abandon_probe(&self, workspace_id: &str) {
        if let Some(circuit) = self.lock().get_mut(workspace_id) {
            circuit.probing = false;
        }
    }

    /// Logs, counts and reports one transition (outside the lock: the hook may take time).
    fn announce(&self, workspace_id: &str, from: BreakerState, to: BreakerState, reason: String) {
        metrics::counter!("dust_breaker_transitions_total", "to" => to.as_str()).increment(1);
        let open = self
            .lock()
            .values()
            .filter(|c| c.state != BreakerState::Closed)
            .count();
        metrics::gauge!("dust_breaker_open_circuits").set(open as f64);
        match to {
            BreakerState::Open => tracing::warn!(
                dust.workspace = workspace_id,
                from = from.as_str(),
                cooldown_s = self.settings.cooldown.as_secs(),
                reason = %reason,
                "Dust circuit breaker opened: calls fail fast until the cool-down ends"
            ),
            _ => tracing::info!(
                dust.workspace = workspace_id,
                from = from.as_str(),
                to = to.as_str(),
                reason = %reason,
                "Dust circuit breaker changed state"
            ),
        }
        if let Some(hook) = &self.hook {
            hook(&BreakerTransition {
                workspace_id: workspace_id.to_owned(),
                from,
                to,
                reason,
            });
        }
    }
}

/// The error of a call refused by an open circuit.
fn unavailable(remaining: Duration) -> DustError {
    let secs = remaining.as_secs_f64().ceil().max(1.0) as u64;
    let mut error = DustError::new(
        DustErrorKind::Unavailable,
        format!(
            "Dust is unavailable (its recent calls failed); calls are paused and retried in {secs} s"
        ),
    );
    error.retry_after = Some(Duration::from_secs(secs));
    error
}

impl CircuitBreaker {
    /// Wraps `inner`; `hook` is called at every transition (the server audits them).
    pub fn new(
        inner: Arc<dyn DustApi>,
        settings: BreakerSettings,
        hook: Option<TransitionHook>,
    ) -> Self {
        let circuits = Arc::new(Circuits {
            settings: BreakerSettings {
                threshold: settings.threshold.max(1),
                ..settings
            },
            circuits: Mutex::default(),
            hook,
        });
        Intercepted::wrap(inner, Breaker { circuits })
    }

    /// The state of `workspace_id`'s circuit.
    pub fn state(&self, workspace_id: &str) -> BreakerState {
        self.interceptor()
            .circuits
            .lock()
            .get(workspace_id)
            .map_or(BreakerState::Closed, |c| c.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn circuits(threshold: u32, cooldown: Duration) -> Arc<Circuits> {
        Arc::new(Circuits {
            settings: BreakerSettings {
                threshold,
                cooldown,
            },
            circuits: Mutex::default(),
            hook: None,
        })
    }

    fn fail(circuits: &Arc<Circuits>, ws: &str) {
        let ticket = circuits.admit(ws).expect("admitted");
        ticket.report(Some(&DustError::new(DustErrorKind::Timeout, "slow")));
    }

    fn state(circuits: &Arc<Circuits>, ws: &str) -> BreakerState {
        circuits
            .lock()
            .get(ws)
            .map_or(BreakerState::Closed, |c| c.state)
    }

    #[test]
    fn opens_after_threshold_consecutive_failures_only() {
        let c = circuits(3, Duration::from_secs(60));
        fail(&c, "w");
        fail(&c, "w");
        // A success resets the count.
        c.admit("w").unwrap().report(None);
        fail(&c, "w");
        fail(&c, "w");
        assert_eq!(state(&c, "w"), BreakerState::Closed);
        fail(&c, "w");
        assert_eq!(state(&c, "w"), BreakerState::Open);
        let refused = c.admit("w").expect_err("refused while open");
        assert_eq!(refused.kind, DustErrorKind::Unavailable);
        assert!(refused.retry_after.unwrap() <= Duration::from_secs(60));
        // Another workspace is not affected.
        assert!(c.admit("other").is_ok());
    }

    /// Memory stays bounded even when every workspace's circuit is open: the one that opened
    /// longest ago is forgotten for a new one.
    #[test]
    fn circuits_stay_bounded_when_all_are_open() {
        let c = circuits(1, Duration::from_secs(600));
        for i in 0..MAX_CIRCUITS + 10 {
            fail(&c, &format!("w{i}"));
        }
        assert_eq!(c.lock().len(), MAX_CIRCUITS);
        assert_eq!(
            state(&c, &format!("w{}", MAX_CIRCUITS + 9)),
            BreakerState::Open
        );
        assert!(!c.lock().contains_key("w0"), "the oldest open circuit went");
    }

    #[test]
    fn refusals_and_rate_limits_do_not_count() {
        let c = circuits(1, Duration::from_secs(60));
        for kind in [
            DustErrorKind::NotFound,
            DustErrorKind::RateLimited,
            DustErrorKind::Unauthorized,
            DustErrorKind::InvalidRequest,
        ] {
            let ticket = c.admit("w").unwrap();
            ticket.report(Some(&DustError::new(kind, "no")));
        }
        assert_eq!(state(&c, "w"), BreakerState::Closed);
    }

    #[test]
    fn half_open_lets_one_probe_through_and_its_outcome_decides() {
        let c = circuits(1, Duration::from_millis(0));
        fail(&c, "w");
        assert_eq!(state(&c, "w"), BreakerState::Open);
        let probe = c.admit("w").expect("probe after the cool-down");
        assert_eq!(state(&c, "w"), BreakerState::HalfOpen);
        assert!(c.admit("w").is_err(), "a second call waits for the probe");
        probe.report(Some(&DustError::new(DustErrorKind::Network, "down")));
        assert_eq!(state(&c, "w"), BreakerState::Open);
        let probe = c.admit("w").unwrap();
        probe.report(None);
        assert_eq!(state(&c, "w"), BreakerState::Closed);
        assert!(c.admit("w").is_ok());
    }

    #[test]
    fn an_abandoned_probe_frees_the_slot() {
        let c = circuits(1, Duration::from_millis(0));
        fail(&c, "w");
        drop(c.admit("w").unwrap());
        assert!(c.admit("w").is_ok());
    }
}
