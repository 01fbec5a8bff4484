//! The operation descriptors: for each operation its name, the permission it needs, whether it
//! reaches Dust, and what kind of effect it has.
//!
//! Each operation declares its descriptor as a `const` beside its function (`agents::LIST_AGENTS`
//! beside `agents::list_agents`), so adding an operation touches the noun's file and not a
//! central list. The descriptor is read by everything that must agree about it: the MCP tool table
//! (`crate::mcp::tools`, which adds the title and description a model reads, and derives the
//! tool's annotations from [`Kind`]), the REST routes (`crate::http::rest`, through
//! [`super::Call::begin`]), and the audit record of every call (its `action` is the name, its
//! type follows the kind). A tool and the route that does the same thing share a row, so their
//! permission cannot drift apart.

use crate::auth::Permission;

/// What an operation does to the workspace, for annotations and the audit record's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Reads; no side effect (`resource_access`).
    Read,
    /// Runs an agent: creates conversations and messages, and the agent may act through its
    /// tools (`resource_modified`).
    Run,
    /// Creates or replaces something (`resource_modified`).
    Write,
    /// Deletes something (`resource_modified`).
    Delete,
    /// Reads the server's own administrative records (`resource_access`).
    Admin,
}

impl Kind {
    /// Whether the audit record of a call is `resource_modified` (else `resource_access`).
    #[must_use]
    pub fn modifies(self) -> bool {
        matches!(self, Self::Run | Self::Write | Self::Delete)
    }
}

/// One operation.
#[derive(Debug, PartialEq, Eq)]
pub struct Op {
    /// Its name: the MCP tool's name, the audit record's `action`.
    pub name: &'static str,
    /// The permission a caller needs.
    pub permission: Permission,
    /// Whether it calls Dust: such a call takes one of the caller's bulkhead slots.
    pub upstream: bool,
    pub kind: Kind,
}

/// A descriptor (a `const`, declared beside the operation's function).
pub(crate) const fn op(
    name: &'static str,
    permission: Permission,
    upstream: bool,
    kind: Kind,
) -> Op {
    Op {
        name,
        permission,
        upstream,
        kind,
    }
}

/// `GET /api/v1/audit`: the recent audit records of the caller's workspace (REST and console
/// only; the records live with the HTTP state, `crate::state::App::recent_audit`).
pub const QUERY_AUDIT: Op = op("query_audit", Permission::AdminAudit, false, Kind::Admin);
