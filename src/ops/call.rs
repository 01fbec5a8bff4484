//! One call of one operation, from its checks to its audit record, whatever the transport.
//!
//! [`Call::begin`] does what every operation does first, in this order, and a refusal reaches
//! nobody: the permission the operation's descriptor names (refused: [`OpError::Denied`],
//! recorded `authz_fail`), the workspace when the request names one (another workspace:
//! [`OpError::Forbidden`], recorded `authz_fail`), and, when the operation reaches Dust, one of
//! the caller's bulkhead slots ([`OpError::Busy`] when all [`MAX_CALLS_IN_FLIGHT`] are taken).
//! [`Call::finish`] records the outcome (`resource_access`, or `resource_modified` for an
//! operation that changes something) and, for a refused input, `input_validation_fail`.
//! [`note_suspicious`] is the log-only note on free text that looks like an injection attempt.

use std::{sync::Arc, time::Duration};

use futures::future::BoxFuture;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::task::task_tracker::TaskTrackerToken;

use super::{Context, MAX_CALLS_IN_FLIGHT, Op, OpError, args::check_id};
use crate::{
    audit::{AuditEvent, AuditEventType, AuditResult, RequestInfo, Severity, detect_suspicious},
    auth::Principal,
};

/// Which front door a call came through, for its audit records and messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// An MCP tool call.
    Tool,
    /// A REST route.
    Route,
}

impl Surface {
    fn as_str(self) -> &'static str {
        match self {
            Self::Tool => "tool",
            Self::Route => "route",
        }
    }
}

/// Who is calling, and what the audit log records about the request (empty on stdio).
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Arc<Principal>,
    pub info: RequestInfo,
    /// Whether the credentials of the request still hold, for calls that outlive a moment
    /// (`None` on stdio, whose credentials live as long as the process).
    pub revalidate: Option<Revalidate>,
}

/// How often a long call (an agent run) checks that its caller's token still holds.
pub const REVALIDATE_EVERY: Duration = Duration::from_secs(2);

/// Asks whether the token (or session) a request was authenticated with still holds: not
/// revoked, not expired. The HTTP authentication layer puts one in the request's extensions;
/// a long call asks it every [`REVALIDATE_EVERY`] so that revoking a token also ends the
/// answers still streaming on it (L3), not only the next request.
#[derive(Clone)]
pub struct Revalidate(Arc<dyn Fn() -> BoxFuture<'static, bool> + Send + Sync>);

impl Revalidate {
    pub fn new(check: impl Fn() -> BoxFuture<'static, bool> + Send + Sync + 'static) -> Self {
        Self(Arc::new(check))
    }

    /// Whether the credentials still hold.
    pub async fn holds(&self) -> bool {
        (self.0)().await
    }
}

impl std::fmt::Debug for Revalidate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Revalidate")
    }
}

/// What a caller whose token ended during its call reads.
pub const CREDENTIALS_ENDED: &str = "The token this request was made with was revoked or has expired while the agent was running; the run was cancelled.";

/// One operation of one caller, between its checks and its audit record.
#[derive(Debug)]
pub struct Call {
    pub ctx: Arc<Context>,
    pub caller: Caller,
    pub op: &'static Op,
    pub surface: Surface,
    /// The caller's slot toward Dust, held until the call ends.
    _slot: Option<CallSlot>,
}

impl Call {
    /// Checks the permission, then the workspace (when the request names one), then takes a
    /// bulkhead slot (when the operation reaches Dust). A refusal reaches nobody.
    pub fn begin(
        ctx: &Arc<Context>,
        caller: Caller,
        op: &'static Op,
        surface: Surface,
        workspace_id: Option<&str>,
    ) -> Result<Self, OpError> {
        authorize(ctx, &caller.principal, &caller.info, surface, op)?;
        if let Some(workspace_id) = workspace_id {
            check_workspace(ctx, &caller.principal, &caller.info, workspace_id)?;
        }
        let slot = if op.upstream {
            let what = match surface {
                Surface::Tool => "tool calls",
                Surface::Route => "requests to Dust",
            };
            Some(enter(ctx, &caller.principal).ok_or_else(|| OpError::Busy(busy_message(what)))?)
        } else {
            None
        };
        Ok(Self {
            ctx: ctx.clone(),
            caller,
            op,
            surface,
            _slot: slot,
        })
    }

    pub fn principal(&self) -> &Principal {
        &self.caller.principal
    }

    /// Resolves once the caller's credentials no longer hold (checked every
    /// [`REVALIDATE_EVERY`]); never, without a [`Revalidate`]. Create it once per call and
    /// poll the same future: each creation starts a new wait.
    pub async fn credentials_ended(&self) {
        let Some(revalidate) = &self.caller.revalidate else {
            return std::future::pending().await;
        };
        loop {
            tokio::time::sleep(REVALIDATE_EVERY).await;
            if !revalidate.holds().await {
                return;
            }
        }
    }

    /// Records the outcome (`resource_access`/`resource_modified`, and `input_validation_fail`
    /// for a refused input) of a call that named `target` (`("agentId", "...")`), and passes
    /// the result on.
    pub fn finish<T>(
        &self,
        result: Result<T, OpError>,
        target: Option<(&str, &str)>,
    ) -> Result<T, OpError> {
        let outcome = match &result {
            Ok(_) => AuditResult::Success,
            Err(OpError::Invalid(reason)) => {
                self.invalid(reason);
                AuditResult::Denied
            }
            Err(_) => AuditResult::Failure,
        };
        self.audit_outcome(target, outcome);
        result
    }

    /// Records the outcome of a call whose result the adapter judged itself.
    pub fn audit_outcome(&self, target: Option<(&str, &str)>, outcome: AuditResult) {
        // One series per operation and outcome: the operations are a fixed set.
        let result = match outcome {
            AuditResult::Success => "success",
            AuditResult::Denied => "denied",
            AuditResult::Failure => "failure",
        };
        metrics::counter!("tool_calls_total", "op" => self.op.name, "outcome" => result)
            .increment(1);
        if self.ctx.auditor.is_none() {
            return;
        }
        let event_type = if self.op.kind.modifies() {
            AuditEventType::ResourceModified
        } else {
            AuditEventType::ResourceAccess
        };
        // One message for every surface: log queries filter on it.
        let mut event = AuditEvent::new(event_type, Severity::Info, "tool call")
            .principal(&self.caller.principal)
            .request(&self.caller.info)
            .action(self.op.name)
            .result(outcome);
        if let Some((kind, id)) = target {
            event = event.resource(kind, id);
        }
        self.ctx.audit(event);
    }

    /// Records an input refused by validation (`input_validation_fail`), found by the
    /// operation or by the adapter (a path, query or body that did not parse).
    pub fn invalid(&self, reason: &str) {
        self.ctx.audit(
            AuditEvent::new(
                AuditEventType::InputValidationFail,
                Severity::Low,
                "tool arguments refused",
            )
            .principal(&self.caller.principal)
            .request(&self.caller.info)
            .action(self.op.name)
            .result(AuditResult::Denied)
            .extra("reason", reason),
        );
    }

    /// [`note_suspicious`] for this call.
    pub fn note_suspicious(&self, field: &str, text: &str) {
        note_suspicious(
            &self.ctx,
            &self.caller.principal,
            &self.caller.info,
            self.op.name,
            field,
            text,
        );
    }
}

/// Checks that `principal` holds the permission `op` needs, recording a refusal as
/// `authz_fail`.
fn authorize(
    ctx: &Context,
    principal: &Principal,
    info: &RequestInfo,
    surface: Surface,
    op: &Op,
) -> Result<(), OpError> {
    if principal.can(op.permission) {
        return Ok(());
    }
    metrics::counter!("authz_denials_total", "permission" => op.permission.as_str()).increment(1);
    ctx.audit(
        AuditEvent::new(
            AuditEventType::AuthzFail,
            Severity::Medium,
            format!("{} refused", surface.as_str()),
        )
        .principal(principal)
        .request(info)
        .resource(surface.as_str(), op.name)
        .action(op.permission.as_str())
        .result(AuditResult::Denied),
    );
    Err(OpError::Denied(op.permission))
}

/// Checks that a workspace named in a request is the caller's own (the only one its key
/// reaches). Anything else is refused before Dust is asked, and recorded as `authz_fail`.
fn check_workspace(
    ctx: &Context,
    principal: &Principal,
    info: &RequestInfo,
    workspace_id: &str,
) -> Result<(), OpError> {
    check_id("workspaceId", workspace_id)?;
    if workspace_id == principal.workspace_id {
        return Ok(());
    }
    ctx.audit(
        AuditEvent::new(
            AuditEventType::AuthzFail,
            Severity::Medium,
            "another workspace refused",
        )
        .principal(principal)
        .request(info)
        .resource("workspace", workspace_id)
        .action("access_workspace")
        .result(AuditResult::Denied),
    );
    Err(OpError::Forbidden(FOREIGN_WORKSPACE.to_owned()))
}

/// The message of a refused foreign workspace (REST answers it with 403).
pub const FOREIGN_WORKSPACE: &str =
    "this workspace is not yours: a token reaches only the workspace it was issued for";

/// One of the caller's slots toward Dust ([`super::bulkhead`]), or `None` when all
/// [`MAX_CALLS_IN_FLIGHT`] are taken; nothing may reach Dust without one.
fn enter(ctx: &Context, principal: &Principal) -> Option<CallSlot> {
    let permit = ctx.bulkhead.try_enter(&principal.user_id)?;
    Some(CallSlot {
        _permit: permit,
        _running: ctx.background.token(),
    })
}

/// A call's slot toward Dust: held for the whole call, it also tells shutdown that the call is
/// still running ([`Context::finish_background`]).
#[derive(Debug)]
struct CallSlot {
    _permit: OwnedSemaphorePermit,
    _running: TaskTrackerToken,
}

/// What a caller beyond its slots is told; `what` names the calls (`tool calls`, `requests`).
fn busy_message(what: &str) -> String {
    format!(
        "You already have {MAX_CALLS_IN_FLIGHT} {what} running; wait for one to finish, then try again."
    )
}

/// Notes, log-only, free text that looks like an injection attempt; the text goes on unchanged
/// (decision 6.10, catalogue V11).
pub fn note_suspicious(
    ctx: &Context,
    principal: &Principal,
    info: &RequestInfo,
    name: &str,
    field: &str,
    text: &str,
) {
    if ctx.auditor.is_none() {
        return;
    }
    if let Some(label) = detect_suspicious(text) {
        ctx.audit(
            AuditEvent::new(
                AuditEventType::MaliciousInput,
                Severity::Low,
                "suspicious pattern in free text (passed on unchanged)",
            )
            .principal(principal)
            .request(info)
            .action(name)
            .extra("pattern", label)
            .extra("field", field),
        );
    }
}
