//! The command line: `mcp-dust-server <command>`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::sim::SimConfig;

/// A secure MCP server for Dust workspaces.
#[derive(Debug, Parser)]
#[command(name = "mcp-dust-server", version, about, long_about = None)]
pub struct Cli {
    /// A TOML file with settings (keys named like the environment variables); the environment
    /// wins over it.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve MCP over Streamable HTTP at /mcp, with login, the REST API and operations routes.
    Serve,
    /// The simulator and the server in one process, with a demo key and ready-to-paste client
    /// configuration.
    Demo,
    /// Serve MCP on standard input and output for a local client (Claude Desktop, Cursor, ...).
    /// Credentials come from DUST_API_KEY and DUST_WORKSPACE_ID; logs go to standard error.
    Stdio,
    /// Run the Dust API simulator, for trying things without a Dust account and for tests.
    Sim(Box<SimConfig>),
    /// Print a new random secret for SECURITY_SECRET_KEY.
    GenSecret,
    /// Check the guide's security checklist against the configuration (and a running server
    /// with --url); exits non-zero when an item fails, naming the fix.
    Doctor {
        /// The public URL of a running server to probe, e.g. `https://mcp.example.com`.
        #[arg(long)]
        url: Option<String>,
        /// A RustSec advisory database checkout (default: ../shared/advisory-db or ./advisory-db).
        #[arg(long, value_name = "DIR")]
        advisory_db: Option<PathBuf>,
    },
    /// Exit 0 when the server on this machine answers its readiness probe (for container
    /// health checks, where there is no curl).
    Probe {
        /// The URL to probe; by default /ready on the local port.
        #[arg(long)]
        url: Option<String>,
        /// The local port, when --url is not given.
        #[arg(long, env = "MCP_SERVER_PORT", default_value_t = 5001)]
        port: u16,
    },
    /// Print the configuration table (Markdown) of every setting, or `.env.example` with --env.
    #[command(hide = true)]
    ConfigTable {
        /// Print `.env.example` instead of the Markdown table.
        #[arg(long)]
        env: bool,
    },
}
