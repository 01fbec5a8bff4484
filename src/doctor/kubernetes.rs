//! The checks that matter when the server runs in a Kubernetes pod.
//!
//! Kubernetes sets `KUBERNETES_SERVICE_HOST` in every container (the API server's address), so
//! its presence is how doctor knows where it runs; nothing else is asked of the cluster (the pod
//! has no API token, `deploy/kubernetes` mounts none). What differs there from a single host:
//!
//! - the kubelet probes `/live` and `/ready` at the pod's address, and the Service sends traffic
//!   there too, so a loopback `MCP_SERVER_HOST` leaves the pod never ready;
//! - clients arrive through an ingress controller, whose address every client shares unless
//!   `TRUSTED_PROXIES` names the controller's pods;
//! - a Deployment may run several replicas (an autoscaler may add them), which share tokens and
//!   sessions only through Redis. A pod cannot see its replica count, so doctor advises;
//! - the kubelet sends SIGKILL after `terminationGracePeriodSeconds`, which the pod cannot read
//!   either: doctor states the relation it must keep with `SHUTDOWN_GRACE_PERIOD`.

use super::{Item, Lookup, Outcome, fail, pass};
use crate::config::{Config, is_loopback_host};

/// Seconds the drain needs after `SHUTDOWN_GRACE_PERIOD`: the 5 s abort window and the audit
/// flush (docs/RELIABILITY.md, "Graceful shutdown"); the setting's help says the same.
const DRAIN_MARGIN_SECS: u64 = 15;

/// The placeholder host of `deploy/kubernetes/base/settings.env`, to be replaced by the real one.
const PLACEHOLDER_HOST: &str = "mcp.example.com";

pub(super) fn check(config: &Config, env: Lookup<'_>) -> Vec<Item> {
    if env("KUBERNETES_SERVICE_HOST").is_none() {
        return vec![Item::new(
            0,
            "Kubernetes",
            Outcome::NotApplicable("not in a pod (KUBERNETES_SERVICE_HOST is unset)".to_owned()),
        )];
    }
    vec![
        Item::new(
            0,
            "Kubernetes",
            pass(
                "in a pod (KUBERNETES_SERVICE_HOST is set): listen address, public host, shared \
                 state, ingress and shutdown are checked for it; manifests in deploy/kubernetes",
            ),
        ),
        Item::new(0, "Kubernetes listen address", listen_address(config)),
        Item::new(0, "Kubernetes public host", public_host(config)),
        Item::new(0, "Kubernetes replicas", replicas(config)),
        Item::new(1, "Kubernetes ingress", ingress(config)),
        Item::new(
            0,
            "Kubernetes shutdown",
            Outcome::Reminder(format!(
                "keep terminationGracePeriodSeconds above the preStop sleep + \
                 SHUTDOWN_GRACE_PERIOD ({} s) + {DRAIN_MARGIN_SECS} s, or the kubelet kills \
                 calls still draining (deploy/kubernetes/base: 5 + 20 + 15 < 45)",
                config.shutdown_grace.as_secs()
            )),
        ),
    ]
}

fn listen_address(config: &Config) -> Outcome {
    if is_loopback_host(Some(&config.host)) {
        fail(
            format!(
                "MCP_SERVER_HOST={} is loopback: the kubelet's probes and the Service reach the \
                 pod's address, so the pod never becomes ready",
                config.host
            ),
            "set MCP_SERVER_HOST=0.0.0.0 (deploy/kubernetes/base/settings.env)",
        )
    } else {
        pass(format!(
            "{}:{}: the probes (GET /live, /ready) and the Service reach it",
            config.host, config.port
        ))
    }
}

fn public_host(config: &Config) -> Outcome {
    let host = url::Url::parse(&config.public_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned));
    if host.as_deref() == Some(PLACEHOLDER_HOST)
        || config.allowed_hosts.iter().any(|h| h == PLACEHOLDER_HOST)
    {
        fail(
            format!("MCP_PUBLIC_URL or ALLOWED_HOSTS is still the manifests' {PLACEHOLDER_HOST}"),
            "set both to the ingress's host in deploy/kubernetes/base/settings.env",
        )
    } else {
        pass(format!(
            "{} (the ingress's host, TLS terminated there)",
            config.public_url
        ))
    }
}

fn replicas(config: &Config) -> Outcome {
    if config.redis_url.is_some() {
        pass("REDIS_URL is set: replicas share tokens, sessions and counters")
    } else {
        Outcome::Reminder(
            "state is in memory: run one replica (the base's autoscaler is pinned to one); \
             before scaling, set REDIS_URL (deploy/kubernetes/overlays/redis), or a token issued \
             by one pod is refused by the others"
                .to_owned(),
        )
    }
}

fn ingress(config: &Config) -> Outcome {
    if config.trusted_proxies.is_empty() {
        if config.public_url.starts_with("https://") {
            return fail(
                "no TRUSTED_PROXIES: behind the ingress controller every client has the \
                 controller's address and all of them share one rate-limit budget",
                "set TRUSTED_PROXIES to the ingress controller pods' range (CIDR)",
            );
        }
        return pass("no ingress in front (MCP_PUBLIC_URL is not https): peers are the clients");
    }
    let list: Vec<String> = config
        .trusted_proxies
        .iter()
        .map(ToString::to_string)
        .collect();
    pass(format!(
        "X-Forwarded-For believed from {}: keep it to the ingress controller's pods",
        list.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::tests::{config, env_of};

    fn outcome<'a>(items: &'a [Item], what: &str) -> &'a Outcome {
        &items.iter().find(|i| i.what == what).unwrap().outcome
    }

    #[test]
    fn outside_a_pod_nothing_is_checked() {
        let items = check(&config(&[]), &env_of(&[]));
        assert_eq!(items.len(), 1);
        assert!(matches!(items[0].outcome, Outcome::NotApplicable(_)));
    }

    #[test]
    fn in_a_pod_loopback_placeholder_and_missing_proxies_fail() {
        let config = config(&[
            ("MCP_PUBLIC_URL", "https://mcp.example.com"),
            ("ALLOWED_HOSTS", "mcp.example.com"),
        ]);
        let items = check(
            &config,
            &env_of(&[("KUBERNETES_SERVICE_HOST", "10.96.0.1")]),
        );
        assert!(matches!(outcome(&items, "Kubernetes"), Outcome::Pass(_)));
        let Outcome::Fail { problem, fix } = outcome(&items, "Kubernetes listen address") else {
            panic!("{items:?}");
        };
        assert!(
            problem.contains("127.0.0.1") && fix.contains("0.0.0.0"),
            "{problem}"
        );
        assert!(matches!(
            outcome(&items, "Kubernetes public host"),
            Outcome::Fail { .. }
        ));
        assert!(matches!(
            outcome(&items, "Kubernetes ingress"),
            Outcome::Fail { .. }
        ));
        let Outcome::Reminder(advice) = outcome(&items, "Kubernetes replicas") else {
            panic!("{items:?}");
        };
        assert!(advice.contains("REDIS_URL"), "{advice}");
        let Outcome::Reminder(shutdown) = outcome(&items, "Kubernetes shutdown") else {
            panic!("{items:?}");
        };
        assert!(shutdown.contains("(20 s)"), "{shutdown}");
    }

    #[test]
    fn in_a_pod_the_manifests_settings_pass() {
        let config = config(&[
            ("MCP_SERVER_HOST", "0.0.0.0"),
            ("MCP_PUBLIC_URL", "https://mcp.corp.test"),
            ("ALLOWED_HOSTS", "mcp.corp.test"),
            ("TRUSTED_PROXIES", "10.244.0.0/16"),
            ("REDIS_URL", "redis://:pw@mcp-dust-server-redis:6379/0"),
        ]);
        let items = check(
            &config,
            &env_of(&[("KUBERNETES_SERVICE_HOST", "10.96.0.1")]),
        );
        for what in [
            "Kubernetes listen address",
            "Kubernetes public host",
            "Kubernetes replicas",
            "Kubernetes ingress",
        ] {
            assert!(
                matches!(outcome(&items, what), Outcome::Pass(_)),
                "{what}: {items:?}"
            );
        }
        assert!(
            !format!("{items:?}").contains(":pw@"),
            "REDIS_URL is never shown"
        );
    }
}
