//! The composition root: what `serve`, `stdio` and `demo` build from a configuration, built in
//! one place so that the three cannot drift apart.
//!
//! Each command keeps only its own logic: `serve` checks production settings and listens,
//! `stdio` authenticates the one key it runs with and speaks over standard input and output,
//! `demo` starts the simulator and prints how to connect. What they share is here: the Dust
//! client and its circuit breaker (audited on every transition, whichever command runs it), the
//! audit sink (`AUDIT_LOG_FILE`, else the command's default stream), the listen address (an
//! IPv6 host works for every command), and the end of a run (cancellations reach Dust, then the
//! audit log is flushed).

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context;

use crate::{
    audit::{AuditEvent, AuditEventType, AuditSink, Auditor, Severity},
    config::Config,
    dust::{
        BreakerState, BreakerTransition, CircuitBreaker, ClientOptions, DustApi, HttpDustClient,
        TransitionHook,
    },
    ops::{self, Settings},
    store::ConversationStore,
};

/// The operations' settings of a configuration.
pub fn ops_settings(config: &Config) -> Settings {
    Settings {
        server_name: config.server_name.clone(),
        default_agent_id: config.dust_agent_id.clone(),
        timezone: config.dust_timezone.clone(),
        agent_timeout: config.agent_timeout,
        dust_base_url: config.dust_base_url.clone(),
        tool_approval: config.tool_approval,
        task_ttl: config.task_ttl,
        agent_tools: config.agent_tools.clone(),
    }
}

/// The Dust HTTP client of a configuration (base URL, timeout, retries).
pub fn dust_client(config: &Config) -> anyhow::Result<HttpDustClient> {
    let limits = &config.dust_limits;
    let options = ClientOptions {
        base_url: config.dust_base_url.clone(),
        timeout: limits.timeout,
        max_retries: limits.max_retries,
        max_retry_after: limits.max_retry_after,
        ..ClientOptions::default()
    };
    HttpDustClient::new(options).context("cannot build the Dust client")
}

/// `client` behind the configured circuit breaker, whose transitions `auditor` records.
pub fn guarded_dust(
    client: Arc<dyn DustApi>,
    config: &Config,
    auditor: &Auditor,
) -> CircuitBreaker {
    CircuitBreaker::new(
        client,
        config.dust_limits.breaker,
        Some(audit_breaker_transitions(auditor.clone())),
    )
}

/// Audits each circuit-breaker transition once (`upstream_failure`; opening is high severity:
/// every call of that workspace fails until Dust is back).
fn audit_breaker_transitions(auditor: Auditor) -> TransitionHook {
    Arc::new(move |transition: &BreakerTransition| {
        let severity = match transition.to {
            BreakerState::Open => Severity::High,
            BreakerState::HalfOpen | BreakerState::Closed => Severity::Medium,
        };
        let message = match transition.to {
            BreakerState::Open => "Dust circuit breaker opened: calls fail fast",
            BreakerState::HalfOpen => "Dust circuit breaker half-open: probing",
            BreakerState::Closed => "Dust circuit breaker closed: Dust is back",
        };
        auditor.record(
            AuditEvent::new(AuditEventType::UpstreamFailure, severity, message)
                .resource("dust_workspace", &transition.workspace_id)
                .action("circuit_breaker")
                .extra("breaker.from", transition.from.as_str())
                .extra("breaker.to", transition.to.as_str())
                .extra("breaker.reason", transition.reason.as_str()),
        );
    })
}

/// Where audit records go: `AUDIT_LOG_FILE`, else `default` (standard output for `serve`;
/// standard error for `stdio`, whose standard output is the protocol, and for `demo`, whose
/// standard output is for the person).
pub fn audit_sink(config: &Config, default: AuditSink) -> AuditSink {
    match &config.audit_log_file {
        Some(path) => AuditSink::File(path.into()),
        None => default,
    }
}

/// The auditor writing to [`audit_sink`].
pub fn auditor(config: &Config, default: AuditSink) -> anyhow::Result<Auditor> {
    Auditor::start(audit_sink(config, default)).context("cannot open the audit log")
}

/// The address to listen on: `MCP_SERVER_HOST` (an IPv4 or IPv6 address, bare or bracketed)
/// and `MCP_SERVER_PORT`.
pub fn listen_addr(config: &Config) -> anyhow::Result<SocketAddr> {
    let host = config.host.trim_start_matches('[').trim_end_matches(']');
    format!("{host}:{}", config.port)
        .parse()
        .or_else(|_| format!("[{host}]:{}", config.port).parse())
        .with_context(|| format!("MCP_SERVER_HOST {:?} is not an IP address", config.host))
}

/// The operations' context (`serve`, `demo` and `stdio` alike): the Dust stack, the
/// conversation store, the settings, the agent cache, the audit trail and the sealing of paused
/// runs.
pub fn ops_context(
    config: &Config,
    dust: Arc<dyn DustApi>,
    conversations: Arc<dyn ConversationStore>,
    auditor: &Auditor,
    pauses: ops::pause::Pauses,
) -> Arc<ops::Context> {
    Arc::new(
        ops::Context::new(dust, conversations, ops_settings(config))
            .with_agent_cache_ttl(config.agent_cache_ttl)
            .with_auditor(auditor.clone())
            .with_pauses(pauses),
    )
}

/// The end of a run: the Dust cancellations still in flight reach Dust, then the audit log is
/// flushed and closed.
pub async fn finish(ops: &ops::Context, auditor: Auditor) {
    ops.finish_background().await;
    auditor.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(host: &str) -> Config {
        let mut c = Config::from_sources(&std::collections::BTreeMap::new(), |_| None).unwrap();
        c.host = host.to_owned();
        c.port = 5001;
        c
    }

    #[test]
    fn every_command_listens_on_ipv4_and_ipv6_hosts() {
        for (host, addr) in [
            ("127.0.0.1", "127.0.0.1:5001"),
            ("0.0.0.0", "0.0.0.0:5001"),
            ("::1", "[::1]:5001"),
            ("[::1]", "[::1]:5001"),
            ("::", "[::]:5001"),
        ] {
            assert_eq!(
                listen_addr(&config(host)).unwrap().to_string(),
                addr,
                "{host}"
            );
        }
        let err = listen_addr(&config("localhost")).unwrap_err();
        assert!(format!("{err:#}").contains("MCP_SERVER_HOST"));
    }
}
