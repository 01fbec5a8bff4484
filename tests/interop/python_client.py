"""Drives mcp-dust-server with the official MCP Python SDK (mcp==2.3.0), as an independent client.

Usage: python_client.py MODE TARGET
  MODE    auto | legacy | 2026-07-28
  TARGET  "stdio" (runs $MCP_DUST_SERVER_BIN stdio, credentials from the environment)
          or the http(s) URL of /mcp: the script logs in at /api/v1/auth/login with
          $DUST_API_KEY and $DUST_WORKSPACE_ID (and the JSON list $LOGIN_PERMISSIONS, if set)
          and uses the token it gets as a bearer token

Expectations come from the environment, set by the Rust test that runs this script:
  EXPECT_AGENT_ID        an agent that answers "You said: <question>"
  SLOW_AGENT_ID          an agent slow enough to be cancelled while it streams
  EXPECT_KB_ID           a knowledge base to search
  EXPECT_SEARCH_QUERY    a query with at least one hit in it
  EXPECT_WORKSPACE_ID    the workspace
  EXPECT_WRITE           "1" when the caller may write documents; otherwise write tools must be
                         hidden and refused
Prints one JSON line with what it saw; exits non-zero on the first failed expectation.
"""

import base64
import json
import os
import sys

import anyio
from mcp import Client
from mcp.client.stdio import StdioServerParameters

READ_TOOLS = {
    "get_workspace", "list_agents", "get_agent", "list_conversations", "get_conversation",
    "list_spaces", "list_knowledge_bases", "search_knowledge", "search_workspace", "list_documents",
    "get_document", "list_connectors", "list_tables", "get_table", "list_table_rows",
}

# Free text that a naive "SQL injection / XSS" filter would mangle; it must reach Dust untouched.
QUESTION = "Héllo 👋 — SELECT * FROM users WHERE id=1 OR 1=1; -- <script>alert(1)</script>"

# A small, valid one-page PDF and a text note, attached to a question.
PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)
NOTE = "Budget owners: Ana (EMEA) and Bo (APAC).\nReviewed weekly."


def check(condition, message):
    if not condition:
        raise AssertionError(message)


async def main(mode, target):
    if target == "stdio":
        server = StdioServerParameters(
            command=os.environ["MCP_DUST_SERVER_BIN"], args=["stdio"], env=dict(os.environ)
        )
    else:
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        login = {"apiKey": os.environ["DUST_API_KEY"], "workspaceId": os.environ["DUST_WORKSPACE_ID"]}
        if os.environ.get("LOGIN_PERMISSIONS"):
            login["permissions"] = json.loads(os.environ["LOGIN_PERMISSIONS"])
        origin = target.rsplit("/mcp", 1)[0]
        async with httpx2.AsyncClient() as plain:
            answer = await plain.post(f"{origin}/api/v1/auth/login", json=login)
            check(answer.status_code == 200, f"login answered {answer.status_code}: {answer.text}")
            token = answer.json()["token"]
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60)
        server = streamable_http_client(target, http_client=http)
    seen = {"mode": mode}
    async with Client(server, mode=mode, read_timeout_seconds=60) as c:
        seen["protocol_version"] = str(c.protocol_version)
        seen["server"] = c.server_info.name if c.server_info else None
        # A client pinned to 2026-07-28 skips discovery, so it may not know the server's name.
        if mode != "2026-07-28" or seen["server"] is not None:
            check(seen["server"] == "mcp-dust-server", f"server name {seen['server']!r}")
        if mode == "legacy":
            check(seen["protocol_version"] <= "2025-11-25", f"legacy got {seen['protocol_version']}")
        if mode == "2026-07-28":
            check(seen["protocol_version"] == "2026-07-28", f"modern got {seen['protocol_version']}")

        tools = {t.name: t for t in (await c.list_tools()).tools}
        seen["tools"] = sorted(tools)
        check(READ_TOOLS <= set(tools), f"missing read tools: {READ_TOOLS - set(tools)}")
        read_only = os.environ.get("EXPECT_WRITE") != "1"
        check(("upsert_document" in tools) != read_only, "write tool visibility")
        check(tools["list_agents"].annotations.read_only_hint is True, "list_agents readOnlyHint")
        check(tools["search_knowledge"].input_schema.get("additionalProperties") is False,
              "inputSchema allows unknown properties")

        agents = await c.call_tool("list_agents", {})
        check(not agents.is_error, f"list_agents failed: {agents.content}")
        ids = [a["id"] for a in agents.structured_content["agents"]]
        check(os.environ["EXPECT_AGENT_ID"] in ids, f"agent missing from {ids}")

        progress = []

        async def on_progress(value, total, message):
            progress.append(message)

        answer = await c.call_tool(
            "ask_agent",
            {"agentId": os.environ["EXPECT_AGENT_ID"], "message": QUESTION},
            progress_callback=on_progress,
        )
        check(not answer.is_error, f"ask_agent failed: {answer.content}")
        # Structured output: an object matching the tool's outputSchema, mirrored as JSON text.
        out = answer.structured_content
        check(out["answer"] == f"You said: {QUESTION}", f"echo answer: {out['answer']!r}")
        check(out["conversationId"] and out["messageId"], "ids missing")
        schema = tools["ask_agent"].output_schema
        check(schema and set(schema.get("required", [])) <= set(out), f"outputSchema {schema}")
        check(json.loads(answer.content[0].text) == out, "text content mirrors structuredContent")
        seen["progress_notifications"] = len(progress)
        check(len(progress) > 0, "no progress notification")

        # Attachments: a text note and a PDF (base64) go with the question, and the agent reads
        # both (the simulated agents name what they read).
        attached = await c.call_tool(
            "ask_agent",
            {
                "agentId": os.environ["EXPECT_AGENT_ID"],
                "message": "Who owns the budget?",
                "attachments": [
                    {"title": "budget-note.txt", "text": NOTE},
                    {
                        "title": "budget.pdf",
                        "contentType": "application/pdf",
                        "data": base64.b64encode(PDF).decode(),
                    },
                ],
            },
        )
        check(not attached.is_error, f"ask_agent with attachments failed: {attached.content}")
        said = attached.structured_content["answer"]
        check('"budget-note.txt"' in said and "Budget owners: Ana (EMEA) and Bo (APAC)." in said, f"note not read: {said!r}")
        check('"budget.pdf" (application/pdf, %d bytes' % len(PDF) in said, f"PDF not read: {said!r}")
        # A type Dust does not take is refused by name (a JSON-RPC invalid-params error).
        try:
            refused = await c.call_tool(
                "ask_agent",
                {
                    "agentId": os.environ["EXPECT_AGENT_ID"],
                    "message": "Run this",
                    "attachments": [{"title": "tool.exe", "contentType": "application/x-msdownload", "data": "TVo="}],
                },
            )
            check(False, f"an .exe was accepted: {refused.content}")
        except AssertionError:
            raise
        except Exception as e:  # noqa: BLE001 - the refusal is the expected outcome
            check("does not take files of type" in str(e), f"unexpected refusal: {e}")
        seen["attachments_read"] = 2

        # Cancellation: give up on the slow agent after three progress notifications. The SDK
        # sends notifications/cancelled (stdio, legacy HTTP) or closes the response stream
        # (2026-07-28 HTTP); the Rust test then checks that the Dust run was cancelled.
        slow = []
        with anyio.CancelScope() as scope:

            async def on_slow_progress(value, total, message):
                slow.append(value)
                if len(slow) == 3:
                    scope.cancel()

            with anyio.fail_after(60):
                await c.call_tool(
                    "ask_agent",
                    {"agentId": os.environ["SLOW_AGENT_ID"], "message": "Take your time."},
                    progress_callback=on_slow_progress,
                )
        check(scope.cancelled_caught, f"the slow call finished instead of being cancelled: {slow}")
        check(slow == sorted(slow) and len(set(slow)) == 3, f"progress not increasing: {slow}")
        seen["cancelled_after_progress"] = len(slow)

        found = await c.call_tool(
            "search_knowledge",
            {"query": os.environ["EXPECT_SEARCH_QUERY"], "knowledgeBaseId": os.environ["EXPECT_KB_ID"]},
        )
        check(not found.is_error, f"search failed: {found.content}")
        hits = found.structured_content["results"]
        seen["search_hits"] = len(hits)
        check(len(hits) > 0, "no search hit")

        ws = os.environ["EXPECT_WORKSPACE_ID"]
        resource = await c.read_resource(f"dust://workspaces/{ws}/agents")
        text = resource.contents[0].text
        check(os.environ["EXPECT_AGENT_ID"] in text, "agent missing from resource")

        prompt = await c.get_prompt(
            "consult_agent", {"agentId": os.environ["EXPECT_AGENT_ID"], "question": "Why?"}
        )
        check("ask_agent" in prompt.messages[0].content.text, "prompt text")

        if read_only:
            try:
                refused = await c.call_tool(
                    "upsert_document",
                    {"knowledgeBaseId": os.environ["EXPECT_KB_ID"], "documentId": "x", "text": "y"},
                )
                check(refused.is_error, "write allowed for a read-only caller")
                seen["write_refused"] = "tool error"
            except AssertionError:
                raise
            except Exception as e:  # noqa: BLE001 - a JSON-RPC error is the expected refusal
                check("permission denied" in str(e), f"unexpected refusal: {e}")
                seen["write_refused"] = str(e)

    print(json.dumps(seen))


if __name__ == "__main__":
    try:
        anyio.run(main, sys.argv[1], sys.argv[2])
    except Exception as e:  # noqa: BLE001 - report any failure as a test failure
        import traceback

        traceback.print_exception(e, file=sys.stderr)
        print(f"FAILED: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
