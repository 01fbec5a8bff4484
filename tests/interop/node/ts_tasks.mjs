// Long agent runs as MCP tasks (issue 23, the `io.modelcontextprotocol/tasks` extension,
// SEP-2663), driven by the official TypeScript requester (@modelcontextprotocol/ext-tasks) on top
// of the TypeScript SDK v2 client (@modelcontextprotocol/client), over HTTP in the 2026-07-28 era.
//
// Usage: node ts_tasks.mjs URL [2026-07-28]
//        node ts_tasks.mjs TARGET handshake
//   URL  the server's /mcp. The script logs in at /api/v1/auth/login with $DUST_API_KEY and
//        $DUST_WORKSPACE_ID (or uses $MCP_TOKEN when set) and sends the bearer token. With
//        $OTHER_DUST_API_KEY and $OTHER_DUST_WORKSPACE_ID it also logs in as someone else, who
//        must get a JSON-RPC error for tasks/get and tasks/cancel of the first person's task.
//   TARGET  "stdio" (runs $MCP_DUST_SERVER_BIN stdio, credentials from the environment) or a URL.
// Agents, from the environment (tests/all/interop_node.rs sets them):
//   ECHO_AGENT_ID      answers "You said: <message>"
//   SLOW_AGENT_ID      answers slowly (the task is seen working, then cancelled)
//   APPROVAL_AGENT_ID  the Mailer: pauses for approval of send_email (Gmail)
//
// First the wire itself, through the raw request path the requester uses: a tools/call that
// declares the extension gets a task handle (resultType "task"), tasks/get polls it to its
// result, an unknown task id is a JSON-RPC error, and the same call without the extension is
// answered in place. Then ext-tasks: (a) the echo agent's task settles with its answer; (b) the
// slow agent's task is seen working, cancelled (tasks/cancel), then seen cancelled; (c) the
// Mailer's task asks for input (input_required, an elicitation/create form), is answered
// "accept" through tasks/update and completes with the "sent" answer.
// `handshake`: the handshake era, the extension declared once in `initialize`: the server answers
// ask_agent in place, as it does every client of that era (some declare the extension without
// handling a task result; tasks are the 2026-07-28 era's, declared in each request).
// Prints one JSON line with what it saw; exits non-zero on the first failed expectation.

import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import {
  DispatchError,
  createTaskSessionFromClient,
  resultFromTaskOutcome,
} from "@modelcontextprotocol/ext-tasks/client";

const [target, era = "2026-07-28"] = process.argv.slice(2);

const PROTOCOL = "2026-07-28";
const TASKS = "io.modelcontextprotocol/tasks";
const CLIENT_INFO = { name: "interop-ts-tasks", version: "0.0.0" };
const QUESTION = "Héllo 👋 from a task — <b>&amp;</b>";
const SENT = "I sent your message to ceo@example.com.";
const TERMINAL = new Set(["completed", "failed", "cancelled"]);

function check(condition, message) {
  if (!condition) throw new Error(`expectation failed: ${message}`);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function login(apiKey, workspaceId) {
  const origin = target.replace(/\/mcp\/?$/, "");
  const answer = await fetch(`${origin}/api/v1/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ apiKey, workspaceId }),
  });
  const body = await answer.text();
  check(answer.status === 200, `login answered ${answer.status}: ${body}`);
  return JSON.parse(body).token;
}

// SEP-2243: Mcp-Name carries params.name / params.taskId; values that are not plain printable
// ASCII travel base64-encoded between the sentinels.
function headerValue(value) {
  const plain = value.length > 0 && value === value.trim() && /^[\x20-\x7e\t]*$/.test(value);
  return plain && !(value.startsWith("=?base64?") && value.endsWith("?=")) ?
      value
    : `=?base64?${Buffer.from(value, "utf8").toString("base64")}?=`;
}

// Reads a text/event-stream body until the response to `id` arrives.
async function fromEventStream(response, id) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (value) buffer += decoder.decode(value, { stream: true });
      buffer = buffer.replace(/\r\n/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = event
          .split("\n")
          .filter((line) => line.startsWith("data:"))
          .map((line) => line.slice(5).replace(/^ /, ""))
          .join("\n");
        if (!data) continue;
        const message = JSON.parse(data);
        if (message.id === id && ("result" in message || "error" in message)) return message;
      }
      if (done) throw new DispatchError(`the event stream ended without the response to ${id}`);
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

/** The host request coordinator ext-tasks needs for V2 wire shapes: one POST per request. */
function coordinator(url, token, wire) {
  let next = 0;
  return async function dispatch(request, options = {}) {
    const id = `ts-tasks-${++next}`;
    const message = { jsonrpc: "2.0", id, ...request };
    const headers = new Headers(options.context?.headers ?? {});
    headers.set("authorization", `Bearer ${token}`);
    headers.set("content-type", "application/json");
    headers.set("accept", "application/json, text/event-stream");
    headers.set("mcp-protocol-version", PROTOCOL);
    headers.set("mcp-method", request.method);
    const name = request.method === "tools/call" ? request.params?.name : request.params?.taskId;
    if (typeof name === "string") headers.set("mcp-name", headerValue(name));
    const signals = [AbortSignal.timeout(options.context?.requestTimeoutMs ?? 60000)];
    if (options.signal) signals.push(options.signal);
    let response;
    try {
      response = await fetch(url, {
        method: "POST",
        headers,
        body: JSON.stringify(message),
        signal: AbortSignal.any(signals),
      });
    } catch (e) {
      throw new DispatchError(`POST ${request.method}: ${e}`, false, { cause: e });
    }
    const type = response.headers.get("content-type") ?? "";
    let answer;
    if (type.startsWith("text/event-stream")) answer = await fromEventStream(response, id);
    else {
      const body = await response.text();
      try {
        answer = JSON.parse(body);
      } catch {
        throw new DispatchError(`${request.method} answered HTTP ${response.status}: ${body}`);
      }
    }
    if (answer.error) {
      wire.push({ method: request.method, error: answer.error.code });
      return { kind: "error", error: answer.error };
    }
    check(answer.id === id && answer.result, `${request.method}: ${JSON.stringify(answer)}`);
    const r = answer.result;
    wire.push({ method: request.method, resultType: r.resultType ?? null, status: r.status ?? null });
    return { kind: "result", result: r };
  };
}

/** The per-request `_meta` envelope of the 2026-07-28 era, declaring the tasks extension. */
function envelope(withTasks) {
  return {
    "io.modelcontextprotocol/protocolVersion": PROTOCOL,
    "io.modelcontextprotocol/clientInfo": CLIENT_INFO,
    "io.modelcontextprotocol/clientCapabilities": withTasks ? { extensions: { [TASKS]: {} } } : {},
  };
}

async function raw(dispatch, method, params) {
  const answer = await dispatch({ method, params: { ...params, _meta: envelope(true) } });
  if (answer.kind === "error") {
    const e = new Error(`${method}: JSON-RPC error ${answer.error.code} ${answer.error.message}`);
    e.rpc = answer.error;
    throw e;
  }
  return answer.result;
}

function answerOf(result, what) {
  check(result && !result.isError, `${what}: ${JSON.stringify(result)}`);
  return result.structuredContent?.answer;
}

/** The wire contract, without the requester library in between. */
async function wireChecks(dispatch, seen) {
  const created = await raw(dispatch, "tools/call", {
    name: "ask_agent",
    arguments: { agentId: process.env.ECHO_AGENT_ID, message: "probe" },
  });
  check(
    created.resultType === "task",
    `expected resultType task, got ${created.resultType}: ${JSON.stringify(created).slice(0, 300)}`,
  );
  check(typeof created.taskId === "string" && created.taskId.length > 0, "a task id");
  check(typeof created.createdAt === "string", `createdAt ${created.createdAt}`);
  check(typeof created.lastUpdatedAt === "string", `lastUpdatedAt ${created.lastUpdatedAt}`);
  check(created.ttlMs === null || Number.isInteger(created.ttlMs), `ttlMs ${created.ttlMs}`);
  const handle = { ...created };
  delete handle.taskId;
  delete handle.createdAt;
  delete handle.lastUpdatedAt;
  seen.handle = handle;

  const statuses = [];
  let task;
  const deadline = Date.now() + 30000;
  for (;;) {
    task = await raw(dispatch, "tasks/get", { taskId: created.taskId });
    check(task.resultType === "complete", `tasks/get resultType ${task.resultType}`);
    check(task.taskId === created.taskId, `tasks/get answered for ${task.taskId}`);
    statuses.push(task.status);
    if (TERMINAL.has(task.status)) break;
    check(Date.now() < deadline, `the probe task is still ${task.status}`);
    await sleep(100);
  }
  check(task.status === "completed", `probe task ${task.status}: ${JSON.stringify(task)}`);
  seen.probe = {
    statuses,
    resultType: task.result?.resultType ?? null,
    answer: answerOf(task.result, "probe result"),
    conversationId: task.result?.structuredContent?.conversationId ?? null,
  };
  check(seen.probe.answer === "You said: probe", `probe answer ${seen.probe.answer}`);

  try {
    await raw(dispatch, "tasks/get", { taskId: "no-such-task" });
    check(false, "tasks/get of an unknown task id answered");
  } catch (e) {
    check(e.rpc, `unknown task: ${e}`);
    seen.unknownTask = { code: e.rpc.code, message: e.rpc.message };
  }

  // Someone else (another key, another workspace) cannot see or cancel this task.
  if (process.env.OTHER_DUST_API_KEY) {
    const other = await login(process.env.OTHER_DUST_API_KEY, process.env.OTHER_DUST_WORKSPACE_ID);
    const theirs = coordinator(target, other, []);
    seen.otherPrincipal = {};
    for (const method of ["tasks/get", "tasks/cancel"]) {
      const answer = await theirs({
        method,
        params: { taskId: created.taskId, _meta: envelope(true) },
      });
      check(
        answer.kind === "error",
        `${method} of another principal's task answered ${JSON.stringify(answer.result)}`,
      );
      seen.otherPrincipal[method] = { code: answer.error.code, message: answer.error.message };
    }
  }
}

// Accepts any JSON result: the requests below are not the SDK's own shapes.
const anyResult = {
  "~standard": { version: 1, vendor: "ts_tasks", validate: (value) => ({ value }) },
};

/** Polls `tasks/get` through `get` until `done(status)`; returns the last task and the statuses. */
async function pollUntil(get, done, what) {
  const statuses = [];
  const deadline = Date.now() + 30000;
  for (;;) {
    const task = await get();
    statuses.push(task.status);
    if (done(task.status)) return { task, statuses };
    check(Date.now() < deadline, `${what}: the task is still ${task.status}`);
    await sleep(100);
  }
}

/**
 * The handshake era: the extension declared in `initialize` (once, not in each request). The
 * server still answers ask_agent in place: tasks are for requests that declare the extension
 * (the 2026-07-28 era); clients of the handshake era, the MCP Inspector among them, declare it
 * without handling a task result.
 */
async function handshakeEra() {
  const { StdioClientTransport } = await import("@modelcontextprotocol/client/stdio");
  const transport =
    target === "stdio" ?
      new StdioClientTransport({
        command: process.env.MCP_DUST_SERVER_BIN,
        args: ["stdio"],
        env: { ...process.env },
        stderr: "inherit",
      })
    : new StreamableHTTPClientTransport(new URL(target), {
        requestInit: {
          headers: {
            Authorization: `Bearer ${
              process.env.MCP_TOKEN ||
              (await login(process.env.DUST_API_KEY, process.env.DUST_WORKSPACE_ID))
            }`,
          },
        },
      });
  const client = new Client(CLIENT_INFO, { capabilities: { extensions: { [TASKS]: {} } } });
  await client.connect(transport);
  const seen = { era: "handshake", target: target === "stdio" ? "stdio" : "http" };
  seen.protocolVersion = client.getNegotiatedProtocolVersion?.() ?? null;
  const echo = await client.callTool({
    name: "ask_agent",
    arguments: { agentId: process.env.ECHO_AGENT_ID, message: "handshake" },
  });
  check(!echo.taskId, `expected the answer in place, got ${JSON.stringify(echo).slice(0, 300)}`);
  seen.echo = { answer: echo.structuredContent?.answer ?? null };
  check(seen.echo.answer === "You said: handshake", `echo answer ${seen.echo.answer}`);
  await client.close();
  return seen;
}

async function main() {
  if (era === "handshake") {
    check(process.env.ECHO_AGENT_ID, "ECHO_AGENT_ID is set");
    console.log(JSON.stringify(await handshakeEra()));
    return;
  }
  check(era === PROTOCOL, `unknown era ${era}`);
  check(target?.startsWith("http"), "usage: node ts_tasks.mjs URL-of-/mcp");
  for (const name of ["ECHO_AGENT_ID", "SLOW_AGENT_ID", "APPROVAL_AGENT_ID"]) {
    check(process.env[name], `${name} is set`);
  }
  const token =
    process.env.MCP_TOKEN ||
    (await login(process.env.DUST_API_KEY, process.env.DUST_WORKSPACE_ID));
  const seen = { wire: [] };
  const dispatch = coordinator(target, token, seen.wire);

  await wireChecks(dispatch, seen);

  const transport = new StreamableHTTPClientTransport(new URL(target), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
  });
  const client = new Client(CLIENT_INFO, { versionNegotiation: { mode: { pin: PROTOCOL } } });
  await client.connect(transport);
  seen.protocolVersion = client.getNegotiatedProtocolVersion?.() ?? null;
  check(seen.protocolVersion === PROTOCOL, `negotiated ${seen.protocolVersion}`);
  seen.capability = client.getServerCapabilities()?.extensions?.[TASKS] ?? null;
  check(
    JSON.stringify(seen.capability) === "{}",
    `the server advertises ${TASKS} as ${JSON.stringify(seen.capability)}`,
  );

  // A request that does not declare the extension is answered in place, as before.
  const immediate = await client.callTool(
    { name: "ask_agent", arguments: { agentId: process.env.ECHO_AGENT_ID, message: "in place" } },
    { timeout: 60000 },
  );
  seen.immediateAnswer = answerOf(immediate, "the call without the extension");
  check(seen.immediateAnswer === "You said: in place", `immediate ${seen.immediateAnswer}`);

  const asked = [];
  const session = createTaskSessionFromClient(client, {
    endpointId: `mcp-dust-server ${target}`,
    rawDispatch: dispatch,
    // The Mailer's approval is a form the person fills in: the requests declare form elicitation
    // (ext-tasks adds the tasks extension itself).
    v2RequestFraming: {
      protocolVersion: PROTOCOL,
      clientInfo: CLIENT_INFO,
      clientCapabilities: { elicitation: { form: {} } },
    },
    onInputRequest: async (request, context) => {
      asked.push({ key: context.inputId, taskId: context.taskId, kind: request.kind, params: request.params });
      return { action: "accept", content: { always: false } };
    },
    onError: (e) => console.error(`ext-tasks: ${e?.stack ?? e}`),
  });
  check(session.capabilities.execution, `session capabilities ${JSON.stringify(session.capabilities)}`);
  const asTask = { task: { preference: "require" }, requestTimeoutMs: 60000 };

  // (a) The echo agent: a task that settles with the answer.
  {
    const run = await session.callTool(
      "ask_agent",
      { agentId: process.env.ECHO_AGENT_ID, message: QUESTION },
      asTask,
    );
    check(run.kind === "task", `echo ran as ${run.kind}`);
    const statuses = [];
    const { outcome } = await run.settle({
      onEvent: (e) => e.type === "task" && statuses.push(e.task.status),
    });
    const result = resultFromTaskOutcome(outcome);
    seen.echo = { statuses, status: outcome.status, answer: answerOf(result, "echo") };
    seen.echo.agentId = result.structuredContent.agentId;
    check(seen.echo.answer === `You said: ${QUESTION}`, `echo answer ${seen.echo.answer}`);
    check(seen.echo.agentId === process.env.ECHO_AGENT_ID, `echo agent ${seen.echo.agentId}`);
  }

  // (b) The slow agent: seen working through tasks/get, cancelled, then seen cancelled.
  {
    const run = await session.callTool(
      "ask_agent",
      { agentId: process.env.SLOW_AGENT_ID, message: "take your time" },
      asTask,
    );
    check(run.kind === "task", `slow ran as ${run.kind}`);
    const controller = session.task(run.handle.taskId);
    const statuses = [];
    const before = await controller.snapshot();
    statuses.push(before.status);
    check(before.status === "working", `the slow task is ${before.status}, not working`);
    await run.cancel();
    let after;
    const deadline = Date.now() + 20000;
    for (;;) {
      after = await controller.snapshot();
      statuses.push(after.status);
      if (TERMINAL.has(after.status)) break;
      check(Date.now() < deadline, `still ${after.status} after tasks/cancel`);
      await sleep(200);
    }
    const outcome = await run.result();
    seen.slow = { statuses, status: after.status, outcome: outcome.status };
    check(after.status === "cancelled", `after tasks/cancel the task is ${after.status}`);
    check(outcome.status === "cancelled", `the requester's outcome ${outcome.status}`);
  }

  // (c) The Mailer: input_required (an approval form), accepted through tasks/update.
  {
    const run = await session.callTool(
      "ask_agent",
      { agentId: process.env.APPROVAL_AGENT_ID, message: "tell the CEO we shipped" },
      asTask,
    );
    check(run.kind === "task", `mailer ran as ${run.kind}`);
    const statuses = [];
    const { outcome } = await run.settle({
      onEvent: (e) => e.type === "task" && statuses.push(e.task.status),
    });
    const result = resultFromTaskOutcome(outcome);
    seen.mailer = { statuses, status: outcome.status, answer: answerOf(result, "mailer") };
    seen.mailer.asked = asked.map((a) => ({
      key: a.key,
      kind: a.kind,
      mode: a.params.mode ?? null,
      message: a.params.message,
      schema: a.params.requestedSchema,
    }));
    check(statuses.includes("input_required"), `the Mailer's task went ${statuses.join(" → ")}`);
    check(asked.length === 1, `asked ${asked.length} times`);
    check(asked[0].taskId === run.handle.taskId, "the question belongs to the Mailer's task");
    check(asked[0].kind === "elicitation", `asked for ${asked[0].kind}`);
    for (const needle of ["Mailer", "send_email (Gmail)"]) {
      check(asked[0].params.message.includes(needle), `${needle} missing: ${asked[0].params.message}`);
    }
    check(
      asked[0].params.requestedSchema?.properties?.always?.type === "boolean",
      `schema ${JSON.stringify(asked[0].params.requestedSchema)}`,
    );
    check(seen.mailer.answer === SENT, `mailer answer ${seen.mailer.answer}`);
  }

  await session.close();
  await client.close();
  const methods = new Set(seen.wire.map((w) => w.method));
  for (const method of ["tools/call", "tasks/get", "tasks/update", "tasks/cancel"]) {
    check(methods.has(method), `${method} never went over the wire`);
  }
  console.log(JSON.stringify(seen));
}

main().catch((e) => {
  console.error(`FAILED: ${e?.stack ?? e}`);
  process.exit(1);
});
