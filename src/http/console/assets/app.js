// The web console: log in with a Dust API key, chat with agents (answers stream in), search
// knowledge bases, review and revoke your tokens, read the audit log (with `admin:audit`).
//
// Plain DOM, no framework, no build step. Everything the server sends is written with
// `textContent` or attributes, never parsed as HTML, so the page also runs under Trusted Types;
// an agent's final answer is Markdown, built into elements by markdown.js (still no HTML).

import { ApiError, currentSession, json, login, logout, request, setSessionLostHandler } from "./api.js";
import { renderAnswer } from "./markdown.js";
import { readEvents } from "./sse.js";

const VIEWS = ["login", "agents", "knowledge", "tokens", "audit"];
const state = { user: null, agent: null, conversationId: null, streaming: null, knowledgeBases: null };

const $ = (id) => document.getElementById(id);

/** A new element with text children and properties (`className`, `textContent`, attributes). */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "className" || key === "textContent" || key === "type") node[key] = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) node.append(child);
  return node;
}

function describe(error) {
  if (error instanceof ApiError) return error.describe();
  return error && error.message ? error.message : String(error);
}

function showError(error) {
  $("notice").hidden = true;
  $("error").textContent = describe(error);
  $("error").hidden = false;
}

function showNotice(text) {
  $("error").hidden = true;
  $("notice").textContent = text;
  $("notice").hidden = false;
}

function clearMessages() {
  $("error").hidden = true;
  $("notice").hidden = true;
}

function workspacePath(rest) {
  return `/api/v1/workspaces/${encodeURIComponent(state.user.workspaceId)}${rest}`;
}

function canAudit() {
  return Boolean(state.user && (state.user.permissions || []).includes("admin:audit"));
}

function formatTime(value) {
  if (!value) return "";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
}

// ---- views and navigation ------------------------------------------------------------------

function currentView() {
  if (!state.user) return "login";
  const wanted = location.hash.slice(1);
  if (wanted === "audit" && !canAudit()) return "agents";
  return VIEWS.includes(wanted) && wanted !== "login" ? wanted : "agents";
}

async function route({ focus = true } = {}) {
  const view = currentView();
  for (const name of VIEWS) $(`view-${name}`).hidden = name !== view;
  for (const link of document.querySelectorAll("#nav a[data-view]")) {
    if (link.dataset.view === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (focus) {
    const target = view === "login" ? $("login-key") : $(`${view}-title`);
    if (target !== $("login-key")) target.setAttribute("tabindex", "-1");
    target.focus();
  }
  try {
    if (view === "agents") await loadAgents();
    else if (view === "knowledge") await loadKnowledgeBases();
    else if (view === "tokens") {
      await loadTokens();
      await loadGrants();
    }
    else if (view === "audit") await loadAudit();
  } catch (error) {
    if (state.user) showError(error);
  }
}

function signedIn(user) {
  state.user = user;
  state.knowledgeBases = null;
  $("who").textContent = `${user.username || user.id} · ${user.workspaceId}`;
  $("nav-audit").hidden = !canAudit();
  $("nav").hidden = false;
}

function signedOut(message, isError) {
  if (state.streaming) state.streaming.abort();
  state.user = null;
  state.agent = null;
  state.conversationId = null;
  state.knowledgeBases = null;
  $("nav").hidden = true;
  $("who").textContent = "";
  $("chat").hidden = true;
  $("chat-log").replaceChildren();
  $("agent-list").replaceChildren();
  $("search-results").replaceChildren();
  $("search-summary").textContent = "";
  $("token-rows").replaceChildren();
  $("audit-rows").replaceChildren();
  history.replaceState(null, "", location.pathname);
  route();
  if (isError) showError(new Error(message));
  else showNotice(message);
}

// ---- login and logout ----------------------------------------------------------------------

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  clearMessages();
  const button = event.submitter || $("login-form").querySelector("button");
  button.disabled = true;
  try {
    const session = await login($("login-key").value, $("login-workspace").value.trim());
    $("login-key").value = "";
    signedIn(session.user);
    if (location.hash !== "#agents") location.hash = "#agents";
    else await route();
  } catch (error) {
    showError(error);
    $("login-key").focus();
  } finally {
    button.disabled = false;
  }
});

$("logout").addEventListener("click", async () => {
  clearMessages();
  try {
    await logout();
    signedOut("You are logged out.", false);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) signedOut("You are logged out.", false);
    else showError(error);
  }
});

setSessionLostHandler(() => signedOut("Your session has ended. Log in again.", true));

// ---- agents and chat -----------------------------------------------------------------------

async function loadAgents() {
  const query = $("agent-query").value.trim();
  const suffix = query ? `?query=${encodeURIComponent(query)}` : "";
  const { agents } = await json("GET", workspacePath(`/agents${suffix}`));
  const items = agents.map((agent) => {
    const button = el("button", { type: "button", className: "pick", "aria-pressed": String(state.agent?.id === agent.id) },
      el("strong", { textContent: agent.name }), el("span", { className: "hint", textContent: agent.description || "" }));
    button.dataset.agentId = agent.id;
    button.addEventListener("click", () => selectAgent(agent));
    return el("li", {}, button);
  });
  $("agent-list").replaceChildren(...(items.length ? items : [el("li", { className: "hint", textContent: "No agents match." })]));
}

$("agent-filter").addEventListener("submit", (event) => {
  event.preventDefault();
  clearMessages();
  loadAgents().catch(showError);
});

function selectAgent(agent) {
  if (state.streaming) state.streaming.abort();
  state.agent = agent;
  state.conversationId = null;
  for (const button of document.querySelectorAll("#agent-list button[data-agent-id]")) {
    button.setAttribute("aria-pressed", String(button.dataset.agentId === agent.id));
  }
  $("chat-title").textContent = `Chat with ${agent.name}`;
  $("chat-description").textContent = agent.description || "";
  $("chat-log").replaceChildren();
  $("chat").hidden = false;
  $("chat-message").focus();
}

$("chat-new").addEventListener("click", () => {
  if (state.agent) selectAgent(state.agent);
});

// Files to attach to the next message: read when it is sent, sent in base64 with it. The
// server checks type and size (and says what is wrong); the sizes are checked here too, so a
// huge file is never read into the page for nothing.
const MAX_ATTACHMENTS = 10;
const MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024;

function attachedFiles() {
  return [...$("chat-files").files];
}

function showAttachments() {
  const list = $("chat-attachments");
  list.replaceChildren(...attachedFiles().map((file) => el("li", { textContent: `${file.name} (${formatSize(file.size)})` })));
}

function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

function base64Of(buffer) {
  const bytes = new Uint8Array(buffer);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

// Browsers leave `type` empty for files they do not know (Markdown, YAML, code on many
// systems): the extension says it then, as Dust's own upload page reads it.
const TYPES_BY_EXTENSION = {
  md: "text/markdown", markdown: "text/markdown", txt: "text/plain", log: "text/plain", csv: "text/csv",
  tsv: "text/tsv", json: "application/json", yaml: "text/yaml", yml: "text/yaml", xml: "text/xml",
  html: "text/html", htm: "text/html", py: "text/x-python", rs: "text/x-rust", go: "text/x-go",
  ts: "text/typescript", js: "text/javascript", sql: "text/x-sql", sh: "text/x-sh", eml: "message/rfc822",
};

function typeOf(file) {
  if (file.type) return file.type;
  const extension = file.name.includes(".") ? file.name.split(".").pop().toLowerCase() : "";
  return TYPES_BY_EXTENSION[extension] || "application/octet-stream";
}

async function readAttachments(files) {
  if (files.length > MAX_ATTACHMENTS) throw new Error(`Attach at most ${MAX_ATTACHMENTS} files.`);
  const total = files.reduce((sum, file) => sum + file.size, 0);
  if (total > MAX_ATTACHMENT_BYTES) throw new Error(`The attached files hold ${formatSize(total)}; at most 5 MiB in all can be sent.`);
  return Promise.all(files.map(async (file) => ({
    title: file.name,
    contentType: typeOf(file),
    data: base64Of(await file.arrayBuffer()),
  })));
}

$("chat-files").addEventListener("change", showAttachments);

$("chat-stop").addEventListener("click", () => {
  if (state.streaming) state.streaming.abort();
});

$("chat-message").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    $("chat-form").requestSubmit();
  }
});

$("chat-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const message = $("chat-message").value;
  if (!state.agent || !message.trim() || state.streaming) return;
  clearMessages();
  const files = attachedFiles();
  let attachments;
  try {
    attachments = await readAttachments(files);
  } catch (error) {
    showError(error);
    return;
  }
  $("chat-message").value = "";
  $("chat-files").value = "";
  showAttachments();
  const log = $("chat-log");
  const sent = files.length
    ? el("ul", { className: "attachments", "aria-label": "Attached files" }, ...files.map((file) => el("li", { textContent: file.name })))
    : "";
  log.append(el("li", { className: "user" }, el("span", { className: "who", textContent: "You" }), el("p", { textContent: message }), sent));
  // Plain text while it streams; Markdown once the final answer is in (`finish`).
  const answer = el("div", { className: "answer" });
  const item = el("li", { className: "agent streaming" }, el("span", { className: "who", textContent: state.agent.name }), answer);
  log.append(item);
  log.setAttribute("aria-busy", "true");
  const controller = new AbortController();
  state.streaming = controller;
  $("chat-send").disabled = true;
  $("chat-stop").hidden = false;
  let completed = false;
  try {
    const body = { message };
    if (state.conversationId) body.conversationId = state.conversationId;
    if (attachments.length) body.attachments = attachments;
    const response = await request("POST", workspacePath(`/agents/${encodeURIComponent(state.agent.id)}/execute`), {
      body, accept: "text/event-stream", signal: controller.signal,
    });
    if ((response.headers.get("content-type") || "").startsWith("application/json")) {
      finish(await response.json());
    } else {
      let failure = null;
      await readEvents(response, (name, data) => {
        if (name === "token") answer.textContent += data.text;
        else if (name === "approval_required") item.append(approvalCard(data));
        else if (name === "question_required") item.append(questionCard(data));
        else if (name === "auth_required") item.append(signInCard(data));
        else if (name === "done") finish(data);
        else if (name === "error") failure = new ApiError(0, data.error?.code || "error", data.error?.message || "the agent failed");
      });
      if (failure) throw failure;
    }
  } catch (error) {
    if (error.name === "AbortError") {
      item.append(el("p", { className: "hint", textContent: "Stopped." }));
    } else {
      item.classList.add("failed");
      item.append(el("p", { className: "error-inline", textContent: describe(error) }));
      showError(error);
    }
  } finally {
    item.classList.remove("streaming");
    // "done" only once the response has ended, so that nothing is left to abort.
    if (completed) item.classList.add("done");
    log.setAttribute("aria-busy", "false");
    state.streaming = null;
    $("chat-send").disabled = false;
    $("chat-stop").hidden = true;
    $("chat-message").focus();
  }

  function finish(result) {
    answer.replaceChildren(renderAnswer(result.answer, result.citations));
    answer.classList.add("markdown");
    completed = true;
    state.conversationId = result.conversationId || state.conversationId;
  }
});

// An agent wants to run a tool that needs a person's approval: who, what, with which inputs
// (masked by the server; shown as text, never as HTML), and three answers. The stream goes on
// once Dust has the decision.
function approvalCard(request) {
  const buttons = [
    ["approve", "Allow", ""],
    ["always", "Always allow", ""],
    ["reject", "Reject", "danger"],
  ].map(([decision, label, className]) => el("button", { type: "button", className, "data-decision": decision, textContent: label }));
  const status = el("p", { className: "hint", role: "status" });
  const card = el("section", { className: "approval", "aria-label": `Approval for ${request.tool}` },
    el("p", { textContent: `${request.agent} wants to run ${request.tool} (${request.server})${request.stake ? `, stake ${request.stake}` : ""}. Allow it?` }),
    el("pre", { className: "inputs", textContent: JSON.stringify(request.inputs, null, 2) }),
    el("p", { className: "actions" }, ...buttons),
    status);
  for (const button of buttons) {
    button.addEventListener("click", async () => {
      for (const b of buttons) b.disabled = true;
      try {
        await replyTo(request, { decision: button.dataset.decision });
        status.textContent = button.dataset.decision === "reject" ? "Rejected." : "Allowed.";
      } catch (error) {
        for (const b of buttons) b.disabled = false;
        status.textContent = describe(error);
      }
    });
  }
  return card;
}

/** Posts `reply` to the action route of `request` (an approval's decision, a question's answer). */
function replyTo(request, reply) {
  const path = `/conversations/${encodeURIComponent(request.conversationId)}/actions/${encodeURIComponent(request.actionId)}`;
  return json("POST", workspacePath(path), reply);
}

// An agent asks the person a question: its options as buttons, and a free-text answer. The
// question and the labels come from the agent: shown as text, never as HTML. The stream goes on
// once Dust has the answer.
function questionCard(request) {
  const options = (request.options || []).map((label) =>
    el("button", { type: "button", className: "option", textContent: label }));
  const own = el("input", { type: "text", id: `answer-${request.actionId}`, autocomplete: "off" });
  const send = el("button", { type: "submit", textContent: "Send answer" });
  const form = el("form", { className: "own-answer" },
    el("label", { for: own.id, textContent: "Or your own answer" }), own, send);
  const status = el("p", { className: "hint", role: "status" });
  const controls = [...options, own, send];
  const card = el("section", { className: "approval question", "aria-label": `Question from ${request.agent}` },
    el("p", { textContent: `${request.agent} asks: ${request.question}` }),
    options.length ? el("p", { className: "actions" }, ...options) : "",
    form,
    status);
  const answer = async (reply, said) => {
    for (const control of controls) control.disabled = true;
    try {
      await replyTo(request, reply);
      status.textContent = `Answered: ${said}`;
    } catch (error) {
      for (const control of controls) control.disabled = false;
      status.textContent = describe(error);
    }
  };
  for (const button of options) {
    button.addEventListener("click", () => answer({ choice: button.textContent }, button.textContent));
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (own.value.trim()) answer({ answer: own.value }, own.value);
  });
  return card;
}

// A tool the agent uses needs the person to connect their account in Dust: a link to the
// conversation there (an http(s) URL only, opened in a new tab without access to this page).
// Nothing to post: the run goes on by itself once they have connected.
function signInCard(request) {
  let link;
  try {
    const url = new URL(request.url);
    if (url.protocol === "https:" || url.protocol === "http:") {
      link = el("a", { href: url.href, target: "_blank", rel: "noopener noreferrer", className: "connect", textContent: "Connect in Dust" });
    }
  } catch {
    // not a URL: no link
  }
  return el("section", { className: "approval sign-in", "aria-label": `Sign-in for ${request.tool}` },
    el("p", { textContent: `${request.agent} needs you to connect ${request.tool} (${request.server}) in Dust.` }),
    el("p", { className: "actions" }, link || el("span", { textContent: "Open this conversation in Dust to connect it." })),
    el("p", { className: "hint", textContent: "The agent continues by itself once you have connected; keep this chat open." }));
}

// ---- knowledge search ----------------------------------------------------------------------

async function loadKnowledgeBases() {
  if (state.knowledgeBases) return;
  const { knowledgeBases } = await json("GET", workspacePath("/knowledge-bases"));
  state.knowledgeBases = knowledgeBases;
  $("kb-select").replaceChildren(...knowledgeBases.map((kb) =>
    el("option", { value: kb.id, textContent: kb.spaceName || kb.spaceId ? `${kb.name} (${kb.spaceName || kb.spaceId})` : kb.name })));
}

/** A link only for http(s) sources: a `javascript:` or `data:` URL from upstream stays text. */
function sourceLink(url) {
  try {
    const parsed = new URL(url);
    if (parsed.protocol === "https:" || parsed.protocol === "http:") {
      return el("a", { href: parsed.href, rel: "noopener noreferrer", target: "_blank", className: "source", textContent: parsed.href });
    }
  } catch {
    // not a URL: shown as text below
  }
  return el("span", { className: "source", textContent: url });
}

$("search-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  clearMessages();
  const kb = $("kb-select").value;
  const query = $("search-query").value.trim();
  const topK = Number.parseInt($("search-topk").value, 10) || 5;
  const name = $("kb-select").selectedOptions[0]?.textContent || kb;
  $("search-summary").textContent = "Searching…";
  $("search-results").replaceChildren();
  try {
    const { results } = await json("POST", workspacePath(`/knowledge-bases/${encodeURIComponent(kb)}/search`), { query, topK });
    $("search-summary").textContent = `${results.length} result${results.length === 1 ? "" : "s"} for “${query}” in ${name}.`;
    $("search-results").replaceChildren(...results.map((result) => {
      const text = (result.text || "").length > 600 ? `${result.text.slice(0, 600)}…` : result.text || "";
      return el("li", { className: "result" },
        el("h3", { textContent: result.title || result.documentId }),
        el("p", { className: "meta" },
          el("span", { className: "score", textContent: `score ${Number(result.score).toFixed(3)}` }),
          result.sourceUrl ? sourceLink(result.sourceUrl) : el("span", { className: "source", textContent: result.documentId })),
        el("p", { className: "excerpt", textContent: text }));
    }));
  } catch (error) {
    $("search-summary").textContent = "";
    showError(error);
  }
});

// ---- my tokens -----------------------------------------------------------------------------

async function loadTokens() {
  const { tokens } = await json("GET", "/api/v1/auth/tokens");
  $("token-rows").replaceChildren(...tokens.map((token) => {
    const stateText = token.revokedAt ? `revoked ${formatTime(token.revokedAt)}` : token.current ? "active (this session)" : "active";
    let action = "";
    if (!token.revokedAt) {
      const button = el("button", {
        type: "button",
        className: token.current ? "danger" : "",
        "aria-label": `Revoke token ${token.tokenId}${token.current ? " (logs you out)" : ""}`,
        textContent: token.current ? "Revoke and log out" : "Revoke",
      });
      button.addEventListener("click", () => revoke(token, button));
      action = button;
    }
    const row = el("tr", {},
      el("td", {}, el("code", { textContent: token.tokenId })),
      el("td", { textContent: formatTime(token.createdAt) }),
      el("td", { textContent: formatTime(token.expiresAt) }),
      el("td", { className: "perms", textContent: (token.permissions || []).join(", ") }),
      el("td", { className: "state", textContent: stateText }),
      el("td", {}, action));
    row.dataset.tokenId = token.tokenId;
    if (token.revokedAt) row.classList.add("revoked");
    return row;
  }));
}

async function loadGrants() {
  const { grants } = await json("GET", "/api/v1/auth/grants");
  const rows = grants.map((grant) => {
    const name = grant.clientName || grant.clientId;
    const button = el("button", {
      type: "button",
      className: "danger",
      "aria-label": `Disconnect ${name}`,
      textContent: "Disconnect",
    });
    button.addEventListener("click", () => disconnect(grant, name, button));
    const row = el("tr", {},
      el("td", { textContent: name }),
      el("td", { textContent: formatTime(grant.createdAt) }),
      el("td", { textContent: formatTime(grant.lastUsedAt) }),
      el("td", { textContent: formatTime(grant.expiresAt) }),
      el("td", { className: "perms", textContent: grant.permissions.join(", ") }),
      el("td", {}, button));
    row.dataset.grantId = grant.grantId;
    return row;
  });
  if (rows.length === 0) {
    rows.push(el("tr", {}, el("td", { colSpan: 6, className: "hint", textContent: "No connected apps." })));
  }
  $("grant-rows").replaceChildren(...rows);
}

async function disconnect(grant, name, button) {
  clearMessages();
  button.disabled = true;
  try {
    await json("DELETE", `/api/v1/auth/grants/${encodeURIComponent(grant.grantId)}`);
    await loadTokens();
    await loadGrants();
    showNotice(`${name} disconnected.`);
  } catch (error) {
    button.disabled = false;
    showError(error);
  }
}

async function revoke(token, button) {
  clearMessages();
  button.disabled = true;
  try {
    await json("DELETE", `/api/v1/auth/tokens/${encodeURIComponent(token.tokenId)}`);
    if (token.current) {
      signedOut("Your session's token was revoked; you are logged out.", false);
      return;
    }
    await loadTokens();
    showNotice(`Token ${token.tokenId} revoked.`);
  } catch (error) {
    button.disabled = false;
    showError(error);
  }
}

// ---- audit ---------------------------------------------------------------------------------

async function loadAudit() {
  const params = new URLSearchParams({ limit: $("audit-limit").value || "50" });
  const type = $("audit-type").value.trim();
  if (type) params.set("eventType", type);
  const { events } = await json("GET", `/api/v1/audit?${params}`);
  $("audit-rows").replaceChildren(...events.map((event) => el("tr", { className: `sev-${event.severity}` },
    el("td", { textContent: formatTime(event.timestamp) }),
    el("td", {}, el("code", { textContent: event.event_type })),
    el("td", { textContent: event.severity || "" }),
    el("td", { textContent: event.username || event.user_id || "" }),
    el("td", { textContent: event.result || "" }),
    el("td", { textContent: event.message || "" }))));
}

$("audit-form").addEventListener("submit", (event) => {
  event.preventDefault();
  clearMessages();
  loadAudit().catch(showError);
});

// ---- start ---------------------------------------------------------------------------------

window.addEventListener("hashchange", () => {
  clearMessages();
  route();
});

try {
  const session = await currentSession();
  if (session) signedIn(session.user);
} catch (error) {
  showError(error);
}
await route({ focus: false });
document.documentElement.dataset.ready = "true";
