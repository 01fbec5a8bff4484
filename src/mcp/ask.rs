//! `ask_agent` over MCP: the run is started and its events read by [`crate::ops::ask`]; this
//! adapter adds what MCP has: each event becomes a progress notification when the client asked
//! for progress, and `notifications/cancelled` cancels the Dust message too, as does the
//! caller's token ending (revoked, expired) while the agent runs.

use futures::StreamExt;
use rmcp::{RoleServer, model::ProgressNotificationParam, service::RequestContext};

use crate::ops::{
    Call, OpError,
    args::AskAgentArgs,
    ask::{
        Run, RunStep, SHUTTING_DOWN, cancel_in_background, start_run, stream_failure,
        timeout_message,
    },
    call::CREDENTIALS_ENDED,
    views::AgentAnswer,
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
