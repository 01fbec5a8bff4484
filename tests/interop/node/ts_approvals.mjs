// An agent's tool approval put to the person by the official TypeScript SDK v2 client
// (@modelcontextprotocol/client), over stdio in the handshake (legacy) era (issue 17).
//
// Usage: node ts_approvals.mjs MODE
//   person  declares form elicitation and asks $APPROVAL_AGENT_ID four times: the person
//           approves, declines, always allows; the fourth run is not asked (Dust remembers).
//           The decline comes before the "always": once always allowed, the tool is no longer
//           put to the person, so a later refusal could not be asked for.
//   bare    declares no elicitation capability and asks once: the tool is refused by name.
// Runs $MCP_DUST_SERVER_BIN stdio (credentials from the environment). Prints one JSON line with
// what the person was shown and the answers; exits non-zero on the first failed expectation.
// tests/all/interop_node.rs checks what Dust was told (the simulator's validate-action calls).

import { Client } from "@modelcontextprotocol/client";
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio";

const [mode] = process.argv.slice(2);
const AGENT = process.env.APPROVAL_AGENT_ID;
// Looks like a Dust API key: the person must see it masked among the tool's inputs.
const SECRET = "sk-TsApprovalsNotARealKey0123";
const SENT = "I sent your message to ceo@example.com.";
const NOT_SENT = "I did not send the email: the action was rejected.";
const SCHEMA = {
  type: "object",
  properties: {
    always: { type: "boolean", title: "Always allow this tool for this agent", default: false },
  },
};

function check(condition, message) {
  if (!condition) throw new Error(`expectation failed: ${message}`);
}

function connect(capabilities) {
  const transport = new StdioClientTransport({
    command: process.env.MCP_DUST_SERVER_BIN,
    args: ["stdio"],
    env: { ...process.env },
    stderr: "inherit",
  });
  const client = new Client({ name: "interop-ts-v2-approvals", version: "0.0.0" }, { capabilities });
  return { client, transport };
}

function ask(client, message) {
  return client.callTool(
    { name: "ask_agent", arguments: { agentId: AGENT, message } },
    { timeout: 60000 },
  );
}

function text(result) {
  return result.content.filter((c) => c.type === "text").map((c) => c.text).join("\n");
}

async function person() {
  const { client, transport } = connect({ elicitation: { form: {} } });
  const shown = [];
  const decisions = [
    { action: "accept", content: { always: false } },
    { action: "decline" },
    { action: "accept", content: { always: true } },
  ];
  client.setRequestHandler("elicitation/create", async (request) => {
    shown.push(request.params);
    const decision = decisions[shown.length - 1];
    check(decision, `asked a ${shown.length}th time: ${request.params.message}`);
    return decision;
  });
  await client.connect(transport);
  check(client.getServerVersion()?.name === "mcp-dust-server", "server name");

  const seen = { mode };
  const runs = [
    ["approved", `tell the CEO we shipped (token ${SECRET})`],
    ["declined", "tell the CEO we slipped"],
    ["alwaysApproved", "tell the CEO we shipped again"],
    ["remembered", "tell the CEO one more time"],
  ];
  for (const [name, message] of runs) {
    const result = await ask(client, message);
    check(!result.isError, `${name}: ${text(result)}`);
    seen[name] = result.structuredContent.answer;
  }
  await client.close();

  check(shown.length === 3, `asked ${shown.length} times`);
  for (const [i, params] of shown.entries()) {
    check((params.mode ?? "form") === "form", `mode ${params.mode}`);
    check(
      JSON.stringify(params.requestedSchema) === JSON.stringify(SCHEMA),
      `schema ${JSON.stringify(params.requestedSchema)}`,
    );
    for (const needle of ["Mailer", "send_email (Gmail)", "ceo@example.com", runs[i][1].slice(0, 20)]) {
      check(params.message.includes(needle), `${needle} missing from ${params.message}`);
    }
  }
  check(!shown[0].message.includes(SECRET), `the key was shown: ${shown[0].message}`);
  check(seen.approved === SENT, `approved: ${seen.approved}`);
  check(seen.declined === NOT_SENT, `declined: ${seen.declined}`);
  check(seen.alwaysApproved === SENT, `always approved: ${seen.alwaysApproved}`);
  check(seen.remembered === SENT, `remembered: ${seen.remembered}`);
  seen.shown = shown.map((p) => p.message);
  seen.schema = shown[0].requestedSchema;
  return seen;
}

async function bare() {
  const { client, transport } = connect({});
  await client.connect(transport);
  const result = await ask(client, "tell the CEO we shipped");
  await client.close();
  const said = text(result);
  check(result.isError === true, `not an error: ${said}`);
  check(said.includes("send_email (Gmail)") && said.includes("rejected"), said);
  return { mode, isError: result.isError, text: said };
}

async function main() {
  check(AGENT, "APPROVAL_AGENT_ID is set");
  let seen;
  if (mode === "person") seen = await person();
  else if (mode === "bare") seen = await bare();
  else throw new Error(`unknown mode ${mode}`);
  console.log(JSON.stringify(seen));
}

main().catch((e) => {
  console.error(`FAILED: ${e?.stack ?? e}`);
  process.exit(1);
});
