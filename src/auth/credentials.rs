//! Checking a Dust API key and workspace before anything is issued for them: the login
//! (`POST /api/v1/auth/login`), the OAuth consent page and `stdio` all go through here.
//!
//! In this order, and each step refuses before the next runs: the key's format (no trimming,
//! catalogue K1) and the workspace id's, then the lockout of this address and this key
//! ([`LoginThrottle`]), then Dust itself within a bounded time. Dust refusing the key counts as a
//! failed login; Dust failing (an outage, a timeout, an unreadable answer) does not, and issues
//! nothing. What a refusal means to the person (a status, a message) is the caller's to say;
//! its [`CredentialRefusal::reason`] is what the audit log and metrics record.

use std::{net::IpAddr, time::Duration};

use secrecy::{ExposeSecret, SecretString};

use super::{Keys, LoginThrottle, Principal, api_key};
use crate::dust::{DustApi, DustCredentials, DustErrorKind};

/// Why credentials were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialRefusal {
    /// The key is not shaped like a Dust API key (the problem, without the key).
    KeyFormat(String),
    /// No workspace was named and the server has no default.
    WorkspaceRequired,
    /// The workspace id is not 1 to 64 ASCII letters or digits.
    WorkspaceFormat,
    /// Too many failed logins from this address or for this key.
    Throttled { retry_after: Duration },
    /// Dust refused the key for this workspace (a failed login).
    Rejected,
    /// Dust's answer could not be understood.
    UpstreamGarbage,
    /// Dust failed or could not be reached.
    UpstreamError,
    /// Dust did not answer within the bound.
    UpstreamTimeout,
    /// The lockout counters could not be read: nothing is checked or issued.
    StoreUnavailable,
}

impl CredentialRefusal {
    /// The stable reason, for the audit log and metrics.
    #[must_use]
    pub const fn reason(&self) -> &'static str {
        match self {
            Self::KeyFormat(_) => "format",
            Self::WorkspaceRequired => "workspace_required",
            Self::WorkspaceFormat => "workspace_format",
            Self::Throttled { .. } => "throttled",
            Self::Rejected => "rejected_by_dust",
            Self::UpstreamGarbage => "upstream_garbage",
            Self::UpstreamError => "upstream_error",
            Self::UpstreamTimeout => "upstream_timeout",
            Self::StoreUnavailable => "store_unavailable",
        }
    }
}

/// Checked credentials: the key's pseudonymous id (`usr_...`) and the credentials themselves.
#[derive(Debug)]
pub struct Checked {
    pub user_id: String,
    pub credentials: DustCredentials,
}

/// What checking credentials needs.
#[derive(Clone, Copy)]
pub struct CredentialCheck<'a> {
    pub keys: &'a Keys,
    pub throttle: &'a LoginThrottle,
    pub dust: &'a dyn DustApi,
    /// How long Dust may take to answer.
    pub timeout: Duration,
}

impl std::fmt::Debug for CredentialCheck<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialCheck")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The first step alone: the key's format, and the workspace (`workspace_id`, else
/// `default_workspace`) as 1 to 64 ASCII letters or digits.
///
/// # Errors
///
/// [`CredentialRefusal::KeyFormat`], [`CredentialRefusal::WorkspaceRequired`] or
/// [`CredentialRefusal::WorkspaceFormat`].
pub fn check_format(
    key: SecretString,
    workspace_id: Option<String>,
    default_workspace: Option<&str>,
) -> Result<DustCredentials, CredentialRefusal> {
    api_key::check_format(key.expose_secret())
        .map_err(|problem| CredentialRefusal::KeyFormat(problem.to_string()))?;
    let workspace_id = workspace_id
        .or_else(|| default_workspace.map(str::to_owned))
        .ok_or(CredentialRefusal::WorkspaceRequired)?;
    if workspace_id.is_empty()
        || workspace_id.len() > 64
        || !workspace_id.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(CredentialRefusal::WorkspaceFormat);
    }
    Ok(DustCredentials {
        workspace_id,
        api_key: key,
    })
}

impl CredentialCheck<'_> {
    /// The steps after the format ([`check_format`]): the lockout, then Dust, for a request
    /// from `ip` at `now`.
    ///
    /// # Errors
    ///
    /// The first [`CredentialRefusal`] met, with the key's pseudonymous id.
    pub async fn with_dust(
        &self,
        credentials: DustCredentials,
        ip: IpAddr,
        now: std::time::SystemTime,
    ) -> Result<Checked, (CredentialRefusal, String)> {
        let user_id = Principal::user_id_for_key(self.keys.fingerprint(), &credentials);
        let refused = |refusal| (refusal, user_id.clone());
        let locked = self.throttle.check(ip, &user_id, now).await.map_err(|e| {
            tracing::error!(error = %e, "login throttle store unavailable; refusing the login");
            refused(CredentialRefusal::StoreUnavailable)
        })?;
        if let Some(retry_after) = locked {
            return Err(refused(CredentialRefusal::Throttled { retry_after }));
        }
        let checked = tokio::time::timeout(self.timeout, self.dust.check_key(&credentials)).await;
        match checked {
            Ok(Ok(())) => {
                if let Err(e) = self.throttle.record_success(&user_id).await {
                    tracing::error!(error = %e, "could not clear the key's failed-login counter");
                }
                Ok(Checked {
                    user_id,
                    credentials,
                })
            }
            Ok(Err(e))
                if matches!(
                    e.kind,
                    DustErrorKind::Unauthorized
                        | DustErrorKind::NotFound
                        | DustErrorKind::Forbidden
                ) =>
            {
                if let Err(e) = self.throttle.record_failure(ip, &user_id, now).await {
                    tracing::error!(error = %e, "could not count a failed login");
                }
                Err(refused(CredentialRefusal::Rejected))
            }
            Ok(Err(e)) if e.kind == DustErrorKind::Protocol => {
                tracing::warn!(error = %e, "Dust answered the key check with something unreadable");
                Err(refused(CredentialRefusal::UpstreamGarbage))
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "Dust unavailable during a credential check");
                Err(refused(CredentialRefusal::UpstreamError))
            }
            Err(_) => Err(refused(CredentialRefusal::UpstreamTimeout)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sk-0123456789abcdef0123456789abcdef";

    #[test]
    fn the_format_is_checked_key_first_then_the_workspace() {
        let key = |k: &str| SecretString::from(k.to_owned());
        assert!(matches!(
            check_format(
                key(" sk-0123456789abcdef0123456789abcdef"),
                Some("ws1".into()),
                None
            ),
            Err(CredentialRefusal::KeyFormat(_))
        ));
        assert_eq!(
            check_format(key(KEY), None, None).unwrap_err(),
            CredentialRefusal::WorkspaceRequired
        );
        assert_eq!(
            check_format(key(KEY), Some("ws/../x".into()), None).unwrap_err(),
            CredentialRefusal::WorkspaceFormat
        );
        let fallback = check_format(key(KEY), None, Some("w0rkspace")).unwrap();
        assert_eq!(fallback.workspace_id, "w0rkspace");
        assert_eq!(CredentialRefusal::Rejected.reason(), "rejected_by_dust");
    }
}
