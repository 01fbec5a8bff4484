//! The dependencies this binary was built from, checked against a RustSec advisory database.
//!
//! The `Cargo.lock` is compiled in, so a deployed binary can be checked without its source: the
//! same question `cargo deny check advisories` answers in CI, asked again on the day of the
//! deployment with whatever database checkout the operator has.

use std::path::{Path, PathBuf};

use semver::{Version, VersionReq};

use super::{Item, Outcome, fail, pass};

const LOCKFILE: &str = include_str!("../../Cargo.lock");

/// Where a database is looked for when `--advisory-db` is not given (the project's snapshot
/// sits beside the checkout).
const DEFAULT_LOCATIONS: [&str; 2] = ["../shared/advisory-db", "advisory-db"];

/// One locked crates.io package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Package {
    pub name: String,
    pub version: Version,
}

/// An advisory that applies to a locked package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finding {
    pub id: String,
    pub package: String,
    pub version: Version,
    pub kind: String,
}

pub(super) fn check(db: Option<&Path>) -> Item {
    let line = 9;
    let db: Option<PathBuf> = db.map(Path::to_path_buf).or_else(|| {
        DEFAULT_LOCATIONS
            .iter()
            .map(PathBuf::from)
            .find(|p| p.join("crates").is_dir())
    });
    let Some(db) = db else {
        return Item::new(
            line,
            "advisories",
            Outcome::NotApplicable(
                "no advisory database found: pass --advisory-db DIR (a checkout of \
                 github.com/rustsec/advisory-db)"
                    .to_owned(),
            ),
        );
    };
    if !db.join("crates").is_dir() {
        return Item::new(
            line,
            "advisories",
            fail(
                format!("{} is not an advisory database (no crates/)", db.display()),
                "point --advisory-db at a checkout of github.com/rustsec/advisory-db",
            ),
        );
    }
    let packages = locked_packages(LOCKFILE);
    let findings = scan(&db, &packages);
    let outcome = if findings.is_empty() {
        pass(format!(
            "{} locked crates, no advisory applies ({})",
            packages.len(),
            db.display()
        ))
    } else {
        let list: Vec<String> = findings
            .iter()
            .map(|f| format!("{} {} {} ({})", f.id, f.package, f.version, f.kind))
            .collect();
        fail(
            format!("advisories apply: {}", list.join("; ")),
            "update the affected crates (`cargo update -p <crate>`) and rebuild",
        )
    };
    Item::new(line, "advisories", outcome)
}

/// The crates.io packages of a `Cargo.lock`.
pub(crate) fn locked_packages(lockfile: &str) -> Vec<Package> {
    let Ok(lock) = lockfile.parse::<toml::Table>() else {
        return Vec::new();
    };
    let Some(packages) = lock.get("package").and_then(toml::Value::as_array) else {
        return Vec::new();
    };
    packages
        .iter()
        .filter(|p| {
            p.get("source")
                .and_then(toml::Value::as_str)
                .is_some_and(|s| s.starts_with("registry+"))
        })
        .filter_map(|p| {
            Some(Package {
                name: p.get("name")?.as_str()?.to_owned(),
                version: Version::parse(p.get("version")?.as_str()?).ok()?,
            })
        })
        .collect()
}

/// The advisories in `db` that apply to `packages`.
pub(crate) fn scan(db: &Path, packages: &[Package]) -> Vec<Finding> {
    let mut findings = Vec::new();
    for package in packages {
        let Ok(entries) = std::fs::read_dir(db.join("crates").join(&package.name)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "md") {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            if let Some(finding) = applies(&text, package) {
                findings.push(finding);
            }
        }
    }
    findings.sort_by(|a, b| a.id.cmp(&b.id));
    findings
}

/// The finding, if the advisory in `text` (RustSec Markdown with a TOML front block) affects
/// `package`. Withdrawn advisories and plain notices do not count.
pub(crate) fn applies(text: &str, package: &Package) -> Option<Finding> {
    let front = text.strip_prefix("```toml")?.split("\n```").next()?;
    let table: toml::Table = front.parse().ok()?;
    let advisory = table.get("advisory")?.as_table()?;
    if advisory.get("withdrawn").is_some() {
        return None;
    }
    let kind = advisory
        .get("informational")
        .and_then(toml::Value::as_str)
        .unwrap_or("vulnerability")
        .to_owned();
    if kind == "notice" {
        return None;
    }
    let versions = table.get("versions").and_then(toml::Value::as_table);
    let reqs = |key: &str| -> Vec<VersionReq> {
        versions
            .and_then(|v| v.get(key))
            .and_then(toml::Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(toml::Value::as_str)
                    .filter_map(|r| VersionReq::parse(r).ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    let safe = reqs("patched")
        .into_iter()
        .chain(reqs("unaffected"))
        .any(|req| req.matches(&package.version));
    if safe {
        return None;
    }
    Some(Finding {
        id: advisory.get("id")?.as_str()?.to_owned(),
        package: package.name.clone(),
        version: package.version.clone(),
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADVISORY: &str = "```toml\n[advisory]\nid = \"RUSTSEC-2099-0001\"\npackage = \"demo\"\ndate = \"2099-01-01\"\n\n[versions]\npatched = [\">= 1.5.1, < 1.6.0\", \">= 1.8.1\"]\nunaffected = [\"< 0.3.0\"]\n```\n\n# Something bad\n";

    fn package(version: &str) -> Package {
        Package {
            name: "demo".into(),
            version: Version::parse(version).unwrap(),
        }
    }

    #[test]
    fn affected_versions_are_found_and_patched_or_unaffected_ones_are_not() {
        assert!(applies(ADVISORY, &package("1.5.0")).is_some());
        assert!(applies(ADVISORY, &package("1.7.9")).is_some());
        assert!(applies(ADVISORY, &package("1.5.1")).is_none());
        assert!(applies(ADVISORY, &package("1.9.0")).is_none());
        assert!(applies(ADVISORY, &package("0.2.9")).is_none());
        let finding = applies(ADVISORY, &package("1.0.0")).unwrap();
        assert_eq!(finding.id, "RUSTSEC-2099-0001");
        assert_eq!(finding.kind, "vulnerability");
    }

    #[test]
    fn withdrawn_advisories_and_notices_do_not_count() {
        let withdrawn = ADVISORY.replace("date =", "withdrawn = \"2099-02-01\"\ndate =");
        assert!(applies(&withdrawn, &package("1.0.0")).is_none());
        let notice = ADVISORY.replace("date =", "informational = \"notice\"\ndate =");
        assert!(applies(&notice, &package("1.0.0")).is_none());
        let unmaintained = ADVISORY.replace("date =", "informational = \"unmaintained\"\ndate =");
        assert_eq!(
            applies(&unmaintained, &package("1.0.0")).unwrap().kind,
            "unmaintained"
        );
    }

    #[test]
    fn the_compiled_in_lockfile_lists_this_builds_crates() {
        let packages = locked_packages(LOCKFILE);
        assert!(
            packages
                .iter()
                .any(|p| p.name == "rmcp" && p.version == Version::new(3, 11, 0))
        );
        assert!(
            packages.iter().all(|p| p.name != "mcp-dust-server"),
            "only registry crates"
        );
    }

    #[test]
    fn a_database_with_an_advisory_for_a_locked_crate_fails_the_check() {
        let dir = tempfile::tempdir().unwrap();
        let crate_dir = dir.path().join("crates").join("rmcp");
        std::fs::create_dir_all(&crate_dir).unwrap();
        let text = ADVISORY
            .replace("\"demo\"", "\"rmcp\"")
            .replace(">= 1.8.1", ">= 99.0.0");
        std::fs::write(crate_dir.join("RUSTSEC-2099-0001.md"), text).unwrap();
        let item = check(Some(dir.path()));
        match item.outcome {
            Outcome::Fail { problem, .. } => {
                assert!(problem.contains("RUSTSEC-2099-0001 rmcp 3.11.0"))
            }
            other => panic!("expected a failure, got {other:?}"),
        }
        std::fs::remove_dir_all(dir.path().join("crates").join("rmcp")).unwrap();
        assert!(matches!(check(Some(dir.path())).outcome, Outcome::Pass(_)));
    }
}
