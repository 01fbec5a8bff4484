"""An agent's tool approval put to the person by the official MCP Python SDK (mcp==2.3.0).

Usage: python_approvals.py MODE TARGET
  MODE    legacy | 2026-07-28
  TARGET  "stdio" (runs $MCP_DUST_SERVER_BIN stdio, credentials from the environment) or the
          http(s) URL of /mcp (logs in with $DUST_API_KEY and $DUST_WORKSPACE_ID, then uses the
          bearer token)

The client has an elicitation callback. It asks $APPROVAL_AGENT_ID three times: the person
approves, then declines, then allows the tool for good; a fourth time the tool runs unasked
(Dust remembers). In the legacy era the server asks with an `elicitation/create` request in the
middle of the call; in the 2026-07-28 era with an `input_required` result that the SDK answers
and retries. Prints one JSON line with what the person was shown and the answers; exits
non-zero on the first failed expectation. The Rust test checks what Dust was told.
"""

import json
import os
import sys

import anyio
from mcp import Client, types
from mcp.client.stdio import StdioServerParameters


def check(condition, message):
    if not condition:
        raise AssertionError(message)


async def connect(target):
    if target == "stdio":
        return StdioServerParameters(
            command=os.environ["MCP_DUST_SERVER_BIN"], args=["stdio"], env=dict(os.environ)
        )
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    login = {"apiKey": os.environ["DUST_API_KEY"], "workspaceId": os.environ["DUST_WORKSPACE_ID"]}
    origin = target.rsplit("/mcp", 1)[0]
    async with httpx2.AsyncClient() as plain:
        answer = await plain.post(f"{origin}/api/v1/auth/login", json=login)
        check(answer.status_code == 200, f"login answered {answer.status_code}: {answer.text}")
        token = answer.json()["token"]
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60)
    return streamable_http_client(target, http_client=http)


async def main(mode, target):
    server = await connect(target)
    shown = []
    decisions = [
        types.ElicitResult(action="accept", content={"always": False}),
        types.ElicitResult(action="decline"),
        types.ElicitResult(action="accept", content={"always": True}),
    ]

    async def on_elicit(context, params):
        shown.append({"message": params.message, "schema": params.requested_schema})
        return decisions[len(shown) - 1]

    seen = {"mode": mode, "target": "stdio" if target == "stdio" else "http"}
    agent = os.environ["APPROVAL_AGENT_ID"]
    async with Client(server, mode=mode, read_timeout_seconds=60, elicitation_callback=on_elicit) as c:
        seen["protocol_version"] = str(c.protocol_version)
        answers = []
        for i in range(4):
            result = await c.call_tool("ask_agent", {"agentId": agent, "message": f"tell the CEO ({i})"})
            check(not result.is_error, f"run {i} failed: {result.content}")
            answers.append(result.structured_content["answer"])
        seen["answers"] = answers
    check(len(shown) == 3, f"asked {len(shown)} times")
    check("send_email (Gmail)" in shown[0]["message"], shown[0]["message"])
    check(shown[0]["schema"]["properties"]["always"]["type"] == "boolean", shown[0]["schema"])
    seen["shown"] = shown[0]["message"]
    print(json.dumps(seen))


if __name__ == "__main__":
    try:
        anyio.run(main, sys.argv[1], sys.argv[2])
    except Exception as error:  # one line for the Rust test's message
        print(json.dumps({"error": repr(error)}))
        sys.exit(1)
