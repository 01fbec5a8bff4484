//! mcp-dust-server: a Model Context Protocol server for Dust workspaces.
//!
//! Module map:
//! - [`cli`], [`config`], [`telemetry`]: the command line, settings, logging and traces.
//! - [`dust`]: the upstream: the `DustApi` trait and its HTTP client.
//! - [`sim`]: a Dust API simulator that follows the same contract, for demos and tests.
//! - [`auth`]: who the caller is (`Principal`) and what it may do (policy file); derived keys,
//!   the JWT profile, sealing Dust keys and issuing tokens, the login-throttling policy.
//! - [`permissions`]: the fourteen permissions and their bit set: checked by `auth`, carried by
//!   token records in `store` (a leaf module, so `store` never imports `auth`).
//! - [`ops`]: what each operation means, whatever the transport: context, caller, checks,
//!   audit, one error type, typed views, one function per operation and its descriptor.
//! - [`mcp`]: the MCP adapter over `ops` (tools, resources, prompts), one type for every
//!   transport.
//! - [`stdio`]: the stdio transport: credentials from the environment.
//! - [`store`]: server-side state behind small traits, in memory or Redis: conversation
//!   ownership, rate-limit counters, failed-login counters, browser sessions, OAuth records,
//!   token records; one contract suite per trait, stamped for every backend.
//! - [`secret`]: random secrets.
//! - [`mask`]: masking of secrets in text, URLs, headers and JSON, for every log and error path.
//! - [`audit`]: the security audit trail (event vocabulary, bounded queue, JSON lines).
//! - [`http`], [`error`], [`state`]: the HTTP server (`/mcp`, login, operations), its one
//!   error envelope and its shared state; [`serve`] and [`demo`] run it.
//! - [`app`]: the composition root: the Dust client and breaker, audit sink, listen address and
//!   end of a run, built once for `serve`, `stdio` and `demo`.
//! - [`crypto`]: random bytes and tokens, the keyed MAC; [`timezone`]: IANA names.
//! - [`observe`]: Prometheus metrics.

pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod demo;
pub mod doctor;
pub mod dust;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod mask;
pub mod mcp;
pub mod observe;
pub mod ops;
pub mod permissions;
pub mod probe;
pub mod secret;
pub mod serve;
pub mod shutdown;
pub mod sim;
pub mod state;
pub mod stdio;
pub mod store;
pub mod telemetry;
pub mod timezone;

pub use shutdown::shutdown_signal;
