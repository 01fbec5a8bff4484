// Drives a Dust API (the simulator of `mcp-dust-server sim`) with Dust's official JS SDK,
// `@dust-tt/client` (exact version in package.json), as an independent check that every answer
// has Dust's shape: the SDK validates each answer with Dust's own zod schemas.
//
// Usage: node dust_sdk.mjs [--keep-going] SCENARIO...
//   core        every Dust call mcp-dust-server makes (src/dust/calls.rs, the `DustApi` trait)
//   views       data source views of each space, and a search through views
//   tool_error  an agent whose tool fails: the stream ends with `tool_error`
//   approval    an agent whose tool needs approval: blocked actions, validateAction, success
//   question    an agent that asks the person a question: answerUserQuestion, success
//   citations   a knowledge agent's answer: a search action whose results carry `ref`s, and
//               `:cite[ref]` markers in the content naming them (mcp-dust-server's `citations`)
//   attachments uploadFile (a PDF), postContentFragment (inline text, then the uploaded file),
//               createConversation with contentFragments; the agent's answer names both
//   --keep-going  record a failed step and go on (diagnosis); the exit status is still 1
//
// Environment (printed by `mcp-dust-server sim`): DUST_BASE_URL, DUST_WORKSPACE_ID,
// DUST_API_KEY. Optional, defaulting to the simulator's seeded ids: ECHO_AGENT_ID,
// SLOW_AGENT_ID, TOOL_ERROR_AGENT_ID, APPROVAL_AGENT_ID, QUESTION_AGENT_ID, HANDBOOK_AGENT_ID,
// COMPANY_SPACE_ID, HANDBOOK_DS_ID;
// DUST_SDK_EVENT_TIMEOUT_MS (longest wait for one stream event, default 30000).
//
// How each call is checked:
// - Where the SDK has a method for a call (exists, getAgentConfigurations, createConversation,
//   streamAgentAnswerEvents, postUserMessage, getConversation, cancelMessageGeneration,
//   getSpaces, searchNodes, getBlockedActions, validateAction), the script calls it. It answers a Result; an
//   error result (a zod failure is `unexpected_response_format`) or an exception where success
//   is expected fails the step, with the method and the full error.
// - Where it has none (get or search agents, data sources of a space, data source and view
//   search, documents, tables and their rows, data source views of a space), the script goes
//   through the SDK's own
//   transport, `DustAPI.request` then `DustAPI._resultFromResponse(schema)`: the same code as
//   every SDK method, with the schema Dust's SDK declares for that route in src/types.ts. Most of
//   these schemas are not exported, so they are read from the SDK's bundle as it is (see
//   `sdkInternals`), never rewritten here.
// - The SDK's streaming helpers do not validate events; the script validates every event
//   against the SDK's schema for its `type`, and every SSE frame's `{eventId, data}` envelope.
// - Some SDK schemas accept more than Dust sends (an upsert answer may be any object with a
//   `document_id`; `postUserMessage` drops `agentMessages`): the script also checks those parts
//   against the SDK's exact sub-schemas (full or light document, agent message).
//
// Prints one JSON line: {"ok", "sdk", "scenarios": {name: {"ok", "steps": [{step, method,
// route, ok, saw?|error?}]}}}. Exits 1 after the first failed step (with --keep-going, after all
// of them), with the reason on stderr.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import vm from "node:vm";

import {
  AgentMessageEventDataSchema,
  DustAPI,
  FileUploadedRequestResponseSchema,
  FileUploadUrlRequestSchema,
  PublicPostContentFragmentRequestBodySchema,
  GenerationTokensEventSchema,
  GetAgentConfigurationsResponseSchema,
  GetDataSourcesResponseSchema,
  GetOrPatchAgentConfigurationResponseSchema,
  PostDataSourceDocumentRequestSchema,
  PublicPostConversationsRequestBodySchema,
  PublicPostMessagesRequestBodySchema,
  SearchRequestBodySchema,
  UpsertTableRowsRequestSchema,
} from "@dust-tt/client";

const require = createRequire(import.meta.url);
const SDK_PACKAGE = require("@dust-tt/client/package.json");

/// Schemas the SDK declares but does not export, taken from its own CommonJS bundle: the bundle
/// is evaluated once more with one line appended that hands these top-level bindings out.
function sdkInternals(names) {
  const file = require.resolve("@dust-tt/client/dist/client.cjs.development.js");
  const source = `${readFileSync(file, "utf8")}\n;module.exports.__internals = { ${names.join(", ")} };`;
  const wrapper = vm.compileFunction(
    source,
    ["exports", "require", "module", "__filename", "__dirname"],
    { filename: file },
  );
  const module = { exports: {} };
  wrapper(module.exports, createRequire(file), module, file, path.dirname(file));
  return module.exports.__internals;
}

const S = sdkInternals([
  "AgentActionSuccessEventSchema",
  "AgentContextPrunedEventSchema",
  "AgentErrorEventSchema",
  "AgentGenerationCancelledEventSchema",
  "AgentMessageDoneEventSchema",
  "AgentMessageGracefullyStoppedEventSchema",
  "AgentMessageSuccessEventSchema",
  "AgentMessageTypeSchema",
  "AgentToolCallStartedEventSchema",
  "CoreAPIDocumentSchema",
  "CoreAPILightDocumentSchema",
  "DataSourceSearchResponseSchema",
  "DataSourceViewsListResponseSchema",
  "DeleteDocumentResponseSchema",
  "GetDocumentResponseSchema",
  "GetDocumentsResponseSchema",
  "GetTableResponseSchema",
  "ListTableRowsResponseSchema",
  "ListTablesResponseSchema",
  "MCPApproveExecutionEventSchema",
  "MCPParamsEventSchema",
  "ToolAskUserQuestionEventSchema",
  "ToolErrorEventSchema",
  "ToolFileAuthRequiredEventSchema",
  "ToolNotificationEventSchema",
  "ToolPersonalAuthRequiredEventSchema",
  "UpsertDocumentResponseSchema",
  "UpsertTableRowsResponseSchema",
  "UserMessageErrorEventSchema",
]);

/// Event type → the SDK's schema for it (each schema's `type` literal).
const EVENT_SCHEMAS = new Map(
  [
    GenerationTokensEventSchema,
    S.AgentActionSuccessEventSchema,
    S.AgentContextPrunedEventSchema,
    S.AgentErrorEventSchema,
    S.AgentGenerationCancelledEventSchema,
    S.AgentMessageDoneEventSchema,
    S.AgentMessageGracefullyStoppedEventSchema,
    S.AgentMessageSuccessEventSchema,
    S.AgentToolCallStartedEventSchema,
    S.MCPApproveExecutionEventSchema,
    S.MCPParamsEventSchema,
    S.ToolAskUserQuestionEventSchema,
    S.ToolErrorEventSchema,
    S.ToolFileAuthRequiredEventSchema,
    S.ToolNotificationEventSchema,
    S.ToolPersonalAuthRequiredEventSchema,
    S.UserMessageErrorEventSchema,
  ].map((schema) => [schema.shape.type.value, schema]),
);

/// The events after which the SDK stops following a message (`streamAgentMessageEvents`).
const TERMINAL = new Set([
  "agent_message_success",
  "agent_message_gracefully_stopped",
  "agent_error",
  "agent_generation_cancelled",
  "user_message_error",
]);

// ---------------------------------------------------------------------------------------------
// Settings

function env(name, fallback) {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === "") {
    process.stderr.write(`dust_sdk.mjs: ${name} is not set\n`);
    process.exit(2);
  }
  return value;
}

const args = process.argv.slice(2);
const KEEP_GOING = args.includes("--keep-going");
const SCENARIOS = args.filter((a) => !a.startsWith("--"));
const BASE_URL = env("DUST_BASE_URL");
const WORKSPACE_ID = env("DUST_WORKSPACE_ID");
const API_KEY = env("DUST_API_KEY");
const ECHO = env("ECHO_AGENT_ID", "ech0Ag3ntX");
const SLOW = env("SLOW_AGENT_ID", "sl0wAg3ntX");
const TOOL_ERROR = env("TOOL_ERROR_AGENT_ID", "t00lErr0rX");
const APPROVAL = env("APPROVAL_AGENT_ID", "appr0valAg");
const QUESTION = env("QUESTION_AGENT_ID", "qu3stionAg");
const HANDBOOK_AGENT = env("HANDBOOK_AGENT_ID", "hRb00kAg3n");
const COMPANY_SPACE = env("COMPANY_SPACE_ID", "vlt_c0mpanyDat4");
const HANDBOOK = env("HANDBOOK_DS_ID", "dts_handb00kF0ld");
const EVENT_TIMEOUT_MS = Number(env("DUST_SDK_EVENT_TIMEOUT_MS", "30000"));
const UNKNOWN_AGENT = "n0SuchAg3nt";

/// The stream options the script gives the SDK: its own reconnection, faster than its 5 s default.
const STREAM_OPTIONS = { maxReconnectAttempts: 5, reconnectDelay: 200, autoReconnect: true };

// ---------------------------------------------------------------------------------------------
// The SDK client, with a tap on its transport

/// What the SDK logged (it logs every error answer); shown when a step fails.
const sdkLog = [];
const logger = Object.fromEntries(
  ["error", "warn", "info", "trace"].map((level) => [
    level,
    (fields, message) => sdkLog.push({ level, message, fields }),
  ]),
);

const api = new DustAPI({ url: BASE_URL }, { apiKey: API_KEY, workspaceId: WORKSPACE_ID }, logger);

/// The last non-stream answer, as received (for error messages and the exact sub-schema checks).
let lastAnswer = null;
/// Envelope problems in SSE frames (`{eventId, data}`), which the SDK skips silently.
const frameProblems = [];

{
  const fetchWithError = api._fetchWithError.bind(api);
  api._fetchWithError = async (url, init = {}) => {
    const result = await fetchWithError(url, init);
    if (result.isOk()) {
      const { response } = result.value;
      if (typeof response.body === "string") {
        lastAnswer = { method: init.method ?? "GET", url, status: response.status, text: response.body };
      } else if (response.body && typeof response.body.tee === "function") {
        const [forSdk, forUs] = response.body.tee();
        response.body = forSdk;
        checkFrames(url, forUs);
      }
    }
    return result;
  };
}

/// Reads the SSE frames of a stream in the background and notes each frame the SDK would
/// mishandle: not JSON, no string `eventId` (it resumes from it), no object `data`.
function checkFrames(url, body) {
  const { createParser } = createRequire(
    require.resolve("@dust-tt/client/package.json"),
  )("eventsource-parser");
  const parser = createParser((event) => {
    // Named events (Dust's `event: dust-handshake` / `data: {}`) are not agent events.
    if (event.type !== "event" || event.event || !event.data || event.data === "done") return;
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      frameProblems.push({ url, problem: "data is not JSON", data: event.data.slice(0, 200) });
      return;
    }
    if (typeof frame?.eventId !== "string") {
      frameProblems.push({ url, problem: "eventId is not a string", frame: event.data.slice(0, 200) });
    }
    if (typeof frame?.data !== "object" || frame.data === null || Array.isArray(frame.data)) {
      frameProblems.push({ url, problem: "data is not an object", frame: event.data.slice(0, 200) });
    }
  });
  const decoder = new TextDecoder();
  (async () => {
    const reader = body.getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (value) parser.feed(decoder.decode(value, { stream: true }));
      if (done) return;
    }
  })().catch(() => {});
}

// ---------------------------------------------------------------------------------------------
// Steps

/// Thrown after the first failed step (without --keep-going): ends the run.
const STOP = Symbol("stop");

const report = { ok: true, sdk: `${SDK_PACKAGE.name}@${SDK_PACKAGE.version}`, node: process.version, scenarios: {} };
let steps = null;
const failures = [];
/// Schema failures of the running step, with --keep-going (the step goes on with Dust's raw
/// answer, and fails at its end).
let schemaErrors = null;

/// A schema failure: the end of the step, or with --keep-going a note, and `fallback` (what
/// Dust answered) to go on with.
function schemaFailure(message, fallback) {
  if (!KEEP_GOING || schemaErrors === null) throw new Error(message);
  schemaErrors.push(message);
  return fallback;
}

function lastAnswerText() {
  if (!lastAnswer) return "";
  const text = lastAnswer.text.length > 4000 ? `${lastAnswer.text.slice(0, 4000)}…` : lastAnswer.text;
  return `\n  last answer: ${lastAnswer.method} ${lastAnswer.url} → ${lastAnswer.status}\n  ${text}`;
}

/// Runs one step. `fn(saw)` returns the step's value; `saw` collects what it checked.
/// With --keep-going a failed step returns undefined, or its value when only schemas failed.
async function step(name, method, route, fn) {
  const saw = {};
  const started = Date.now();
  const logged = sdkLog.length;
  const fail = (message) => {
    steps.push({ step: name, method, route, ok: false, error: message, saw });
    report.ok = false;
    const recent = sdkLog
      .slice(logged)
      .slice(-3)
      .map((l) => `  sdk ${l.level}: ${l.message} ${safeJson(l.fields)}`);
    failures.push(
      `step "${name}" failed: ${method} (${route})\n  ${message}${recent.length ? `\n${recent.join("\n")}` : ""}`,
    );
    if (!KEEP_GOING) throw STOP;
  };
  schemaErrors = [];
  let value;
  try {
    value = await fn(saw);
  } catch (error) {
    const soft = schemaErrors ?? [];
    schemaErrors = null;
    fail([...soft, error instanceof Error ? error.message : String(error)].join("\n  "));
    return undefined;
  }
  const soft = schemaErrors;
  schemaErrors = null;
  if (soft.length > 0) fail(soft.join("\n  "));
  else steps.push({ step: name, method, route, ok: true, ms: Date.now() - started, saw });
  return value;
}

function safeJson(value) {
  try {
    const text = JSON.stringify(value);
    return text && text.length > 2000 ? `${text.slice(0, 2000)}…` : text;
  } catch {
    return String(value);
  }
}

function check(condition, message) {
  if (!condition) throw new Error(`expectation failed: ${message}`);
}

/// Dependence on an earlier step's value (which may be missing with --keep-going).
function need(value, what) {
  if (value === undefined || value === null) throw new Error(`skipped: needs ${what}`);
  return value;
}

/// How the SDK methods unwrap Dust's answer (what `must` hands back with --keep-going).
const UNWRAP = {
  "DustAPI.exists": (body) => body.exists,
  "DustAPI.getAgentConfigurations": (body) => body.agentConfigurations,
  "DustAPI.getConversation": (body) => body.conversation,
  "DustAPI.getSpaces": (body) => body.spaces,
  "DustAPI.postUserMessage": (body) => body.message,
  "DustAPI.searchNodes": (body) => body.nodes,
};

/// The value of an SDK Result that must be Ok; the full error otherwise.
function must(result, method) {
  if (result.isOk()) return result.value;
  const message = `${method} returned an error: ${safeJson(result.error)}${lastAnswerText()}`;
  if (result.error.type === "unexpected_response_format" && lastAnswer) {
    let body;
    try {
      body = JSON.parse(lastAnswer.text);
    } catch {
      throw new Error(message);
    }
    return schemaFailure(message, (UNWRAP[method] ?? ((b) => b))(body));
  }
  throw new Error(message);
}

/// The SDK Result that must be an Err: Dust's error (never a schema failure).
function mustFail(result, method) {
  if (result.isOk()) {
    throw new Error(`${method} succeeded where Dust answers an error: ${safeJson(result.value)}`);
  }
  check(
    result.error.type !== "unexpected_response_format",
    `${method}: the error answer is not Dust's error envelope: ${safeJson(result.error)}${lastAnswerText()}`,
  );
  return result.error;
}

/// `schema.parse(value)`, failing with the SDK schema's issues.
function strict(schema, value, what) {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  return schemaFailure(
    `${what} does not match the SDK's schema: ${parsed.error.message}\n  value: ${safeJson(value)}`,
    value,
  );
}

/// A call the SDK has no method for, through its own transport and with its own schema.
async function raw(method, routePath, schema, { query, body } = {}) {
  const res = await api.request({ method, path: routePath, query, body });
  return api._resultFromResponse(schema, res);
}

const enc = encodeURIComponent;

// ---------------------------------------------------------------------------------------------
// Streams

/// Validates one streamed event against the SDK's schema for its type.
function checkEvent(event, where) {
  const schema = EVENT_SCHEMAS.get(event?.type) ?? AgentMessageEventDataSchema;
  strict(schema, event, `${where}: event ${safeJson(event?.type)}`);
}

/// The next event of an SDK event generator, or a failure after EVENT_TIMEOUT_MS.
async function nextEvent(stream, where) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${where}: no event for ${EVENT_TIMEOUT_MS} ms`)),
      EVENT_TIMEOUT_MS,
    );
  });
  try {
    return await Promise.race([stream.next(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/// Reads `stream` until an event whose type is in `stopAt`, validating each; returns it with
/// the types seen (consecutive duplicates folded).
async function readUntil(stream, stopAt, where, saw) {
  saw.events ??= [];
  for (;;) {
    const next = await nextEvent(stream, where);
    check(!next.done, `${where}: the stream ended before any of ${[...stopAt].join(", ")} (saw ${saw.events.join(", ")})`);
    const event = next.value;
    checkEvent(event, where);
    if (saw.events.at(-1) !== event.type) saw.events.push(event.type);
    if (stopAt.has(event.type)) return event;
    check(
      !TERMINAL.has(event.type),
      `${where}: terminal event ${event.type} before any of ${[...stopAt].join(", ")}: ${safeJson(event)}`,
    );
  }
}

/// Fails on the frame problems noted since `since` (an index in `frameProblems`), after a
/// moment for the background reader to catch up with the SDK's.
async function checkFramesClean(where, since) {
  await new Promise((resolve) => setTimeout(resolve, 20));
  const problems = frameProblems.slice(since);
  check(problems.length === 0, `${where}: SSE frames the SDK cannot use: ${safeJson(problems)}`);
}

/// The latest version of the agent message answering `userMessageId` in a conversation.
function agentReply(conversation, userMessageId) {
  return conversation.content
    .map((versions) => versions[versions.length - 1])
    .find((m) => m?.type === "agent_message" && m.parentMessageId === userMessageId);
}

function message(content, agentId) {
  return {
    content,
    mentions: [{ configurationId: agentId }],
    context: {
      username: "sdk-interop",
      timezone: "Europe/Paris",
      fullName: "SDK Interop",
      email: "sdk-interop@example.com",
      profilePictureUrl: null,
      origin: "api",
    },
  };
}

/// createConversation (non-blocking), as mcp-dust-server sends it; the body is first checked
/// against the schema Dust's server validates it with.
async function createConversation(saw, agentId, content, { skipToolsValidation = true } = {}) {
  const body = {
    title: `SDK interop: ${content.slice(0, 40)}`,
    visibility: "unlisted",
    message: message(content, agentId),
    blocking: false,
    skipToolsValidation,
  };
  strict(PublicPostConversationsRequestBodySchema, body, "the request body");
  const created = must(await api.createConversation(body), "DustAPI.createConversation");
  const userMessage = created.message;
  check(userMessage, "the answer carries the user message");
  check(userMessage.content === content, `user message content ${safeJson(userMessage.content)}`);
  check(
    userMessage.mentions.some((m) => m.configurationId === agentId),
    `user message mentions ${safeJson(userMessage.mentions)}`,
  );
  const reply = agentReply(created.conversation, userMessage.sId);
  saw.conversationId = created.conversation.sId;
  saw.userMessageId = userMessage.sId;
  saw.agentMessageId = reply?.sId ?? null;
  saw.agentMessageStatus = reply?.status ?? null;
  return { conversation: created.conversation, userMessage, reply };
}

async function openAnswerStream(conversation, userMessageId, signal) {
  const opened = await api.streamAgentAnswerEvents({
    conversation,
    userMessageId,
    signal,
    options: STREAM_OPTIONS,
  });
  return must(opened, "DustAPI.streamAgentAnswerEvents").eventStream;
}

/// Streams the agent's answer to `userMessageId` to its terminal event.
async function streamAnswer(saw, conversation, userMessageId, where) {
  const controller = new AbortController();
  const since = frameProblems.length;
  try {
    const stream = await openAnswerStream(conversation, userMessageId, controller.signal);
    const terminal = await readUntil(stream, TERMINAL, where, saw);
    await checkFramesClean(where, since);
    return terminal;
  } finally {
    controller.abort();
  }
}

// ---------------------------------------------------------------------------------------------
// Scenarios

async function core() {
  const exists = "DustAPI.exists";
  await step("workspace exists", exists, "GET /exists", async (saw) => {
    saw.exists = must(await api.exists(), exists);
    check(saw.exists === true, "exists is true");
  });

  const list = "DustAPI.getAgentConfigurations";
  await step("list agents", list, "GET /assistant/agent_configurations", async (saw) => {
    const agents = must(await api.getAgentConfigurations({}), list);
    saw.agents = agents.map((a) => a.sId);
    for (const id of [ECHO, SLOW]) check(saw.agents.includes(id), `agent ${id} listed`);
  });

  const viaRequest = "DustAPI.request + _resultFromResponse";
  await step(
    "search agents",
    `${viaRequest}(GetAgentConfigurationsResponseSchema)`,
    "GET /assistant/agent_configurations/search?q=",
    async (saw) => {
      const query = new URLSearchParams({ q: "Echo" });
      const body = must(
        await raw("GET", "assistant/agent_configurations/search", GetAgentConfigurationsResponseSchema, { query }),
        "search agents",
      );
      saw.agents = body.agentConfigurations.map((a) => a.sId);
      check(saw.agents.includes(ECHO), `${ECHO} found by "Echo"`);
    },
  );

  await step(
    "get agent",
    `${viaRequest}(GetOrPatchAgentConfigurationResponseSchema)`,
    "GET /assistant/agent_configurations/{sId}",
    async (saw) => {
      const body = must(
        await raw("GET", `assistant/agent_configurations/${enc(ECHO)}`, GetOrPatchAgentConfigurationResponseSchema),
        "get agent",
      );
      saw.agent = { sId: body.agentConfiguration.sId, name: body.agentConfiguration.name };
      check(body.agentConfiguration.sId === ECHO, "the agent asked for");
    },
  );

  await step(
    "get unknown agent (expected error)",
    `${viaRequest}(GetOrPatchAgentConfigurationResponseSchema)`,
    "GET /assistant/agent_configurations/{sId}",
    async (saw) => {
      const error = mustFail(
        await raw("GET", `assistant/agent_configurations/${UNKNOWN_AGENT}`, GetOrPatchAgentConfigurationResponseSchema),
        "get agent",
      );
      saw.error = error;
      check(error.type === "agent_configuration_not_found", `error type ${error.type}`);
    },
  );

  // Ask the echo agent, stream its answer, then a follow-up in the same conversation.
  const first = "Bonjour from the Dust SDK — accents é, emoji 👋, <b>markup</b> & \"quotes\"";
  const created = await step(
    "create conversation",
    "DustAPI.createConversation",
    "POST /assistant/conversations",
    (saw) => createConversation(saw, ECHO, first),
  );

  await step(
    "stream the answer",
    "DustAPI.streamAgentAnswerEvents",
    "GET /assistant/conversations/{cId}/messages/{mId}/events",
    async (saw) => {
      const { conversation, userMessage } = need(created, "create conversation");
      const terminal = await streamAnswer(saw, conversation, userMessage.sId, "echo answer");
      check(terminal.type === "agent_message_success", `terminal event ${safeJson(terminal)}`);
      saw.answer = terminal.message.content;
      check(saw.answer === `You said: ${first}`, `answer ${safeJson(saw.answer)}`);
    },
  );

  const followUp = "And a follow-up, still from the SDK.";
  const posted = await step(
    "post a follow-up message",
    "DustAPI.postUserMessage",
    "POST /assistant/conversations/{cId}/messages",
    async (saw) => {
      const { conversation } = need(created, "create conversation");
      const body = { ...message(followUp, ECHO), blocking: false };
      strict(PublicPostMessagesRequestBodySchema, body, "the request body");
      const userMessage = must(
        await api.postUserMessage({ conversationId: conversation.sId, message: body }),
        "DustAPI.postUserMessage",
      );
      check(userMessage.content === followUp, `content ${safeJson(userMessage.content)}`);
      // The SDK's schema keeps only `message`; mcp-dust-server reads `agentMessages` too.
      const answer = JSON.parse(lastAnswer.text);
      check(Array.isArray(answer.agentMessages), "the answer has agentMessages");
      answer.agentMessages.forEach((m, i) => strict(S.AgentMessageTypeSchema, m, `agentMessages[${i}]`));
      const reply = answer.agentMessages.find((m) => m.parentMessageId === userMessage.sId);
      check(reply, "an agent message answers the follow-up");
      saw.userMessageId = userMessage.sId;
      saw.agentMessageId = reply.sId;
      return userMessage;
    },
  );

  const conversation = await step(
    "get conversation",
    "DustAPI.getConversation",
    "GET /assistant/conversations/{cId}",
    async (saw) => {
      const { conversation: c } = need(created, "create conversation");
      const got = must(await api.getConversation({ conversationId: c.sId }), "DustAPI.getConversation");
      check(got.sId === c.sId, "the conversation asked for");
      saw.messages = got.content.map((versions) => versions[versions.length - 1]?.type);
      return got;
    },
  );

  await step(
    "stream the follow-up's answer",
    "DustAPI.streamAgentAnswerEvents",
    "GET /assistant/conversations/{cId}/messages/{mId}/events",
    async (saw) => {
      const userMessage = need(posted, "post a follow-up message");
      const c = need(conversation, "get conversation");
      const terminal = await streamAnswer(saw, c, userMessage.sId, "follow-up answer");
      check(terminal.type === "agent_message_success", `terminal event ${safeJson(terminal)}`);
      saw.answer = terminal.message.content;
      check(saw.answer === `You said: ${followUp}`, `answer ${safeJson(saw.answer)}`);
      const again = must(await api.getConversation({ conversationId: c.sId }), "DustAPI.getConversation");
      const reply = agentReply(again, userMessage.sId);
      check(reply?.status === "succeeded", `follow-up reply status ${reply?.status}`);
      check(reply.content === saw.answer, "the conversation holds the streamed answer");
      saw.messages = again.content.length;
    },
  );

  // The slow agent: cancel its run, which then ends with agent_generation_cancelled.
  const slow = await step(
    "create conversation (slow agent)",
    "DustAPI.createConversation",
    "POST /assistant/conversations",
    (saw) => createConversation(saw, SLOW, "Take your time, then stop."),
  );
  await step(
    "cancel the slow agent's message",
    "DustAPI.cancelMessageGeneration",
    "POST /assistant/conversations/{cId}/cancel",
    async (saw) => {
      const { conversation: c, reply } = need(slow, "create conversation (slow agent)");
      check(reply, "the created conversation holds the agent message");
      const result = must(
        await api.cancelMessageGeneration({ conversationId: c.sId, messageIds: [reply.sId] }),
        "DustAPI.cancelMessageGeneration",
      );
      saw.result = result;
      check(result.success === true, "success is true");
    },
  );
  await step(
    "stream the cancelled message",
    "DustAPI.streamAgentAnswerEvents",
    "GET /assistant/conversations/{cId}/messages/{mId}/events",
    async (saw) => {
      const { conversation: c, userMessage } = need(slow, "create conversation (slow agent)");
      const terminal = await streamAnswer(saw, c, userMessage.sId, "cancelled answer");
      check(terminal.type === "agent_generation_cancelled", `terminal event ${safeJson(terminal)}`);
      const again = must(await api.getConversation({ conversationId: c.sId }), "DustAPI.getConversation");
      saw.status = agentReply(again, userMessage.sId)?.status;
      check(saw.status === "cancelled", `status ${saw.status}`);
    },
  );

  // Knowledge.
  const spaces = await step("list spaces", "DustAPI.getSpaces", "GET /spaces", async (saw) => {
    const got = must(await api.getSpaces(), "DustAPI.getSpaces");
    saw.spaces = got.map((s) => `${s.sId} (${s.kind})`);
    check(got.some((s) => s.sId === COMPANY_SPACE), `${COMPANY_SPACE} listed`);
    return got;
  });

  for (const space of spaces ?? []) {
    await step(
      `list data sources of ${space.sId}`,
      `${viaRequest}(GetDataSourcesResponseSchema)`,
      "GET /spaces/{spaceId}/data_sources",
      async (saw) => {
        const body = must(
          await raw("GET", `spaces/${enc(space.sId)}/data_sources`, GetDataSourcesResponseSchema),
          "list data sources",
        );
        saw.dataSources = body.data_sources.map((d) => d.sId);
        if (space.sId === COMPANY_SPACE) check(saw.dataSources.includes(HANDBOOK), `${HANDBOOK} listed`);
      },
    );
  }

  // The workspace's node search as search_workspace sends it: every listed space named, the
  // text form of the body (checked against the schema Dust's route parses it with); once with
  // the data sources themselves, so that folder nodes go through the schema too.
  for (const [text, includeDataSources, mustFind] of [
    ["deploy", false, "runbooks/deploy.md"],
    ["handbook", true, "datasource_node_id"],
  ]) {
    await step(
      `search nodes for "${text}"`,
      "DustAPI.searchNodes",
      "POST /search",
      async (saw) => {
        const body = {
          query: text,
          viewType: "all",
          spaceIds: need(spaces, "list spaces").map((s) => s.sId),
          includeDataSources,
          limit: 20,
        };
        strict(SearchRequestBodySchema, body, "the request body");
        const nodes = must(await api.searchNodes(body), "DustAPI.searchNodes");
        saw.nodes = nodes.map((n) => `${n.internalId} (${n.type}, ${n.dataSource.sId})`);
        check(nodes.some((n) => n.internalId === mustFind), `${mustFind} found for "${text}"`);
        check(nodes.every((n) => n.dataSourceViews.length > 0), "every node carries its views");
      },
    );
  }

  const documentsRoute = `spaces/${enc(COMPANY_SPACE)}/data_sources/${enc(HANDBOOK)}`;
  // "vacation" is the query mcp-dust-server's own tests use; the simulator's search is lexical
  // and the handbook says "paid time off", so it may find nothing: "PTO days" must find
  // pto-policy, so that documents and chunks go through the schema too.
  for (const [text, mustFind] of [
    ["vacation", null],
    ["PTO days", "pto-policy"],
  ]) {
    await step(
      `search a data source for "${text}"`,
      `${viaRequest}(DataSourceSearchResponseSchema)`,
      "GET /spaces/{spaceId}/data_sources/{dsId}/search",
      async (saw) => {
        const query = new URLSearchParams({ query: text, top_k: "3", full_text: "true" });
        const body = must(
          await raw("GET", `${documentsRoute}/search`, S.DataSourceSearchResponseSchema, { query }),
          "search a data source",
        );
        saw.documents = body.documents.map((d) => d.document_id);
        check(body.documents.length <= 3, `at most 3 documents, got ${body.documents.length}`);
        if (mustFind) check(saw.documents.includes(mustFind), `${mustFind} found for "${text}"`);
        check(body.documents.every((d) => typeof d.text === "string"), "full_text gives each document's text");
        check(
          body.documents.every((d) => d.chunks.every((c) => typeof c.score === "number")),
          "every chunk has a score",
        );
      },
    );
  }

  await step(
    "list documents",
    `${viaRequest}(GetDocumentsResponseSchema)`,
    "GET /spaces/{spaceId}/data_sources/{dsId}/documents",
    async (saw) => {
      const query = new URLSearchParams({ limit: "10", offset: "0" });
      const body = must(
        await raw("GET", `${documentsRoute}/documents`, S.GetDocumentsResponseSchema, { query }),
        "list documents",
      );
      saw.documents = body.documents.map((d) => d.document_id);
      saw.total = body.total;
      check(saw.documents.includes("pto-policy"), "pto-policy listed");
      check(body.total >= body.documents.length, "total counts every document");
    },
  );

  await step(
    "get document",
    `${viaRequest}(GetDocumentResponseSchema)`,
    "GET /spaces/{spaceId}/data_sources/{dsId}/documents/{documentId}",
    async (saw) => {
      const body = must(
        await raw("GET", `${documentsRoute}/documents/pto-policy`, S.GetDocumentResponseSchema),
        "get document",
      );
      saw.document = body.document.document_id;
      check(body.document.document_id === "pto-policy", "the document asked for");
    },
  );

  const documentId = "SDK check 2026.v1.md";
  const upsertBody = {
    title: "SDK check",
    mime_type: "text/plain",
    text: "Written by the Dust SDK interop test. Vacation requests go through the HR portal.",
    source_url: "https://example.com/sdk-check",
    tags: ["lang:en", "source:sdk"],
    timestamp: Date.now(),
  };
  const documentRoute = `${documentsRoute}/documents/${enc(documentId)}`;
  await step(
    "upsert a document",
    `${viaRequest}(UpsertDocumentResponseSchema)`,
    "POST /spaces/{spaceId}/data_sources/{dsId}/documents/{documentId}",
    async (saw) => {
      const body = strict(PostDataSourceDocumentRequestSchema, upsertBody, "the request body");
      const answer = must(await raw("POST", documentRoute, S.UpsertDocumentResponseSchema, { body }), "upsert");
      // The union also accepts any object with a document_id: the full answer must be a full
      // core document.
      const document = strict(S.CoreAPIDocumentSchema, JSON.parse(lastAnswer.text).document, "the upserted document");
      check(document.document_id === documentId, `document_id ${document.document_id}`);
      check(answer.data_source.sId === HANDBOOK, `data_source ${answer.data_source.sId}`);
      saw.document = document.document_id;
      saw.chunks = document.chunk_count;
    },
  );

  await step(
    "upsert a document (light_document_output)",
    `${viaRequest}(UpsertDocumentResponseSchema)`,
    "POST /spaces/{spaceId}/data_sources/{dsId}/documents/{documentId}",
    async (saw) => {
      const body = strict(
        PostDataSourceDocumentRequestSchema,
        { ...upsertBody, light_document_output: true },
        "the request body",
      );
      must(await raw("POST", documentRoute, S.UpsertDocumentResponseSchema, { body }), "upsert");
      const document = JSON.parse(lastAnswer.text).document;
      strict(S.CoreAPILightDocumentSchema, document, "the light upserted document");
      check(!Array.isArray(document.chunks), "a light document has no chunks");
      saw.document = document;
    },
  );

  await step(
    "get the upserted document",
    `${viaRequest}(GetDocumentResponseSchema)`,
    "GET /spaces/{spaceId}/data_sources/{dsId}/documents/{documentId}",
    async (saw) => {
      const body = must(await raw("GET", documentRoute, S.GetDocumentResponseSchema), "get document");
      check(body.document.document_id === documentId, `document_id ${body.document.document_id}`);
      check(body.document.tags.includes("source:sdk"), `tags ${safeJson(body.document.tags)}`);
      saw.tags = body.document.tags;
    },
  );

  await step(
    "delete the document",
    `${viaRequest}(DeleteDocumentResponseSchema)`,
    "DELETE /spaces/{spaceId}/data_sources/{dsId}/documents/{documentId}",
    async (saw) => {
      const body = must(await raw("DELETE", documentRoute, S.DeleteDocumentResponseSchema), "delete document");
      saw.document = body.document.document_id;
      check(body.document.document_id === documentId, `document_id ${body.document.document_id}`);
    },
  );

  await step(
    "get the deleted document (expected error)",
    `${viaRequest}(GetDocumentResponseSchema)`,
    "GET /spaces/{spaceId}/data_sources/{dsId}/documents/{documentId}",
    async (saw) => {
      const error = mustFail(await raw("GET", documentRoute, S.GetDocumentResponseSchema), "get document");
      saw.error = error;
    },
  );

  // Tables of the Employee Handbook folder, as the table tools call them. The SDK has no table
  // methods; its schemas for these routes are used through its transport. A row delete has no
  // schema in the SDK: its answer is checked to be Dust's `{success: true}`.
  const tablesRoute = `${documentsRoute}/tables`;
  await step(
    "list tables",
    `${viaRequest}(ListTablesResponseSchema)`,
    "GET /spaces/{spaceId}/data_sources/{dsId}/tables",
    async (saw) => {
      const body = must(await raw("GET", tablesRoute, S.ListTablesResponseSchema), "list tables");
      saw.tables = body.tables.map((t) => t.table_id);
      check(saw.tables.includes("offices"), "offices listed");
    },
  );
  await step(
    "get table",
    `${viaRequest}(GetTableResponseSchema)`,
    "GET /spaces/{spaceId}/data_sources/{dsId}/tables/{tId}",
    async (saw) => {
      const body = must(await raw("GET", `${tablesRoute}/offices`, S.GetTableResponseSchema), "get table");
      saw.columns = (body.table.schema ?? []).map((c) => `${c.name}:${c.value_type}`);
      check(saw.columns.includes("opened:datetime"), "opened is a datetime column");
    },
  );
  await step(
    "list table rows",
    `${viaRequest}(ListTableRowsResponseSchema)`,
    "GET /spaces/{spaceId}/data_sources/{dsId}/tables/{tId}/rows",
    async (saw) => {
      const query = new URLSearchParams({ limit: "2", offset: "1" });
      const body = must(
        await raw("GET", `${tablesRoute}/offices/rows`, S.ListTableRowsResponseSchema, { query }),
        "list table rows",
      );
      saw.rows = body.rows.map((r) => r.row_id);
      saw.total = body.total;
      check(body.rows.length === 2 && body.offset === 1 && body.limit === 2, "one page of two");
    },
  );
  const rowsBody = {
    rows: [
      {
        row_id: "sdk check/1",
        value: { city: "Kyoto", seats: 12, remote: true, opened: { type: "datetime", epoch: Date.now() }, note: null },
      },
    ],
  };
  await step(
    "upsert table rows",
    `${viaRequest}(UpsertTableRowsResponseSchema)`,
    "POST /spaces/{spaceId}/data_sources/{dsId}/tables/{tId}/rows",
    async (saw) => {
      const body = strict(UpsertTableRowsRequestSchema, rowsBody, "the request body");
      const answer = must(
        await raw("POST", `${tablesRoute}/offices/rows`, S.UpsertTableRowsResponseSchema, { body }),
        "upsert table rows",
      );
      saw.columns = (answer.table.schema ?? []).map((c) => c.name);
      check(answer.table.table_id === "offices", `table_id ${answer.table.table_id}`);
    },
  );
  await step(
    "delete a table row",
    "DustAPI.request",
    "DELETE /spaces/{spaceId}/data_sources/{dsId}/tables/{tId}/rows/{rId}",
    async (saw) => {
      const res = await api.request({ method: "DELETE", path: `${tablesRoute}/offices/rows/${enc("sdk check/1")}` });
      check(res.isOk(), `the request failed: ${safeJson(res.isErr() ? res.error : null)}`);
      const { response } = res.value;
      const text = response.body;
      saw.status = response.status;
      saw.body = JSON.parse(text);
      check(response.status === 200 && saw.body.success === true, `answer ${response.status} ${text}`);
    },
  );
}

async function views() {
  const viaRequest = "DustAPI.request + _resultFromResponse";
  const spaces = await step("list spaces", "DustAPI.getSpaces", "GET /spaces", async (saw) => {
    const got = must(await api.getSpaces(), "DustAPI.getSpaces");
    saw.spaces = got.map((s) => s.sId);
    return got;
  });
  const found = [];
  for (const space of spaces ?? []) {
    await step(
      `list data source views of ${space.sId}`,
      `${viaRequest}(DataSourceViewsListResponseSchema)`,
      "GET /spaces/{spaceId}/data_source_views",
      async (saw) => {
        const body = must(
          await raw("GET", `spaces/${enc(space.sId)}/data_source_views`, S.DataSourceViewsListResponseSchema),
          "list data source views",
        );
        saw.views = body.dataSourceViews.map((v) => `${v.sId} → ${v.dataSource.sId}`);
        for (const view of body.dataSourceViews) {
          check(view.spaceId === space.sId, `view ${view.sId} has spaceId ${view.spaceId}`);
          found.push(view);
        }
      },
    );
  }
  await step("a view over the handbook", "-", "-", async () => {
    check(
      found.some((v) => v.spaceId === COMPANY_SPACE && v.dataSource.sId === HANDBOOK),
      `${COMPANY_SPACE} has a view of ${HANDBOOK}`,
    );
  });
  // "vacation" as in core; a broad query too, so that documents of every kind (folders and
  // connectors) go through the schema; the handbook's view must find pto-policy.
  const queries = ["vacation", "PTO days roadmap release deploy incident"];
  for (const view of found) {
    for (const text of queries) {
      await step(
        `search view ${view.sId} (${view.dataSource.name}) for "${text}"`,
        `${viaRequest}(DataSourceSearchResponseSchema)`,
        "GET /spaces/{spaceId}/data_source_views/{dsvId}/search",
        async (saw) => {
          const query = new URLSearchParams({ query: text, top_k: "3", full_text: "true" });
          const body = must(
            await raw(
              "GET",
              `spaces/${enc(view.spaceId)}/data_source_views/${enc(view.sId)}/search`,
              S.DataSourceSearchResponseSchema,
              { query },
            ),
            "search a data source view",
          );
          saw.documents = body.documents.map((d) => d.document_id);
          check(body.documents.length <= 3, `at most 3 documents, got ${body.documents.length}`);
          check(body.documents.every((d) => typeof d.text === "string"), "full_text gives each document's text");
          if (view.dataSource.sId === HANDBOOK && text !== "vacation") {
            check(saw.documents.includes("pto-policy"), "pto-policy found");
          }
        },
      );
    }
  }
}

async function toolError() {
  const created = await step(
    "create conversation (tool error agent)",
    "DustAPI.createConversation",
    "POST /assistant/conversations",
    (saw) => createConversation(saw, TOOL_ERROR, "Use your tool."),
  );
  await step(
    "stream until tool_error",
    "DustAPI.streamAgentAnswerEvents",
    "GET /assistant/conversations/{cId}/messages/{mId}/events",
    async (saw) => {
      const { conversation, userMessage } = need(created, "create conversation (tool error agent)");
      const controller = new AbortController();
      const since = frameProblems.length;
      try {
        const stream = await openAnswerStream(conversation, userMessage.sId, controller.signal);
        const event = await readUntil(stream, new Set(["tool_error"]), "tool error", saw);
        await checkFramesClean("tool error", since);
        saw.error = event.error;
      } finally {
        controller.abort();
      }
    },
  );
}

async function approval() {
  const created = await step(
    "create conversation (approval agent)",
    "DustAPI.createConversation",
    "POST /assistant/conversations",
    (saw) => createConversation(saw, APPROVAL, "Use your tool, with my approval.", { skipToolsValidation: false }),
  );
  const { conversation, userMessage } = created ?? {};
  const controller = new AbortController();
  const since = frameProblems.length;
  try {
    const stream = await step(
      "open the answer stream",
      "DustAPI.streamAgentAnswerEvents",
      "GET /assistant/conversations/{cId}/messages/{mId}/events",
      async () => {
        need(created, "create conversation (approval agent)");
        return openAnswerStream(conversation, userMessage.sId, controller.signal);
      },
    );
    const approve = await step(
      "stream until tool_approve_execution",
      "DustAPI.streamAgentAnswerEvents",
      "GET /assistant/conversations/{cId}/messages/{mId}/events",
      async (saw) => {
        const event = await readUntil(
          need(stream, "the answer stream"),
          new Set(["tool_approve_execution"]),
          "approval",
          saw,
        );
        check(event.conversationId === conversation.sId, `conversationId ${event.conversationId}`);
        saw.actionId = event.actionId;
        saw.messageId = event.messageId;
        return event;
      },
    );
    await step(
      "list blocked actions",
      "DustAPI.getBlockedActions",
      "GET /assistant/conversations/{cId}/actions/blocked",
      async (saw) => {
        const event = need(approve, "tool_approve_execution");
        const body = must(
          await api.getBlockedActions({ conversationId: conversation.sId }),
          "DustAPI.getBlockedActions",
        );
        saw.blocked = body.blockedActions.map((a) => `${a.actionId} ${a.status}`);
        const action = body.blockedActions.find((a) => a.actionId === event.actionId);
        check(action, `action ${event.actionId} is blocked`);
        check(action.status === "blocked_validation_required", `status ${action.status}`);
        check(action.messageId === event.messageId, `messageId ${action.messageId}`);
      },
    );
    await step(
      "approve the action",
      "DustAPI.validateAction",
      "POST /assistant/conversations/{cId}/messages/{mId}/validate-action",
      async (saw) => {
        const event = need(approve, "tool_approve_execution");
        saw.result = must(
          await api.validateAction({
            conversationId: conversation.sId,
            messageId: event.messageId,
            actionId: event.actionId,
            approved: "approved",
          }),
          "DustAPI.validateAction",
        );
        check(saw.result.success === true, "success is true");
      },
    );
    await step(
      "stream to the end",
      "DustAPI.streamAgentAnswerEvents",
      "GET /assistant/conversations/{cId}/messages/{mId}/events",
      async (saw) => {
        const terminal = await readUntil(need(stream, "the answer stream"), TERMINAL, "approved run", saw);
        await checkFramesClean("approved run", since);
        check(terminal.type === "agent_message_success", `terminal event ${safeJson(terminal)}`);
        saw.answer = terminal.message.content;
        saw.actions = terminal.message.actions.map((a) => `${a.toolName} ${a.status}`);
      },
    );
  } finally {
    controller.abort();
  }
}

/// An agent that asks the person a question: the blocking event carries the question, the
/// blocked action lists it, `answerUserQuestion` answers it and the run goes on to its success.
async function question() {
  const created = await step(
    "create conversation (question agent)",
    "DustAPI.createConversation",
    "POST /assistant/conversations",
    (saw) => createConversation(saw, QUESTION, "Book me a meeting room.", { skipToolsValidation: false }),
  );
  const { conversation, userMessage } = created ?? {};
  const controller = new AbortController();
  const since = frameProblems.length;
  try {
    const stream = await step(
      "open the answer stream",
      "DustAPI.streamAgentAnswerEvents",
      "GET /assistant/conversations/{cId}/messages/{mId}/events",
      async () => {
        need(created, "create conversation (question agent)");
        return openAnswerStream(conversation, userMessage.sId, controller.signal);
      },
    );
    const asked = await step(
      "stream until tool_ask_user_question",
      "DustAPI.streamAgentAnswerEvents",
      "GET /assistant/conversations/{cId}/messages/{mId}/events",
      async (saw) => {
        const event = await readUntil(
          need(stream, "the answer stream"),
          new Set(["tool_ask_user_question"]),
          "question",
          saw,
        );
        check(event.conversationId === conversation.sId, `conversationId ${event.conversationId}`);
        saw.question = event.question;
        check(Array.isArray(event.question?.options), `options ${safeJson(event.question)}`);
        return event;
      },
    );
    await step(
      "list blocked actions",
      "DustAPI.getBlockedActions",
      "GET /assistant/conversations/{cId}/actions/blocked",
      async (saw) => {
        const event = need(asked, "tool_ask_user_question");
        const body = must(
          await api.getBlockedActions({ conversationId: conversation.sId }),
          "DustAPI.getBlockedActions",
        );
        const action = body.blockedActions.find((a) => a.actionId === event.actionId);
        check(action, `action ${event.actionId} is blocked`);
        saw.status = action.status;
        check(action.status === "blocked_user_answer_required", `status ${action.status}`);
      },
    );
    await step(
      "answer the question",
      "DustAPI.answerUserQuestion",
      "POST /assistant/conversations/{cId}/messages/{mId}/answer-question",
      async (saw) => {
        const event = need(asked, "tool_ask_user_question");
        saw.result = must(
          await api.answerUserQuestion({
            conversationId: conversation.sId,
            messageId: event.messageId,
            actionId: event.actionId,
            answer: { selectedOptions: [1] },
          }),
          "DustAPI.answerUserQuestion",
        );
        check(saw.result.success === true, "success is true");
      },
    );
    await step(
      "stream to the end",
      "DustAPI.streamAgentAnswerEvents",
      "GET /assistant/conversations/{cId}/messages/{mId}/events",
      async (saw) => {
        const terminal = await readUntil(need(stream, "the answer stream"), TERMINAL, "answered run", saw);
        await checkFramesClean("answered run", since);
        check(terminal.type === "agent_message_success", `terminal event ${safeJson(terminal)}`);
        saw.answer = terminal.message.content;
      },
    );
  } finally {
    controller.abort();
  }
}

const ALL = { core, views, tool_error: toolError, approval, question, citations, attachments };

function finish() {
  for (const failure of failures) process.stderr.write(`dust_sdk.mjs: ${failure}\n`);
  process.stdout.write(`${JSON.stringify(report)}\n`, () => process.exit(report.ok ? 0 : 1));
}

/// A knowledge agent's answer as Dust writes it: the SDK validates the stream and the
/// conversation (the search action's output with its `ref`s), and every `:cite[ref]` marker in
/// the content names a result of the run's search, which is what mcp-dust-server's `citations`
/// are read from.
async function citations() {
  const created = await step(
    "create conversation (knowledge agent)",
    "DustAPI.createConversation",
    "POST /assistant/conversations",
    (saw) => createConversation(saw, HANDBOOK_AGENT, "How many days of PTO do full-time employees accrue?"),
  );
  await step(
    "stream the cited answer",
    "DustAPI.streamAgentAnswerEvents",
    "GET /assistant/conversations/{cId}/messages/{mId}/events",
    async (saw) => {
      const { conversation, userMessage } = need(created, "create conversation (knowledge agent)");
      const terminal = await streamAnswer(saw, conversation, userMessage.sId, "cited answer");
      check(terminal.type === "agent_message_success", `terminal ${terminal.type}`);
      const answer = terminal.message;
      saw.refs = (answer.actions ?? [])
        .flatMap((a) => a.output ?? [])
        .map((o) => o?.resource?.ref)
        .filter((r) => typeof r === "string");
      saw.cited = [...(answer.content ?? "").matchAll(/:cite\[([^\]]+)\]/g)].flatMap((m) =>
        m[1].split(",").map((r) => r.trim()),
      );
      check(saw.cited.length > 0, `no :cite marker in ${safeJson(answer.content)}`);
      for (const ref of saw.cited) check(saw.refs.includes(ref), `:cite[${ref}] names no search result`);
    },
  );
  await step(
    "read the cited answer back",
    "DustAPI.getConversation",
    "GET /assistant/conversations/{cId}",
    async (saw) => {
      const { conversation } = need(created, "create conversation (knowledge agent)");
      const read = must(
        await api.getConversation({ conversationId: conversation.sId }),
        "DustAPI.getConversation",
      );
      const reply = read.content.flat().find((m) => m.type === "agent_message" && m.status === "succeeded");
      check(reply, "the agent message succeeded");
      saw.content = reply.content;
      check(/:cite\[/.test(reply.content), `no :cite marker in ${safeJson(reply.content)}`);
    },
  );
}

/// A minimal valid PDF (one empty page), written out byte for byte.
const PDF = new TextEncoder().encode(
  "%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n" +
    "2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n" +
    "3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]>>endobj\n" +
    "trailer<</Root 1 0 R>>\n%%EOF\n",
);
const NOTE = "Meeting notes: ship the attachments feature\nSecond line, not quoted.";

/// Checks that an agent's answer names the PDF and the note as Dust's simulator reads them.
function checkNamesBoth(answer, saw) {
  saw.answer = answer;
  check(
    answer.includes(`"report.pdf" (application/pdf, ${PDF.length} bytes)`),
    `the answer does not name the PDF: ${safeJson(answer)}`,
  );
  check(
    answer.includes(`"note.txt" (text/plain, ${NOTE.length} bytes: "Meeting notes: ship the attachments feature")`),
    `the answer does not name the note: ${safeJson(answer)}`,
  );
}

/// Files and content fragments through the SDK's own methods: `uploadFile` (both steps; the
/// SDK validates the first answer, the script the second with `FileUploadedRequestResponseSchema`),
/// `postContentFragment` (validated with `PostContentFragmentResponseSchema`) with inline text
/// and with the uploaded file, a follow-up whose answer names both, and `createConversation`
/// with `contentFragments`, whose answer names both too.
async function attachments() {
  const fileId = await step("upload a PDF", "DustAPI.uploadFile", "POST /files, POST {uploadUrl}", async (saw) => {
    const request = {
      contentType: "application/pdf",
      fileName: "report.pdf",
      fileSize: PDF.length,
      useCase: "conversation",
    };
    strict(FileUploadUrlRequestSchema, request, "the request body");
    const file = must(
      await api.uploadFile({
        ...request,
        fileObject: new File([PDF], "report.pdf", { type: "application/pdf" }),
      }),
      "DustAPI.uploadFile",
    );
    strict(FileUploadedRequestResponseSchema, { file }, "the upload's answer");
    saw.file = file;
    check(file.status === "ready", `status ${safeJson(file.status)}`);
    check(file.fileSize === PDF.length, `fileSize ${safeJson(file.fileSize)}`);
    return file.sId;
  });

  const conversation = await step(
    "create an empty conversation",
    "DustAPI.createConversation",
    "POST /assistant/conversations",
    async (saw) => {
      const created = must(
        await api.createConversation({ title: "SDK interop: attachments", visibility: "unlisted" }),
        "DustAPI.createConversation",
      );
      saw.conversationId = created.conversation.sId;
      return created.conversation;
    },
  );

  const fragments = [
    ["post an inline text fragment", { title: "note.txt", content: NOTE, contentType: "text/plain" }],
    ["post the uploaded file as a fragment", () => ({ title: "report.pdf", fileId: need(fileId, "upload a PDF") })],
  ];
  for (const [name, body] of fragments) {
    await step(name, "DustAPI.postContentFragment", "POST /assistant/conversations/{cId}/content_fragments", async (saw) => {
      const c = need(conversation, "create an empty conversation");
      const contentFragment = typeof body === "function" ? body() : body;
      strict(PublicPostContentFragmentRequestBodySchema, contentFragment, "the request body");
      const fragment = must(
        await api.postContentFragment({ conversationId: c.sId, contentFragment }),
        "DustAPI.postContentFragment",
      );
      saw.fragment = fragment;
      check(fragment.contentFragmentType === "file", `contentFragmentType ${fragment.contentFragmentType}`);
      check(fragment.title === contentFragment.title, `title ${safeJson(fragment.title)}`);
      check(typeof fragment.fileId === "string" && fragment.fileId.startsWith("fil_"), `fileId ${fragment.fileId}`);
      if (contentFragment.fileId) check(fragment.fileId === contentFragment.fileId, "the uploaded file");
    });
  }

  await step(
    "ask about the attachments",
    "DustAPI.postUserMessage",
    "POST /assistant/conversations/{cId}/messages",
    async (saw) => {
      const c = need(conversation, "create an empty conversation");
      const body = { ...message("What did I attach?", ECHO), blocking: false };
      strict(PublicPostMessagesRequestBodySchema, body, "the request body");
      const userMessage = must(
        await api.postUserMessage({ conversationId: c.sId, message: body }),
        "DustAPI.postUserMessage",
      );
      const read = must(await api.getConversation({ conversationId: c.sId }), "DustAPI.getConversation");
      saw.slots = read.content.map((versions) => versions[versions.length - 1]?.type);
      check(
        saw.slots.join() === "content_fragment,content_fragment,user_message,agent_message",
        `slots ${safeJson(saw.slots)}`,
      );
      const terminal = await streamAnswer(saw, read, userMessage.sId, "answer about the attachments");
      check(terminal.type === "agent_message_success", `terminal ${terminal.type}`);
      checkNamesBoth(terminal.message.content, saw);
    },
  );

  await step(
    "create a conversation with contentFragments",
    "DustAPI.createConversation",
    "POST /assistant/conversations",
    async (saw) => {
      const body = {
        title: "SDK interop: attachments on create",
        visibility: "unlisted",
        message: message("Read these.", ECHO),
        contentFragments: [
          { title: "report.pdf", fileId: need(fileId, "upload a PDF") },
          { title: "note.txt", content: NOTE, contentType: "text/plain" },
        ],
        blocking: false,
        skipToolsValidation: false,
      };
      strict(PublicPostConversationsRequestBodySchema, body, "the request body");
      const created = must(await api.createConversation(body), "DustAPI.createConversation");
      saw.slots = created.conversation.content.map((versions) => versions[versions.length - 1]?.type);
      check(saw.slots[0] === "content_fragment" && saw.slots[1] === "content_fragment", `slots ${safeJson(saw.slots)}`);
      const terminal = await streamAnswer(saw, created.conversation, created.message.sId, "answer on create");
      check(terminal.type === "agent_message_success", `terminal ${terminal.type}`);
      checkNamesBoth(terminal.message.content, saw);
    },
  );
}

async function main() {
  if (SCENARIOS.length === 0) {
    process.stderr.write(`usage: node dust_sdk.mjs [--keep-going] ${Object.keys(ALL).join("|")}...\n`);
    process.exit(2);
  }
  for (const name of SCENARIOS) {
    if (!ALL[name]) {
      process.stderr.write(`dust_sdk.mjs: unknown scenario ${name} (${Object.keys(ALL).join(", ")})\n`);
      process.exit(2);
    }
  }
  try {
    for (const name of SCENARIOS) {
      steps = [];
      report.scenarios[name] = { ok: true, steps };
      try {
        await ALL[name]();
      } finally {
        report.scenarios[name].ok = steps.every((s) => s.ok);
      }
    }
  } catch (error) {
    if (error !== STOP) {
      report.ok = false;
      failures.push(`unexpected exception: ${error?.stack ?? error}`);
    }
  }
  finish();
}

main();
