//! The permission policy, on one screen.
//!
//! Fourteen permissions (the names of `shared/spec/interface.md`), each a resource kind and an
//! operation. They are checked at the three levels the security guide names: which resource URI
//! (resource level), which tool (tool level), and what the call does to it (operation level:
//! read, write, delete, execute). A [`PermissionSet`] is a bit set, so a check is one AND.

use std::{fmt, str::FromStr};

/// What a call does to a resource: the operation level of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Read,
    Write,
    Delete,
    Execute,
    Admin,
}

/// One permission. The string form (`read:agents`, ...) is what users write in
/// `PERMISSIONS_DEFAULT`, policy files and login requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    ReadWorkspaces,
    WriteWorkspaces,
    ReadAgents,
    WriteAgents,
    ExecuteAgents,
    ReadKnowledgeBases,
    WriteKnowledgeBases,
    DeleteKnowledgeBases,
    ReadConnectors,
    WriteConnectors,
    ExecuteConnectors,
    AdminAudit,
    AdminMetrics,
    AdminTokens,
}

impl Permission {
    /// Every permission, in the order of interface.md.
    pub const ALL: [Permission; 14] = [
        Self::ReadWorkspaces,
        Self::WriteWorkspaces,
        Self::ReadAgents,
        Self::WriteAgents,
        Self::ExecuteAgents,
        Self::ReadKnowledgeBases,
        Self::WriteKnowledgeBases,
        Self::DeleteKnowledgeBases,
        Self::ReadConnectors,
        Self::WriteConnectors,
        Self::ExecuteConnectors,
        Self::AdminAudit,
        Self::AdminMetrics,
        Self::AdminTokens,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ReadWorkspaces => "read:workspaces",
            Self::WriteWorkspaces => "write:workspaces",
            Self::ReadAgents => "read:agents",
            Self::WriteAgents => "write:agents",
            Self::ExecuteAgents => "execute:agents",
            Self::ReadKnowledgeBases => "read:knowledge-bases",
            Self::WriteKnowledgeBases => "write:knowledge-bases",
            Self::DeleteKnowledgeBases => "delete:knowledge-bases",
            Self::ReadConnectors => "read:connectors",
            Self::WriteConnectors => "write:connectors",
            Self::ExecuteConnectors => "execute:connectors",
            Self::AdminAudit => "admin:audit",
            Self::AdminMetrics => "admin:metrics",
            Self::AdminTokens => "admin:tokens",
        }
    }

    /// The operation this permission allows.
    pub const fn operation(self) -> Operation {
        match self {
            Self::ReadWorkspaces
            | Self::ReadAgents
            | Self::ReadKnowledgeBases
            | Self::ReadConnectors => Operation::Read,
            Self::WriteWorkspaces
            | Self::WriteAgents
            | Self::WriteKnowledgeBases
            | Self::WriteConnectors => Operation::Write,
            Self::DeleteKnowledgeBases => Operation::Delete,
            Self::ExecuteAgents | Self::ExecuteConnectors => Operation::Execute,
            Self::AdminAudit | Self::AdminMetrics | Self::AdminTokens => Operation::Admin,
        }
    }

    const fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A permission name that is not one of the fourteen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown permission {0:?}; known permissions are {known}", known = known_names())]
pub struct UnknownPermission(pub String);

fn known_names() -> String {
    Permission::ALL.map(Permission::as_str).join(", ")
}

impl FromStr for Permission {
    type Err = UnknownPermission;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Permission::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownPermission(s.to_owned()))
    }
}

/// A set of permissions.
#[derive(Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct PermissionSet(u16);

impl PermissionSet {
    pub const EMPTY: Self = Self(0);

    /// The default grant of a valid key: every read permission and `execute:agents`.
    pub const DEFAULT: Self = Self::of(&[
        Permission::ReadWorkspaces,
        Permission::ReadAgents,
        Permission::ExecuteAgents,
        Permission::ReadKnowledgeBases,
        Permission::ReadConnectors,
    ]);

    pub const fn of(permissions: &[Permission]) -> Self {
        let mut bits = 0;
        let mut i = 0;
        while i < permissions.len() {
            bits |= permissions[i].bit();
            i += 1;
        }
        Self(bits)
    }

    pub fn all() -> Self {
        Self::of(&Permission::ALL)
    }

    /// The set as its bits (one per permission): a compact key for what depends on the set.
    #[must_use]
    pub const fn bits(self) -> u16 {
        self.0
    }

    #[must_use]
    pub const fn contains(self, permission: Permission) -> bool {
        self.0 & permission.bit() != 0
    }

    /// The permissions of both sets: how a token narrows what the policy grants.
    #[must_use]
    pub const fn intersect(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    #[must_use]
    pub const fn is_subset_of(self, other: Self) -> bool {
        self.0 & !other.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL
            .into_iter()
            .filter(move |p| self.contains(*p))
    }

    /// The names, in canonical order.
    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(Permission::as_str).collect()
    }

    /// Parses a comma- or space-separated list (`PERMISSIONS_DEFAULT`). An empty list is the
    /// empty set; an unknown name is an error, never silently dropped.
    pub fn parse_list(list: &str) -> Result<Self, UnknownPermission> {
        list.split([',', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Permission::from_str)
            .collect()
    }
}

impl FromIterator<Permission> for PermissionSet {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        Self(iter.into_iter().fold(0, |bits, p| bits | p.bit()))
    }
}

impl fmt::Debug for PermissionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.names()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in Permission::ALL {
            assert_eq!(p.as_str().parse::<Permission>(), Ok(p));
        }
        assert!("read:everything".parse::<Permission>().is_err());
        assert!("READ:AGENTS".parse::<Permission>().is_err());
    }

    #[test]
    fn default_is_reads_and_execute_agents() {
        assert_eq!(
            PermissionSet::DEFAULT.names(),
            [
                "read:workspaces",
                "read:agents",
                "execute:agents",
                "read:knowledge-bases",
                "read:connectors"
            ]
        );
        assert!(!PermissionSet::DEFAULT.contains(Permission::WriteKnowledgeBases));
    }

    #[test]
    fn parse_list_rejects_unknown_names() {
        let set = PermissionSet::parse_list("read:agents, write:knowledge-bases").unwrap();
        assert!(set.contains(Permission::ReadAgents));
        assert!(set.contains(Permission::WriteKnowledgeBases));
        assert!(!set.contains(Permission::ExecuteAgents));
        let err = PermissionSet::parse_list("read:agents,admin:all").unwrap_err();
        assert_eq!(err.0, "admin:all");
        assert_eq!(PermissionSet::parse_list("").unwrap(), PermissionSet::EMPTY);
    }

    #[test]
    fn narrowing_never_widens() {
        let requested = PermissionSet::of(&[Permission::ReadAgents, Permission::AdminTokens]);
        let granted = PermissionSet::DEFAULT.intersect(requested);
        assert!(granted.is_subset_of(PermissionSet::DEFAULT));
        assert!(!granted.contains(Permission::AdminTokens));
    }
}
