// The console's one way to talk to the server: same-origin fetch with the session cookie,
// the CSRF token on unsafe methods, and the server's error envelope turned into an ApiError.
//
// The CSRF token lives only in this module's memory (never in storage); the session itself is
// an HttpOnly cookie this script cannot read. No bearer token ever reaches the page.

const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);

let csrfToken = null;
let onSessionLost = () => {};

/** An error the server answered with its envelope `{"error": {code, message, requestId}}`. */
export class ApiError extends Error {
  constructor(status, code, message, requestId) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.requestId = requestId;
  }

  /** One line for the page: the server's own message, its code, and the id to quote. */
  describe() {
    const id = this.requestId ? ` (request ${this.requestId})` : "";
    return `${this.message} [${this.code}]${id}`;
  }
}

/** Called when the server says the session is gone (401), so the page can show the login. */
export function setSessionLostHandler(handler) {
  onSessionLost = handler;
}

/** Keeps the CSRF token from a login or session answer; `null` forgets it. */
export function setCsrfToken(token) {
  csrfToken = token;
}

async function toApiError(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON (a proxy's page, a cut connection): fall back to the status line.
  }
  const error = body && body.error;
  if (error && typeof error.message === "string") {
    return new ApiError(response.status, error.code || "error", error.message, error.requestId);
  }
  return new ApiError(response.status, "http_" + response.status, response.statusText || "request failed");
}

async function send(method, path, body, accept, signal) {
  const headers = { Accept: accept };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (UNSAFE.has(method) && csrfToken) headers["X-XSRF-TOKEN"] = csrfToken;
  try {
    return await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
      redirect: "error",
      signal,
    });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, "network_error", "the server could not be reached");
  }
}

/**
 * One request; resolves to the response when it is 2xx. A 403 `csrf_failed` (the token expired)
 * is retried once after fetching a fresh token; a 401 reports the session lost.
 */
export async function request(method, path, { body, accept = "application/json", signal, authFailureIsSessionLoss = true } = {}) {
  let response = await send(method, path, body, accept, signal);
  if (response.status === 403 && UNSAFE.has(method)) {
    const error = await toApiError(response.clone());
    if (error.code === "csrf_failed" && (await refreshSession())) {
      response = await send(method, path, body, accept, signal);
    }
  }
  if (response.ok) return response;
  const error = await toApiError(response);
  if (response.status === 401 && authFailureIsSessionLoss) {
    csrfToken = null;
    onSessionLost(error);
  }
  throw error;
}

/** A JSON request; resolves to the parsed body (or `null` for 204). */
export async function json(method, path, body) {
  const response = await request(method, path, { body });
  if (response.status === 204) return null;
  return response.json();
}

/** The name of the readable CSRF cookie (production uses the `__Host-` prefix). */
function hasCsrfCookie() {
  return document.cookie
    .split(";")
    .map((c) => c.trim().split("=")[0])
    .some((name) => name === "XSRF-TOKEN" || name === "__Host-XSRF-TOKEN");
}

/**
 * The current session (`{user, csrfToken, expiresAt}`), or `null` without one. Without the
 * readable CSRF cookie there is no session to ask about, so no request is made.
 */
export async function currentSession() {
  if (!hasCsrfCookie()) return null;
  try {
    const response = await request("GET", "/api/v1/auth/session", { authFailureIsSessionLoss: false });
    const session = await response.json();
    csrfToken = session.csrfToken;
    return session;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return null;
    throw e;
  }
}

async function refreshSession() {
  try {
    return (await currentSession()) !== null;
  } catch {
    return false;
  }
}

/** Logs in with a Dust API key; the answer sets the cookies and carries the CSRF token. */
export async function login(apiKey, workspaceId) {
  const response = await request("POST", "/api/v1/auth/login", {
    body: { apiKey, workspaceId, session: true },
    authFailureIsSessionLoss: false,
  });
  const session = await response.json();
  csrfToken = session.csrfToken;
  return session;
}

/** Ends the session on the server (token revoked, cookies cleared). */
export async function logout() {
  try {
    await request("POST", "/api/v1/auth/logout", { authFailureIsSessionLoss: false });
  } finally {
    csrfToken = null;
  }
}
