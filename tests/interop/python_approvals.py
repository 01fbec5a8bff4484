"""An agent's tool approval put to the person by the official MCP Python SDK (mcp==2.3.0).

Usage: python_approvals.py
Runs $MCP_DUST_SERVER_BIN stdio (credentials from the environment) in the legacy era with an
elicitation callback, asks $APPROVAL_AGENT_ID twice: the first time the person approves, the
second time declines. Prints one JSON line with what the person was shown and the answers;
exits non-zero on the first failed expectation. The Rust test checks what Dust was told.
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


async def main():
    server = StdioServerParameters(
        command=os.environ["MCP_DUST_SERVER_BIN"], args=["stdio"], env=dict(os.environ)
    )
    shown = []
    decisions = [
        types.ElicitResult(action="accept", content={"always": False}),
        types.ElicitResult(action="decline"),
    ]

    async def on_elicit(context, params):
        shown.append({"message": params.message, "schema": params.requested_schema})
        return decisions[len(shown) - 1]

    seen = {}
    async with Client(server, mode="legacy", read_timeout_seconds=60, elicitation_callback=on_elicit) as c:
        agent = os.environ["APPROVAL_AGENT_ID"]
        approved = await c.call_tool("ask_agent", {"agentId": agent, "message": "tell the CEO"})
        check(not approved.is_error, f"approved run failed: {approved.content}")
        seen["approved"] = approved.structured_content["answer"]
        declined = await c.call_tool("ask_agent", {"agentId": agent, "message": "tell the CEO again"})
        check(not declined.is_error, f"declined run failed: {declined.content}")
        seen["declined"] = declined.structured_content["answer"]
    check(len(shown) == 2, f"asked {len(shown)} times")
    check("send_email (Gmail)" in shown[0]["message"], shown[0]["message"])
    check(shown[0]["schema"]["properties"]["always"]["type"] == "boolean", shown[0]["schema"])
    seen["shown"] = shown[0]["message"]
    print(json.dumps(seen))


if __name__ == "__main__":
    try:
        anyio.run(main)
    except Exception as error:  # one line for the Rust test's message
        print(json.dumps({"error": repr(error)}))
        sys.exit(1)
