//! Every integration test in one binary (crates.io's `tests/all.rs` pattern): one link for the
//! whole suite instead of one per file, which on a 2-core machine was most of the time a
//! one-line change spent before the first test ran. Each former `tests/<name>.rs` is the module
//! `<name>`; `cargo test --test all <name>::` runs one of them.
//!
//! Two tests keep a binary of their own because they need the process to themselves:
//! `tests/audit_log.rs` installs the process-wide tracing subscriber it reads back, and
//! `tests/metrics_upkeep.rs` measures the process's resident memory.

#[path = "../common/mod.rs"]
mod common;

mod agent_tools;
mod alerting;
mod approval_rounds;
mod approvals;
mod attachments;
mod browser;
mod cluster;
mod demo;
mod deploy_files;
mod doctor;
mod dust_client_wiremock;
mod fuzz_smoke;
mod http_auth;
mod http_authz;
mod http_csrf;
mod http_dos;
mod http_headers;
mod http_input;
mod http_key_revoked;
mod http_login_upstream;
mod http_rate_limit;
mod http_rest;
mod http_sessions;
mod http_shutdown;
mod interop_node;
mod interop_python;
mod lifecycle;
mod list_fast_path;
mod mcp;
mod oauth;
mod properties;
mod redis_cluster;
mod redis_tls;
mod rest_schemathesis;
mod shared_state;
mod sigterm;
mod sim;
mod stdio;
mod tasks;
mod traces;
mod upstream_faults;
mod wire_log;
