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
        EnumSchema, PrimitiveSchemaDefinition, ProgressNotificationParam, StringSchema,
    },
    service::{ElicitationMode, RequestContext},
};

use crate::{
    config::ToolApproval,
    dust::{ActionDecision, BlockedAction, QuestionAnswer},
    ops::{
        Call, Context, OpError,
        args::AskAgentArgs,
        ask::{
            Question, Run, RunStep, SHUTTING_DOWN, agent_name, answer as ops_answer,
            approval_prompt, cancel_in_background, conversation_url, decide, paused_message,
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
                format!("{} approval answered", blocked.tool_name)
            }
            RunStep::Question(blocked) => {
                let question =
                    Question::of(&blocked).filter(|_| can_elicit(&request, ElicitationMode::Form));
                let Some(question) = question else {
                    return Err(OpError::Failed(paused_message(&blocked, &answer)));
                };
                let asked = tokio::select! {
                    biased;
                    () = request.ct.cancelled() => None,
                    () = &mut deadline => return Err(OpError::Timeout(timeout_message(ctx, &answer))),
                    () = ctx.drain.aborted() => None,
                    reply = ask_question(&request, &answer, &blocked, &question) => Some(reply),
                };
                let Some(reply) = asked else {
                    cancel_in_background(ctx, principal, &answer);
                    return Err(OpError::Failed(
                        "The request was cancelled while the agent waited for your answer; the run was cancelled.".to_owned(),
                    ));
                };
                let Some(reply) = reply else {
                    return Err(OpError::Failed(paused_message(&blocked, &answer)));
                };
                ops_answer(ctx, &call.caller, &answer, &blocked, &reply).await?;
                "question answered".to_owned()
            }
            RunStep::SignIn(blocked) => {
                // The person connects in Dust; the run then goes on by itself (within the
                // call's timeout). A client without URL elicitation gets the message instead.
                if !sign_in(
                    &request,
                    &blocked,
                    &conversation_url(ctx, principal, &answer),
                )
                .await
                {
                    return Err(OpError::Failed(paused_message(&blocked, &answer)));
                }
                format!("waiting for {} to be connected", blocked.server_name)
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
    if !can_elicit(request, ElicitationMode::Form) {
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

/// Whether the person can be asked on this connection: the client declared `mode`,
/// and the transport can carry a request back to it (not the stateless HTTP transport, which
/// answers each POST on its own).
fn can_elicit(request: &RequestContext<RoleServer>, mode: ElicitationMode) -> bool {
    let over_http = request
        .extensions
        .get::<axum::http::request::Parts>()
        .is_some();
    !over_http && request.peer.supported_elicitation_modes().contains(&mode)
}

/// Asks the person the agent's question: a form with the options as a choice and a free-text
/// answer. `None`: the client failed to answer; a declined form answers nothing chosen.
async fn ask_question(
    request: &RequestContext<RoleServer>,
    answer: &AgentAnswer,
    blocked: &BlockedAction,
    question: &Question,
) -> Option<QuestionAnswer> {
    let agent = agent_name(answer, blocked);
    let mut schema = ElicitationSchema::builder();
    if !question.options.is_empty() {
        schema = schema.property(
            "choice",
            PrimitiveSchemaDefinition::Enum(
                EnumSchema::builder(question.options.clone())
                    .title("Your choice")
                    .build(),
            ),
        );
    }
    let schema = schema
        .property(
            "answer",
            PrimitiveSchemaDefinition::String(StringSchema::new().title("Or your own answer")),
        )
        .build()
        .ok()?;
    let asked = request
        .peer
        .create_elicitation(ElicitRequestParams::FormElicitationParams {
            meta: None,
            message: format!("The agent {agent} asks: {}", question.text),
            requested_schema: schema,
        })
        .await;
    let result = match asked {
        Ok(result) => result,
        Err(e) => {
            tracing::warn!(error = %e, "the client did not answer the agent's question");
            return None;
        }
    };
    let mut reply = QuestionAnswer::default();
    if result.action == ElicitationAction::Accept
        && let Some(content) = &result.content
    {
        if let Some(choice) = content.get("choice").and_then(serde_json::Value::as_str)
            && let Some(index) = question.options.iter().position(|o| o == choice)
        {
            reply
                .selected_options
                .push(u32::try_from(index).unwrap_or(u32::MAX));
        }
        reply.custom_response = content
            .get("answer")
            .and_then(serde_json::Value::as_str)
            .filter(|text| !text.is_empty())
            .map(str::to_owned);
    }
    Some(reply)
}

/// Sends the person to Dust to connect the tool (URL-mode elicitation), where the connection
/// can carry it and the client supports URL mode. `true`: they went (the run goes on once they
/// have connected); `false`: they could not be sent, or declined.
async fn sign_in(request: &RequestContext<RoleServer>, blocked: &BlockedAction, url: &str) -> bool {
    if !can_elicit(request, ElicitationMode::Url) {
        return false;
    }
    let message = format!(
        "{} ({}) needs you to connect your account in Dust before the agent can go on. Open the conversation in Dust, connect it there, and the agent continues.",
        blocked.tool_name, blocked.server_name
    );
    let asked = request
        .peer
        .create_elicitation(ElicitRequestParams::UrlElicitationParams {
            meta: None,
            message,
            url: url.to_owned(),
            elicitation_id: crate::crypto::random_token::<16>(),
        })
        .await;
    matches!(asked, Ok(result) if result.action == ElicitationAction::Accept)
}
