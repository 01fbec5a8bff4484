//! Who gets which permissions: the optional policy file (`PERMISSIONS_POLICY_FILE`).
//!
//! ```toml
//! # What any valid key gets unless an entry below says otherwise. Optional: without it,
//! # PERMISSIONS_DEFAULT applies.
//! default = ["read:agents", "execute:agents"]
//!
//! # By key fingerprint (the `usr_…` id shown at login and in the audit log). Trustworthy: it
//! # is derived from the key itself.
//! [users]
//! "usr_0123456789abcdef01234567" = ["read:agents", "admin:tokens"]
//! ```
//!
//! An entry by key fingerprint wins over the default. A login request may then only narrow the
//! grant ([`Policy::narrow`]). Mistakes fail the load: an unknown permission, an unknown table,
//! or a `[users]` name that is not a fingerprint (the error never repeats that name: it may be a
//! pasted API key).
//!
//! Permissions come only from what is verified: the key (its fingerprint), never from what a
//! caller asserts. The `username` of a login or consent is a label that no one checks (a Dust key
//! is workspace-scoped and names no person), so a former `[usernames]` section, which granted
//! permissions by that label, handed them to anyone holding any valid key of the workspace who
//! typed the name. A file that still has one is refused at start-up
//! ([`PolicyError::UsernamesNotVerified`]), naming its entries and pointing to `[users]`:
//! refusing, rather than starting and ignoring the section, means no deployment silently loses
//! (or believes it still has) the grants it wrote, and someone has to look at who really needs
//! them. `mcp-dust-server doctor` reports the same error.

use std::{collections::HashMap, path::Path};

use serde::Deserialize;

use super::permissions::{Permission, PermissionSet, UnknownPermission};

/// Why a policy file was refused.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read the permissions policy file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the permissions policy is not valid: {0}")]
    Parse(String),
    #[error("the permissions policy, {entry}: {source}")]
    Permission {
        entry: String,
        source: UnknownPermission,
    },
    #[error(
        "the permissions policy, [users] entry number {position}: names must be key fingerprints (`usr_` and 24 hex characters), not keys or usernames"
    )]
    NotAFingerprint { position: usize },
    #[error(
        "the permissions policy has a [usernames] section ({entries}): a username is asserted at login and verified by no one, so it cannot grant permissions; remove the section and grant by key fingerprint under [users] instead (\"usr_...\" = [...], the id shown at login and in the audit log)"
    )]
    UsernamesNotVerified {
        /// The section's entry names, comma-separated (one that looks like an API key is not
        /// shown).
        entries: String,
    },
}

/// The file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    default: Option<Vec<String>>,
    #[serde(default)]
    users: toml::Table,
    /// Parsed only to be refused with a precise message (see the module docs).
    usernames: Option<toml::Table>,
}

/// The loaded policy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Policy {
    default: Option<PermissionSet>,
    by_user_id: HashMap<String, PermissionSet>,
}

impl Policy {
    /// A policy with no entries: everyone gets `default`.
    pub fn from_default(default: PermissionSet) -> Self {
        Self {
            default: Some(default),
            ..Self::default()
        }
    }

    /// Reads and checks the policy file at `path`.
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml_str(&text)
    }

    /// Parses and checks a policy.
    pub fn from_toml_str(text: &str) -> Result<Self, PolicyError> {
        let file: PolicyFile = toml::from_str(text).map_err(|e| parse_error(text, &e))?;
        if let Some(usernames) = file.usernames {
            return Err(PolicyError::UsernamesNotVerified {
                entries: entry_names(&usernames),
            });
        }
        let parse = |entry: String, names: &[String]| {
            PermissionSet::parse_list(&names.join(","))
                .map_err(|source| PolicyError::Permission { entry, source })
        };
        let default = file
            .default
            .map(|names| parse("default".to_owned(), &names))
            .transpose()?;
        let mut by_user_id = HashMap::new();
        for (position, (user_id, value)) in file.users.into_iter().enumerate() {
            if !is_fingerprint(&user_id) {
                return Err(PolicyError::NotAFingerprint {
                    position: position + 1,
                });
            }
            let names: Vec<String> = value.try_into().map_err(|_| {
                PolicyError::Parse(format!(
                    "[users] {user_id}: expected a list of permission names"
                ))
            })?;
            let set = parse(format!("[users] {user_id}"), &names)?;
            by_user_id.insert(user_id, set);
        }
        Ok(Self {
            default,
            by_user_id,
        })
    }

    /// Uses `fallback` (`PERMISSIONS_DEFAULT`) as the default if the file set none.
    #[must_use]
    pub fn or_default(mut self, fallback: PermissionSet) -> Self {
        self.default.get_or_insert(fallback);
        self
    }

    /// The default grant ([`PermissionSet::DEFAULT`] if neither the file nor
    /// [`Policy::or_default`] set one).
    #[must_use]
    pub fn default_grant(&self) -> PermissionSet {
        self.default.unwrap_or(PermissionSet::DEFAULT)
    }

    /// What a login with this key fingerprint is granted before narrowing. Only the verified
    /// fingerprint counts: nothing the caller asserts (its username) enters the decision.
    #[must_use]
    pub fn grant(&self, user_id: &str) -> PermissionSet {
        self.by_user_id
            .get(user_id)
            .copied()
            .unwrap_or_else(|| self.default_grant())
    }

    /// Narrows `granted` to the `requested` names (a login's `permissions`). `None` keeps the
    /// grant; an empty list yields no permissions; an unknown name is an error; asking for more
    /// than granted silently yields the intersection (a client asking for a fixed wish list
    /// still gets a working token, and the answer lists what it really holds).
    pub fn narrow(
        granted: PermissionSet,
        requested: Option<&[String]>,
    ) -> Result<PermissionSet, UnknownPermission> {
        let Some(requested) = requested else {
            return Ok(granted);
        };
        let requested = requested
            .iter()
            .map(|name| name.parse::<Permission>())
            .collect::<Result<PermissionSet, _>>()?;
        Ok(granted.intersect(requested))
    }
}

/// The parser's message and line, unless the message quotes something that may be a Dust key
/// (`sk-... = [...]` pasted at the top level comes back as "unknown field `sk-...`").
fn parse_error(text: &str, e: &toml::de::Error) -> PolicyError {
    let line = e.span().map_or(0, |span| {
        text[..span.start.min(text.len())].matches('\n').count() + 1
    });
    let message = if e.message().contains("sk-") {
        "unexpected entry (not shown: it may contain a key)"
    } else {
        e.message()
    };
    PolicyError::Parse(format!("line {line}: {message}"))
}

/// The names of a refused `[usernames]` section for its error, in order; a name shaped like an API
/// key is not repeated (someone may have pasted a key as a name).
fn entry_names(table: &toml::Table) -> String {
    if table.is_empty() {
        return "no entries".to_owned();
    }
    table
        .keys()
        .map(|name| {
            if super::api_key::check_format(name).is_ok() || name.contains("sk-") {
                "(an entry not shown: it may be a key)".to_owned()
            } else {
                format!("{:?}", crate::mask::sanitize_for_log(name, 64))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `usr_` and 24 lowercase hex characters: the output of `Principal::user_id_for_key`.
fn is_fingerprint(s: &str) -> bool {
    s.strip_prefix("usr_").is_some_and(|hex| {
        hex.len() == 24
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE_KEY: &str = "usr_0123456789abcdef01234567";
    const POLICY: &str = r#"
default = ["read:agents"]

[users]
"usr_0123456789abcdef01234567" = ["read:agents", "admin:tokens"]
"#;

    fn set(names: &str) -> PermissionSet {
        PermissionSet::parse_list(names).unwrap()
    }

    #[test]
    fn fingerprint_wins_over_default() {
        let p = Policy::from_toml_str(POLICY).unwrap();
        assert_eq!(p.grant(ALICE_KEY), set("read:agents,admin:tokens"));
        assert_eq!(p.grant("usr_ffffffffffffffffffffffff"), set("read:agents"));
        assert_eq!(
            p.clone().or_default(PermissionSet::all()).default_grant(),
            set("read:agents")
        );
    }

    /// M5: a `[usernames]` entry used to hand its permissions to anyone with any valid key who
    /// typed the name at login. The section is refused, naming its entries and the fix.
    #[test]
    fn a_usernames_section_is_refused_naming_its_entries_and_the_fix() {
        let with_usernames = format!(
            "{POLICY}\n[usernames]\nalice = [\"read:agents\", \"write:knowledge-bases\"]\nbob = []\n"
        );
        let err = Policy::from_toml_str(&with_usernames).unwrap_err();
        assert!(
            matches!(err, PolicyError::UsernamesNotVerified { .. }),
            "{err}"
        );
        let message = err.to_string();
        for needle in [
            "[usernames]",
            "\"alice\"",
            "\"bob\"",
            "[users]",
            "fingerprint",
        ] {
            assert!(message.contains(needle), "{needle} missing from: {message}");
        }
        // Even an empty section, or one written as an inline table, is refused.
        assert!(Policy::from_toml_str("[usernames]\n").is_err());
        assert!(Policy::from_toml_str("usernames = { carol = [] }").is_err());
        // A pasted key as a name is not repeated.
        let err = Policy::from_toml_str("[usernames]\n\"sk-canary0canary0canary0canary000\" = []")
            .unwrap_err();
        assert!(!err.to_string().contains("canary"), "{err}");
    }

    #[test]
    fn without_a_default_the_fallback_applies() {
        let p = Policy::from_toml_str("[users]\n").unwrap();
        assert_eq!(p.grant("usr_x"), PermissionSet::DEFAULT);
        let p = p.or_default(set("read:workspaces"));
        assert_eq!(p.grant("usr_x"), set("read:workspaces"));
        assert_eq!(
            Policy::from_toml_str("").unwrap().default_grant(),
            PermissionSet::DEFAULT
        );
        assert_eq!(
            Policy::from_default(PermissionSet::EMPTY).grant("u"),
            PermissionSet::EMPTY
        );
    }

    #[test]
    fn mistakes_fail_the_load() {
        let err = Policy::from_toml_str(r#"default = ["read:everything"]"#).unwrap_err();
        assert!(err.to_string().contains("read:everything"), "{err}");
        assert!(Policy::from_toml_str("defaults = []").is_err());
        assert!(Policy::from_toml_str("[groups]\nx = []").is_err());
        assert!(Policy::from_toml_str("default = \"read:agents\"").is_err());
        let err = Policy::from_toml_str(
            r#"[users]
"usr_0123456789abcdef01234567" = ["read:agents"]
"sk-canary0canary0canary0canary000" = ["admin:tokens"]
"#,
        )
        .unwrap_err();
        assert!(matches!(err, PolicyError::NotAFingerprint { .. }), "{err}");
        assert!(!err.to_string().contains("canary"), "{err}");
        assert!(Policy::from_toml_str("[users]\n\"usr_0123456789abcdef01234567\" = 3").is_err());
        let err = Policy::from_toml_str("\"sk-canary0canary0canary0canary000\" = []").unwrap_err();
        assert!(!err.to_string().contains("canary"), "{err}");
        let err = Policy::from_toml_str("\n\ndefaults = []").unwrap_err();
        assert!(err.to_string().contains("line 3"), "{err}");
    }

    #[test]
    fn narrowing_only_narrows() {
        let granted = set("read:agents,execute:agents");
        assert_eq!(Policy::narrow(granted, None), Ok(granted));
        let ask = |names: &[&str]| names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            Policy::narrow(granted, Some(&ask(&["read:agents"]))),
            Ok(set("read:agents"))
        );
        assert_eq!(
            Policy::narrow(granted, Some(&ask(&["read:agents", "admin:tokens"]))),
            Ok(set("read:agents"))
        );
        assert_eq!(Policy::narrow(granted, Some(&[])), Ok(PermissionSet::EMPTY));
        let err = Policy::narrow(granted, Some(&ask(&["read:agents", "root"]))).unwrap_err();
        assert_eq!(err.0, "root");
    }

    #[test]
    fn load_reads_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.toml");
        std::fs::write(&path, POLICY).unwrap();
        assert_eq!(
            Policy::load(&path).unwrap(),
            Policy::from_toml_str(POLICY).unwrap()
        );
        assert!(matches!(
            Policy::load(&dir.path().join("missing.toml")),
            Err(PolicyError::Read { .. })
        ));
    }
}
