// Drives Debian's Chromium (headless, fresh profile) through the OAuth consent page, for
// tests/all/browser.rs: what a person sees when claude.ai or ChatGPT sends them to this server.
// A client registers (RFC 7591) with a loopback redirect URI served here; the browser opens the
// authorization URL (PKCE S256, state, resource), the person reads who asks and for what, enters
// the Dust key, unticks one permission and approves; the browser is redirected to the client
// with a code, which this script exchanges like a client would. Also checked in the browser:
// the page cannot be framed by another site, and a consent form posted from another site is
// refused. The last stdout line is a JSON report; exit code 0 only if every step passed.
//
// Environment: BASE_URL (the server), API_KEY, WORKSPACE_ID, CHROMIUM, USER_DATA_DIR, ARTIFACTS.

import http from "node:http";
import path from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const base = env("BASE_URL").replace(/\/$/, "");
const artifacts = env("ARTIFACTS");
mkdirSync(artifacts, { recursive: true });

const FLAGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
];
const STEP_TIMEOUT = 20_000;
const CLIENT_NAME = "Browser Test Connector";

const report = { steps: [], consoleErrors: [], cspViolations: [], pageErrors: [], callbacks: [] };
const log = (...parts) => console.error("[consent]", ...parts);
const b64url = (buf) => buf.toString("base64url");

// A page on some origin: the client's redirect target, or the attacker.
function listen(host, handler) {
  const server = http.createServer(handler);
  return new Promise((resolve) => server.listen(0, host, () => resolve(server)));
}

async function step(name, page, body) {
  log(name);
  await body();
  await page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });
  report.steps.push(name);
}

async function main() {
  // The client's redirect URI: a loopback page that records what it is sent back.
  const client = await listen("127.0.0.1", (req, res) => {
    const url = new URL(req.url, "http://127.0.0.1");
    if (url.pathname === "/callback") report.callbacks.push(Object.fromEntries(url.searchParams));
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
    res.end("<!doctype html><title>connected</title><p>You can close this window.</p>");
  });
  const redirectUri = `http://127.0.0.1:${client.address().port}/callback`;

  const registered = await fetch(`${base}/oauth/register`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      client_name: CLIENT_NAME,
      redirect_uris: [redirectUri],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    }),
  });
  assert.equal(registered.status, 201, "client registration");
  const { client_id: clientId } = await registered.json();

  const verifier = b64url(randomBytes(48));
  const state = b64url(randomBytes(16));
  const authorize = new URL(`${base}/oauth/authorize`);
  for (const [k, v] of Object.entries({
    response_type: "code",
    client_id: clientId,
    redirect_uri: redirectUri,
    code_challenge: b64url(createHash("sha256").update(verifier).digest()),
    code_challenge_method: "S256",
    state,
    scope: "read:agents execute:agents read:knowledge-bases",
    resource: `${base}/mcp`,
  })) authorize.searchParams.set(k, v);

  // The attacker: frames the consent page (a fresh authorization request, so the page itself
  // would render), and posts a forged approval.
  const framed = new URL(authorize.href);
  framed.searchParams.set("state", b64url(randomBytes(16)));
  const attacker = await listen("127.0.0.2", (req, res) => {
    const pages = {
      "/frame.html": `<iframe id="victim" src="${framed.href}" width="800" height="600"></iframe>`,
      "/forge.html": `<form id="f" method="post" action="${base}/oauth/authorize">` +
        `<input name="consent" value="forged"><input name="csrf_token" value="forged">` +
        `<input name="api_key" value="${env("API_KEY")}"><input name="workspace_id" value="${env("WORKSPACE_ID")}">` +
        `<input name="scope" value="read:agents"><input name="action" value="approve"></form>` +
        `<script>document.getElementById("f").submit()</script>`,
    };
    const body = pages[req.url];
    if (!body) { res.writeHead(404).end(); return; }
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
    res.end(`<!doctype html><title>elsewhere</title>${body}`);
  });
  const attackerOrigin = `http://127.0.0.2:${attacker.address().port}`;

  const context = await chromium.launchPersistentContext(env("USER_DATA_DIR"), {
    executablePath: env("CHROMIUM"),
    headless: true,
    args: FLAGS,
    viewport: { width: 1000, height: 900 },
  });
  try {
    await context.exposeFunction("reportCspViolation", (v) => report.cspViolations.push(v));
    await context.addInitScript(() => {
      document.addEventListener("securitypolicyviolation", (e) => {
        window.reportCspViolation(`${e.effectiveDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`);
      });
    });
    const page = context.pages()[0] || (await context.newPage());
    page.setDefaultTimeout(STEP_TIMEOUT);
    page.on("console", (msg) => {
      if (msg.type() === "error" || msg.type() === "warning") report.consoleErrors.push(`${msg.type()}: ${msg.text()}`);
    });
    page.on("pageerror", (error) => report.pageErrors.push(String(error)));

    await step("consent-01-page", page, async () => {
      const response = await page.goto(authorize.href);
      assert.equal(response.status(), 200);
      const csp = response.headers()["content-security-policy"];
      assert.match(csp, /frame-ancestors 'none'/);
      assert.match(csp, new RegExp(`form-action 'self' http://127\\.0\\.0\\.1:${client.address().port}`));
      const heading = await page.getByRole("heading", { level: 2 }).innerText();
      assert.match(heading, new RegExp(`Connect ${CLIENT_NAME} to your Dust workspace`));
      const text = await page.locator("main").innerText();
      assert.ok(text.includes(clientId), "the client id is shown");
      assert.ok(text.includes("sent back to 127.0.0.1"), "where the answer goes is shown");
      const offered = await page.locator('input[name="scope"]').evaluateAll((els) => els.map((e) => e.value));
      report.offeredScopes = offered;
      assert.deepEqual(offered.sort(), ["execute:agents", "read:agents", "read:knowledge-bases"]);
    });

    await step("consent-02-approved", page, async () => {
      await page.getByLabel("Dust API key").fill(env("API_KEY"));
      await page.getByLabel("Workspace id").fill(env("WORKSPACE_ID"));
      await page.locator('input[name="scope"][value="execute:agents"]').uncheck();
      await Promise.all([
        page.waitForURL((url) => url.href.startsWith(redirectUri)),
        page.getByRole("button", { name: "Approve" }).click(),
      ]);
      assert.equal(report.callbacks.length, 1, "one redirect to the client");
      const back = report.callbacks[0];
      assert.equal(back.state, state, "state returned");
      assert.equal(back.iss, base, "issuer returned (RFC 9207)");
      assert.ok(back.code, "a code");
      // The key never travels in a URL.
      assert.ok(!page.url().includes(env("API_KEY")));
    });

    // The client exchanges the code.
    const exchanged = await fetch(`${base}/oauth/token`, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "authorization_code",
        code: report.callbacks[0].code,
        redirect_uri: redirectUri,
        client_id: clientId,
        code_verifier: verifier,
        resource: `${base}/mcp`,
      }),
    });
    assert.equal(exchanged.status, 200, "code exchange");
    const tokens = await exchanged.json();
    report.grantedScope = tokens.scope;
    report.accessToken = tokens.access_token;
    report.hasRefreshToken = typeof tokens.refresh_token === "string";

    // Another site frames the consent page: the browser refuses to render it.
    const pageErrorsBefore = report.consoleErrors.length;
    await step("consent-03-framed", page, async () => {
      await page.goto(`${attackerOrigin}/frame.html`);
      const frame = page.frames().find((f) => f !== page.mainFrame());
      assert.ok(frame, "the iframe exists");
      await page.waitForTimeout(500);
      const form = await frame.$('input[name="api_key"]').catch(() => null);
      report.framedFormVisible = form !== null;
      report.framedUrl = frame.url();
    });
    // Chromium reports the refused frame on the console; that is the expected outcome here.
    report.frameRefusals = report.consoleErrors.splice(pageErrorsBefore).filter((l) => /frame-ancestors/.test(l));

    // Another site posts a forged approval: refused, and nothing reaches the client.
    await step("consent-04-forged", page, async () => {
      const answer = page.waitForResponse((r) => r.url().startsWith(`${base}/oauth/authorize`) && r.request().method() === "POST");
      await page.goto(`${attackerOrigin}/forge.html`);
      const response = await answer;
      report.forgedStatus = response.status();
      await page.waitForLoadState();
    });
    // A refused post's error page may log a failed resource load; keep only unexpected lines.
    report.consoleErrors = report.consoleErrors.filter((l) => !/status of 403/.test(l));
    report.callbacksAfterForgery = report.callbacks.length;
    report.ok = true;
  } finally {
    await context.close();
    client.close();
    attacker.close();
  }
}

main()
  .then(() => {
    console.log(JSON.stringify(report));
  })
  .catch((error) => {
    console.error(error);
    report.ok = false;
    report.error = String(error?.stack || error);
    console.log(JSON.stringify(report));
    process.exit(1);
  });
