//! The agent runner: one tokio task per agent message, writing its events to the message log.
//!
//! The answer is computed up front and deterministically from the question and the seeded
//! knowledge ([`plan`]), then streamed the way Dust streams a run: optional tool events, an
//! optional `chain_of_thought` token (reasoning, not answer), one `generation_tokens` event per
//! word with the configured delay, `agent_message_done`, and the terminal event. Cancellation
//! is checked at every pause, so a cancelled run stops within one token delay.
//!
//! Every agent reads the content fragments posted before its user message: its answer ends
//! with a paragraph naming them (`Attachments I read: ...`, see
//! [`fragments::attachments_read`]), whatever the agent's kind.
//!
//! The tool agents reproduce what Dust's server does with tools: a failing tool ends the run
//! with `tool_error` (terminal: the message is `failed`); a tool that needs approval emits
//! `tool_approve_execution` and the run pauses until `validate-action` answers it (not at all
//! when the message was posted with `skipToolsValidation: true`, or the tool was
//! `always_approved` before); a question (`tool_ask_user_question`) pauses until
//! `answer-question`, and a missing personal connection (`tool_personal_auth_required`) pauses
//! whatever `skipToolsValidation` says, until the run is cancelled.

use std::{sync::Arc, time::Duration};

use serde_json::{Value, json};

use super::{
    data::SLOW_AGENT_TOKEN_DELAY_MS,
    event_log::{Decision, MessageLog},
    fragments, now_ms, random_s_id,
    render::agent_message_json,
    search,
    state::{AppState, Workspace},
    world::{Agent, AgentKind, AgentStatus, World},
};

/// Words the failing agent streams before it fails.
const FAILING_AGENT_WORDS: usize = 4;

/// One agent message to produce.
#[derive(Debug)]
pub(crate) struct Job {
    pub conversation_id: String,
    pub message_id: String,
    pub agent_message_id: u64,
    pub agent: Agent,
    pub question: String,
    pub log: Arc<MessageLog>,
    /// The message's own `skipToolsValidation` (default false, never inherited).
    pub skip_tools_validation: bool,
}

/// A tool step of the tool agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ToolScript {
    Fails,
    NeedsApproval,
    AsksQuestion,
    NeedsPersonalAuth,
}

/// What the run will emit, decided before the first event.
#[derive(Debug)]
struct Plan {
    /// The knowledge search, as `(query, AgentAction with output)`.
    action: Option<Value>,
    chain_of_thought: Option<String>,
    answer: String,
    fails: bool,
    token_delay: Duration,
    tool: Option<ToolScript>,
    /// The sentence naming the conversation's attachments, appended to whatever the answer
    /// turns out to be ([`fragments::attachments_read`]).
    attachments: Option<String>,
}

/// Starts the run of `job` in the background.
pub(crate) fn spawn(state: &AppState, ws: &Arc<Workspace>, job: Job) {
    let token_delay = Duration::from_millis(state.config.token_delay_ms);
    let plan = plan(&ws.world(), &job, token_delay);
    let shutdown = state.shutdown.clone();
    let ws = Arc::clone(ws);
    tokio::spawn(async move {
        let cancel = job.log.cancel.clone();
        tokio::select! {
            () = run(&ws, &job, plan) => {}
            () = cancel.cancelled() => finish_cancelled(&ws, &job),
            () = shutdown.cancelled() => finish_cancelled(&ws, &job),
        }
    });
}

fn plan(world: &World, job: &Job, default_delay: Duration) -> Plan {
    let question = job.question.as_str();
    let mut plan = Plan {
        action: None,
        chain_of_thought: None,
        answer: String::new(),
        fails: false,
        token_delay: default_delay,
        tool: None,
        attachments: world
            .conversations
            .get(&job.conversation_id)
            .and_then(|c| fragments::attachments_read(c, &job.message_id)),
    };
    match &job.agent.kind {
        AgentKind::Dust | AgentKind::Knowledge { .. } => {
            let only = match &job.agent.kind {
                AgentKind::Knowledge { data_source_id } => Some(*data_source_id),
                _ => None,
            };
            // The global agent reads what the workspace's spaces reach through their views
            // (never a connector page no view selects); a knowledge agent its one source.
            let reachable = |ds: &super::world::DataSource, doc: &super::world::Document| {
                only.is_some()
                    || world.views.iter().any(|v| {
                        v.data_source_id == ds.s_id
                            && world.space(v.space_id).is_some()
                            && v.covers(doc)
                    })
            };
            let documents = world
                .data_sources
                .iter()
                .filter(|ds| only.is_none_or(|id| id == ds.s_id))
                .flat_map(|ds| {
                    ds.documents
                        .values()
                        .filter(move |d| reachable(ds, d))
                        .map(move |d| (ds.s_id, d))
                });
            let hits = search::search(documents, question, CITATION_REFS.len());
            let best = hits.first().and_then(|hit| {
                let ds = world
                    .data_sources
                    .iter()
                    .find(|d| d.s_id == hit.data_source_id)?;
                let doc = ds.documents.get(&hit.document_id)?;
                Some((doc.title.clone(), hit.chunk.text.clone()))
            });
            // Dust cites a source with `:cite[ref]`, the ref being that of the search result
            // in the action's output (see [`search_action`]); the best hit is the first.
            plan.answer = match best {
                Some((title, text)) => {
                    format!(
                        "According to \"{title}\": {text} :cite[{}]",
                        CITATION_REFS[0]
                    )
                }
                None => "I could not find anything about this in the company data.".to_owned(),
            };
            plan.chain_of_thought = Some("Searching the company data for the question.".to_owned());
            plan.action = Some(search_action(world, job, &hits));
        }
        AgentKind::Echo => plan.answer = format!("You said: {question}"),
        AgentKind::Failing => {
            plan.answer = "Let me think about that".to_owned();
            plan.fails = true;
        }
        AgentKind::Slow => {
            plan.answer = format!(
                "I am answering very slowly, one word at a time, so that you have plenty of time \
                 to cancel me or to give up waiting. You asked: {question}"
            );
            plan.token_delay = Duration::from_millis(SLOW_AGENT_TOKEN_DELAY_MS);
        }
        AgentKind::ToolError => plan.tool = Some(ToolScript::Fails),
        AgentKind::Approval => plan.tool = Some(ToolScript::NeedsApproval),
        AgentKind::Question => plan.tool = Some(ToolScript::AsksQuestion),
        AgentKind::PersonalAuth => plan.tool = Some(ToolScript::NeedsPersonalAuth),
    }
    plan
}

/// A tool the tool agents call: `(tool, MCP server name, server display name, server id)`.
fn tool_of(script: ToolScript) -> (&'static str, &'static str, &'static str, &'static str) {
    match script {
        ToolScript::Fails => ("fetch_report", "reports", "Reports", "ims_rep0rts0001"),
        ToolScript::NeedsApproval => ("send_email", "gmail", "Gmail", "ims_gma1l000001"),
        ToolScript::AsksQuestion => (
            "ask_user_question",
            "ask_user_question",
            "Ask the user",
            "ims_askUs3r0001",
        ),
        ToolScript::NeedsPersonalAuth => (
            "list_files",
            "google_drive",
            "Google Drive",
            "ims_gDr1ve00001",
        ),
    }
}

/// The `AgentAction` of a tool call of `job`.
fn tool_action(
    job: &Job,
    script: ToolScript,
    params: &Value,
    status: &str,
    output: &Value,
) -> Value {
    let (tool, server, label, server_id) = tool_of(script);
    let now = now_ms();
    json!({
        "id": job.agent_message_id * 10 + 1,
        "sId": format!("act_{}", job.message_id),
        "createdAt": now,
        "updatedAt": now,
        "mcpServerId": server_id,
        "internalMCPServerName": server,
        "toolName": tool,
        "agentMessageId": job.agent_message_id,
        "functionCallName": format!("{server}__{tool}"),
        "functionCallId": format!("call_{}", job.message_id),
        "status": status,
        "params": params,
        "step": 0,
        "executionDurationMs": if output.is_null() { Value::Null } else { json!(25) },
        "citationsAllocated": 0,
        "output": output,
        "generatedFiles": [],
        "displayLabels": { "running": format!("Using {label}"), "done": format!("Used {label}") },
    })
}

/// What a tool step leaves the run with.
enum ToolOutcome {
    /// Go on and stream this answer.
    Answer(String),
    /// The run ended (its terminal event is written).
    Ended,
}

/// Runs the tool step `script` of `job`: events, the pause for the person, the outcome.
async fn run_tool(ws: &Workspace, job: &Job, script: ToolScript) -> ToolOutcome {
    let (tool, server, label, server_id) = tool_of(script);
    let params = match script {
        ToolScript::Fails => json!({ "week": "current" }),
        ToolScript::NeedsApproval => json!({
            "to": "ceo@example.com", "subject": "A message from the team", "body": job.question,
        }),
        ToolScript::AsksQuestion => {
            json!({ "question": "Which office should I book the room in?" })
        }
        ToolScript::NeedsPersonalAuth => json!({ "folder": "My Drive" }),
    };
    let action_id = format!("act_{}", job.message_id);
    job.log.push(event(
        job,
        "tool_call_started",
        json!({ "toolName": tool, "toolCallId": format!("call_{}", job.message_id), "toolCallIndex": 0 }),
    ));
    job.log.push(event(
        job,
        "tool_params",
        json!({ "action": tool_action(job, script, &params, "running", &Value::Null) }),
    ));
    // What a blocked action carries, in its event and in `GET .../actions/blocked`.
    let blocked = |status: &str, stake: &str| {
        json!({
            "actionId": action_id,
            "inputs": params,
            "stake": stake,
            "metadata": {
                "agentName": job.agent.name,
                "mcpServerName": server,
                "mcpServerDisplayName": label,
                "mcpServerId": server_id,
                "toolName": tool,
            },
            "messageId": job.message_id,
            "conversationId": job.conversation_id,
            "status": status,
        })
    };
    let blocking_event = |kind: &str, action: &Value, extra: Value| {
        let mut data = event(
            job,
            kind,
            json!({
                "actionId": action["actionId"],
                "inputs": action["inputs"],
                "stake": action["stake"],
                "metadata": action["metadata"],
                "conversationId": job.conversation_id,
                "isLastBlockingEventForStep": true,
            }),
        );
        if let (Some(data), Value::Object(extra)) = (data.as_object_mut(), extra) {
            data.extend(extra);
        }
        data
    };
    match script {
        ToolScript::Fails => {
            let error = json!({
                "code": "tool_error",
                "message": "The reports service answered HTTP 503 (simulated tool failure).",
                "metadata": { "toolName": tool, "mcpServerName": server },
            });
            update(ws, job, |m| {
                m.status = AgentStatus::Failed;
                m.error = Some(error.clone());
            });
            job.log.push(event(
                job,
                "tool_error",
                json!({ "error": error, "isLastBlockingEventForStep": true }),
            ));
            ToolOutcome::Ended
        }
        ToolScript::NeedsApproval => {
            let approved_before = ws.world().always_approved.contains(tool);
            let decision = if job.skip_tools_validation || approved_before {
                "approved".to_owned()
            } else {
                let action = blocked("blocked_validation_required", "high");
                job.log
                    .push(blocking_event("tool_approve_execution", &action, json!({})));
                job.log.block(action);
                match job.log.wait_decision().await {
                    Decision::Validation(d) => d,
                    Decision::Answer(_) => "rejected".to_owned(),
                }
            };
            if decision == "always_approved" {
                ws.world().always_approved.insert(tool.to_owned());
            }
            if decision == "rejected" {
                return ToolOutcome::Answer(
                    "I did not send the email: the action was rejected.".to_owned(),
                );
            }
            finish_tool(ws, job, script, &params, "Email sent to ceo@example.com.");
            ToolOutcome::Answer("I sent your message to ceo@example.com.".to_owned())
        }
        ToolScript::AsksQuestion => {
            let mut action = blocked("blocked_user_answer_required", "low");
            let question = json!({
                "question": "Which office should I book the meeting room in?",
                "options": [
                    { "label": "Paris", "description": "12 Rue de la Paix" },
                    { "label": "Berlin", "description": null },
                ],
                "multiSelect": false,
            });
            action["question"] = question.clone();
            job.log.push(blocking_event(
                "tool_ask_user_question",
                &action,
                json!({ "question": question }),
            ));
            job.log.block(action);
            let answer = match job.log.wait_decision().await {
                Decision::Answer(answer) => answer,
                Decision::Validation(_) => Value::Null,
            };
            let office = answer["customResponse"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| {
                    let first = answer["selectedOptions"].get(0)?.as_u64()?;
                    question["options"].get(usize::try_from(first).ok()?)?["label"]
                        .as_str()
                        .map(str::to_owned)
                });
            let Some(office) = office else {
                return ToolOutcome::Answer(
                    "You did not choose an office; I booked nothing.".to_owned(),
                );
            };
            finish_tool(
                ws,
                job,
                script,
                &params,
                &format!("The person chose: {office}"),
            );
            ToolOutcome::Answer(format!("I booked a meeting room in {office}."))
        }
        ToolScript::NeedsPersonalAuth => {
            let action = blocked("blocked_authentication_required", "low");
            job.log.push(blocking_event(
                "tool_personal_auth_required",
                &action,
                json!({
                    "authError": {
                        "mcpServerId": server_id,
                        "message": "Connect your Google Drive account to let DriveReader list your files.",
                        "provider": "google_drive",
                        "toolName": tool,
                    },
                }),
            ));
            job.log.block(action);
            // Nothing in the API connects a personal account: the run waits until cancelled.
            std::future::pending::<()>().await;
            ToolOutcome::Ended
        }
    }
}

/// Records the tool's success (`agent_action_success` and the message's actions).
fn finish_tool(ws: &Workspace, job: &Job, script: ToolScript, params: &Value, text: &str) {
    let action = tool_action(
        job,
        script,
        params,
        "succeeded",
        &json!([{ "type": "text", "text": text }]),
    );
    job.log.push(event(
        job,
        "agent_action_success",
        json!({ "action": action }),
    ));
    update(ws, job, |m| m.actions.push(action));
}

/// The refs the search results of a run get, in rank order, as Dust allocates them (three
/// characters from a shuffled alphabet): the answer cites a result as `:cite[<ref>]`. One per
/// hit the knowledge search can return.
const CITATION_REFS: [&str; 3] = ["k7q", "m2d", "x9f"];

/// The `AgentAction` of a knowledge search, already carrying its output.
fn search_action(world: &World, job: &Job, hits: &[search::Hit]) -> Value {
    let output: Vec<Value> = hits
        .iter()
        .zip(CITATION_REFS)
        .filter_map(|(hit, reference)| {
            let ds = world
                .data_sources
                .iter()
                .find(|d| d.s_id == hit.data_source_id)?;
            let doc = ds.documents.get(&hit.document_id)?;
            Some(json!({
                "type": "resource",
                "resource": {
                    "mimeType": "application/vnd.dust.search_result",
                    "uri": doc.source_url,
                    "text": doc.title,
                    "id": doc.document_id,
                    "ref": reference,
                    "chunks": [hit.chunk.text],
                },
            }))
        })
        .collect();
    let now = now_ms();
    json!({
        "id": job.agent_message_id * 10,
        "sId": format!("act_{}", random_s_id()),
        "createdAt": now,
        "updatedAt": now,
        "mcpServerId": null,
        "internalMCPServerName": "search",
        "toolName": "semantic_search",
        "agentMessageId": job.agent_message_id,
        "functionCallName": "search__semantic_search",
        "functionCallId": format!("call_{}", job.message_id),
        "status": "succeeded",
        "params": { "query": job.question },
        "step": 0,
        "executionDurationMs": 12,
        "citationsAllocated": hits.len(),
        "output": output,
        "generatedFiles": [],
        "displayLabels": { "running": "Searching data sources", "done": "Search data sources" },
    })
}

/// An event of this message with the common members.
fn event(job: &Job, kind: &str, extra: Value) -> Value {
    let mut data = json!({
        "type": kind,
        "created": now_ms(),
        "configurationId": job.agent.s_id,
        "messageId": job.message_id,
        "step": 0,
    });
    if let (Some(data), Value::Object(extra)) = (data.as_object_mut(), extra) {
        data.extend(extra);
    }
    data
}

async fn run(ws: &Workspace, job: &Job, mut plan: Plan) {
    let pause = || tokio::time::sleep(plan.token_delay);
    if let Some(script) = plan.tool {
        match run_tool(ws, job, script).await {
            ToolOutcome::Answer(answer) => plan.answer = answer,
            ToolOutcome::Ended => return,
        }
    }
    if let Some(attachments) = &plan.attachments {
        plan.answer = format!("{}\n\n{attachments}", plan.answer);
    }
    if let Some(action) = &plan.action {
        job.log.push(event(job, "tool_call_started", json!({
            "toolName": "semantic_search", "toolCallId": action["functionCallId"], "toolCallIndex": 0,
        })));
        let mut running = action.clone();
        running["status"] = json!("running");
        running["output"] = Value::Null;
        job.log
            .push(event(job, "tool_params", json!({ "action": running })));
        pause().await;
        job.log.push(event(
            job,
            "agent_action_success",
            json!({ "action": action }),
        ));
        update(ws, job, |m| m.actions.push(action.clone()));
    }
    if let Some(thought) = &plan.chain_of_thought {
        job.log.push(event(
            job,
            "generation_tokens",
            json!({
                "text": thought, "classification": "chain_of_thought",
            }),
        ));
        update(ws, job, |m| m.chain_of_thought = Some(thought.clone()));
    }
    let mut streamed = String::new();
    for (i, token) in plan.answer.split_inclusive(char::is_whitespace).enumerate() {
        if plan.fails && i == FAILING_AGENT_WORDS {
            break;
        }
        pause().await;
        streamed.push_str(token);
        job.log.push(event(
            job,
            "generation_tokens",
            json!({
                "text": token, "classification": "tokens",
            }),
        ));
        let partial = streamed.clone();
        update(ws, job, |m| m.content = Some(partial));
    }
    if plan.fails {
        let error = json!({
            "code": "model_error",
            "message": "The agent failed on purpose (simulated model error).",
            "metadata": null,
        });
        update(ws, job, |m| {
            m.status = AgentStatus::Failed;
            m.error = Some(error.clone());
        });
        job.log.push(event(
            job,
            "agent_error",
            json!({ "error": error, "runIds": [run_id(job)] }),
        ));
        return;
    }
    let message = {
        let mut world = ws.world();
        let answer = plan.answer.clone();
        let updated = world
            .conversations
            .get_mut(&job.conversation_id)
            .and_then(|c| c.agent_message_mut(&job.message_id))
            .map(|m| {
                m.status = AgentStatus::Succeeded;
                m.content = Some(answer);
                m.clone()
            });
        updated.map(|m| agent_message_json(&world, &m))
    };
    job.log.push(event(
        job,
        "agent_message_done",
        json!({ "conversationId": job.conversation_id }),
    ));
    job.log.push(event(
        job,
        "agent_message_success",
        json!({
            "message": message, "runIds": [run_id(job)],
        }),
    ));
}

fn run_id(job: &Job) -> String {
    format!("run_{}", job.message_id)
}

/// Marks the message cancelled (keeping the text streamed so far) and ends its log.
fn finish_cancelled(ws: &Workspace, job: &Job) {
    if job.log.is_done() {
        return;
    }
    update(ws, job, |m| m.status = AgentStatus::Cancelled);
    job.log
        .push(event(job, "agent_generation_cancelled", json!({})));
}

/// Applies `f` to this job's agent message in the world.
fn update(ws: &Workspace, job: &Job, f: impl FnOnce(&mut super::world::AgentMsg)) {
    let mut world = ws.world();
    if let Some(m) = world
        .conversations
        .get_mut(&job.conversation_id)
        .and_then(|c| c.agent_message_mut(&job.message_id))
    {
        f(m);
    }
}
