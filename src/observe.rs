//! Prometheus metrics: one process-wide recorder, installed on first use.
//!
//! Metric names in the code are short (`http_requests_total`); the recorder prefixes them with
//! `METRICS_PREFIX` (`mcp_dust_server_http_requests_total`). The recorder is global (the
//! `metrics` facade allows one per process), so the first configuration's prefix wins; tests
//! that build many servers share it.
//!
//! The recorder keeps every histogram sample (8 bytes each) until its upkeep folds them into the
//! buckets; only a scrape of `/metrics` did that here, so a server nobody scraped grew by about
//! 20 bytes per request without bound (docs/PERFORMANCE.md, finding 14). A thread now runs the
//! upkeep every [`UPKEEP_INTERVAL`].

use std::{sync::OnceLock, time::Duration};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use metrics_util::layers::{Layer, PrefixLayer};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// How often recorded histogram samples are folded into their buckets: the samples held
/// between two runs are what a second of requests records.
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(1);

/// The handle that renders `/metrics`, installing the recorder on first call.
pub fn install(prefix: &str) -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0, 30.0, 120.0,
                ])
                .expect("static buckets are valid")
                .build_recorder();
            let handle = recorder.handle();
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new()
                .name("metrics-upkeep".to_owned())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_INTERVAL);
                        upkeep.run_upkeep();
                    }
                });
            if let Err(error) = spawned {
                tracing::warn!(%error, "cannot start the metrics upkeep: memory grows until /metrics is scraped");
            }
            let prefixed = PrefixLayer::new(prefix.to_owned()).layer(recorder);
            if metrics::set_global_recorder(prefixed).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
            }
            handle
        })
        .clone()
}

/// The handles of the per-request HTTP metrics (`http_requests_total` by route, method and
/// status; `http_request_duration_seconds` by route), kept once registered. The `metrics`
/// macros find a handle by building and hashing its key, then the prefix layer renames it, on
/// every call: about 6,000 instructions a request, more than the rest of the metrics layer
/// (docs/PERFORMANCE.md). Route templates, the nine standard methods and the statuses the code
/// answers are few, so this stays small; it is bounded all the same ([`MAX_ROUTES`],
/// [`MAX_SERIES_PER_ROUTE`]), past which the macros are used as before.
#[derive(Debug, Default)]
pub struct HttpMetrics {
    routes: std::sync::RwLock<std::collections::HashMap<Box<str>, RouteMetrics>>,
}

/// Most route templates whose handles are kept.
pub const MAX_ROUTES: usize = 256;

/// Most (method, status) counters kept per route.
pub const MAX_SERIES_PER_ROUTE: usize = 64;

#[derive(Debug)]
struct RouteMetrics {
    duration: metrics::Histogram,
    requests: Vec<(&'static str, u16, metrics::Counter)>,
}

impl HttpMetrics {
    /// Counts one answered request of `route` (a template, or `unmatched`) and records how
    /// long it took.
    pub fn record(&self, route: &str, method: &'static str, status: u16, seconds: f64) {
        {
            let routes = self
                .routes
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(kept) = routes.get(route)
                && let Some((_, _, counter)) = kept
                    .requests
                    .iter()
                    .find(|(m, s, _)| *m == method && *s == status)
            {
                counter.increment(1);
                kept.duration.record(seconds);
                return;
            }
        }
        let label = metrics::SharedString::from_owned(route.to_owned());
        let counter = metrics::counter!("http_requests_total", "route" => label.clone(), "method" => method, "status" => status.to_string());
        let duration = metrics::histogram!("http_request_duration_seconds", "route" => label);
        counter.increment(1);
        duration.record(seconds);
        let mut routes = self
            .routes
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if routes.len() >= MAX_ROUTES && !routes.contains_key(route) {
            return;
        }
        let kept = routes.entry(route.into()).or_insert(RouteMetrics {
            duration,
            requests: Vec::new(),
        });
        if kept.requests.len() < MAX_SERIES_PER_ROUTE
            && !kept
                .requests
                .iter()
                .any(|(m, s, _)| *m == method && *s == status)
        {
            kept.requests.push((method, status, counter));
        }
    }
}
