"""Connects to mcp-dust-server the way claude.ai or ChatGPT do: the official MCP Python SDK's
OAuth client support (mcp==2.3.0, `OAuthClientProvider`), headless.

Usage: python_oauth.py MCP_URL

The SDK gets a 401 from /mcp, discovers the protected resource and authorization server
metadata, registers a client (RFC 7591), and calls our redirect handler with the authorization
URL. The handler plays the person: it GETs the consent page, reads the form, and posts the Dust
key and workspace ($DUST_API_KEY, $DUST_WORKSPACE_ID) with the permissions offered; the 302's
Location gives the code, state and iss, which the callback handler returns. The SDK then
exchanges the code (PKCE S256, resource) and retries; we list tools and ask an agent
($EXPECT_AGENT_ID). Prints one JSON line with what it saw; exits non-zero on a failed check.

Step-up: on the first consent the person withholds `execute:agents`. Asking the agent then gets
a 403 scope challenge (`insufficient_scope`, `scope="execute:agents"`); the SDK sends the person
back to the consent page for the union of what it asked before and that scope, the person
approves, and the SDK retries the call with the new token.
"""

import json
import os
import re
import sys
from urllib.parse import parse_qs, urlencode, urlparse

import anyio
import httpx2
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)

REDIRECT_URI = "http://127.0.0.1:33418/callback"


def check(condition, message):
    if not condition:
        raise AssertionError(message)


class MemoryStorage:
    """The SDK's TokenStorage protocol, in memory."""

    def __init__(self):
        self.tokens = None
        self.client_info = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


def field(html, name):
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    check(match is not None, f"consent page has no {name} field")
    return match.group(1)


async def main(target):
    seen = {"consent_rounds": 0, "requested_scopes": []}
    redirect = {}

    async def redirect_handler(authorization_url: str) -> None:
        seen["authorization_url_host"] = urlparse(authorization_url).netloc
        seen["consent_rounds"] += 1
        first_round = seen["consent_rounds"] == 1
        query = parse_qs(urlparse(authorization_url).query)
        seen["requested_scopes"].append(query.get("scope", [""])[0])
        seen["resource"] = query.get("resource", [None])[0]
        check(query["code_challenge_method"] == ["S256"], "PKCE S256")
        async with httpx2.AsyncClient(follow_redirects=False, timeout=30) as browser:
            page = await browser.get(authorization_url)
            check(page.status_code == 200, f"consent page answered {page.status_code}: {page.text}")
            check("frame-ancestors 'none'" in page.headers["content-security-policy"], "framing denied")
            html = page.text
            scopes = re.findall(r'name="scope" value="([^"]+)"', html)
            seen.setdefault("offered_scopes", scopes)
            if first_round:
                scopes = [s for s in scopes if s != "execute:agents"]
            form = [
                ("consent", field(html, "consent")),
                ("csrf_token", field(html, "csrf_token")),
                ("api_key", os.environ["DUST_API_KEY"]),
                ("workspace_id", os.environ["DUST_WORKSPACE_ID"]),
                ("action", "approve"),
            ] + [("scope", s) for s in scopes]
            origin = f"{urlparse(authorization_url).scheme}://{urlparse(authorization_url).netloc}"
            answer = await browser.post(
                f"{origin}/oauth/authorize",
                content=urlencode(form),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            check(answer.status_code == 302, f"consent answered {answer.status_code}: {answer.text}")
            location = answer.headers["location"]
            check(location.startswith(REDIRECT_URI), f"redirected to {location}")
            back = parse_qs(urlparse(location).query)
            redirect["code"] = back["code"][0]
            redirect["state"] = back.get("state", [None])[0]
            redirect["iss"] = back.get("iss", [None])[0]

    async def callback_handler() -> AuthorizationCodeResult:
        return AuthorizationCodeResult(
            code=redirect["code"], state=redirect["state"], iss=redirect["iss"]
        )

    storage = MemoryStorage()
    provider = OAuthClientProvider(
        server_url=target,
        client_metadata=OAuthClientMetadata(
            client_name="Python SDK interop",
            redirect_uris=[REDIRECT_URI],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )
    async def log_request(request):
        print(f"-> {request.method} {request.url.path}", file=sys.stderr)

    async def log_response(response):
        print(f"<- {response.status_code} {response.request.url.path}", file=sys.stderr)

    http = httpx2.AsyncClient(
        auth=provider,
        timeout=60,
        event_hooks={"request": [log_request], "response": [log_response]},
    )
    async with Client(streamable_http_client(target, http_client=http), read_timeout_seconds=60) as c:
        tools = {t.name for t in (await c.list_tools()).tools}
        seen["tools_before_step_up"] = sorted(tools)
        check("list_agents" in tools and "ask_agent" not in tools, f"tools: {tools}")
        answer = await c.call_tool(
            "ask_agent", {"agentId": os.environ["EXPECT_AGENT_ID"], "message": "Hello over OAuth"}
        )
        check(not answer.is_error, f"ask_agent failed: {answer.content}")
        text = json.dumps(answer.structured_content)
        check("Hello over OAuth" in text, f"agent answer: {text}")
        seen["agent_answered"] = True
        tools = {t.name for t in (await c.list_tools()).tools}
        seen["tools"] = sorted(tools)
        check({"list_agents", "ask_agent"} <= tools, f"tools: {tools}")
    check(storage.tokens is not None and storage.tokens.refresh_token, "a refresh token was issued")
    seen["token_type"] = storage.tokens.token_type
    seen["granted_scope"] = storage.tokens.scope
    seen["client_id_registered"] = storage.client_info.client_id.startswith("mcp_client_")
    print(json.dumps(seen))


if __name__ == "__main__":
    anyio.run(main, sys.argv[1])
