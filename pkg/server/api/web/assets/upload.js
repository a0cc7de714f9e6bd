// Chunked, parallel, resumable uploads (docs/api.md#chunked-upload), as the v2m CLI makes
// them: POST /v1/uploads, then PUT each missing part with its CRC-32C, a few at once, then
// POST .../complete. The upload's id is remembered in localStorage under the file's name,
// size, modification time and options, so that adding the same file again with the same
// options after an interruption sends only the parts the server does not have.

import { ApiError, errorFrom, networkError, sleep } from "./api.js";

export const PARALLEL_PARTS = 4;
const PART_ATTEMPTS = 4;
const STATE_PREFIX = "v2m.upload:";

// CRC-32C (Castagnoli), the checksum of X-Part-CRC32C.
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32c(bytes) {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ((c ^ 0xffffffff) >>> 0).toString(16).padStart(8, "0");
}

// stateKey names a file and the options of its upload: another file, another version of the
// file, or other options start another upload.
function stateKey(file, options) {
  const opts = JSON.stringify(options || {}, Object.keys(options || {}).sort());
  return STATE_PREFIX + JSON.stringify([file.name, file.size, file.lastModified, opts]);
}

function remember(key, id) {
  try {
    localStorage.setItem(key, JSON.stringify({ id, at: Date.now() }));
  } catch {
    // storage full or disabled: the upload still works, it just cannot resume
  }
}

function recall(key) {
  try {
    const v = JSON.parse(localStorage.getItem(key) || "null");
    return v && typeof v.id === "string" ? v.id : "";
  } catch {
    return "";
  }
}

function forget(key) {
  try {
    localStorage.removeItem(key);
  } catch {
    // nothing to do
  }
}

function retryable(err) {
  return err.network || err.status === 408 || err.status === 429 || err.status >= 500;
}

// putPart sends one part with XMLHttpRequest, which (unlike fetch) reports the progress of a
// request body. onBytes gets the bytes of this part sent so far.
function putPart(api, id, n, bytes, crc, onBytes, signal) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", `/v1/uploads/${encodeURIComponent(id)}/parts/${n}`);
    if (api.session) xhr.setRequestHeader("Authorization", "Bearer " + api.session.token);
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.setRequestHeader("X-Part-CRC32C", crc);
    xhr.upload.onprogress = (e) => onBytes(e.loaded);
    const abort = () => xhr.abort();
    signal?.addEventListener("abort", abort, { once: true });
    const done = (fn) => {
      signal?.removeEventListener("abort", abort);
      fn();
    };
    xhr.onload = () => done(() => {
      if (xhr.status === 204 || xhr.status === 200) {
        resolve();
        return;
      }
      let code = "error";
      let message = `The server answered ${xhr.status}`;
      try {
        const b = JSON.parse(xhr.responseText);
        if (b && b.error) ({ code, message } = b.error);
      } catch {
        // keep the status
      }
      if (xhr.status === 401) {
        api.forget();
        api.onUnauthorized();
      }
      const retry = Number.parseInt(xhr.getResponseHeader("Retry-After") || "", 10);
      reject(new ApiError(xhr.status, code, message, Number.isFinite(retry) ? retry : 0));
    });
    xhr.onerror = () => done(() => reject(networkError()));
    xhr.ontimeout = xhr.onerror;
    xhr.onabort = () => done(() => reject(signal?.reason ?? new DOMException("aborted", "AbortError")));
    xhr.send(bytes);
  });
}

// Upload sends one file. Events, all optional:
//   onProgress(sent, total)   bytes the server has or is receiving
//   onPhase(text)             "Starting", "Resuming", "Uploading", "Finishing"
export class Upload {
  constructor(api, file, options, { onProgress = () => {}, onPhase = () => {}, parallel = PARALLEL_PARTS } = {}) {
    this.api = api;
    this.file = file;
    this.options = options;
    this.onProgress = onProgress;
    this.onPhase = onPhase;
    this.parallel = parallel;
    this.abortController = new AbortController();
    this.key = stateKey(file, options);
  }

  abort(reason) {
    this.abortController.abort(reason);
  }

  // run sends the file and returns the job the upload became.
  async run() {
    const signal = this.abortController.signal;
    let up = null;
    const known = recall(this.key);
    if (known) {
      this.onPhase("Resuming");
      const res = await this.api.fetch(`/v1/uploads/${encodeURIComponent(known)}`, { signal });
      if (res.ok) {
        const u = await res.json();
        if (u.size === this.file.size && u.filename === this.file.name) up = u;
        else forget(this.key);
      } else if (res.status === 404) {
        // Completed before (its answer was lost), or gone: completing tells which.
        const c = await this.api.fetch(`/v1/uploads/${encodeURIComponent(known)}/complete`, { method: "POST", signal });
        if (c.ok) {
          forget(this.key);
          return c.json();
        }
        if (c.status !== 404) throw await errorFrom(c);
        forget(this.key);
      } else {
        throw await errorFrom(res);
      }
    }
    if (!up) {
      this.onPhase("Starting");
      const body = { filename: this.file.name, size: this.file.size };
      if (this.options && Object.keys(this.options).length > 0) body.options = this.options;
      up = await this.api.json("/v1/uploads", { method: "POST", data: body, signal });
      remember(this.key, up.id);
    }
    for (let round = 0; ; round++) {
      this.onPhase("Uploading");
      await this.sendParts(up, signal);
      this.onPhase("Finishing");
      const res = await this.api.fetch(`/v1/uploads/${encodeURIComponent(up.id)}/complete`, { method: "POST", signal });
      if (res.ok) {
        forget(this.key);
        return res.json();
      }
      const err = await errorFrom(res);
      if (err.status === 409 && round === 0) {
        // parts are missing after all: ask which, and send them once more
        up = await this.api.json(`/v1/uploads/${encodeURIComponent(up.id)}`, { signal });
        continue;
      }
      if (err.status === 400 || err.status === 404) forget(this.key);
      throw err;
    }
  }

  partLen(up, n) {
    return Math.min(up.part_size, up.size - n * up.part_size);
  }

  async sendParts(up, outer) {
    // The first part that fails for good stops the others.
    const stop = new AbortController();
    const onAbort = () => stop.abort(outer.reason);
    outer.addEventListener("abort", onAbort, { once: true });
    const signal = stop.signal;
    let failure = null;
    const received = new Set(up.received || []);
    const inFlight = new Map(); // part -> bytes sent so far
    let stored = 0;
    for (const n of received) stored += this.partLen(up, n);
    const report = () => {
      let sent = stored;
      for (const b of inFlight.values()) sent += b;
      this.onProgress(Math.min(sent, up.size), up.size);
    };
    report();
    const todo = [];
    for (let n = 0; n < up.parts; n++) if (!received.has(n)) todo.push(n);
    let next = 0;
    const sendOne = async (n) => {
      const start = n * up.part_size;
      const bytes = new Uint8Array(await this.file.slice(start, start + this.partLen(up, n)).arrayBuffer());
      const crc = crc32c(bytes);
      for (let attempt = 1; ; attempt++) {
        inFlight.set(n, 0);
        try {
          await putPart(this.api, up.id, n, bytes, crc, (b) => {
            inFlight.set(n, b);
            report();
          }, signal);
          inFlight.delete(n);
          stored += bytes.length;
          report();
          return;
        } catch (err) {
          inFlight.delete(n);
          report();
          if (signal.aborted || !(err instanceof ApiError)) throw err;
          // A wrong length or checksum (400) is worth one more try: the bytes may have been
          // damaged on the way. Anything else that is not transient ends the upload.
          const again = retryable(err) || (err.status === 400 && attempt === 1);
          if (!again || attempt === PART_ATTEMPTS) throw err;
          const wait = err.retryAfter ? err.retryAfter * 1000 : 500 * 2 ** (attempt - 1);
          await sleep(wait, signal);
          if (signal.aborted) throw signal.reason;
        }
      }
    };
    const worker = async () => {
      while (next < todo.length && !signal.aborted) {
        try {
          await sendOne(todo[next++]);
        } catch (err) {
          if (!failure) failure = signal.aborted && outer.aborted ? outer.reason : err;
          stop.abort(err);
          return;
        }
      }
    };
    const workers = [];
    for (let i = 0; i < Math.min(this.parallel, todo.length); i++) workers.push(worker());
    await Promise.all(workers);
    outer.removeEventListener("abort", onAbort);
    if (failure) throw failure;
    if (outer.aborted) throw outer.reason;
  }
}
