//! Alerts: high-severity audit events pushed to an operator's webhook (`ALERT_WEBHOOK_URL`).
//!
//! Audit records say what happened; an alert says "look now". A single failed login is noise,
//! so most rules fire on a burst from one source within a window, and every rule is throttled
//! per source so an attack produces one alert per window, not one per request. The rules:
//!
//! | rule | fires on |
//! |---|---|
//! | `repeated_login_failures` | [`LOGIN_FAILURES`] failed logins from one address in [`BURST_WINDOW`] |
//! | `login_lockout` | an address or key locked out (`authn_login_fail_max`) |
//! | `revoked_token_use` | a revoked token presented again (`authn_token_reuse`) |
//! | `csrf_or_origin_refusals` | [`CSRF_REFUSALS`] CSRF or Origin/CORS refusals from one address in [`CSRF_WINDOW`] |
//! | `audit_overflow` | audit records dropped because the queue was full |
//! | `critical_event` | any event of severity `critical` |
//!
//! Nothing here may slow a request: [`Alerter::observe`] is a map update under a mutex held
//! for microseconds, and delivery happens on a separate task fed by a bounded queue; when the
//! queue is full, alerts are dropped and counted (`alerts_dropped_total`). Delivery retries a
//! few times with backoff on network errors, 429 and 5xx, and gives up after that. The payload
//! carries the audit record, which is already masked; the webhook URL (Slack and Teams URLs
//! embed a secret) is never logged.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;

use super::{AuditEvent, AuditEventType, Severity};

/// Failed logins from one address that make a burst.
pub const LOGIN_FAILURES: u32 = 5;
/// The window for login-failure bursts, and the throttle of every rule per source.
pub const BURST_WINDOW: Duration = Duration::from_secs(300);
/// CSRF or Origin refusals from one address that make a burst.
pub const CSRF_REFUSALS: u32 = 5;
/// The window for CSRF/Origin bursts.
pub const CSRF_WINDOW: Duration = Duration::from_secs(60);
/// Alerts waiting for delivery; beyond this they are dropped and counted.
const QUEUE: usize = 64;
/// Delivery attempts per alert.
const ATTEMPTS: u32 = 3;
/// Timeout of one delivery attempt.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// Sources remembered per rule before the oldest windows are forgotten (bounded memory under
/// an attack from many addresses).
const MAX_SOURCES: usize = 10_000;

/// One alert, as posted (JSON).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub source: &'static str,
    pub rule: &'static str,
    pub severity: &'static str,
    pub summary: String,
    /// How many matching events were seen in the window when it fired.
    pub count: u32,
    pub window_seconds: u64,
    /// The audit record that triggered it (masked like every audit record).
    pub event: Value,
}

#[derive(Debug, Default)]
struct Window {
    started: Option<Instant>,
    count: u32,
    /// When this source last fired; the rule stays quiet for a window afterwards.
    fired: Option<Instant>,
}

/// Burst counters per (rule, source).
#[derive(Debug, Default)]
struct Bursts {
    windows: HashMap<(&'static str, String), Window>,
}

impl Bursts {
    /// Counts one event; returns the count when the rule should fire now.
    fn hit(
        &mut self,
        rule: &'static str,
        source: &str,
        threshold: u32,
        window: Duration,
        now: Instant,
    ) -> Option<u32> {
        if self.windows.len() >= MAX_SOURCES {
            self.windows.retain(|_, w| {
                w.started.is_some_and(|s| now.duration_since(s) < window)
                    || w.fired
                        .is_some_and(|f| now.duration_since(f) < BURST_WINDOW)
            });
            if self.windows.len() >= MAX_SOURCES {
                self.windows.clear();
            }
        }
        let entry = self.windows.entry((rule, source.to_owned())).or_default();
        if entry
            .started
            .is_none_or(|s| now.duration_since(s) >= window)
        {
            entry.started = Some(now);
            entry.count = 0;
        }
        entry.count += 1;
        let quiet = entry
            .fired
            .is_some_and(|f| now.duration_since(f) < BURST_WINDOW);
        if entry.count >= threshold && !quiet {
            entry.fired = Some(now);
            Some(entry.count)
        } else {
            None
        }
    }
}

/// Watches audit events and queues alerts for the webhook.
#[derive(Debug, Clone)]
pub struct Alerter {
    bursts: Arc<Mutex<Bursts>>,
    tx: mpsc::Sender<Alert>,
}

impl Alerter {
    /// Starts delivery to `url` on the current tokio runtime.
    pub fn start(url: SecretString) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(deliver(url, rx));
        Self::with_queue(tx)
    }

    /// An alerter that queues into `tx` (tests read the other end).
    pub fn with_queue(tx: mpsc::Sender<Alert>) -> Self {
        Self {
            bursts: Arc::default(),
            tx,
        }
    }

    /// Looks at one audit event; queues an alert if a rule fires. Never blocks.
    pub fn observe(&self, event: &AuditEvent) {
        self.observe_at(event, Instant::now());
    }

    /// [`observe`](Self::observe) at a given instant (tests drive time).
    pub fn observe_at(&self, event: &AuditEvent, now: Instant) {
        let source = event
            .ip()
            .or(event.user_id())
            .unwrap_or("unknown")
            .to_owned();
        let fired = match event.event_type() {
            AuditEventType::AuthnLoginFail => self
                .hit(
                    "repeated_login_failures",
                    &source,
                    LOGIN_FAILURES,
                    BURST_WINDOW,
                    now,
                )
                .map(|n| {
                    (
                        "repeated_login_failures",
                        BURST_WINDOW,
                        n,
                        format!(
                            "{n} failed logins from {source} within {} s",
                            BURST_WINDOW.as_secs()
                        ),
                    )
                }),
            AuditEventType::AuthnLoginFailMax => self
                .hit("login_lockout", &source, 1, BURST_WINDOW, now)
                .map(|n| {
                    (
                        "login_lockout",
                        BURST_WINDOW,
                        n,
                        format!("logins locked out for {source}"),
                    )
                }),
            AuditEventType::AuthnTokenReuse => self
                .hit("revoked_token_use", &source, 1, BURST_WINDOW, now)
                .map(|n| {
                    (
                        "revoked_token_use",
                        BURST_WINDOW,
                        n,
                        format!("a revoked token was used from {source}"),
                    )
                }),
            AuditEventType::CsrfFail => self.csrf_or_origin(&source, now),
            AuditEventType::AuthzFail if event.resource_type() == Some("cors") => {
                self.csrf_or_origin(&source, now)
            }
            _ if event.severity() == Severity::Critical => self
                .hit(
                    "critical_event",
                    event.event_type().as_str(),
                    1,
                    BURST_WINDOW,
                    now,
                )
                .map(|n| {
                    (
                        "critical_event",
                        BURST_WINDOW,
                        n,
                        event.message().to_owned(),
                    )
                }),
            _ => None,
        };
        if let Some((rule, window, count, summary)) = fired {
            self.send(Alert {
                source: "mcp-dust-server",
                rule,
                severity: "high",
                summary,
                count,
                window_seconds: window.as_secs(),
                event: serde_json::to_value(event).unwrap_or(Value::Null),
            });
        }
    }

    /// Audit records were dropped (the queue was full): alert, at most once a window.
    pub fn overflow(&self, dropped_so_far: u64) {
        if let Some(count) = self.hit("audit_overflow", "audit", 1, BURST_WINDOW, Instant::now()) {
            self.send(Alert {
                source: "mcp-dust-server",
                rule: "audit_overflow",
                severity: "high",
                summary: format!(
                    "{dropped_so_far} audit records dropped: the audit sink is too slow or blocked"
                ),
                count,
                window_seconds: BURST_WINDOW.as_secs(),
                event: Value::Null,
            });
        }
    }

    fn csrf_or_origin(
        &self,
        source: &str,
        now: Instant,
    ) -> Option<(&'static str, Duration, u32, String)> {
        self.hit(
            "csrf_or_origin_refusals",
            source,
            CSRF_REFUSALS,
            CSRF_WINDOW,
            now,
        )
        .map(|n| {
            (
                "csrf_or_origin_refusals",
                CSRF_WINDOW,
                n,
                format!(
                    "{n} CSRF or Origin refusals from {source} within {} s",
                    CSRF_WINDOW.as_secs()
                ),
            )
        })
    }

    fn hit(
        &self,
        rule: &'static str,
        source: &str,
        threshold: u32,
        window: Duration,
        now: Instant,
    ) -> Option<u32> {
        let mut bursts = self
            .bursts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        bursts.hit(rule, source, threshold, window, now)
    }

    fn send(&self, alert: Alert) {
        if self.tx.try_send(alert).is_err() {
            metrics::counter!("alerts_dropped_total").increment(1);
        }
    }
}

/// Posts queued alerts, one at a time, with bounded retries.
async fn deliver(url: SecretString, mut rx: mpsc::Receiver<Alert>) {
    let client = match reqwest::Client::builder()
        .timeout(ATTEMPT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(error = %error, "alert webhook disabled: no HTTP client");
            return;
        }
    };
    let host = url::Url::parse(url.expose_secret())
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned());
    while let Some(alert) = rx.recv().await {
        let mut delay = Duration::from_millis(250);
        for attempt in 1..=ATTEMPTS {
            let outcome = client.post(url.expose_secret()).json(&alert).send().await;
            let retry = match &outcome {
                Ok(response) if response.status().is_success() => {
                    metrics::counter!("alerts_sent_total", "rule" => alert.rule).increment(1);
                    break;
                }
                Ok(response) => {
                    let status = response.status();
                    tracing::warn!(%host, %status, rule = alert.rule, attempt, "alert webhook refused the alert");
                    status.is_server_error() || status.as_u16() == 429
                }
                Err(_) => {
                    tracing::warn!(%host, rule = alert.rule, attempt, "alert webhook unreachable");
                    true
                }
            };
            if !retry || attempt == ATTEMPTS {
                metrics::counter!("alerts_failed_total", "rule" => alert.rule).increment(1);
                break;
            }
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::RequestInfo;

    fn failed_login(ip: &str) -> AuditEvent {
        AuditEvent::new(
            AuditEventType::AuthnLoginFail,
            Severity::Medium,
            "login refused",
        )
        .request(&RequestInfo {
            ip: Some(ip.parse().unwrap()),
            ..RequestInfo::default()
        })
    }

    fn alerter() -> (Alerter, mpsc::Receiver<Alert>) {
        let (tx, rx) = mpsc::channel(16);
        (Alerter::with_queue(tx), rx)
    }

    #[test]
    fn a_burst_from_one_address_fires_once_per_window() {
        let (alerter, mut rx) = alerter();
        let start = Instant::now();
        for i in 0..LOGIN_FAILURES - 1 {
            alerter.observe_at(
                &failed_login("203.0.113.7"),
                start + Duration::from_secs(u64::from(i)),
            );
        }
        assert!(rx.try_recv().is_err(), "below the threshold: quiet");
        alerter.observe_at(
            &failed_login("203.0.113.7"),
            start + Duration::from_secs(10),
        );
        let alert = rx.try_recv().unwrap();
        assert_eq!(alert.rule, "repeated_login_failures");
        assert_eq!(alert.count, LOGIN_FAILURES);
        assert!(alert.summary.contains("203.0.113.7"));
        for i in 0..20 {
            alerter.observe_at(
                &failed_login("203.0.113.7"),
                start + Duration::from_secs(20 + i),
            );
        }
        assert!(
            rx.try_recv().is_err(),
            "throttled for the rest of the window"
        );
        // Another address has its own count.
        for _ in 0..LOGIN_FAILURES {
            alerter.observe_at(
                &failed_login("198.51.100.1"),
                start + Duration::from_secs(30),
            );
        }
        assert!(rx.try_recv().unwrap().summary.contains("198.51.100.1"));
    }

    #[test]
    fn failures_spread_over_more_than_a_window_do_not_fire() {
        let (alerter, mut rx) = alerter();
        let start = Instant::now();
        for i in 0..10u64 {
            alerter.observe_at(
                &failed_login("203.0.113.7"),
                start + BURST_WINDOW * u32::try_from(i).unwrap(),
            );
        }
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn revoked_token_use_and_lockouts_fire_at_once() {
        let (alerter, mut rx) = alerter();
        let reuse = AuditEvent::new(
            AuditEventType::AuthnTokenReuse,
            Severity::High,
            "revoked token presented",
        )
        .user("usr_abc", None);
        alerter.observe(&reuse);
        assert_eq!(rx.try_recv().unwrap().rule, "revoked_token_use");
        let lockout = AuditEvent::new(
            AuditEventType::AuthnLoginFailMax,
            Severity::High,
            "locked out",
        )
        .request(&RequestInfo {
            ip: Some("203.0.113.9".parse().unwrap()),
            ..RequestInfo::default()
        });
        alerter.observe(&lockout);
        assert_eq!(rx.try_recv().unwrap().rule, "login_lockout");
    }

    #[test]
    fn routine_events_never_alert() {
        let (alerter, mut rx) = alerter();
        for _ in 0..100 {
            alerter.observe(&AuditEvent::new(
                AuditEventType::AuthnLoginSuccess,
                Severity::Info,
                "login",
            ));
            alerter.observe(&AuditEvent::new(
                AuditEventType::AuthzFail,
                Severity::Medium,
                "denied",
            ));
        }
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn memory_stays_bounded_under_many_sources() {
        let mut bursts = Bursts::default();
        let now = Instant::now();
        for i in 0..(MAX_SOURCES as u32 + 500) {
            bursts.hit(
                "repeated_login_failures",
                &i.to_string(),
                5,
                BURST_WINDOW,
                now,
            );
        }
        assert!(bursts.windows.len() <= MAX_SOURCES);
    }
}
