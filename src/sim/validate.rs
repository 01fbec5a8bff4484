//! The zod schema of a posted message (`PublicPostMessagesRequestBodySchema`), by hand.
//!
//! Dust validates `context` strictly (a missing or empty `username`, an unknown IANA
//! `timezone`) and a client that gets these wrong fails on every call, so the simulator
//! rejects exactly what Dust rejects and with the same status and type.

use serde_json::{Value, json};

use super::error::{ApiError, ApiResult, Fields};

/// Context strings (`username`, `fullName`, `email`) must be shorter than this.
const MAX_CONTEXT_FIELD_LEN: usize = 255;
/// `profilePictureUrl` must be shorter than this.
const MAX_PICTURE_URL_LEN: usize = 2048;

/// Origins an API key may set; Dust refuses the other known ones.
const API_KEY_ORIGINS: &[&str] = &[
    "api",
    "excel",
    "gsheet",
    "make",
    "n8n",
    "powerpoint",
    "zapier",
];
/// Known origins reserved to other authentication methods.
const RESERVED_ORIGINS: &[&str] = &[
    "web",
    "extension",
    "slack",
    "teams",
    "email",
    "cli",
    "cli_programmatic",
    "raycast",
    "triggered",
    "triggered_programmatic",
    "run_agent",
    "agent_handover",
    "transcript",
    "zendesk",
    "onboarding_conversation",
];

/// A validated message: what the conversation stores and the agents answer.
#[derive(Debug, Clone)]
pub(crate) struct NewMessage {
    pub content: String,
    /// sIds of the mentioned agents, in order.
    pub mentions: Vec<String>,
    /// The normalised `context` as Dust echoes it back.
    pub context: Value,
}

/// Whether `name` is an IANA time zone.
pub(crate) fn is_valid_timezone(name: &str) -> bool {
    crate::timezone::is_iana_timezone(name)
}

/// Validates the message object found at `path` (`message` on create, `` on post).
pub(crate) fn parse_message(value: &Value, path: &str) -> ApiResult<NewMessage> {
    let message = Fields::of(value, path)?;
    let content = message.req_str("content")?;
    if content.is_empty() {
        return Err(ApiError::invalid_body(
            &message.path_of("content"),
            "String must contain at least 1 character(s)",
        ));
    }
    let mentions_path = message.path_of("mentions");
    let mentions = message
        .req_array("mentions")?
        .iter()
        .enumerate()
        .map(|(i, mention)| {
            let item_path = format!("{mentions_path}.{i}");
            Fields::of(mention, &item_path)?
                .req_str("configurationId")
                .map(str::to_owned)
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let context_path = message.path_of("context");
    let context = parse_context(message.required("context")?, &context_path)?;
    Ok(NewMessage {
        content: content.to_owned(),
        mentions,
        context,
    })
}

fn parse_context(value: &Value, path: &str) -> ApiResult<Value> {
    let ctx = Fields::of(value, path)?;
    let username = ctx.req_str("username")?;
    if username.is_empty() {
        return Err(ApiError::invalid_body(
            &ctx.path_of("username"),
            "String must contain at least 1 character(s)",
        ));
    }
    let timezone = ctx.req_str("timezone")?;
    if !is_valid_timezone(timezone) {
        return Err(ApiError::invalid_body(
            &ctx.path_of("timezone"),
            "Invalid timezone",
        ));
    }
    let full_name = ctx.opt_str("fullName")?;
    let email = ctx.opt_str("email")?;
    for (key, value) in [
        ("username", Some(username)),
        ("fullName", full_name),
        ("email", email),
    ] {
        if value.is_some_and(|v| v.chars().count() >= MAX_CONTEXT_FIELD_LEN) {
            return Err(ApiError::invalid_body(
                &ctx.path_of(key),
                "String must contain at most 254 character(s)",
            ));
        }
    }
    let picture = ctx.opt_str("profilePictureUrl")?;
    if picture.is_some_and(|v| v.len() >= MAX_PICTURE_URL_LEN) {
        return Err(ApiError::invalid_body(
            &ctx.path_of("profilePictureUrl"),
            "String must contain at most 2047 character(s)",
        ));
    }
    let origin = match ctx.opt_str("origin")? {
        Some(o) if API_KEY_ORIGINS.contains(&o) => o,
        Some(o) if RESERVED_ORIGINS.contains(&o) => {
            return Err(ApiError::invalid_request(
                "This origin is not allowed. Remove the origin from the context property.",
            ));
        }
        _ => "api",
    };
    Ok(json!({
        "username": username,
        "timezone": timezone,
        "fullName": full_name,
        "email": email.map(str::to_lowercase),
        "profilePictureUrl": picture,
        "origin": origin,
        "clientSideMCPServerIds": [],
        "selectedMCPServerViewIds": null,
        "lastTriggerRunAt": null,
    }))
}
