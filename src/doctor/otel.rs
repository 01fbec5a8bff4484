//! OpenTelemetry trace export, as the SDK's standard `OTEL_*` variables configure it.
//!
//! These are not settings of this server (they are not in the configuration table): the
//! OpenTelemetry specification names them, and collectors, operators and Helm charts set them
//! the same way for every service. Doctor checks what the export will do with them:
//!
//! - no endpoint (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, else `OTEL_EXPORTER_OTLP_ENDPOINT`), or
//!   `OTEL_SDK_DISABLED=true`: nothing is exported, which is a valid choice and passes;
//! - an endpoint must be an `http(s)://` URL, and the protocol, when named, `http/protobuf`,
//!   the only OTLP transport the server speaks (no gRPC stack in the binary);
//! - a sampler must be one the specification defines and this export implements, and a ratio
//!   sampler's argument a number between 0 and 1;
//! - headers often carry a collector's API key: doctor says how many are set, never a name or a
//!   value, and fails when they would cross the network in clear.

use super::{Item, Lookup, Outcome, fail, pass};
use crate::config::is_loopback_host;

/// Monitoring and alerting (the checklist line traces belong to).
const LINE: usize = 12;

/// The one OTLP protocol the server exports with.
const PROTOCOL: &str = "http/protobuf";

/// The samplers of the specification's `OTEL_TRACES_SAMPLER` the server implements.
const SAMPLERS: [&str; 6] = [
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
];

pub(super) fn check(env: Lookup<'_>) -> Vec<Item> {
    if env("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        return vec![Item::new(
            LINE,
            "OpenTelemetry",
            pass("OTEL_SDK_DISABLED=true: no traces exported"),
        )];
    }
    let endpoint = [
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]
    .into_iter()
    .find_map(|name| env(name).map(|value| (name, value)));
    let Some((name, value)) = endpoint else {
        return vec![Item::new(
            LINE,
            "OpenTelemetry",
            pass("no OTEL_EXPORTER_OTLP_ENDPOINT: no traces exported"),
        )];
    };
    let url = url::Url::parse(value.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
    let Some(url) = url else {
        // The value is not shown: a malformed URL may still carry a user and password.
        return vec![Item::new(
            LINE,
            name,
            fail(
                format!("{name} is not an http(s) URL"),
                format!(
                    "set {name} to the collector's OTLP/HTTP address, e.g. http://otel-collector:4318"
                ),
            ),
        )];
    };
    let in_clear = url.scheme() == "http" && !is_loopback_host(url.host_str());
    vec![
        Item::new(LINE, name, endpoint_outcome(&url, in_clear)),
        protocol(env),
        sampler(env),
        headers(env, in_clear),
    ]
}

fn endpoint_outcome(url: &url::Url, in_clear: bool) -> Outcome {
    let mut shown = url.clone();
    // Neither a user and password nor a query (a token) is printed.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    let note = if in_clear {
        " (plain HTTP: keep the collector inside the cluster's network)"
    } else {
        ""
    };
    pass(format!("traces exported over OTLP/HTTP to {shown}{note}"))
}

fn protocol(env: Lookup<'_>) -> Item {
    let set = [
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ]
    .into_iter()
    .find_map(|name| env(name).map(|value| (name, value)));
    match set {
        None => Item::new(
            LINE,
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            pass(format!("unset: {PROTOCOL}")),
        ),
        Some((name, value)) if value.trim() == PROTOCOL => Item::new(LINE, name, pass(PROTOCOL)),
        Some((name, value)) => Item::new(
            LINE,
            name,
            fail(
                format!("{name}={value}: the server exports with {PROTOCOL} only"),
                format!(
                    "set {name}={PROTOCOL} (or unset it) and point the endpoint at the collector's OTLP/HTTP port, usually 4318"
                ),
            ),
        ),
    }
}

fn sampler(env: Lookup<'_>) -> Item {
    let what = "OTEL_TRACES_SAMPLER";
    let Some(sampler) = env(what) else {
        return Item::new(
            LINE,
            what,
            pass("unset: parentbased_always_on (every trace a caller starts or continues)"),
        );
    };
    let sampler = sampler.trim().to_ascii_lowercase();
    if !SAMPLERS.contains(&sampler.as_str()) {
        return Item::new(
            LINE,
            what,
            fail(
                format!("{what}={sampler} is not a sampler the server implements"),
                format!("use one of {}", SAMPLERS.join(", ")),
            ),
        );
    }
    if !sampler.ends_with("traceidratio") {
        return Item::new(LINE, what, pass(sampler));
    }
    let outcome = match env("OTEL_TRACES_SAMPLER_ARG") {
        None => pass(format!(
            "{sampler}, OTEL_TRACES_SAMPLER_ARG unset: ratio 1.0 (every trace)"
        )),
        Some(arg) => match arg.trim().parse::<f64>() {
            Ok(ratio) if (0.0..=1.0).contains(&ratio) => {
                pass(format!("{sampler} with ratio {ratio}"))
            }
            _ => fail(
                format!("OTEL_TRACES_SAMPLER_ARG={arg} is not a ratio between 0 and 1"),
                "set OTEL_TRACES_SAMPLER_ARG to the share of traces kept, e.g. 0.1",
            ),
        },
    };
    Item::new(LINE, what, outcome)
}

/// `OTEL_EXPORTER_OTLP_(TRACES_)HEADERS`: comma-separated `key=value` pairs, each value possibly
/// a credential. Only their number is ever printed.
fn headers(env: Lookup<'_>, in_clear: bool) -> Item {
    let set = [
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        "OTEL_EXPORTER_OTLP_HEADERS",
    ]
    .into_iter()
    .find_map(|name| env(name).map(|value| (name, value)));
    let Some((name, value)) = set else {
        return Item::new(
            LINE,
            "OTEL_EXPORTER_OTLP_HEADERS",
            pass("unset: no headers sent to the collector"),
        );
    };
    let pairs: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let well_formed = pairs
        .iter()
        .all(|p| p.split_once('=').is_some_and(|(k, _)| !k.trim().is_empty()));
    let outcome = if !well_formed {
        fail(
            format!(
                "{name} is set but not a list of key=value pairs (not shown: it may hold a secret)"
            ),
            format!("write {name} as key1=value1,key2=value2 (values URL-encoded)"),
        )
    } else if in_clear {
        fail(
            format!("{name} is set (not shown) and would be sent over plain HTTP to another host"),
            "use an https:// endpoint, or a collector on the same network that needs no credential",
        )
    } else {
        pass(format!(
            "set, {} header(s); values not shown (they may hold a secret)",
            pairs.len()
        ))
    };
    Item::new(LINE, name, outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::tests::env_of;

    fn run(vars: &[(&str, &str)]) -> Vec<Item> {
        check(&env_of(vars))
    }

    fn outcome<'a>(items: &'a [Item], what: &str) -> &'a Outcome {
        &items
            .iter()
            .find(|i| i.what == what)
            .unwrap_or_else(|| panic!("no {what}: {items:?}"))
            .outcome
    }

    #[test]
    fn no_endpoint_or_a_disabled_sdk_exports_nothing_and_passes() {
        for vars in [
            &[][..],
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "")][..],
            &[
                ("OTEL_SDK_DISABLED", "true"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "not a url"),
            ][..],
        ] {
            let items = run(vars);
            assert_eq!(items.len(), 1, "{items:?}");
            let Outcome::Pass(detail) = &items[0].outcome else {
                panic!("{items:?}");
            };
            assert!(detail.contains("no traces exported"), "{detail}");
        }
    }

    #[test]
    fn a_valid_export_passes_every_item() {
        let items = run(&[
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "https://otel.example.com:4318",
            ),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "x-api-key=canary-value,x-tenant=a",
            ),
        ]);
        assert_eq!(items.len(), 4);
        for item in &items {
            assert!(matches!(item.outcome, Outcome::Pass(_)), "{item:?}");
        }
        let shown = format!("{items:?}");
        assert!(shown.contains("2 header(s)"), "{shown}");
        assert!(
            !shown.contains("canary-value") && !shown.contains("x-api-key"),
            "{shown}"
        );
    }

    #[test]
    fn the_traces_endpoint_wins_and_credentials_in_it_are_not_shown() {
        let items = run(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "not a url"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://user:hunter2@127.0.0.1:4318/v1/traces?token=canary",
            ),
        ]);
        let Outcome::Pass(detail) = outcome(&items, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") else {
            panic!("{items:?}");
        };
        assert!(
            detail.contains("http://127.0.0.1:4318/v1/traces"),
            "{detail}"
        );
        assert!(
            !detail.contains("hunter2") && !detail.contains("canary"),
            "{detail}"
        );
    }

    #[test]
    fn a_malformed_endpoint_fails_without_echoing_it() {
        for bad in ["otel-collector:4318", "grpc://otel:4317", "http://"] {
            let items = run(&[("OTEL_EXPORTER_OTLP_ENDPOINT", bad)]);
            let Outcome::Fail { problem, .. } = outcome(&items, "OTEL_EXPORTER_OTLP_ENDPOINT")
            else {
                panic!("{bad}: {items:?}");
            };
            assert!(!problem.contains(bad), "{problem}");
        }
    }

    #[test]
    fn other_protocols_samplers_and_ratios_fail() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318");
        for (name, value, what) in [
            (
                "OTEL_EXPORTER_OTLP_PROTOCOL",
                "grpc",
                "OTEL_EXPORTER_OTLP_PROTOCOL",
            ),
            (
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                "http/json",
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            ),
            (
                "OTEL_TRACES_SAMPLER",
                "jaeger_remote",
                "OTEL_TRACES_SAMPLER",
            ),
            ("OTEL_TRACES_SAMPLER", "sometimes", "OTEL_TRACES_SAMPLER"),
        ] {
            let items = run(&[endpoint, (name, value)]);
            assert!(
                matches!(outcome(&items, what), Outcome::Fail { .. }),
                "{name}={value}: {items:?}"
            );
        }
        for arg in ["1.5", "-0.1", "half", "NaN"] {
            let items = run(&[
                endpoint,
                ("OTEL_TRACES_SAMPLER", "traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", arg),
            ]);
            assert!(
                matches!(outcome(&items, "OTEL_TRACES_SAMPLER"), Outcome::Fail { .. }),
                "{arg}: {items:?}"
            );
        }
        // A ratio argument beside a sampler that takes none is ignored, as the SDK ignores it.
        let items = run(&[
            endpoint,
            ("OTEL_TRACES_SAMPLER", "always_on"),
            ("OTEL_TRACES_SAMPLER_ARG", "half"),
        ]);
        assert!(matches!(
            outcome(&items, "OTEL_TRACES_SAMPLER"),
            Outcome::Pass(_)
        ));
    }

    #[test]
    fn headers_are_never_shown_and_not_sent_in_clear() {
        let secret = "authorization=Bearer%20canary-secret";
        let items = run(&[
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "http://otel-collector.monitoring:4318",
            ),
            ("OTEL_EXPORTER_OTLP_HEADERS", secret),
        ]);
        assert!(matches!(
            outcome(&items, "OTEL_EXPORTER_OTLP_HEADERS"),
            Outcome::Fail { .. }
        ));
        let items_text = format!("{items:?}");
        assert!(!items_text.contains("canary-secret"), "{items_text}");

        let items = run(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://otel.example.com"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                "canary-secret-without-a-key",
            ),
        ]);
        let Outcome::Fail { problem, .. } = outcome(&items, "OTEL_EXPORTER_OTLP_TRACES_HEADERS")
        else {
            panic!("{items:?}");
        };
        assert!(!problem.contains("canary"), "{problem}");
    }
}
