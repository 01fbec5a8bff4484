//! `ask_agent` over MCP: the run is started and its events read by [`crate::ops::ask`]; this
//! adapter adds what MCP has: each event becomes a progress notification when the client asked
//! for progress, and `notifications/cancelled` cancels the Dust message too, as does the
//! caller's token ending (revoked, expired) while the agent runs.
//!
//! When the run waits for a person (to approve a tool, answer a question, connect a tool in
//! Dust), the person is asked where the client can be asked ([`Channel`]): in the handshake era
//! with an `elicitation/create` request in the middle of the call (stdio: the stateless HTTP
//! transport cannot carry one back), in the 2026-07-28 era, on any transport, by ending the call
//! with an `input_required` result that carries the form and the run's sealed state
//! ([`crate::ops::pause`]); the client asks the person and calls again with the answer, and the
//! run goes on from the event it paused at. A client that cannot be asked gets the action
//! rejected (`DUST_TOOL_APPROVAL=deny` rejects without asking) or, for a question or a sign-in,
//! a result that says where to answer in Dust.

use futures::StreamExt;
use rmcp::{
    RoleServer,
    model::{
        BooleanSchema, ElicitRequest, ElicitRequestParams, ElicitResult, ElicitationAction,
        ElicitationSchema, EnumSchema, InputRequest, InputRequests, InputRequiredResult,
        PrimitiveSchemaDefinition, ProgressNotificationParam, ProtocolVersion, StringSchema,
    },
    service::{ElicitationMode, RequestContext},
};

use super::tools::{Outcome, Retry};
use crate::{
    audit::{AuditEvent, AuditEventType, AuditResult, Severity},
    config::ToolApproval,
    dust::{ActionDecision, AgentEvent, BlockedAction, QuestionAnswer},
    ops::{
        Call, OpError,
        args::AskAgentArgs,
        ask::{
            ASK_AGENT, Run, RunStep, SHUTTING_DOWN, cancel_in_background, paused_message,
            resume_run, start_run, stream_failure, timeout_message,
        },
        call::CREDENTIALS_ENDED,
        pause::{PAUSE_REFUSED, PausedRun, Waiting},
        views::AgentAnswer,
        waiting::{
            Question, agent_name, answer as ops_answer, approval_prompt, conversation_url, decide,
            refused_unasked, reject, reject_when_unanswered,
        },
    },
};

/// Longest progress message, in characters.
const MAX_PROGRESS_MESSAGE: usize = 200;

/// The key of the one input request an `input_required` round carries.
const INPUT_KEY: &str = "person";

/// Runs the agent to its answer, relaying progress; a run that waits for a person asked by an
/// `input_required` round ends the call with that round ([`Outcome::Input`]); every other way
/// out is an [`OpError`].
pub(super) async fn ask_agent(
    call: &Call,
    args: AskAgentArgs,
    request: RequestContext<RoleServer>,
    retry: Retry,
) -> Result<Outcome<AgentAnswer>, OpError> {
    let ctx = &call.ctx;
    let principal = call.principal();
    // What a paused run's state is bound to: the call the client makes again.
    let arguments = serde_json::to_vec(&(
        &args.agent_id,
        &args.message,
        &args.conversation_id,
        args.attachments.digest(),
    ))
    .map_err(|e| OpError::Internal(e.to_string()))?;
    if retry.state.is_none() && super::tasks::wants_task(&request) {
        return super::tasks::start(call, args).await;
    }
    let Run { answer, mut events } = match &retry.state {
        None => start_run(ctx, principal, args, &call.caller.info).await?,
        Some(state) => {
            let paused = open_pause(call, &arguments, state).await?;
            let run = resume_run(ctx, principal, &paused);
            answer_pause(call, &paused, retry.responses.as_ref()).await?;
            run
        }
    };
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
        let AgentEvent { event_id, kind } = match event {
            Some(Ok(event)) => event,
            Some(Err(e)) => return Err(stream_failure(Some(e))),
            None => return Err(stream_failure(None)),
        };
        let note = match RunStep::of(kind, &answer) {
            RunStep::Done(done) => return Ok(Outcome::Done(*done)),
            RunStep::Failed(message) => return Err(OpError::Failed(message)),
            RunStep::Approval(blocked) => {
                if ctx.settings.tool_approval == ToolApproval::Deny {
                    let policy = Asked::Decided(Some((ActionDecision::Rejected, "policy")));
                    approved(call, &answer, &blocked, policy).await?;
                    format!("{} rejected by the server's policy", blocked.tool_name)
                } else {
                    match channel(&request, ElicitationMode::Form) {
                        Channel::Rounds => {
                            let form = approval_form(&answer, &blocked);
                            let paused = PausedRun::new(&answer, &blocked, Vec::new(), event_id);
                            return Ok(pause(call, &arguments, &paused, form));
                        }
                        Channel::Unreachable => {
                            return Err(refuse_unasked(call, &answer, &blocked).await);
                        }
                        Channel::Request => {}
                    }
                    // The person is asked while the call's other ways out stay open: a
                    // cancelled call, the timeout and shutdown each reject the action first.
                    let asked = tokio::select! {
                        biased;
                        () = request.ct.cancelled() => Asked::Cancelled,
                        () = &mut deadline => Asked::TimedOut,
                        () = ctx.drain.aborted() => Asked::Cancelled,
                        decision = approval(&request, &answer, &blocked) => Asked::Decided(decision),
                    };
                    approved(call, &answer, &blocked, asked).await?;
                    format!("{} approval answered", blocked.tool_name)
                }
            }
            RunStep::Question(blocked) => {
                let Some(question) = Question::of(&blocked) else {
                    return Err(OpError::Failed(paused_message(&blocked, &answer)));
                };
                match channel(&request, ElicitationMode::Form) {
                    Channel::Rounds => {
                        let form = question_form(&answer, &blocked, &question)?;
                        let paused = PausedRun::new(&answer, &blocked, question.options, event_id);
                        return Ok(pause(call, &arguments, &paused, form));
                    }
                    Channel::Unreachable => {
                        return Err(OpError::Failed(paused_message(&blocked, &answer)));
                    }
                    Channel::Request => {}
                }
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
                let url = conversation_url(ctx, principal, &answer);
                let went = match channel(&request, ElicitationMode::Url) {
                    Channel::Rounds => {
                        let form = sign_in_request(&blocked, &url);
                        let paused = PausedRun::new(&answer, &blocked, Vec::new(), event_id);
                        return Ok(pause(call, &arguments, &paused, form));
                    }
                    Channel::Unreachable => false,
                    Channel::Request => sign_in(&request, sign_in_request(&blocked, &url)).await,
                };
                if !went {
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

/// How the person can be asked on this call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channel {
    /// A request to the client in the middle of the call (handshake era, stdio).
    Request,
    /// An `input_required` round (2026-07-28 era, any transport).
    Rounds,
    /// Not at all: the client did not declare the mode, or the connection cannot carry a
    /// request back (handshake era over the stateless HTTP transport).
    Unreachable,
}

/// How the person can be asked in `mode` on this call: the client declared the mode (in the
/// handshake, or in this request's `_meta` in the 2026-07-28 era) and the era and transport can
/// carry the question.
fn channel(request: &RequestContext<RoleServer>, mode: ElicitationMode) -> Channel {
    let declared = declares(request, mode);
    let rounds = request
        .protocol_version()
        .is_some_and(|v| v >= ProtocolVersion::V_2026_07_28);
    let over_http = request
        .extensions
        .get::<axum::http::request::Parts>()
        .is_some();
    match (declared, rounds, over_http) {
        (false, _, _) => Channel::Unreachable,
        (true, true, _) => Channel::Rounds,
        (true, false, true) => Channel::Unreachable,
        (true, false, false) => Channel::Request,
    }
}

/// Whether the client declared elicitation in `mode` (in the handshake, or in this request's
/// `_meta` in the 2026-07-28 era).
pub(super) fn declares(request: &RequestContext<RoleServer>, mode: ElicitationMode) -> bool {
    request
        .client_capabilities()
        .and_then(|c| c.elicitation)
        .is_some_and(|e| match mode {
            // A bare `elicitation: {}` means form (the 2025-06-18 shape).
            ElicitationMode::Form => e.form.is_some() || e.url.is_none(),
            _ => e.url.is_some(),
        })
}

/// Ends the call with an `input_required` round: the person's form and the run's sealed state.
/// An approval nobody comes back for is rejected at `MCP_SERVER_TIMEOUT`.
fn pause(
    call: &Call,
    arguments: &[u8],
    paused: &PausedRun,
    form: ElicitRequestParams,
) -> Outcome<AgentAnswer> {
    let state = call
        .ctx
        .pauses
        .seal(call.principal(), ASK_AGENT.name, arguments, paused);
    reject_when_unanswered(&call.ctx, &call.caller, paused.clone());
    let mut requests = InputRequests::new();
    requests.insert(
        INPUT_KEY.to_owned(),
        InputRequest::Elicitation(ElicitRequest::new(form)),
    );
    Outcome::Input(InputRequiredResult::new(Some(requests), Some(state)))
}

/// Opens the state a client brought back; a refusal is audited with its reason and reads the
/// same whatever the reason.
async fn open_pause(call: &Call, arguments: &[u8], state: &str) -> Result<PausedRun, OpError> {
    let opened = call
        .ctx
        .pauses
        .open(
            call.principal(),
            ASK_AGENT.name,
            arguments,
            state,
            std::time::SystemTime::now(),
        )
        .await;
    opened.map_err(|refusal| {
        call.ctx.audit(
            AuditEvent::new(
                AuditEventType::AuthzFail,
                Severity::Medium,
                "requestState refused",
            )
            .principal(call.principal())
            .request(&call.caller.info)
            .action(ASK_AGENT.name)
            .result(AuditResult::Denied)
            .extra("reason", refusal.as_str()),
        );
        OpError::Invalid(PAUSE_REFUSED.to_owned())
    })
}

/// Gives Dust the person's answer to the pause a client brought back. No answer (the client
/// could not ask) rejects an approval, and leaves a question or a sign-in waiting in Dust.
async fn answer_pause(
    call: &Call,
    paused: &PausedRun,
    responses: Option<&rmcp::model::InputResponses>,
) -> Result<(), OpError> {
    let ctx = &call.ctx;
    let answer = paused.answer();
    let blocked = paused.blocked();
    let result = responses
        .and_then(|r| r.get(INPUT_KEY))
        .and_then(|v| serde_json::from_value::<ElicitResult>(v.clone()).ok());
    match paused.waiting {
        Waiting::Approval => {
            let asked = Asked::Decided(result.map(|r| (decision_of(&r), "person")));
            approved(call, &answer, &blocked, asked).await
        }
        Waiting::Question => {
            let reply = result.map(|r| question_reply(&r, &paused.options));
            let Some(reply) = reply else {
                return Err(OpError::Failed(paused_message(&blocked, &answer)));
            };
            ops_answer(ctx, &call.caller, &answer, &blocked, &reply).await
        }
        Waiting::SignIn => {
            if result.is_some_and(|r| r.action == ElicitationAction::Accept) {
                Ok(())
            } else {
                Err(OpError::Failed(paused_message(&blocked, &answer)))
            }
        }
    }
}

/// How waiting for an approval ended.
enum Asked {
    /// The person decided (`None`: nobody could be asked).
    Decided(Option<(ActionDecision, &'static str)>),
    TimedOut,
    Cancelled,
}

/// Tells Dust how waiting for an approval ended: the person's decision, or a rejection when
/// nobody could be asked, the call timed out or was cancelled (the run is then cancelled too).
/// Every way but a decision ends the call.
async fn approved(
    call: &Call,
    answer: &AgentAnswer,
    blocked: &BlockedAction,
    asked: Asked,
) -> Result<(), OpError> {
    let ctx = &call.ctx;
    let reject = |by| reject(ctx, &call.caller, answer, blocked, by);
    match asked {
        Asked::Decided(Some((decision, by))) => {
            decide(ctx, &call.caller, answer, blocked, decision, by).await
        }
        Asked::Decided(None) => Err(refuse_unasked(call, answer, blocked).await),
        Asked::TimedOut => {
            reject("timeout").await?;
            Err(OpError::Timeout(format!(
                "{} The approval of {} ({}) was still waiting, so it was rejected.",
                timeout_message(ctx, answer),
                blocked.tool_name,
                blocked.server_name
            )))
        }
        Asked::Cancelled => {
            let _ = reject("cancelled").await;
            cancel_in_background(ctx, call.principal(), answer);
            Err(OpError::Failed(
                "The request was cancelled while waiting for your approval; the action was rejected and the run cancelled.".to_owned(),
            ))
        }
    }
}

/// Rejects an approval nobody could be asked about, and says which tool was refused and how to
/// allow such tools.
async fn refuse_unasked(call: &Call, answer: &AgentAnswer, blocked: &BlockedAction) -> OpError {
    match reject(&call.ctx, &call.caller, answer, blocked, "unasked").await {
        Ok(()) => OpError::Failed(refused_unasked(blocked, answer)),
        Err(e) => e,
    }
}

/// The approval form: the prompt (agent, tool, server, masked inputs, stake) and one
/// `always` box.
pub(super) fn approval_form(answer: &AgentAnswer, blocked: &BlockedAction) -> ElicitRequestParams {
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
        .expect("a one-property schema is valid");
    ElicitRequestParams::FormElicitationParams {
        meta: None,
        message: approval_prompt(answer, blocked),
        requested_schema: schema,
    }
}

/// Asks the person to approve `blocked` by an `elicitation/create` request (handshake era).
/// `None`: the client did not answer.
async fn approval(
    request: &RequestContext<RoleServer>,
    answer: &AgentAnswer,
    blocked: &BlockedAction,
) -> Option<(ActionDecision, &'static str)> {
    let asked = request
        .peer
        .create_elicitation(approval_form(answer, blocked))
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
pub(super) fn decision_of(result: &ElicitResult) -> ActionDecision {
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

/// The agent's question as a form: the options as a choice and a free-text answer.
pub(super) fn question_form(
    answer: &AgentAnswer,
    blocked: &BlockedAction,
    question: &Question,
) -> Result<ElicitRequestParams, OpError> {
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
        .map_err(|e| OpError::Internal(format!("cannot build the question's form: {e}")))?;
    Ok(ElicitRequestParams::FormElicitationParams {
        meta: None,
        message: format!("The agent {agent} asks: {}", question.text),
        requested_schema: schema,
    })
}

/// The person's reply to a question form: the chosen option's index (a label that is not one
/// of `options` chooses nothing) and their own words, sent as they are. A declined form
/// answers nothing chosen.
pub(super) fn question_reply(result: &ElicitResult, options: &[String]) -> QuestionAnswer {
    let mut reply = QuestionAnswer::default();
    if result.action == ElicitationAction::Accept
        && let Some(content) = &result.content
    {
        if let Some(choice) = content.get("choice").and_then(serde_json::Value::as_str)
            && let Some(index) = options.iter().position(|o| o == choice)
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
    reply
}

/// Asks the person the agent's question by an `elicitation/create` request (handshake era).
/// `None`: the client failed to answer.
async fn ask_question(
    request: &RequestContext<RoleServer>,
    answer: &AgentAnswer,
    blocked: &BlockedAction,
    question: &Question,
) -> Option<QuestionAnswer> {
    let form = question_form(answer, blocked, question).ok()?;
    match request.peer.create_elicitation(form).await {
        Ok(result) => Some(question_reply(&result, &question.options)),
        Err(e) => {
            tracing::warn!(error = %e, "the client did not answer the agent's question");
            None
        }
    }
}

/// The URL-mode elicitation that sends the person to the conversation in Dust to connect the
/// tool.
pub(super) fn sign_in_request(blocked: &BlockedAction, url: &str) -> ElicitRequestParams {
    ElicitRequestParams::UrlElicitationParams {
        meta: None,
        message: format!(
            "{} ({}) needs you to connect your account in Dust before the agent can go on. Open the conversation in Dust, connect it there, and the agent continues.",
            blocked.tool_name, blocked.server_name
        ),
        url: url.to_owned(),
        elicitation_id: crate::crypto::random_token::<16>(),
    }
}

/// Sends the person to Dust by an `elicitation/create` request (handshake era). `true`: they
/// went (the run goes on once they have connected); `false`: they declined or the client
/// failed.
async fn sign_in(request: &RequestContext<RoleServer>, form: ElicitRequestParams) -> bool {
    let asked = request.peer.create_elicitation(form).await;
    matches!(asked, Ok(result) if result.action == ElicitationAction::Accept)
}
