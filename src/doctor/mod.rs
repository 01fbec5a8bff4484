//! `mcp-dust-server doctor`: the guide's security checklist, checked by the program where a
//! program can check it.
//!
//! Each checklist line becomes one or more [`Item`]s that pass, fail with the fix, do not apply,
//! or remind a person of what only people can do (an incident plan). The checks read the
//! effective configuration (the same loading as `serve`), the dependency advisories of the
//! `Cargo.lock` this binary was built from, and with `--url` a running server's answers. A
//! failure anywhere makes the exit status non-zero, so the command can gate a deployment.
//!
//! Where the server runs and what it exports are read from the environment itself: a pod's
//! `KUBERNETES_SERVICE_HOST` ([`kubernetes`]) and the OpenTelemetry SDK's `OTEL_*` variables
//! ([`otel`]), which are standard names rather than settings of this server.
//!
//! No check prints a secret's value: a weak secret is described, never shown.

mod advisories;
mod kubernetes;
mod otel;
mod remote;
mod settings;

use std::{fmt::Write as _, path::PathBuf};

use crate::config::Config;

/// The guide's checklist lines, in its order; every item belongs to one of them.
pub const CHECKLIST: [&str; 14] = [
    "Environment variables are set correctly",
    "HTTPS is configured properly",
    "API keys are strong and secure",
    "JWT secret key is strong and secure",
    "Rate limiting is enabled",
    "CSRF protection is enabled",
    "Secure headers are enabled",
    "Session management is secure",
    "Logging is configured properly",
    "Dependencies are up to date",
    "Code has been scanned for vulnerabilities",
    "Security best practices are followed",
    "Monitoring and alerting are in place",
    "Incident response plan is in place",
];

/// Reads one environment variable; an empty value counts as unset (as the OpenTelemetry
/// specification says of its variables). Tests pass a map instead of the process environment.
type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment as a [`Lookup`].
fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// What one check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Pass(String),
    Fail {
        problem: String,
        fix: String,
    },
    NotApplicable(String),
    /// Something only people can do; never fails the run.
    Reminder(String),
}

/// One checked item under a checklist line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Index into [`CHECKLIST`].
    pub line: usize,
    pub what: String,
    pub outcome: Outcome,
}

impl Item {
    fn new(line: usize, what: impl Into<String>, outcome: Outcome) -> Self {
        Self {
            line,
            what: what.into(),
            outcome,
        }
    }
}

pub(crate) fn pass(detail: impl Into<String>) -> Outcome {
    Outcome::Pass(detail.into())
}

pub(crate) fn fail(problem: impl Into<String>, fix: impl Into<String>) -> Outcome {
    Outcome::Fail {
        problem: problem.into(),
        fix: fix.into(),
    }
}

/// What to check besides the configuration.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// A running server's public URL to probe (`--url`).
    pub url: Option<String>,
    /// A RustSec advisory database checkout (`--advisory-db`).
    pub advisory_db: Option<PathBuf>,
}

/// Everything that was checked.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub items: Vec<Item>,
}

impl Report {
    /// Whether any item failed.
    pub fn failed(&self) -> bool {
        self.items
            .iter()
            .any(|i| matches!(i.outcome, Outcome::Fail { .. }))
    }

    /// The report as text, grouped by checklist line, with a closing summary.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let (mut passed, mut failed, mut skipped) = (0, 0, 0);
        for (index, line) in CHECKLIST.iter().enumerate() {
            let _ = writeln!(out, "{line}");
            for item in self.items.iter().filter(|i| i.line == index) {
                let (tag, text) = match &item.outcome {
                    Outcome::Pass(detail) => {
                        passed += 1;
                        ("PASS", detail.clone())
                    }
                    Outcome::Fail { problem, fix } => {
                        failed += 1;
                        ("FAIL", format!("{problem}\n           fix: {fix}"))
                    }
                    Outcome::NotApplicable(why) => {
                        skipped += 1;
                        ("N/A ", why.clone())
                    }
                    Outcome::Reminder(what) => ("TODO", what.clone()),
                };
                let _ = writeln!(out, "  {tag}  {}: {text}", item.what);
            }
        }
        let _ = writeln!(
            out,
            "\n{passed} passed, {failed} failed, {skipped} not applicable"
        );
        out
    }
}

/// Runs every check. `config` is the result of loading the configuration: a configuration that
/// does not load is itself the first failure, and the checks that need it do not apply.
pub async fn run(config: anyhow::Result<Config>, options: &Options) -> Report {
    let mut items = Vec::new();
    match &config {
        Ok(config) => {
            items.push(Item::new(
                0,
                "configuration",
                pass("the settings load and validate"),
            ));
            items.extend(settings::check(config));
            items.push(settings::redis(config).await);
            items.extend(kubernetes::check(config, &process_env));
        }
        Err(error) => {
            items.push(Item::new(
                0,
                "configuration",
                fail(
                    format!("{error:#}"),
                    "correct the setting named above (README, Configuration)",
                ),
            ));
        }
    }
    items.extend(otel::check(&process_env));
    items.push(advisories::check(options.advisory_db.as_deref()));
    items.push(Item::new(
        10,
        "static analysis",
        Outcome::Reminder(
            "CI runs clippy with warnings denied and cargo deny (licences, bans, advisories); \
             run `cargo deny check` on the source you build from"
                .to_owned(),
        ),
    ));
    items.push(Item::new(
        11,
        "review",
        Outcome::Reminder(
            "least privilege for each person's permissions (PERMISSIONS_DEFAULT, the policy \
             file), key rotation, and reading the audit log are people's work"
                .to_owned(),
        ),
    ));
    items.push(Item::new(
        13,
        "incident response",
        Outcome::Reminder(
            "write down who is paged by the alerts, how to revoke tokens (restart with a new \
             SECURITY_SECRET_KEY revokes them all) and how to rotate Dust keys"
                .to_owned(),
        ),
    ));
    match &options.url {
        Some(url) => items.extend(remote::check(url, config.as_ref().ok()).await),
        None => items.push(Item::new(
            6,
            "live server",
            Outcome::NotApplicable("no --url given: the running server was not probed".into()),
        )),
    }
    items.sort_by_key(|i| i.line);
    Report { items }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use crate::config::Config;

    /// The configuration these settings load to (no file, no process environment).
    pub(crate) fn config(settings: &[(&str, &str)]) -> Config {
        let env = env_of(settings);
        Config::from_sources(&BTreeMap::new(), env).unwrap()
    }

    /// A lookup over `vars`, empty values unset (as [`super::process_env`] reads them).
    pub(crate) fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let vars: BTreeMap<String, String> = vars
            .iter()
            .filter(|(_, v)| !v.trim().is_empty())
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| vars.get(name).cloned()
    }
}
