//! Traces: OpenTelemetry spans exported over OTLP (HTTP, protobuf), when an endpoint is set.
//!
//! Everything is configured by the OpenTelemetry SDK's own environment variables, read by the
//! SDK itself: the endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT`, or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
//! used as is), headers for the collector (`OTEL_EXPORTER_OTLP_HEADERS`), timeout and
//! compression, the sampler (`OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`), the resource
//! (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`) and the batch processor (`OTEL_BSP_*`). The
//! server adds no setting of its own; its only defaults are `service.name` `mcp-dust-server` and
//! `service.version` when the environment names neither.
//!
//! With no endpoint (or `OTEL_SDK_DISABLED=true`, or `OTEL_TRACES_EXPORTER=none`) nothing is
//! built: no layer, no exporter, no thread, and the HTTP layer does not even read a
//! `traceparent` header ([`enabled`]). That decision is [`wanted`], a pure function of the
//! environment.
//!
//! What is exported: the spans of this crate at `info` and above (HTTP request, MCP method, tool
//! call, Dust call and its attempts and event stream, Redis round trip). No log event becomes a
//! span event: log lines may quote what a person sent (masked, but still user data), and the
//! wire log (`WIRE_LOG`) holds whole requests; they stay in the logs. rmcp's and the other
//! libraries' spans are left out too (rmcp's carry whole JSON-RPC messages at debug). Span
//! fields are written at the instrumentation points, each from a bounded, masked or fixed value
//! (see `http::trace`, `mcp::tools`, `dust::client`): never a key, token, cookie, session id or
//! query string.
//!
//! The batch span processor runs on a thread of its own, so exporting never takes a worker of
//! the async runtime; its HTTP client is reqwest's blocking one, on that thread. [`shutdown`]
//! flushes what is queued: `main` calls it once the command has returned, after the graceful
//! drain, so the spans of the requests a SIGTERM let finish are sent too.

use std::sync::OnceLock;

use opentelemetry::{KeyValue, trace::TracerProvider as _};
use opentelemetry_otlp::{ExporterBuildError, Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::{Resource, trace::SdkTracerProvider};
use tracing::{Metadata, Subscriber};
use tracing_subscriber::{Layer, filter::FilterFn, registry::LookupSpan};

/// The installed provider, kept for [`shutdown`]; set once, by [`layer`].
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// The `service.name` when neither `OTEL_SERVICE_NAME` nor `OTEL_RESOURCE_ATTRIBUTES` sets one
/// (the SDK's own default would be `unknown_service:<executable>`).
const SERVICE_NAME: &str = "mcp-dust-server";

/// The crate's targets: only its spans are exported.
const TARGET: &str = "mcp_dust_server";

/// The target of the spans that exist for traces only: the MCP method, the tool call, the Dust
/// call, its attempts and event stream, the Redis round trip. The log output leaves them out
/// (`telemetry::filter`), so without an exporter no layer wants them and they are disabled at
/// their callsites: they cost a cached check, not a span. (The HTTP request's span is the log
/// lines' context too, and stays in the logs.)
pub const SPANS: &str = "mcp_dust_server::traces";

/// Whether traces should be exported, given the environment (`var` reads one variable): an OTLP
/// endpoint is set, and neither `OTEL_SDK_DISABLED=true` nor `OTEL_TRACES_EXPORTER=none` turns
/// the SDK off.
pub fn wanted(var: impl Fn(&str) -> Option<String>) -> bool {
    let set = |name: &str| var(name).is_some_and(|v| !v.trim().is_empty());
    let is =
        |name: &str, value: &str| var(name).is_some_and(|v| v.trim().eq_ignore_ascii_case(value));
    let endpoint = set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") || set("OTEL_EXPORTER_OTLP_ENDPOINT");
    endpoint && !is("OTEL_SDK_DISABLED", "true") && !is("OTEL_TRACES_EXPORTER", "none")
}

/// Whether spans are being exported (a layer was installed by this process).
pub fn enabled() -> bool {
    PROVIDER.get().is_some()
}

/// The OpenTelemetry layer, when the environment asks for traces ([`wanted`]); `Ok(None)`
/// otherwise. A configuration the SDK refuses (an endpoint that is no URL, ...) is an error: the
/// operator asked for traces and would otherwise get none without a word. Its message never
/// quotes the endpoint, which may carry credentials.
pub fn layer<S>() -> anyhow::Result<Option<impl Layer<S>>>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    if !wanted(|name| std::env::var(name).ok()) {
        return Ok(None);
    }
    let exporter = SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .build()
        .map_err(|error| match error {
            ExporterBuildError::InvalidConfiguration(_) => anyhow::anyhow!(
                "the OTLP trace exporter refused its configuration: check \
                 OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT and the other \
                 OTEL_EXPORTER_OTLP_* variables (values not shown)"
            ),
            other => anyhow::anyhow!("cannot start the OTLP trace exporter: {other}"),
        })?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource())
        .build();
    let tracer = provider.tracer(SERVICE_NAME);
    let _ = PROVIDER.set(provider);
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_threads(false)
        .with_error_events_to_status(false)
        .with_error_events_to_exceptions(false);
    Ok(Some(layer.with_filter(FilterFn::new(exported))))
}

/// What the layer sees: this crate's spans at `info` and above, and no event (see the module
/// doc).
fn exported(metadata: &Metadata<'_>) -> bool {
    metadata.is_span()
        && metadata.level() <= &tracing::Level::INFO
        && metadata.target().starts_with(TARGET)
}

/// The SDK's resource (its detectors read `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`),
/// with this server's name and version where the environment gives none.
fn resource() -> Resource {
    let detected = Resource::builder().build();
    let named = detected
        .get(&opentelemetry::Key::from_static_str("service.name"))
        .is_some_and(|name| !name.as_str().starts_with("unknown_service"));
    let mut builder = Resource::builder();
    if !named {
        builder = builder.with_service_name(SERVICE_NAME);
    }
    if detected
        .get(&opentelemetry::Key::from_static_str("service.version"))
        .is_none()
    {
        builder =
            builder.with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    }
    builder.build()
}

/// Exports the spans still queued and stops the exporter. Blocks (up to the exporter's
/// timeout): call it outside the async runtime, once the command is over. Does nothing when
/// traces are off.
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get()
        && let Err(error) = provider.shutdown()
    {
        eprintln!("mcp-dust-server: could not export the last spans: {error}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn traces_are_exported_only_when_an_endpoint_is_set() {
        assert!(!wanted(env(&[])));
        assert!(!wanted(env(&[("OTEL_SERVICE_NAME", "dust")])));
        assert!(!wanted(env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")])));
        assert!(wanted(env(&[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://collector:4318"
        )])));
        assert!(wanted(env(&[(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://collector:4318/v1/traces"
        )])));
    }

    #[test]
    fn the_sdk_switches_turn_traces_off() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318");
        assert!(!wanted(env(&[endpoint, ("OTEL_SDK_DISABLED", "TRUE")])));
        assert!(!wanted(env(&[endpoint, ("OTEL_TRACES_EXPORTER", "none")])));
        assert!(wanted(env(&[endpoint, ("OTEL_SDK_DISABLED", "false")])));
        assert!(wanted(env(&[endpoint, ("OTEL_TRACES_EXPORTER", "otlp")])));
    }

    #[test]
    fn only_this_crates_spans_are_exported() {
        // The callsites' metadata, as the filter sees it.
        // A disabled span (no subscriber here) keeps its callsite's metadata.
        let metadata = |span: tracing::Span| span.metadata().expect("callsite metadata");
        assert!(exported(metadata(tracing::info_span!("ours"))));
        assert!(exported(metadata(tracing::warn_span!("ours"))));
        assert!(exported(metadata(
            tracing::info_span!(target: SPANS, "tool")
        )));
        assert!(!exported(metadata(tracing::debug_span!("detail"))));
        assert!(!exported(metadata(
            tracing::info_span!(target: "rmcp::service", "serve_inner")
        )));
    }
}
