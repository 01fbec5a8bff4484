//! The agent runner: one tokio task per agent message, writing its events to the message log.
//!
//! The answer is computed up front and deterministically from the question and the seeded
//! knowledge ([`plan`]), then streamed the way Dust streams a run: optional tool events, an
//! optional `chain_of_thought` token (reasoning, not answer), one `generation_tokens` event per
//! word with the configured delay, `agent_message_done`, and the terminal event. Cancellation
//! is checked at every pause, so a cancelled run stops within one token delay.

use std::{sync::Arc, time::Duration};

use serde_json::{Value, json};

use super::{
    data::SLOW_AGENT_TOKEN_DELAY_MS,
    event_log::MessageLog,
    now_ms, random_s_id,
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
    };
    match &job.agent.kind {
        AgentKind::Dust | AgentKind::Knowledge { .. } => {
            let only = match &job.agent.kind {
                AgentKind::Knowledge { data_source_id } => Some(*data_source_id),
                _ => None,
            };
            let documents = world
                .data_sources
                .iter()
                .filter(|ds| only.is_none_or(|id| id == ds.s_id))
                .flat_map(|ds| ds.documents.values().map(move |d| (ds.s_id, d)));
            let hits = search::search(documents, question, 3);
            let best = hits.first().and_then(|hit| {
                let ds = world
                    .data_sources
                    .iter()
                    .find(|d| d.s_id == hit.data_source_id)?;
                let doc = ds.documents.get(&hit.document_id)?;
                Some((doc.title.clone(), hit.chunk.text.clone()))
            });
            plan.answer = match best {
                Some((title, text)) => format!("According to \"{title}\": {text}"),
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
    }
    plan
}

/// The `AgentAction` of a knowledge search, already carrying its output.
fn search_action(world: &World, job: &Job, hits: &[search::Hit]) -> Value {
    let output: Vec<Value> = hits
        .iter()
        .filter_map(|hit| {
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

async fn run(ws: &Workspace, job: &Job, plan: Plan) {
    let pause = || tokio::time::sleep(plan.token_delay);
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
