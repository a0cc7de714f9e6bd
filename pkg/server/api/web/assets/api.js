// The v2m HTTP API (docs/api.md), as the page uses it. The token lives in sessionStorage: it
// goes to the server in the Authorization header only, never in a cookie.

const TOKEN_KEY = "v2m.session";

// ApiError is an answer of the API other than a success: status is the HTTP status (0 when
// the server could not be reached), code and message those of the API's error body.
export class ApiError extends Error {
  constructor(status, code, message, retryAfter = 0) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
  get network() {
    return this.status === 0;
  }
}

// networkError is the error for a request that got no answer.
export function networkError(cause) {
  const e = new ApiError(0, "unreachable", "Cannot reach the server: check your network connection.");
  e.cause = cause;
  return e;
}

// errorFrom reads an API error out of a response that is not ok.
export async function errorFrom(res) {
  let code = "error";
  let message = `The server answered ${res.status} ${res.statusText}`.trim();
  try {
    const body = await res.json();
    if (body && body.error && typeof body.error.message === "string") {
      code = body.error.code || code;
      message = body.error.message;
    }
  } catch {
    // not the API's JSON: keep the status line
  }
  const retry = Number.parseInt(res.headers.get("Retry-After") || "", 10);
  return new ApiError(res.status, code, message, Number.isFinite(retry) ? retry : 0);
}

// sleep waits ms milliseconds, or less when signal aborts.
export function sleep(ms, signal) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });
}

// basic encodes email:password for HTTP Basic as UTF-8, which btoa alone cannot.
function basic(email, password) {
  const bytes = new TextEncoder().encode(`${email}:${password}`);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return "Basic " + btoa(bin);
}

export class Api {
  constructor() {
    this.session = null; // {token, email, expires_at}
    this.onUnauthorized = () => {};
    try {
      const saved = JSON.parse(sessionStorage.getItem(TOKEN_KEY) || "null");
      if (saved && typeof saved.token === "string") this.session = saved;
    } catch {
      sessionStorage.removeItem(TOKEN_KEY);
    }
  }

  get loggedIn() {
    return this.session !== null;
  }

  forget() {
    this.session = null;
    sessionStorage.removeItem(TOKEN_KEY);
  }

  // fetch sends a request with the token and returns the response, whatever its status; it
  // throws an ApiError only when no answer came (network trouble) and rethrows an abort.
  async fetch(path, { method = "GET", headers = {}, body, signal, auth = true } = {}) {
    const h = new Headers(headers);
    if (auth && this.session) h.set("Authorization", "Bearer " + this.session.token);
    let res;
    try {
      res = await fetch(path, { method, headers: h, body, signal, credentials: "omit", cache: "no-store" });
    } catch (err) {
      if (signal && signal.aborted) throw err;
      throw networkError(err);
    }
    if (res.status === 401 && auth && this.session) {
      this.forget();
      this.onUnauthorized();
    }
    return res;
  }

  // json sends a request and returns the decoded JSON of a success (null for 204), or throws
  // the ApiError of a failure.
  async json(path, opts = {}) {
    const o = { ...opts };
    if (o.data !== undefined) {
      o.body = JSON.stringify(o.data);
      o.headers = { ...(o.headers || {}), "Content-Type": "application/json" };
      delete o.data;
    }
    const res = await this.fetch(path, o);
    if (!res.ok) throw await errorFrom(res);
    if (res.status === 204) return null;
    return res.json();
  }

  async register(email, password) {
    return this.json("/v1/users", { method: "POST", data: { email, password }, auth: false });
  }

  async login(email, password) {
    const t = await this.json("/v1/tokens", {
      method: "POST",
      headers: { Authorization: basic(email, password) },
      auth: false,
    });
    this.session = { token: t.token, expires_at: t.expires_at, email: email.trim().toLowerCase() };
    sessionStorage.setItem(TOKEN_KEY, JSON.stringify(this.session));
    return this.session;
  }

  async me() {
    const me = await this.json("/v1/me");
    if (this.session) {
      this.session.email = me.email;
      sessionStorage.setItem(TOKEN_KEY, JSON.stringify(this.session));
    }
    return me;
  }

  // logout revokes the token on the server, and forgets it here even when that fails.
  async logout() {
    try {
      if (this.session) await this.json("/v1/tokens/current", { method: "DELETE" });
    } finally {
      this.forget();
    }
  }

  async jobs() {
    const list = await this.json("/v1/jobs");
    return list.jobs || [];
  }

  async job(id, wait = "", signal) {
    const q = wait ? `?wait=${encodeURIComponent(wait)}` : "";
    return this.json(`/v1/jobs/${encodeURIComponent(id)}${q}`, { signal });
  }

  // deleteJob deletes a job with its video and MP3s.
  async deleteJob(id) {
    return this.json(`/v1/jobs/${encodeURIComponent(id)}`, { method: "DELETE" });
  }

  // download fetches a file with the token and returns it as a Blob with the name the
  // server gives in Content-Disposition (fallback when it gives none).
  async download(path, fallback) {
    const res = await this.fetch(path);
    if (!res.ok) throw await errorFrom(res);
    const blob = await res.blob();
    return { blob, name: filenameOf(res.headers.get("Content-Disposition")) || fallback };
  }
}

// filenameOf reads the file name of a Content-Disposition header: filename*=UTF-8''... (RFC
// 5987) first, else filename="..." with its backslash escapes.
export function filenameOf(header) {
  if (!header) return "";
  const ext = /filename\*\s*=\s*([^']*)'[^']*'([^;]+)/i.exec(header);
  if (ext) {
    try {
      return safeName(decodeURIComponent(ext[2].trim()));
    } catch {
      // fall through to filename=
    }
  }
  const quoted = /filename\s*=\s*"((?:\\.|[^"\\])*)"/i.exec(header);
  if (quoted) return safeName(quoted[1].replace(/\\(.)/g, "$1"));
  const plain = /filename\s*=\s*([^;\s]+)/i.exec(header);
  return plain ? safeName(plain[1]) : "";
}

function safeName(name) {
  return name.replace(/^.*[\\/]/, "");
}

// mp3Name is the MP3's name for a video's name, as the server makes it (wire.MP3Name).
export function mp3Name(filename) {
  let name = String(filename || "").replace(/^.*[\\/]/, "");
  if (name === "" || name === "." || name === "..") return "audio.mp3";
  const stem = name.replace(/^\.+/, "");
  const dot = stem.lastIndexOf(".");
  if (dot >= 0) name = name.slice(0, name.length - stem.length + dot);
  return name + ".mp3";
}
