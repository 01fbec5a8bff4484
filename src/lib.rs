//! mcp-dust-server: a Model Context Protocol server for Dust workspaces.
//!
//! Module map:
//! - [`dust`]: the upstream, the `DustApi` trait and its HTTP client.
//! - [`sim`]: a Dust API simulator that follows the same contract, for demos and tests.
//! - [`auth`]: who the caller is (`Principal`) and what it may do (permissions).

pub mod auth;
pub mod dust;
pub mod sim;
