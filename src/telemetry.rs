//! Logging setup.
//!
//! Logs always go to standard error: on `stdio` standard output belongs to the MCP protocol, and
//! elsewhere it carries what a person reads (the simulator's banner, `gen-secret`) or the audit
//! stream. `LOG_LEVEL` takes a level or a full tracing filter; `LOG_FORMAT` picks JSON lines or
//! human-readable output.

use tracing_subscriber::{EnvFilter, fmt};

use crate::config::LogFormat;

/// The filter directive that keeps rmcp's message dumps out of the log.
pub const RMCP_CAP: &str = "rmcp=info";

/// The log filter of `LOG_LEVEL`. rmcp logs whole JSON-RPC messages (tool arguments, agent
/// answers, document text) at debug: user data with no place in operational logs, so that
/// target is held at info whatever the level. An unparsable level falls back to `info`.
pub fn filter(level: &str) -> EnvFilter {
    EnvFilter::try_new(format!("{level},{RMCP_CAP}"))
        .unwrap_or_else(|_| EnvFilter::new(format!("info,{RMCP_CAP}")))
}

/// Installs the global subscriber. Calling it twice is harmless (the second call is ignored).
pub fn init(level: &str, format: LogFormat) {
    let filter = filter(level);
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(true);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Pretty => builder.with_ansi(false).compact().try_init(),
    };
}
