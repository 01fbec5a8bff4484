// Drives Debian's Chromium (headless, fresh profile) through the web console, for
// tests/all/browser.rs. Every step is asserted here and screenshotted; the last stdout line is a
// JSON report the Rust test checks against the server's own state (cookie refused after
// logout, token revoked, audit records). Exit code 0 only if every step passed.
//
// Environment: CONSOLE_URL, API_KEY, WORKSPACE_ID, CHROMIUM, USER_DATA_DIR, ARTIFACTS.

import http from "node:http";
import path from "node:path";
import { mkdirSync } from "node:fs";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const consoleUrl = new URL(env("CONSOLE_URL"));
const artifacts = env("ARTIFACTS");
mkdirSync(artifacts, { recursive: true });

const FLAGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
];
const STEP_TIMEOUT = 20_000;

const report = { steps: [], consoleErrors: [], cspViolations: [], pageErrors: [], failedRequests: [], dialogs: [] };
const log = (...parts) => console.error("[browser]", ...parts);

// ---- the attacker: a page on another loopback origin that posts forms to the server ---------

function attackerServer() {
  const target = consoleUrl.origin;
  const pages = {
    // A classic logout CSRF: a top-level cross-site POST (the session cookie is SameSite=Lax).
    "/logout.html": `<form id="f" method="post" action="${target}/api/v1/auth/logout"></form>`,
    // JSON smuggled in a text/plain form body, the usual trick against JSON login endpoints.
    "/login.html": `<form id="f" method="post" enctype="text/plain" action="${target}/api/v1/auth/login">` +
      `<input type="hidden" name='{"apiKey":"${env("API_KEY")}","workspaceId":"${env("WORKSPACE_ID")}","session":true,"x":"' value='"}'></form>`,
  };
  const server = http.createServer((req, res) => {
    const form = pages[req.url];
    if (!form) { res.writeHead(404).end(); return; }
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
    res.end(`<!doctype html><title>elsewhere</title>${form}<script>document.getElementById("f").submit()</script>`);
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.2", () => resolve(server)));
}

async function crossSitePost(context, origin, page) {
  const tab = await context.newPage();
  const answer = tab.waitForResponse((r) => r.url().startsWith(consoleUrl.origin) && r.request().method() === "POST", { timeout: STEP_TIMEOUT });
  await tab.goto(`${origin}${page}`);
  const response = await answer;
  const result = { status: response.status(), body: await response.text().catch(() => "") };
  await tab.screenshot({ path: path.join(artifacts, `08-cross-site-${page.slice(1, -5)}.png`) });
  await tab.close();
  return result;
}

// ---- the console ---------------------------------------------------------------------------

async function step(name, page, body) {
  log(name);
  await body();
  await page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });
  report.steps.push(name);
}

function sessionCookie(cookies) {
  return cookies.find((c) => c.name === "mcp.sid" || c.name === "__Host-mcp.sid");
}

async function main() {
  const attacker = await attackerServer();
  const attackerOrigin = `http://127.0.0.2:${attacker.address().port}`;
  const context = await chromium.launchPersistentContext(env("USER_DATA_DIR"), {
    executablePath: env("CHROMIUM"),
    headless: true,
    args: FLAGS,
    viewport: { width: 1200, height: 900 },
  });
  try {
    // CSP and Trusted Types violations, reported from the page itself (an init script runs
    // through the DevTools protocol, so the page's CSP does not apply to it).
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
    // An alert, confirm or prompt would mean an answer ran script (05e): record and dismiss.
    page.on("dialog", async (dialog) => {
      report.dialogs.push(`${dialog.type()}: ${dialog.message()}`);
      await dialog.dismiss().catch(() => {});
    });
    report.abortedAfterAnswer = [];
    page.on("requestfailed", async (request) => {
      const line = `${request.method()} ${request.url()}: ${request.failure()?.errorText}`;
      // Seen once in a loaded full run: Chromium reported an answered execute stream (200,
      // answer rendered and marked done) as ERR_ABORTED afterwards. Such a stream is recorded
      // apart; any request that failed before an answer, or with another error, is a failure.
      const response = await request.response().catch(() => null);
      if (request.failure()?.errorText === "net::ERR_ABORTED" && response?.status() === 200
          && /\/execute$/.test(new URL(request.url()).pathname)) {
        report.abortedAfterAnswer.push(line);
      } else {
        report.failedRequests.push(line);
      }
    });

    await step("01-login", page, async () => {
      const response = await page.goto(consoleUrl.href);
      assert.equal(response.status(), 200);
      assert.match(response.headers()["content-security-policy"], /script-src 'self'/);
      await page.locator("html[data-ready]").waitFor({ state: "attached" });
      await page.getByLabel("Dust API key").waitFor();
      assert.equal(await page.locator("#nav").isHidden(), true, "navigation before login");
    });

    await step("02-agents", page, async () => {
      await page.getByLabel("Dust API key").fill(env("API_KEY"));
      await page.getByLabel("Workspace id").fill(env("WORKSPACE_ID"));
      await page.getByRole("button", { name: "Log in" }).click();
      await page.locator('#agent-list button[data-agent-id="ech0Ag3ntX"]').waitFor();
      assert.equal(await page.getByLabel("Dust API key").inputValue(), "", "the key stays in the form");
      const cookies = await context.cookies(consoleUrl.origin);
      const sid = sessionCookie(cookies);
      assert.ok(sid, "no session cookie after login");
      assert.equal(sid.httpOnly, true, "session cookie readable by scripts");
      report.sessionCookie = { name: sid.name, value: sid.value };
      // Nothing the page keeps holds a bearer token.
      const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
      assert.doesNotMatch(stored, /eyJ/, "a token in web storage");
    });

    const ask = async (agentId, message) => {
      await page.locator(`#agent-list button[data-agent-id="${agentId}"]`).click();
      await page.evaluate(() => {
        window.__answerLengths = [];
        new MutationObserver(() => {
          const answer = document.querySelector("#chat-log li.agent.streaming .answer");
          if (answer) window.__answerLengths.push(answer.textContent.length);
        }).observe(document.getElementById("chat-log"), { subtree: true, childList: true, characterData: true });
      });
      await page.getByLabel("Message").fill(message);
      await page.getByRole("button", { name: "Send", exact: true }).click();
    };
    const finalAnswer = async (timeout) => {
      const done = page.locator("#chat-log li.agent.done .answer").last();
      await done.waitFor({ timeout });
      return done.textContent();
    };

    await step("03-echo", page, async () => {
      await ask("ech0Ag3ntX", "hello from the browser");
      report.echoAnswer = await finalAnswer(STEP_TIMEOUT);
      assert.equal(report.echoAnswer, "You said: hello from the browser");
    });

    await step("04-slow-streaming", page, async () => {
      await ask("sl0wAg3ntX", "are you there?");
      // Part of the answer is on screen while the rest is still coming.
      await page.waitForFunction(() => {
        const answer = document.querySelector("#chat-log li.agent.streaming .answer");
        return answer && answer.textContent.split(" ").length >= 3;
      });
      assert.equal(await page.locator("#chat-log").getAttribute("aria-live"), "polite");
      assert.equal(await page.locator("#chat-log").getAttribute("aria-busy"), "true");
    });

    await step("05-slow-done", page, async () => {
      report.slowAnswer = await finalAnswer(60_000);
      report.slowUpdates = new Set(await page.evaluate(() => window.__answerLengths)).size;
      assert.match(report.slowAnswer, /^I am answering very slowly.*You asked: are you there\?$/s);
      assert.ok(report.slowUpdates > 1, `the answer arrived in ${report.slowUpdates} update(s)`);
      assert.equal(await page.locator("#chat-log").getAttribute("aria-busy"), "false");
    });

    await step("05b-approval-card", page, async () => {
      await ask("appr0valAg", "tell the CEO we shipped");
      const card = page.locator("#chat-log section.approval");
      await card.waitFor({ timeout: STEP_TIMEOUT });
      const text = await card.textContent();
      assert.match(text, /Mailer wants to run send_email \(Gmail\)/);
      assert.match(text, /ceo@example\.com/);
      // The screenshot of this step shows the card before the decision.
      await page.screenshot({ path: path.join(artifacts, "05b-approval-card-open.png"), fullPage: true });
      await card.getByRole("button", { name: "Allow", exact: true }).click();
      report.approvalAnswer = await finalAnswer(STEP_TIMEOUT);
      assert.equal(report.approvalAnswer, "I sent your message to ceo@example.com.");
    });

    await step("05c-question-card", page, async () => {
      await ask("qu3stionAg", "book a meeting room");
      const card = page.locator("#chat-log section.question");
      await card.waitFor({ timeout: STEP_TIMEOUT });
      assert.match(await card.textContent(), /Planner asks: Which office should I book the meeting room in\?/);
      assert.deepEqual(await card.locator("p.actions button").allTextContents(), ["Paris", "Berlin"]);
      await card.getByLabel("Or your own answer").waitFor();
      // The screenshot of this step shows the card before the answer.
      await page.screenshot({ path: path.join(artifacts, "05c-question-card-open.png"), fullPage: true });
      await card.getByRole("button", { name: "Paris", exact: true }).click();
      report.questionAnswer = await finalAnswer(STEP_TIMEOUT);
      assert.equal(report.questionAnswer, "I booked a meeting room in Paris.");
      await card.getByRole("status").filter({ hasText: "Answered: Paris" }).waitFor();
    });

    await step("05d-sign-in-card", page, async () => {
      await ask("p3rsAuthAg", "list my files");
      const card = page.locator("#chat-log section.sign-in");
      await card.waitFor({ timeout: STEP_TIMEOUT });
      assert.match(await card.textContent(), /DriveReader needs you to connect list_files \(Google Drive\) in Dust/);
      assert.match(await card.textContent(), /continues by itself once you have connected/);
      const link = card.getByRole("link", { name: "Connect in Dust" });
      report.signInLink = {
        href: await link.getAttribute("href"),
        target: await link.getAttribute("target"),
        rel: await link.getAttribute("rel"),
      };
      assert.match(report.signInLink.href, /^http:\/\/127\.0\.0\.1:\d+\/w\/[^/]+\/conversation\/[A-Za-z0-9_-]+$/);
      assert.equal(report.signInLink.target, "_blank");
      assert.match(report.signInLink.rel, /\bnoopener\b/);
      await page.screenshot({ path: path.join(artifacts, "05d-sign-in-card-open.png"), fullPage: true });
      // Nobody connects in the simulator: stop the run (the server cancels it in Dust).
      await page.getByRole("button", { name: "Stop", exact: true }).click();
      await page.locator("#chat-log li.agent p.hint", { hasText: "Stopped." }).waitFor();
    });

    await step("05e-markdown", page, async () => {
      // The echo agent answers "You said: <message>" byte for byte: Markdown, a citation and
      // a hostile payload go through the same rendering as any agent's final answer.
      const message = [
        "**bold** and *slanted*, see :cite[k7q,zz9] and again :cite[k7q]",
        "- first item",
        "- second item",
        "",
        "[the docs](https://example.com/docs) [bad](javascript:alert(1)) [Bad](JaVaScRiPt:alert(2)) <javascript:alert(3)> [data](data:text/html,<script>alert(4)</script>)",
        "",
        "<script>alert(5)</script><img src=x onerror=alert(6)><a href=\"javascript:alert(7)\" onclick=\"alert(8)\">raw</a>",
        "",
        "![pic](https://example.com/x.png \"t\") <div onmouseover=\"alert(9)\">div</div>",
      ].join("\n");
      await ask("ech0Ag3ntX", message);
      await finalAnswer(STEP_TIMEOUT);
      const answer = page.locator("#chat-log li.agent.done .answer").last();
      const dom = await answer.evaluate((node) => ({
        strong: [...node.querySelectorAll("strong")].map((e) => e.textContent),
        em: [...node.querySelectorAll("em")].map((e) => e.textContent),
        items: [...node.querySelectorAll(":scope > ul > li")].map((e) => e.textContent),
        links: [...node.querySelectorAll("a")].map((a) => ({ href: a.getAttribute("href"), rel: a.rel, target: a.target, text: a.textContent })),
        citations: [...node.querySelectorAll("sup.citation")].map((e) => e.textContent),
        sources: [...node.querySelectorAll("ol.sources > li")].map((e) => e.textContent),
        text: node.textContent,
      }));
      report.markdown = dom;
      assert.deepEqual(dom.strong, ["bold"]);
      assert.deepEqual(dom.em, ["slanted"]);
      assert.deepEqual(dom.items, ["first item", "second item"]);
      // The one http(s) link; the javascript: and data: ones stay text.
      assert.deepEqual(dom.links, [{ href: "https://example.com/docs", rel: "noopener noreferrer", target: "_blank", text: "the docs" }]);
      assert.match(dom.text, /\[bad\]\(javascript:alert\(1\)\)/);
      // Citations are numbered by first use; the sources are listed under the answer.
      assert.deepEqual(dom.citations, ["[1]", "[2]", "[1]"]);
      assert.deepEqual(dom.sources, ["k7q", "zz9"]);
      assert.doesNotMatch(dom.text, /:cite\[/);
      // Raw HTML is shown as text: nothing in the conversation can run or load anything.
      assert.match(dom.text, /<script>alert\(5\)<\/script><img src=x onerror=alert\(6\)>/);
      const hostile = await page.locator("#chat-log").evaluate((log) => ({
        scripts: log.querySelectorAll("script").length,
        images: log.querySelectorAll("img, iframe, object, embed, svg, div:not(.answer)").length,
        handlers: [...log.querySelectorAll("*")].flatMap((e) => [...e.attributes].map((a) => a.name)).filter((n) => n.startsWith("on")),
        badLinks: [...log.querySelectorAll("[href]")].map((e) => e.getAttribute("href")).filter((h) => !/^(https?|mailto):/.test(h)),
      }));
      assert.deepEqual(hostile, { scripts: 0, images: 0, handlers: [], badLinks: [] });
      // The image became its alt text; hovering the would-be div does nothing.
      assert.match(dom.text, /pic/);
      await answer.hover();
      assert.deepEqual(report.dialogs, []);
    });

    await step("05f-citations", page, async () => {
      // The global agent cites the handbook page it read, the way Dust does (`:cite[ref]`).
      await ask("dust", "How many days of PTO do full-time employees accrue?");
      const text = await finalAnswer(STEP_TIMEOUT);
      assert.match(text, /^According to "PTO Policy": .*25 days.*\[1\]/s);
      assert.doesNotMatch(text, /:cite\[/);
      const answer = page.locator("#chat-log li.agent.done .answer").last();
      assert.deepEqual(await answer.locator("sup.citation").allTextContents(), ["[1]"]);
      // Linked to its source: the server's answer carries each cited ref's title and address.
      report.citationLinks = await answer.locator("sup.citation a, ol.sources a").evaluateAll((links) =>
        links.map((a) => ({ href: a.getAttribute("href"), rel: a.rel, target: a.target, text: a.textContent })));
      assert.ok(
        report.citationLinks.some((l) => l.href === "https://handbook.example.com/pto-policy"),
        JSON.stringify(report.citationLinks),
      );
      assert.ok(await answer.locator("ol.sources").textContent().then((t) => t.includes("PTO Policy")));
      for (const link of report.citationLinks) {
        assert.match(link.href, /^https?:\/\//);
        assert.equal(link.rel, "noopener noreferrer");
        assert.equal(link.target, "_blank");
      }
    });

    await step("05g-attachment", page, async () => {
      // A note and a PDF attached to a message: listed before sending, under the message once
      // sent, and read by the agent (the simulated agents say what they read).
      await page.locator('#agent-list button[data-agent-id="ech0Ag3ntX"]').click();
      await page.getByLabel("Attach files").setInputFiles([
        { name: "owners.txt", mimeType: "text/plain", buffer: Buffer.from("Budget owners: Ana and Bo\n") },
        { name: "Q3 report.pdf", mimeType: "application/pdf", buffer: Buffer.from("%PDF-1.4\n%%EOF\n") },
      ]);
      assert.deepEqual(await page.locator("#chat-attachments li").allTextContents(), ["owners.txt (26 B)", "Q3 report.pdf (15 B)"]);
      await page.getByLabel("Message").fill("who owns the budget?");
      await page.getByRole("button", { name: "Send", exact: true }).click();
      const text = await finalAnswer(STEP_TIMEOUT);
      assert.match(text, /^You said: who owns the budget\?/);
      assert.match(text, /"owners\.txt"/);
      assert.match(text, /"Q3 report\.pdf" \(application\/pdf/);
      assert.deepEqual(await page.locator("#chat-log li.user").last().locator(".attachments li").allTextContents(), ["owners.txt", "Q3 report.pdf"]);
      assert.equal(await page.locator("#chat-attachments li").count(), 0, "the list is cleared once sent");
      // A type Dust does not take is refused by the server with a clear message (the one 400
      // the browser logs as a console error, set apart as expected).
      const errorsBefore = report.consoleErrors.length;
      await page.getByLabel("Attach files").setInputFiles([{ name: "tool.exe", mimeType: "application/x-msdownload", buffer: Buffer.from("MZ") }]);
      await page.getByLabel("Message").fill("run this");
      await page.getByRole("button", { name: "Send", exact: true }).click();
      await page.locator("#chat-log li.agent.failed").last().waitFor({ timeout: STEP_TIMEOUT });
      assert.match(await page.locator("#error").textContent(), /Dust does not take files of type "application\/x-msdownload"/);
      report.expectedConsoleErrors = report.consoleErrors.splice(errorsBefore);
      assert.deepEqual(report.expectedConsoleErrors.map((e) => /status of 400/.test(e)), [true]);
    });

    await step("06-knowledge", page, async () => {
      await page.getByRole("link", { name: "Knowledge" }).click();
      const handbook = page.locator("#kb-select option", { hasText: "Employee Handbook" });
      await handbook.waitFor({ state: "attached" });
      await page.getByLabel("Knowledge base").selectOption(await handbook.getAttribute("value"));
      await page.getByLabel("Query").fill("how many days of paid time off");
      await page.getByRole("button", { name: "Search", exact: true }).click();
      await page.locator("#search-results li.result").first().waitFor();
      report.searchResults = await page.locator("#search-results li.result").evaluateAll((items) => items.map((li) => ({
        title: li.querySelector("h3")?.textContent,
        score: li.querySelector(".score")?.textContent,
        source: li.querySelector("a.source")?.getAttribute("href") || li.querySelector(".source")?.textContent,
      })));
      assert.ok(report.searchResults.length > 0);
      for (const result of report.searchResults) {
        assert.ok(result.title && result.score && result.source, JSON.stringify(result));
      }
    });

    await step("07-tokens", page, async () => {
      await page.getByRole("link", { name: "My tokens" }).click();
      const rows = page.locator("#token-rows tr");
      await rows.first().waitFor();
      // The other token (the test logged in once more with the same key): active, not this session.
      const other = rows.filter({ has: page.locator("td.state", { hasText: /^active$/ }) });
      assert.ok((await rows.count()) >= 2, "my tokens lists the session and the other token");
      const tokenId = await other.first().getAttribute("data-token-id");
      await other.first().getByRole("button").click();
      await page.locator(`#token-rows tr[data-token-id="${tokenId}"].revoked`).waitFor();
      await page.locator("#notice", { hasText: "revoked" }).waitFor();
      report.revokedTokenId = tokenId;
    });

    report.crossSite = {
      logout: await crossSitePost(context, attackerOrigin, "/logout.html"),
      login: await crossSitePost(context, attackerOrigin, "/login.html"),
    };
    await step("08-still-logged-in", page, async () => {
      await page.reload();
      await page.locator("html[data-ready]").waitFor({ state: "attached" });
      await page.locator("#nav").waitFor();
      report.sessionSurvivedCrossSite = true;
    });

    await step("09-logged-out", page, async () => {
      await page.getByRole("button", { name: "Log out" }).click();
      await page.getByLabel("Dust API key").waitFor();
      await page.locator("#notice", { hasText: "logged out" }).waitFor();
      assert.equal(await page.locator("#nav").isHidden(), true);
      assert.equal(sessionCookie(await context.cookies(consoleUrl.origin)), undefined, "cookie kept after logout");
    });
  } finally {
    await context.close();
    attacker.close();
  }
}

try {
  await main();
  report.ok = true;
} catch (error) {
  report.ok = false;
  report.error = String(error && error.stack ? error.stack : error);
}
process.stdout.write(`${JSON.stringify(report)}\n`);
process.exit(report.ok ? 0 : 1);
