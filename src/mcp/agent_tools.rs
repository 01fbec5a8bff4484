//! Agents as tools of their own (`DUST_AGENT_TOOLS`): each chosen agent the caller can see is
//! also the tool `ask_<name>`, with the agent's description, `ask_agent`'s arguments but
//! `agentId`, its output schema and annotations, and its permission (`execute:agents`).
//!
//! The agents are the caller's own (each key sees its own), so the tools are too: `tools/list`
//! reads the caller's agent list (through the per-principal cache of [`agents::agents`]) and
//! appends one tool per chosen agent, and `tools/call` of an `ask_*` name that is not a built-in
//! tool reads the same list and maps names the same way ([`named`]), then runs exactly what
//! `ask_agent` runs for that agent (progress, approvals, `input_required` rounds, tasks): the
//! operation is `ask_agent`'s, so are its permission check, bulkhead slot and audit record,
//! which names the agent.
//!
//! Names follow the rules every MCP client accepts: `ask_` and the agent's name in lowercase
//! snake_case, ASCII letters, digits and `_`, at most [`MAX_TOOL_NAME`] characters. They depend
//! only on the chosen agents, so two lists give the same names. Agents whose names map alike,
//! or onto a built-in tool (an agent called "Agent"), each get a part of their sId appended;
//! anything still alike after that (sIds equal but for case) is numbered in sId order.
//!
//! The list's caching hint stays `ttl_ms: 0`, private: an agent may be added or removed in
//! Dust at any moment, and the server is stateless, so it sends no `list_changed`.

use std::{
    collections::HashSet,
    sync::{Arc, LazyLock},
};

use rmcp::{
    RoleServer,
    handler::server::common::schema_for_input,
    model::{JsonObject, Tool},
    service::RequestContext,
};
use serde_json::Value;

use super::tools::{Outcome, Retry, catalogue, encode, parse};
use crate::{
    auth::Principal,
    config::AgentTools,
    dust::AgentConfiguration,
    ops::{Call, Context, OpError, agents, args::AskNamedAgentArgs, ask::ASK_AGENT},
};

/// The prefix of every agent's tool.
const PREFIX: &str = "ask_";

/// Longest tool name: the MCP spec allows 128, some clients (OpenAI's) only 64.
pub(crate) const MAX_TOOL_NAME: usize = 64;

/// Most characters of an sId appended to tell alike names apart (Dust's sIds have 10).
const MAX_SID_PART: usize = 16;

/// Longest description taken from an agent; a longer one is cut (the list is sent on every
/// `tools/list`, and a model reads every description).
const MAX_DESCRIPTION: usize = 1024;

/// The input schema of every agent's tool.
static SCHEMA: LazyLock<Arc<JsonObject>> = LazyLock::new(|| {
    schema_for_input::<AskNamedAgentArgs>().expect("tool arguments are JSON objects")
});

/// Whether `name` may be an agent's tool: the setting is on and it has the prefix.
pub(super) fn may_name(ctx: &Context, name: &str) -> bool {
    ctx.settings.agent_tools.is_enabled() && name.starts_with(PREFIX)
}

/// The agents' tools `principal` sees: none without `execute:agents`, none when its agent list
/// cannot be read (the built-in tools are still listed; the failure is logged).
pub(super) async fn list(ctx: &Context, principal: &Principal) -> Vec<Tool> {
    let choice = &ctx.settings.agent_tools;
    if !choice.is_enabled() || !principal.can(ASK_AGENT.permission) {
        return Vec::new();
    }
    match agents::agents(ctx, principal).await {
        Ok(list) => named(choice, &list)
            .into_iter()
            .map(|(name, agent)| tool(name, agent))
            .collect(),
        Err(error) => {
            tracing::warn!(error = %error, "agent tools left out of tools/list: cannot list agents");
            Vec::new()
        }
    }
}

/// The sId of the agent whose tool is `name`, for the caller of `call`; `None` when no chosen
/// agent the caller sees has that name.
pub(super) async fn resolve(call: &Call, name: &str) -> Result<Option<String>, OpError> {
    let list = agents::agents(&call.ctx, call.principal())
        .await
        .map_err(|e| OpError::dust("listing agents", e))?;
    Ok(named(&call.ctx.settings.agent_tools, &list)
        .into_iter()
        .find(|(tool, _)| tool == name)
        .map(|(_, agent)| agent.s_id.clone()))
}

/// Runs the tool `name` of the agent `agent_id`: `ask_agent` with that agent.
pub(super) async fn ask(
    call: &Call,
    name: &str,
    agent_id: String,
    arguments: Option<JsonObject>,
    request: RequestContext<RoleServer>,
    retry: Retry,
) -> Result<Outcome<Value>, OpError> {
    let args: AskNamedAgentArgs = parse(name, arguments)?;
    Ok(
        match super::ask::ask_agent(call, args.for_agent(agent_id), request, retry).await? {
            Outcome::Done(answer) => Outcome::Done(encode(&answer)?),
            Outcome::Input(input) => Outcome::Input(input),
            Outcome::Task(task) => Outcome::Task(task),
        },
    )
}

/// The chosen active agents of `agents`, in their order, each with its tool's name.
pub(crate) fn named<'a>(
    choice: &AgentTools,
    agents: &'a [AgentConfiguration],
) -> Vec<(String, &'a AgentConfiguration)> {
    let chosen: Vec<&AgentConfiguration> = agents
        .iter()
        .filter(|a| (a.status.is_empty() || a.status == "active") && choice.includes(&a.s_id))
        .collect();
    let built_in: HashSet<&str> = catalogue().iter().map(|s| s.op.name).collect();
    let bases: Vec<String> = chosen.iter().map(|a| base_name(a)).collect();
    let mut names: Vec<String> = bases
        .iter()
        .zip(&chosen)
        .map(|(base, agent)| {
            let alike = bases.iter().filter(|other| *other == base).count() > 1;
            if alike || built_in.contains(base.as_str()) {
                with_suffix(base, &sid_part(&agent.s_id))
            } else {
                base.clone()
            }
        })
        .collect();
    // Still alike (sIds equal but for case, or cut alike): numbered in sId order.
    let mut order: Vec<usize> = (0..chosen.len()).collect();
    order.sort_by(|&a, &b| chosen[a].s_id.cmp(&chosen[b].s_id));
    let mut taken: HashSet<String> = built_in.iter().map(|n| (*n).to_owned()).collect();
    for i in order {
        let mut n = 2u32;
        while taken.contains(&names[i]) {
            names[i] = with_suffix(&names[i], &n.to_string());
            n += 1;
        }
        taken.insert(names[i].clone());
    }
    names.into_iter().zip(chosen).collect()
}

/// `ask_` and the agent's name in snake case (its sId when the name has no ASCII letter or
/// digit), cut to [`MAX_TOOL_NAME`].
fn base_name(agent: &AgentConfiguration) -> String {
    let mut stem = snake_case(&agent.name);
    if stem.is_empty() {
        stem = sid_part(&agent.s_id);
    }
    let name = format!("{PREFIX}{stem}");
    cut(&name, MAX_TOOL_NAME).to_owned()
}

/// `text` in lowercase snake case, ASCII only: a run of anything but letters and digits is one
/// `_`, and a word starting in upper case inside a name starts a new part (`HRHandbook`:
/// `hr_handbook`, `DriveReader`: `drive_reader`).
fn snake_case(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut gap = false;
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_ascii_alphanumeric() {
            gap = true;
            continue;
        }
        let word_starts = c.is_ascii_uppercase()
            && i > 0
            && (chars[i - 1].is_ascii_lowercase()
                || chars[i - 1].is_ascii_digit()
                || (chars[i - 1].is_ascii_uppercase()
                    && chars.get(i + 1).is_some_and(char::is_ascii_lowercase)));
        if (gap || word_starts) && !out.is_empty() {
            out.push('_');
        }
        gap = false;
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// The start of an sId, usable in a tool name.
fn sid_part(s_id: &str) -> String {
    s_id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(MAX_SID_PART)
        .collect()
}

/// `name_suffix`, with `name` cut so the whole fits [`MAX_TOOL_NAME`].
fn with_suffix(name: &str, suffix: &str) -> String {
    let room = MAX_TOOL_NAME.saturating_sub(suffix.len() + 1);
    format!("{}_{suffix}", cut(name, room))
}

/// The first `max` bytes of an ASCII name, without a trailing `_`.
fn cut(name: &str, max: usize) -> &str {
    name[..name.len().min(max)].trim_end_matches('_')
}

/// The tool of one agent: `ask_agent`'s definition with the agent's name, description and the
/// arguments but `agentId`.
fn tool(name: String, agent: &AgentConfiguration) -> Tool {
    let mut tool = catalogue()
        .iter()
        .find(|spec| spec.op.name == ASK_AGENT.name)
        .map(|spec| spec.tool.clone())
        .expect("ask_agent is a tool");
    let title = format!("Ask {}", agent.name.trim());
    let description = match agent.description.trim() {
        "" => format!("Asks the Dust agent {}.", agent.name.trim()),
        text => text.chars().take(MAX_DESCRIPTION).collect(),
    };
    tool.name = name.into();
    tool.description = Some(description.into());
    tool.input_schema = SCHEMA.clone();
    if let Some(annotations) = &mut tool.annotations {
        annotations.title = Some(title.clone());
    }
    tool.title = Some(title);
    tool
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(s_id: &str, name: &str) -> AgentConfiguration {
        serde_json::from_value(serde_json::json!({"sId": s_id, "name": name, "status": "active"}))
            .unwrap()
    }

    fn names(choice: &AgentTools, agents: &[AgentConfiguration]) -> Vec<String> {
        named(choice, agents).into_iter().map(|(n, _)| n).collect()
    }

    #[test]
    fn names_are_snake_case_ascii_and_bounded() {
        assert_eq!(snake_case("HRHandbook"), "hr_handbook");
        assert_eq!(snake_case("DriveReader"), "drive_reader");
        assert_eq!(snake_case("dust"), "dust");
        assert_eq!(snake_case("  Café -- Bot 2 "), "caf_bot_2");
        assert_eq!(snake_case("GPT4o"), "gpt4o");
        let long = agent("abcdefghij", &"Word".repeat(40));
        let emoji = agent("Xy-Z01", "🤖");
        let listed = names(&AgentTools::All, &[long, emoji]);
        assert_eq!(listed[1], "ask_xy_z01");
        for name in &listed {
            assert!(name.len() <= MAX_TOOL_NAME, "{name}");
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{name}"
            );
        }
    }

    #[test]
    fn alike_names_are_told_apart_by_their_sid_and_stay_stable() {
        let agents = [
            agent("aaaaaaaaa1", "Sales Bot"),
            agent("bbbbbbbbb2", "sales-bot"),
            agent("ccccccccc3", "Agent"),
            agent("dust", "dust"),
            agent("ABCDEFGHIJ", "Twin"),
            agent("abcdefghij", "Twin"),
        ];
        let first = names(&AgentTools::All, &agents);
        assert_eq!(
            first,
            [
                "ask_sales_bot_aaaaaaaaa1",
                "ask_sales_bot_bbbbbbbbb2",
                "ask_agent_ccccccccc3",
                "ask_dust",
                "ask_twin_abcdefghij",
                "ask_twin_abcdefghij_2",
            ]
        );
        let mut reversed = agents.to_vec();
        reversed.reverse();
        let mut second = names(&AgentTools::All, &reversed);
        second.reverse();
        assert_eq!(first, second);
        let only = AgentTools::Only(vec!["bbbbbbbbb2".into(), "dust".into()]);
        assert_eq!(names(&only, &agents), ["ask_sales_bot", "ask_dust"]);
    }

    #[test]
    fn inactive_agents_are_left_out() {
        let mut archived = agent("arch1ved00", "Old");
        archived.status = "archived".into();
        assert!(names(&AgentTools::All, &[archived]).is_empty());
        assert!(names(&AgentTools::None, &[agent("dust", "dust")]).is_empty());
    }

    /// The arguments are `ask_agent`'s but `agentId`: a field `ask_agent` gains must be added
    /// here too.
    #[test]
    fn arguments_are_ask_agents_but_the_agent() {
        let ask = schema_for_input::<crate::ops::args::AskAgentArgs>().unwrap();
        let keys = |schema: &JsonObject| -> Vec<String> {
            let properties = schema["properties"].as_object().unwrap();
            properties
                .keys()
                .filter(|k| *k != "agentId")
                .cloned()
                .collect()
        };
        assert_eq!(keys(&SCHEMA), keys(&ask));
        assert_eq!(SCHEMA["required"], ask["required"]);
        assert_eq!(SCHEMA["additionalProperties"], false);
    }
}
