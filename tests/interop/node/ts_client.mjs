// Drives mcp-dust-server with an official TypeScript SDK client, as an independent client.
//
// Usage: node ts_client.mjs SDK ERA TARGET
//   SDK     v1 (@modelcontextprotocol/sdk 1.x) | v2 (@modelcontextprotocol/client 2.x)
//   ERA     legacy | auto | 2026-07-28 (v1 only speaks legacy; v2 negotiates the others)
//   TARGET  "stdio" (runs $MCP_DUST_SERVER_BIN stdio, credentials from the environment)
//           or the URL of /mcp, used with the bearer token $MCP_TOKEN
//
// Expectations come from the environment, set by tests/all/interop_node.rs:
//   ECHO_AGENT_ID  an agent that answers "You said: <message>"
//   SLOW_AGENT_ID  an agent that streams its answer slowly (progress, then cancellation)
// Prints one JSON line with what it saw; exits non-zero on the first failed expectation.

const [sdk, era, target] = process.argv.slice(2);

const QUESTION = "Héllo 👋 from TypeScript — <b>&amp;</b> 'quotes' \"double\"";

function check(condition, message) {
  if (!condition) throw new Error(`expectation failed: ${message}`);
}

async function load() {
  if (sdk === "v1") {
    const { Client } = await import("@modelcontextprotocol/sdk/client/index.js");
    const { StreamableHTTPClientTransport } = await import(
      "@modelcontextprotocol/sdk/client/streamableHttp.js"
    );
    const { StdioClientTransport } = await import("@modelcontextprotocol/sdk/client/stdio.js");
    return { Client, StreamableHTTPClientTransport, StdioClientTransport };
  }
  if (sdk === "v2") {
    const { Client, StreamableHTTPClientTransport } = await import("@modelcontextprotocol/client");
    const { StdioClientTransport } = await import("@modelcontextprotocol/client/stdio");
    return { Client, StreamableHTTPClientTransport, StdioClientTransport };
  }
  throw new Error(`unknown SDK ${sdk}`);
}

async function main() {
  const { Client, StreamableHTTPClientTransport, StdioClientTransport } = await load();
  const transport =
    target === "stdio"
      ? new StdioClientTransport({
          command: process.env.MCP_DUST_SERVER_BIN,
          args: ["stdio"],
          env: { ...process.env },
          stderr: "inherit",
        })
      : new StreamableHTTPClientTransport(new URL(target), {
          requestInit: { headers: { Authorization: `Bearer ${process.env.MCP_TOKEN}` } },
        });
  const options = {};
  if (era === "auto") options.versionNegotiation = { mode: "auto" };
  else if (era === "2026-07-28") options.versionNegotiation = { mode: { pin: "2026-07-28" } };
  else check(era === "legacy", `unknown era ${era}`);
  check(sdk === "v2" || era === "legacy", "SDK v1 only speaks the legacy era");

  const client = new Client({ name: `interop-ts-${sdk}`, version: "0.0.0" }, options);
  await client.connect(transport);
  const seen = { sdk, era, target: target === "stdio" ? "stdio" : "http" };
  seen.protocolVersion =
    client.getNegotiatedProtocolVersion?.() ?? transport.protocolVersion ?? null;
  seen.server = client.getServerVersion()?.name ?? null;
  if (era !== "2026-07-28" || seen.server !== null) {
    check(seen.server === "mcp-dust-server", `server name ${seen.server}`);
  }

  const tools = (await client.listTools()).tools;
  seen.tools = tools.map((t) => t.name).sort();
  check(seen.tools.includes("ask_agent"), "ask_agent listed");
  const ask = tools.find((t) => t.name === "ask_agent");
  check(ask.outputSchema?.properties?.answer, "ask_agent has an output schema");

  // The echo agent answers "You said: <message>", byte for byte; the SDK validates the
  // structured content against the tool's output schema on the way.
  const echo = await client.callTool({
    name: "ask_agent",
    arguments: { agentId: process.env.ECHO_AGENT_ID, message: QUESTION },
  });
  check(!echo.isError, `ask_agent failed: ${JSON.stringify(echo.content)}`);
  seen.echoAnswer = echo.structuredContent.answer;
  check(seen.echoAnswer === `You said: ${QUESTION}`, `echo answer ${seen.echoAnswer}`);
  // Clients without structured output read the same object, serialized, as text content.
  const mirrored = echo.content.find((c) => c.type === "text");
  check(
    mirrored && JSON.stringify(JSON.parse(mirrored.text)) === JSON.stringify(echo.structuredContent),
    "the structured answer is mirrored as text content",
  );

  // The slow agent streams one word every half second: progress notifications arrive while it
  // runs; after three of them the client gives up, which must cancel the run.
  const progress = [];
  const abort = new AbortController();
  let outcome;
  const request = {
    signal: abort.signal,
    onprogress: (p) => {
      progress.push(p);
      if (progress.length === 3) abort.abort("seen enough");
    },
    timeout: 60000,
  };
  const params = {
    name: "ask_agent",
    arguments: { agentId: process.env.SLOW_AGENT_ID, message: "hi" },
  };
  try {
    // v1: callTool(params, resultSchema, options); v2: callTool(params, options).
    if (sdk === "v1") await client.callTool(params, undefined, request);
    else await client.callTool(params, request);
    outcome = "completed";
  } catch (e) {
    outcome = abort.signal.aborted ? "aborted" : `failed: ${e}`;
  }
  seen.slowOutcome = outcome;
  seen.progress = progress.map((p) => ({ progress: p.progress, message: p.message }));
  check(outcome === "aborted", `slow call ${outcome}`);
  check(progress.length >= 3, "three progress notifications");
  check(
    progress.every((p, i) => i === 0 || p.progress > progress[i - 1].progress),
    "progress increases",
  );
  check(progress.some((p) => typeof p.message === "string" && p.message.length > 0), "messages");

  await client.close();
  console.log(JSON.stringify(seen));
}

main().catch((e) => {
  console.error(`FAILED: ${e?.stack ?? e}`);
  process.exit(1);
});
