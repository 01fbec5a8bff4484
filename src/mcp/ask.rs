//! `ask_agent` over MCP: the run is started and its events read by [`crate::ops::ask`]; this
//! adapter adds what MCP has: each event becomes a progress notification when the client asked
//! for progress, and `notifications/cancelled` cancels the Dust message too, as does the
//! caller's token ending (revoked, expired) while the agent runs. When the run waits for a
//! person to approve a tool, the person is asked (`DUST_TOOL_APPROVAL`, [`approval`]) and the
//! run goes on with their answer.

use futures::StreamExt;
use rmcp::{
    RoleServer,
    model::{
        BooleanSchema, ElicitRequestParams, ElicitResult, ElicitationAction, ElicitationSchema,
        PrimitiveSchemaDefinition, ProgressNotificationParam,
    },
    service::{ElicitationMode, RequestContext},
};

use crate::{
    config::ToolApproval,
    dust::{ActionDecision, BlockedAction},
    ops::{
        Call, Context, OpError,
        args::AskAgentArgs,
        ask::{
            Run, RunStep, SHUTTING_DOWN, approval_prompt, cancel_in_background, decide,
            refused_unasked, start_run, stream_failure, timeout_message,
        },
        call::CREDENTIALS_ENDED,
        views::AgentAnswer,
    },
};

/// Longest progress message, in characters.
const MAX_PROGRESS_MESSAGE: usize = 200;

/// Runs the agent to its answer, relaying progress; every other way out is an [`OpError`].
pub(super) async fn ask_agent(
    call: &Call,
    args: AskAgentArgs,
    request: RequestContext<RoleServer>,
) -> Result<AgentAnswer, OpError> {
    let ctx = &call.ctx;
    let principal = call.principal();
    let Run { answer, mut events } = start_run(
        ctx,
        principal,
        args.agent_id,
        args.message,
        args.conversation_id,
        &call.caller.info,
    )
    .await?;
    let progress_token = request.meta.get_progress_token();
    let mut progress = 0u32;
    let deadline = tokio::time::sleep(ctx.settings.agent_timeout);
    tokio::pin!(deadline);
    let ended = call.credentials_ended();
    tokio::pin!(ended);

    loop {
        let event = tokio::select! {
            // Cancellation and shutdown first: a busy stream must not starve them.
            biased;
            () = request.ct.cancelled() => {
                cancel_in_background(ctx, principal, &answer);
                return Err(OpError::Failed(
                    "The request was cancelled; the agent's run was cancelled too.".to_owned(),
                ));
            }
            () = &mut deadline => return Err(OpError::Timeout(timeout_message(ctx, &answer))),
            () = ctx.drain.aborted() => {
                cancel_in_background(ctx, principal, &answer);
                return Err(OpError::ShuttingDown(SHUTTING_DOWN.to_owned()));
            }
            () = &mut ended => {
                cancel_in_background(ctx, principal, &answer);
                return Err(OpError::Forbidden(CREDENTIALS_ENDED.to_owned()));
            }
            event = events.next() => event,
        };
        let event = match event {
            Some(Ok(event)) => event,
            Some(Err(e)) => return Err(stream_failure(Some(e))),
            None => return Err(stream_failure(None)),
        };
        let note = match RunStep::of(event.kind, &answer) {
            RunStep::Done(content) => {
                return Ok(AgentAnswer {
                    answer: content,
                    ..answer
                });
            }
            RunStep::Failed(message) => return Err(OpError::Failed(message)),
            RunStep::Approval(blocked) => {
                // The person is asked while the call's other ways out stay open: a cancelled
                // call, the timeout and shutdown each reject the action first.
                let asked = tokio::select! {
                    biased;
                    () = request.ct.cancelled() => Asked::Cancelled,
                    () = &mut deadline => Asked::TimedOut,
                    () = ctx.drain.aborted() => Asked::Cancelled,
                    decision = approval(ctx, &request, &answer, &blocked) => Asked::Decided(decision),
                };
                match asked {
                    Asked::Decided(Some((decision, by))) => {
                        decide(ctx, &call.caller, &answer, &blocked, decision, by).await?;
                    }
                    Asked::Decided(None) => {
                        decide(
                            ctx,
                            &call.caller,
                            &answer,
                            &blocked,
                            ActionDecision::Rejected,
                            "unasked",
                        )
                        .await?;
                        return Err(OpError::Failed(refused_unasked(&blocked, &answer)));
                    }
                    Asked::TimedOut => {
                        decide(
                            ctx,
                            &call.caller,
                            &answer,
                            &blocked,
                            ActionDecision::Rejected,
                            "timeout",
                        )
                        .await?;
                        return Err(OpError::Timeout(format!(
                            "{} The approval of {} ({}) was still waiting, so it was rejected.",
                            timeout_message(ctx, &answer),
                            blocked.tool_name,
                            blocked.server_name
                        )));
                    }
                    Asked::Cancelled => {
                        let _ = decide(
                            ctx,
                            &call.caller,
                            &answer,
                            &blocked,
                            ActionDecision::Rejected,
                            "cancelled",
                        )
                        .await;
                        cancel_in_background(ctx, principal, &answer);
                        return Err(OpError::Failed(
                            "The request was cancelled while waiting for your approval; the action was rejected and the run cancelled.".to_owned(),
                        ));
                    }
                }
                format!("{} {}", blocked.tool_name, "approval answered")
            }
            RunStep::Token(text) | RunStep::Note(text) => text,
            RunStep::Ignore => continue,
        };
        if let Some(token) = &progress_token {
            progress += 1;
            let note: String = note.chars().take(MAX_PROGRESS_MESSAGE).collect();
            let param = ProgressNotificationParam::new(token.clone(), f64::from(progress))
                .with_message(note);
            // A client that stopped listening to progress is not a reason to stop the run. The
            // send can wait as long as the transport does (after the client closed stdio, until
            // rmcp gives up), so a cancellation or the end of the grace period interrupts it;
            // the loop's first branches then act on them.
            tokio::select! {
                sent = request.peer.notify_progress(param) => {
                    if let Err(e) = sent {
                        tracing::debug!(error = %e, "progress notification not delivered");
                    }
                }
                () = request.ct.cancelled() => {}
                () = ctx.drain.aborted() => {}
            }
        }
    }
}

/// How waiting for an approval ended.
enum Asked {
    /// The policy or the person decided (`None`: nobody could be asked).
    Decided(Option<(ActionDecision, &'static str)>),
    TimedOut,
    Cancelled,
}

/// The decision on an approval, and who took it: `DUST_TOOL_APPROVAL=deny` rejects; otherwise
/// the person is asked with a form elicitation when the client declared the capability on a
/// connection that can carry a request back to it (stdio; the stateless HTTP transport cannot,
/// until the 2026-07-28 `input_required` results land). `None`: nobody could be asked.
async fn approval(
    ctx: &Context,
    request: &RequestContext<RoleServer>,
    answer: &AgentAnswer,
    blocked: &BlockedAction,
) -> Option<(ActionDecision, &'static str)> {
    if ctx.settings.tool_approval == ToolApproval::Deny {
        return Some((ActionDecision::Rejected, "policy"));
    }
    let over_http = request
        .extensions
        .get::<axum::http::request::Parts>()
        .is_some();
    if over_http
        || !request
            .peer
            .supported_elicitation_modes()
            .contains(&ElicitationMode::Form)
    {
        return None;
    }
    let schema = ElicitationSchema::builder()
        .property(
            "always",
            PrimitiveSchemaDefinition::Boolean(
                BooleanSchema::new()
                    .title("Always allow this tool for this agent")
                    .with_default(false),
            ),
        )
        .build()
        .ok()?;
    let asked = request
        .peer
        .create_elicitation(ElicitRequestParams::FormElicitationParams {
            meta: None,
            message: approval_prompt(answer, blocked),
            requested_schema: schema,
        })
        .await;
    match asked {
        Ok(result) => Some((decision_of(&result), "person")),
        Err(e) => {
            tracing::warn!(error = %e, "the client did not answer the approval request");
            None
        }
    }
}

/// An elicitation's answer as a decision: `accept` approves (`always: true`: for good),
/// `decline` and `cancel` reject.
fn decision_of(result: &ElicitResult) -> ActionDecision {
    match result.action {
        ElicitationAction::Accept => {
            let always = result
                .content
                .as_ref()
                .and_then(|c| c.get("always"))
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false);
            if always {
                ActionDecision::AlwaysApproved
            } else {
                ActionDecision::Approved
            }
        }
        _ => ActionDecision::Rejected,
    }
}
