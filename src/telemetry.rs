//! Logging and tracing setup.
//!
//! Logs always go to standard error: on `stdio` standard output belongs to the MCP protocol, and
//! elsewhere it carries what a person reads (the simulator's banner, `gen-secret`) or the audit
//! stream. `LOG_LEVEL` takes a level or a full tracing filter; `LOG_FORMAT` picks JSON lines or
//! human-readable output.
//!
//! Traces ([`otel`]) are a second layer beside the log output, installed only when an OTLP
//! endpoint is configured; without one the subscriber is exactly the log output, with its
//! filter global, as it always was. With one, each layer has its own filter: `LOG_LEVEL` decides
//! what is logged, and the trace layer takes this crate's spans whatever the log level.

pub mod otel;

use tracing_subscriber::{
    EnvFilter, Layer, filter::LevelFilter, fmt, layer::SubscriberExt, util::SubscriberInitExt,
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

/// Installs the global subscriber: the log output, and the trace exporter when the environment
/// configures one ([`otel::wanted`]). Calling it twice is harmless (the second call is
/// ignored). Fails only on a trace configuration the OpenTelemetry SDK refuses.
pub fn init(level: &str, format: LogFormat) -> anyhow::Result<()> {
    let filter = filter(level);
    let Some(traces) = otel::layer()? else {
        let builder = fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_target(true);
        let _ = match format {
            LogFormat::Json => builder.json().flatten_event(true).try_init(),
            LogFormat::Pretty => builder.with_ansi(false).compact().try_init(),
        };
        return Ok(());
    };
    let logs = fmt::layer().with_writer(std::io::stderr).with_target(true);
    let logs = match format {
        LogFormat::Json => logs.json().flatten_event(true).boxed(),
        LogFormat::Pretty => logs.with_ansi(false).compact().boxed(),
    };
    let _ = tracing_subscriber::registry()
        .with(logs.with_filter(filter))
        .with(traces)
        .try_init();
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
