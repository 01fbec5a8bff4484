//! The deployment files in `deploy/` are checked statically (there is no Docker engine on these
//! machines), and the container health check (`mcp-dust-server probe`) is run for real.
//!
//! What a reviewer would check by eye is checked here, so a change that breaks it fails CI: the
//! runtime image has no toolchain and runs as a non-root user with a health check; compose runs
//! the instances read-only; the systemd unit keeps its hardening; the nginx template replaces
//! (never appends) `X-Forwarded-For` and only redirects on plain HTTP; every metric an alert
//! rule names exists in the code.
//!
//! The Kubernetes manifests (`deploy/kubernetes`) are rendered by `kubectl kustomize` and every
//! object is validated offline against the Kubernetes schemas (`kubernetes-validate`, strict);
//! then what the schemas cannot know is checked: the hardening of every pod, probes on the routes
//! the server serves, a kill timeout longer than the drain, only real settings, no secret in the
//! manifests, and a Redis only the server reaches.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
    process::Command,
};

use crate::common::http::TestServer;

fn read(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// The instructions of the last stage of a Dockerfile (continuation lines joined).
fn final_stage(dockerfile: &str) -> Vec<String> {
    let joined = dockerfile.replace("\\\n", " ");
    let lines: Vec<String> = joined
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    let start = lines
        .iter()
        .rposition(|l| l.to_ascii_uppercase().starts_with("FROM "))
        .expect("a FROM line");
    lines[start..].to_vec()
}

#[test]
fn dockerfile_runtime_stage_is_minimal_non_root_and_health_checked() {
    let dockerfile = read("deploy/Dockerfile");
    let from_count = dockerfile
        .lines()
        .filter(|l| l.trim_start().to_ascii_uppercase().starts_with("FROM "))
        .count();
    assert!(from_count >= 2, "multi-stage build expected");

    let stage = final_stage(&dockerfile);
    let from = &stage[0];
    assert!(
        !from.contains("rust:") && !from.contains("cargo"),
        "the runtime stage must not start from a toolchain image: {from}"
    );
    for line in &stage {
        let upper = line.to_ascii_uppercase();
        assert!(
            !(upper.starts_with("RUN ") && (line.contains("cargo") || line.contains("rustup"))),
            "no toolchain in the runtime stage: {line}"
        );
        assert!(
            !(upper.starts_with("RUN ") && (line.contains("apt-get") || line.contains("apk "))),
            "no package installs in the runtime stage: {line}"
        );
    }
    let user = stage
        .iter()
        .rfind(|l| l.to_ascii_uppercase().starts_with("USER "))
        .expect("a USER instruction in the runtime stage");
    let who = user[5..].trim().split(':').next().unwrap().to_owned();
    assert!(
        who != "root" && who != "0",
        "the runtime stage must not run as root: {user}"
    );
    let health = stage
        .iter()
        .find(|l| l.to_ascii_uppercase().starts_with("HEALTHCHECK "))
        .expect("a HEALTHCHECK in the runtime stage");
    assert!(health.contains("probe"), "{health}");
    assert!(
        stage.iter().any(|l| l.contains("COPY --from=")),
        "the runtime stage copies only the built binary"
    );
}

#[test]
fn compose_runs_instances_read_only_behind_nginx_with_redis() {
    let compose = read("deploy/docker-compose.yml");
    for needle in [
        "read_only: true",
        "cap_drop: [ALL]",
        "no-new-privileges:true",
        "REDIS_URL: redis://redis:6379/0",
        "TRUSTED_PROXIES:",
        "NODE_ENV: production",
        "mcp-a: *instance",
        "mcp-b: *instance",
        "nginx/mcp-dust-server.conf.template",
    ] {
        assert!(
            compose.contains(needle),
            "docker-compose.yml lacks {needle:?}"
        );
    }
}

#[test]
fn systemd_unit_keeps_its_hardening() {
    let unit = read("deploy/systemd/mcp-dust-server.service");
    for needle in [
        "NoNewPrivileges=yes",
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=\n",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "MemoryDenyWriteExecute=yes",
        "SystemCallFilter=@system-service",
        "KillSignal=SIGTERM",
        "EnvironmentFile=",
    ] {
        assert!(unit.contains(needle), "systemd unit lacks {needle:?}");
    }
}

#[test]
fn nginx_template_replaces_forwarded_for_and_redirects_plain_http() {
    let conf = read("deploy/nginx/mcp-dust-server.conf.template");
    assert!(conf.contains("proxy_set_header X-Forwarded-For $remote_addr;"));
    assert!(
        !conf.contains("$proxy_add_x_forwarded_for"),
        "appending keeps a client-supplied X-Forwarded-For"
    );
    assert!(conf.contains("return 301 https://"));
    assert!(conf.contains("ssl http2;"), "TLS with HTTP/2");
    assert!(
        conf.contains("proxy_buffering off;"),
        "SSE answers must stream"
    );
    assert!(conf.contains("server_tokens off;"));
    // Every ${PLACEHOLDER} is one the compose file and the cluster test fill in.
    let known: BTreeSet<&str> = [
        "UPSTREAM_A",
        "UPSTREAM_B",
        "HTTP_PORT",
        "HTTPS_PORT",
        "SERVER_NAME",
        "TLS_CERT",
        "TLS_KEY",
    ]
    .into();
    let placeholder = regex::Regex::new(r"\$\{([A-Z_]+)\}").unwrap();
    for capture in placeholder.captures_iter(&conf) {
        assert!(
            known.contains(&capture[1]),
            "unknown placeholder {}",
            &capture[1]
        );
    }
    let compose = read("deploy/docker-compose.yml");
    for name in known {
        assert!(
            compose.contains(&format!("{name}:")),
            "compose does not set {name}"
        );
    }
}

/// Checks that every `mcp_dust_server_*` metric `text` (a file of `deploy/`) names is one a
/// `counter!`/`histogram!`/`gauge!` in `src` records; returns how many it names.
fn metrics_named_are_recorded(file: &str, text: &str) -> usize {
    let metric = regex::Regex::new(r"mcp_dust_server_([a-z_]+)").unwrap();
    let mut sources = String::new();
    for entry in walk(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src"))) {
        sources.push_str(&std::fs::read_to_string(entry).unwrap());
    }
    let mut seen = 0;
    for capture in metric.captures_iter(text) {
        let name = capture[1]
            .trim_end_matches("_bucket")
            .trim_end_matches("_count")
            .trim_end_matches("_sum");
        assert!(
            sources.contains(&format!("!(\"{name}\"")),
            "{file} uses {name}, which no counter!/histogram!/gauge! in src records"
        );
        seen += 1;
    }
    seen
}

#[test]
fn every_metric_an_alert_names_exists_in_the_code() {
    let rules = read("deploy/prometheus/alerts.yml");
    let seen = metrics_named_are_recorded("alerts.yml", &rules);
    assert!(seen >= 5, "the rules name the server's metrics");
}

/// The Grafana dashboard (issue 21): valid JSON Grafana imports (a Prometheus datasource
/// variable, panels with queries), and every query names metrics the server records, covering
/// requests, latency, tool calls, Dust calls, the breaker, rate limiting and auth failures.
#[test]
fn the_dashboard_queries_the_metrics_the_server_records() {
    let text = read("deploy/grafana/mcp-dust-server.json");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(dashboard["uid"], "mcp-dust-server");
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    assert!(
        variables
            .iter()
            .any(|v| v["type"] == "datasource" && v["query"] == "prometheus")
    );
    let panels = dashboard["panels"].as_array().unwrap();
    let mut exprs = String::new();
    for panel in panels {
        let targets = panel["targets"].as_array().expect("every panel queries");
        assert!(!targets.is_empty(), "{}", panel["title"]);
        for target in targets {
            let expr = target["expr"].as_str().expect("a PromQL expression");
            assert!(expr.contains("mcp_dust_server_"), "{expr}");
            assert_eq!(target["datasource"]["uid"], "${datasource}");
            exprs.push_str(expr);
            exprs.push('\n');
        }
    }
    let seen = metrics_named_are_recorded("the dashboard", &exprs);
    assert!(seen >= 12, "{seen}");
    for family in [
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "tool_calls_total",
        "dust_requests_total",
        "dust_breaker_open_circuits",
        "rate_limited_total",
        "auth_failures_total",
    ] {
        assert!(exprs.contains(family), "no panel shows {family}");
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

#[tokio::test(flavor = "multi_thread")]
async fn probe_passes_on_a_ready_server_and_fails_on_a_closed_port() {
    let server = TestServer::start().await;
    let ok = Command::new(env!("CARGO_BIN_EXE_mcp-dust-server"))
        .args(["probe", "--url", &server.url("/ready")])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let down = Command::new(env!("CARGO_BIN_EXE_mcp-dust-server"))
        .args(["probe", "--port", &port.to_string()])
        .output()
        .unwrap();
    assert!(!down.status.success());
    assert!(
        String::from_utf8_lossy(&down.stderr).contains("no answer"),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );

    let missing = Command::new(env!("CARGO_BIN_EXE_mcp-dust-server"))
        .args(["probe", "--url", &server.url("/no-such-route")])
        .output()
        .unwrap();
    assert!(!missing.status.success(), "a 404 is not healthy");
}

// Kubernetes (issue 21): deploy/kubernetes/base and overlays/redis, rendered by `kubectl
// kustomize` and validated against the Kubernetes schemas, both installed by
// .ci/setup.d/60-kubernetes.sh in target/k8s-tools.

/// The Kubernetes versions the rendered objects are validated against: 1.30 is the oldest the
/// manifests support (the `preStop` sleep action is on by default from 1.30), 1.37 the newest
/// the validator bundles.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.30.0", "1.37.0"];

/// Seconds the drain needs past `SHUTDOWN_GRACE_PERIOD` (the 5 s abort window and the audit
/// flush): what the setting's help asks the orchestrator's kill timeout to leave.
const DRAIN_MARGIN_SECS: u64 = 15;

/// The tools, as .ci/setup.d/60-kubernetes.sh installs them.
struct K8sTools {
    kubectl: std::path::PathBuf,
    /// The virtual environment's Python, with `kubernetes_validate` and PyYAML.
    python: std::path::PathBuf,
}

/// The tools, or `None` (the test skips) when they are missing outside CI; in CI a missing tool
/// fails the test.
fn k8s_tools(test: &str) -> Option<K8sTools> {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/k8s-tools/bin");
    let tools = K8sTools {
        kubectl: bin.join("kubectl"),
        python: bin.join("python"),
    };
    let ready = tools.kubectl.exists()
        && Command::new(&tools.python)
            .args(["-c", "import kubernetes_validate, yaml"])
            .status()
            .is_ok_and(|s| s.success());
    if !ready {
        assert!(
            std::env::var_os("CI").is_none(),
            "kubectl or kubernetes-validate is missing (CI runs .ci/setup.d/60-kubernetes.sh first)"
        );
        eprintln!("skipped: {test} needs bash .ci/setup.d/60-kubernetes.sh");
        return None;
    }
    Some(tools)
}

/// `kubectl kustomize dir` (relative to the project root): the YAML and its objects as JSON.
fn render(tools: &K8sTools, dir: &str) -> (String, Vec<serde_json::Value>) {
    let out = Command::new(&tools.kubectl)
        .arg("kustomize")
        .arg(dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl kustomize {dir}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let yaml = String::from_utf8(out.stdout).unwrap();
    let mut python = Command::new(&tools.python)
        .args([
            "-c",
            "import json, sys, yaml; json.dump([d for d in yaml.safe_load_all(sys.stdin) if d], sys.stdout)",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut python.stdin.take().unwrap(), yaml.as_bytes()).unwrap();
    let json = python.wait_with_output().unwrap();
    assert!(json.status.success());
    let objects: Vec<serde_json::Value> = serde_json::from_slice(&json.stdout).unwrap();
    (yaml, objects)
}

/// Validates every object of `yaml` strictly (unknown fields are errors) against each of
/// [`KUBERNETES_VERSIONS`]; an object whose schema the validator lacks fails too (the tool
/// itself only warns).
fn validate(tools: &K8sTools, yaml: &str, objects: usize) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), yaml).unwrap();
    for version in KUBERNETES_VERSIONS {
        let out = Command::new(&tools.python)
            .args(["-m", "kubernetes_validate", "--strict", "-k", version])
            .arg(file.path())
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "Kubernetes {version}:\n{report}");
        assert!(
            !report.contains("WARN") && !report.contains("ERROR"),
            "Kubernetes {version}:\n{report}"
        );
        assert_eq!(
            report.matches(" passed for resource ").count(),
            objects,
            "every object is validated against Kubernetes {version}:\n{report}"
        );
    }
}

fn object<'a>(objects: &'a [serde_json::Value], kind: &str, name: &str) -> &'a serde_json::Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

/// The rendered ConfigMap the server's `envFrom` names (kustomize adds a hash to its name).
fn server_settings(objects: &[serde_json::Value]) -> BTreeMap<String, String> {
    let deployment = object(objects, "Deployment", "mcp-dust-server");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let config_map = container["envFrom"][0]["configMapRef"]["name"]
        .as_str()
        .expect("the server reads a ConfigMap");
    object(objects, "ConfigMap", config_map)["data"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect()
}

/// Every workload's pod and containers: non-root, read-only root file system, no privilege
/// escalation, no capabilities, the runtime's seccomp profile, resources bounded, no API token.
fn assert_hardened(objects: &[serde_json::Value]) -> usize {
    let mut workloads = 0;
    for workload in objects
        .iter()
        .filter(|o| o["kind"] == "Deployment" || o["kind"] == "StatefulSet")
    {
        workloads += 1;
        let name = &workload["metadata"]["name"];
        let pod = &workload["spec"]["template"]["spec"];
        assert_eq!(pod["automountServiceAccountToken"], false, "{name}");
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{name}");
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
            "{name}"
        );
        assert!(
            pod["securityContext"]["runAsUser"].as_u64().unwrap() > 0,
            "{name}"
        );
        for container in pod["containers"].as_array().unwrap() {
            let context = &container["securityContext"];
            assert_eq!(context["runAsNonRoot"], true, "{name}");
            assert_eq!(context["readOnlyRootFilesystem"], true, "{name}");
            assert_eq!(context["allowPrivilegeEscalation"], false, "{name}");
            assert_eq!(
                context["capabilities"]["drop"],
                serde_json::json!(["ALL"]),
                "{name}"
            );
            assert!(context["capabilities"]["add"].is_null(), "{name}");
            assert_eq!(
                context["seccompProfile"]["type"], "RuntimeDefault",
                "{name}"
            );
            for bound in ["requests", "limits"] {
                for resource in ["cpu", "memory"] {
                    assert!(
                        container["resources"][bound][resource].is_string(),
                        "{name}: resources.{bound}.{resource}"
                    );
                }
            }
        }
    }
    workloads
}

/// The names a setting may be given by: its variable and its aliases.
fn setting_names() -> BTreeSet<&'static str> {
    mcp_dust_server::config::SETTINGS
        .iter()
        .flat_map(|s| std::iter::once(s.env).chain(s.aliases.iter().copied()))
        .collect()
}

/// The server: probes on the routes the router serves at the port it listens on, the image's
/// user, a kill timeout that leaves the drain its time, and only real settings, the secret ones
/// from the operator's Secret (never in the manifests).
fn assert_server(objects: &[serde_json::Value]) {
    let settings = server_settings(objects);
    let deployment = object(objects, "Deployment", "mcp-dust-server");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];

    // Probes: readiness on /ready, liveness on /live, at the port named `http`, which is the
    // port the settings make the server listen on, on every interface.
    let router = read("src/http/mod.rs");
    for (probe, path) in [("readinessProbe", "/ready"), ("livenessProbe", "/live")] {
        assert_eq!(container[probe]["httpGet"]["path"], path, "{probe}");
        assert_eq!(container[probe]["httpGet"]["port"], "http", "{probe}");
        assert!(
            router.contains(&format!(".route(\"{path}\"")),
            "{path} is served"
        );
    }
    let port = &container["ports"][0];
    assert_eq!(port["name"], "http");
    assert_eq!(
        port["containerPort"].to_string(),
        settings["MCP_SERVER_PORT"]
    );
    assert!(
        read("deploy/Dockerfile").contains(&format!("EXPOSE {}", settings["MCP_SERVER_PORT"])),
        "the image's port"
    );
    assert!(
        !mcp_dust_server::config::is_loopback_host(Some(&settings["MCP_SERVER_HOST"])),
        "the kubelet cannot probe a loopback address"
    );
    assert_eq!(settings["NODE_ENV"], "production");
    // The Service reaches that port.
    let service = object(objects, "Service", "mcp-dust-server");
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "http");
    assert_eq!(
        service["spec"]["selector"],
        deployment["spec"]["selector"]["matchLabels"]
    );

    // The image's non-root user (deploy/Dockerfile: USER 65532:65532).
    let uid = pod["securityContext"]["runAsUser"].as_u64().unwrap();
    assert!(
        read("deploy/Dockerfile").contains(&format!("USER {uid}:")),
        "{uid}"
    );

    // SIGKILL comes after the preStop sleep, the grace period and the drain's margin.
    assert!(
        mcp_dust_server::config::SETTINGS
            .iter()
            .any(|s| s.env == "SHUTDOWN_GRACE_PERIOD"
                && s.help.contains(&format!("{DRAIN_MARGIN_SECS} s more"))),
        "the setting's help still asks for {DRAIN_MARGIN_SECS} s"
    );
    let grace: u64 = settings["SHUTDOWN_GRACE_PERIOD"]
        .parse()
        .expect("SHUTDOWN_GRACE_PERIOD is set explicitly");
    let pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_u64()
        .expect("a preStop sleep lets endpoints drain first");
    let kill_after = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    assert!(
        kill_after > pre_stop + grace + DRAIN_MARGIN_SECS,
        "terminationGracePeriodSeconds {kill_after} <= {pre_stop} + {grace} + {DRAIN_MARGIN_SECS}"
    );

    // Every variable set is a setting (or an OpenTelemetry SDK variable); secret settings come
    // from the Secret, the others from the ConfigMap.
    let known = setting_names();
    let secret: BTreeSet<&str> = mcp_dust_server::config::SETTINGS
        .iter()
        .filter(|s| s.secret)
        .map(|s| s.env)
        .collect();
    for name in settings.keys() {
        assert!(
            known.contains(name.as_str()) || name.starts_with("OTEL_"),
            "the ConfigMap sets {name}, which is no setting (mcp-dust-server config-table)"
        );
        assert!(
            !secret.contains(name.as_str()),
            "{name} is secret: not in a ConfigMap"
        );
    }
    for variable in container["env"].as_array().unwrap() {
        let name = variable["name"].as_str().unwrap();
        assert!(
            known.contains(name) || name.starts_with("OTEL_"),
            "the Deployment sets {name}, which is no setting"
        );
        if secret.contains(name) {
            let reference = &variable["valueFrom"]["secretKeyRef"];
            assert_eq!(reference["name"], "mcp-dust-server", "{name}");
            assert_eq!(reference["key"], name);
        }
    }
    assert!(
        objects.iter().all(|o| o["kind"] != "Secret"),
        "the operator creates the Secret; the manifests hold none"
    );
    // With the Secret's key added, the settings load and pass the production start-up checks.
    let mut env = settings.clone();
    env.insert(
        "SECURITY_SECRET_KEY".to_owned(),
        mcp_dust_server::secret::generate(),
    );
    let config = mcp_dust_server::config::Config::from_sources(&BTreeMap::new(), |name| {
        env.get(name).cloned()
    })
    .expect("the ConfigMap's settings load");
    assert!(config.is_production());
    assert_eq!(config.production_problems(), Vec::<String>::new());
    assert_eq!(config.shutdown_grace.as_secs(), grace);
    // An HPA owns the replica count; a count in the Deployment would reset it on every apply.
    assert!(deployment["spec"]["replicas"].is_null());
    let hpa = object(objects, "HorizontalPodAutoscaler", "mcp-dust-server");
    assert_eq!(hpa["apiVersion"], "autoscaling/v2");
    assert_eq!(hpa["spec"]["scaleTargetRef"]["name"], "mcp-dust-server");
    let pdb = object(objects, "PodDisruptionBudget", "mcp-dust-server");
    assert_eq!(pdb["spec"]["selector"], deployment["spec"]["selector"]);
    // Out of the pod: DNS and HTTPS only.
    let policy = object(objects, "NetworkPolicy", "mcp-dust-server");
    assert_eq!(
        policy["spec"]["podSelector"],
        deployment["spec"]["selector"]
    );
    assert_eq!(
        policy["spec"]["policyTypes"],
        serde_json::json!(["Ingress", "Egress"])
    );
    let mut egress_ports: Vec<u64> = policy["spec"]["egress"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|rule| rule["ports"].as_array().unwrap().clone())
        .map(|p| p["port"].as_u64().unwrap())
        .collect();
    egress_ports.dedup();
    assert_eq!(egress_ports, [53, 443]);
}

/// The secret keys the objects read without `optional: true`: the operator's Secret must hold
/// each of them.
fn required_secret_keys(objects: &[serde_json::Value]) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for workload in objects
        .iter()
        .filter(|o| o["kind"] == "Deployment" || o["kind"] == "StatefulSet")
    {
        for container in workload["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
        {
            for variable in container["env"].as_array().into_iter().flatten() {
                let reference = &variable["valueFrom"]["secretKeyRef"];
                if reference.is_object() && reference["optional"] != true {
                    keys.insert(reference["key"].as_str().unwrap().to_owned());
                }
            }
        }
    }
    keys
}

/// The base: one instance with its state in memory, hardened, valid for Kubernetes 1.30 and
/// later, and its image replaceable by kustomize's `images:`.
#[test]
fn kubernetes_base_renders_valid_hardened_objects() {
    let Some(tools) = k8s_tools("kubernetes_base_renders_valid_hardened_objects") else {
        return;
    };
    let (yaml, objects) = render(&tools, "deploy/kubernetes/base");
    let kinds: BTreeSet<&str> = objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "ConfigMap",
            "Deployment",
            "HorizontalPodAutoscaler",
            "NetworkPolicy",
            "PodDisruptionBudget",
            "Service",
        ])
    );
    validate(&tools, &yaml, objects.len());
    assert_eq!(assert_hardened(&objects), 1);
    assert_server(&objects);
    // State in memory: one replica, and no Redis.
    let hpa = object(&objects, "HorizontalPodAutoscaler", "mcp-dust-server");
    assert_eq!(hpa["spec"]["maxReplicas"], 1);
    assert!(!yaml.contains("REDIS_URL"));
    assert_eq!(
        required_secret_keys(&objects),
        BTreeSet::from(["SECURITY_SECRET_KEY".to_owned()])
    );

    // doctor, run in a pod with these settings, passes every Kubernetes check but the host
    // the operator must replace.
    let mut doctor = Command::new(env!("CARGO_BIN_EXE_mcp-dust-server"));
    doctor
        .arg("doctor")
        .env_clear()
        .envs(server_settings(&objects))
        .env("SECURITY_SECRET_KEY", mcp_dust_server::secret::generate())
        .env("KUBERNETES_SERVICE_HOST", "10.96.0.1");
    let report = String::from_utf8(doctor.output().unwrap().stdout).unwrap();
    let kubernetes: Vec<&str> = report
        .lines()
        .filter(|l| l.contains(" Kubernetes"))
        .collect();
    assert_eq!(kubernetes.len(), 6, "{report}");
    for line in kubernetes {
        assert!(
            !line.contains("FAIL") || line.contains("FAIL  Kubernetes public host"),
            "{report}"
        );
    }
    assert!(report.contains("FAIL  Kubernetes public host"), "{report}");

    // An overlay's `images:` names the registry and tag.
    let overlay =
        tempfile::tempdir_in(Path::new(env!("CARGO_MANIFEST_DIR")).join("target")).unwrap();
    std::fs::write(
        overlay.path().join("kustomization.yaml"),
        "resources: [../../deploy/kubernetes/base]\nimages:\n  - name: mcp-dust-server\n    \
         newName: registry.example.com/team/mcp-dust-server\n    newTag: \"9.9.9\"\n",
    )
    .unwrap();
    let dir = format!(
        "target/{}",
        overlay.path().file_name().unwrap().to_str().unwrap()
    );
    let (_, objects) = render(&tools, &dir);
    let deployment = object(&objects, "Deployment", "mcp-dust-server");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example.com/team/mcp-dust-server:9.9.9"
    );
}

/// The Redis overlay: several replicas sharing one Redis, which only the server's pods reach,
/// and whose secrets the documented `kubectl create secret` command provides.
#[test]
fn kubernetes_redis_overlay_shares_state_and_fences_redis() {
    let Some(tools) = k8s_tools("kubernetes_redis_overlay_shares_state_and_fences_redis") else {
        return;
    };
    let (yaml, objects) = render(&tools, "deploy/kubernetes/overlays/redis");
    validate(&tools, &yaml, objects.len());
    assert_eq!(assert_hardened(&objects), 2);
    assert_server(&objects);

    let hpa = object(&objects, "HorizontalPodAutoscaler", "mcp-dust-server");
    assert!(hpa["spec"]["minReplicas"].as_u64().unwrap() >= 2);
    assert!(hpa["spec"]["maxReplicas"].as_u64().unwrap() > 2);

    // REDIS_URL (it may hold the password) from the Secret, naming Redis's Service and port.
    let deployment = object(&objects, "Deployment", "mcp-dust-server");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert!(
        container["env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["name"] == "REDIS_URL"
                && v["valueFrom"]["secretKeyRef"]["key"] == "REDIS_URL")
    );
    let redis = object(&objects, "StatefulSet", "mcp-dust-server-redis");
    let redis_labels = &redis["spec"]["template"]["metadata"]["labels"];
    let service = object(&objects, "Service", "mcp-dust-server-redis");
    assert_eq!(service["spec"]["ports"][0]["port"], 6379);
    for (key, value) in service["spec"]["selector"].as_object().unwrap() {
        assert_eq!(&redis_labels[key], value, "the Service selects Redis");
    }

    // Only the server's pods reach Redis; the server may reach it.
    let server_labels = &deployment["spec"]["template"]["metadata"]["labels"];
    let fence = object(&objects, "NetworkPolicy", "mcp-dust-server-redis");
    assert_eq!(
        fence["spec"]["podSelector"]["matchLabels"],
        redis["spec"]["selector"]["matchLabels"]
    );
    assert_eq!(
        fence["spec"]["policyTypes"],
        serde_json::json!(["Ingress", "Egress"])
    );
    let ingress = fence["spec"]["ingress"].as_array().unwrap();
    assert_eq!(ingress.len(), 1);
    let from = ingress[0]["from"].as_array().unwrap();
    assert_eq!(from.len(), 1);
    for (key, value) in from[0]["podSelector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(&server_labels[key], value, "only the server's pods");
    }
    assert_ne!(
        from[0]["podSelector"]["matchLabels"],
        redis["spec"]["selector"]["matchLabels"]
    );
    assert!(from[0]["namespaceSelector"].is_null() && from[0]["ipBlock"].is_null());
    let out = object(&objects, "NetworkPolicy", "mcp-dust-server-to-redis");
    assert_eq!(out["spec"]["podSelector"], deployment["spec"]["selector"]);
    assert_eq!(out["spec"]["egress"][0]["ports"][0]["port"], 6379);

    // The guide's `kubectl create secret` provides every key the pods need.
    let guide = read("docs/DEPLOYMENT.md");
    let create = guide
        .split("kubectl create secret generic mcp-dust-server")
        .nth(1)
        .expect("the guide creates the Secret")
        .split("\n\n")
        .next()
        .unwrap();
    let keys = required_secret_keys(&objects);
    assert_eq!(
        keys,
        BTreeSet::from(["REDIS_PASSWORD", "REDIS_URL", "SECURITY_SECRET_KEY"].map(String::from))
    );
    for key in keys {
        assert!(
            create.contains(&format!("--from-literal={key}=")),
            "{key}:\n{create}"
        );
    }
    assert!(guide.contains("kubectl apply -k deploy/kubernetes/overlays/redis"));
}
