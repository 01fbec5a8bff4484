//! Logging and tracing setup.
//!
//! Logs always go to standard error: on `stdio` standard output belongs to the MCP protocol, and
//! elsewhere it carries what a person reads (the simulator's banner, `gen-secret`) or the audit
//! stream. `LOG_LEVEL` takes a level or a full tracing filter; `LOG_FORMAT` picks JSON lines or
//! human-readable output.
//!
//! Traces ([`otel`]) are a second layer beside the log output, installed only when an OTLP
//! endpoint is configured; without one the subscriber is the log output alone. Each layer has
//! its own filter: `LOG_LEVEL` decides what is logged (less two rmcp lines that are not errors,
//! [`HUNG_UP_CALLSITES`]), and the trace layer takes this crate's spans whatever the log level.
//! Both filters decide by callsite, so a disabled event or span costs a cached check.

pub mod otel;

use tracing_subscriber::{
    EnvFilter, Layer,
    filter::{FilterExt, LevelFilter, filter_fn},
    fmt,
    layer::SubscriberExt,
    util::SubscriberInitExt,
};

use crate::config::LogFormat;

pub use otel::shutdown;

/// The most rmcp may log: its debug output dumps whole JSON-RPC messages.
const RMCP_MAX: LevelFilter = LevelFilter::INFO;

/// The log filter of `LOG_LEVEL`. rmcp logs whole JSON-RPC messages (tool arguments, agent
/// answers, document text) at debug: user data with no place in operational logs, so that
/// target is held at info at most, and never above the default level (`LOG_LEVEL=warn` keeps
/// rmcp's info lines out too). The spans made for traces only ([`otel::SPANS`]) are never
/// logged. An unparsable level falls back to `info`.
pub fn filter(level: &str) -> EnvFilter {
    let default = level
        .split(',')
        .map(str::trim)
        .find(|part| !part.contains('='))
        .and_then(|part| part.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    let rmcp = default.min(RMCP_MAX);
    let traces = otel::SPANS;
    EnvFilter::try_new(format!("{level},rmcp={rmcp},{traces}=off"))
        .unwrap_or_else(|_| EnvFilter::new(format!("info,rmcp={RMCP_MAX},{traces}=off")))
}

/// rmcp's error lines when a client hung up in the middle of a call, at their callsites: the
/// answer's send finds the response channel closed (`fail to response message`), or the drain
/// cannot write it any more (`failed to send pending response during drain`); which of the two
/// fires depends on when the hang-up lands. Normal for a server (a closed laptop, a cancelled
/// request, whose run is cancelled in Dust), not an `ERROR`. In this server's stateless
/// Streamable HTTP transport both sends go to the HTTP answer's channel, which only closes when
/// the client is gone. Held back by callsite: rmcp is pinned, and
/// `sigterm::a_client_that_hangs_up_mid_call_leaves_no_error_in_the_log` notices if they move.
const HUNG_UP_CALLSITES: [&str; 2] = ["src/service.rs:1578", "src/service.rs:1866"];

/// Whether an event is worth logging at all (everything but [`HUNG_UP_CALLSITES`]).
fn worth_logging(meta: &tracing::Metadata<'_>) -> bool {
    !(meta.is_event()
        && *meta.level() == tracing::Level::ERROR
        && meta.target() == "rmcp::service"
        && HUNG_UP_CALLSITES
            .iter()
            .any(|callsite| meta.name().ends_with(callsite)))
}

/// Installs the global subscriber: the log output, and the trace exporter when the environment
/// configures one ([`otel::wanted`]). Calling it twice is harmless (the second call is
/// ignored). Fails only on a trace configuration the OpenTelemetry SDK refuses.
pub fn init(level: &str, format: LogFormat) -> anyhow::Result<()> {
    let filter = filter(level).and(filter_fn(worth_logging));
    let logs = fmt::layer().with_writer(std::io::stderr).with_target(true);
    let logs = match format {
        LogFormat::Json => logs.json().flatten_event(true).boxed(),
        LogFormat::Pretty => logs.with_ansi(false).compact().boxed(),
    };
    let registry = tracing_subscriber::registry().with(logs.with_filter(filter));
    let _ = match otel::layer()? {
        Some(traces) => registry.with(traces).try_init(),
        None => registry.try_init(),
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rmcp_never_logs_above_info_nor_above_the_default_level() {
        assert_eq!(filter("warn").max_level_hint(), Some(LevelFilter::WARN));
        assert_eq!(filter("error").max_level_hint(), Some(LevelFilter::ERROR));
        assert_eq!(filter("info").max_level_hint(), Some(LevelFilter::INFO));
        let debug = filter("debug").to_string();
        assert!(debug.contains("rmcp=info"), "{debug}");
        let trace = filter("trace,hyper=warn").to_string();
        assert!(trace.contains("rmcp=info"), "{trace}");
        assert!(trace.contains("mcp_dust_server::traces=off"), "{trace}");
    }
}
