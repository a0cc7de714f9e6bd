// Live job updates. The server streams them as Server-Sent Events at GET /v1/events
// ("event: state" with the job object as data, "event: progress" with {"id", "progress"},
// "id:" lines and keep-alive comments). EventSource cannot send an Authorization header, so
// the stream is read with fetch() and parsed here. A server without that route (404) is
// followed with the long-poll GET /v1/jobs/{id}?wait=30s instead.

import { ApiError, sleep } from "./api.js";

const FINAL = new Set(["done", "failed"]);
export const isFinal = (job) => FINAL.has(job.state);

// SSEParser turns the text of an event stream into events, as the HTML standard's
// "interpret an event stream" says: lines end in CRLF, LF or CR; a blank line dispatches the
// event; "data" lines are joined with LF; a line starting with ":" is a comment; a value
// loses one leading space; "id" sets the last event id (unless it holds NUL); "retry" sets
// the reconnection delay.
export class SSEParser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buf = "";
    this.data = [];
    this.type = "";
    this.lastId = "";
    this.retry = 0;
    this.first = true;
  }

  feed(text) {
    this.buf += text;
    if (this.first && this.buf.length > 0) {
      if (this.buf.charCodeAt(0) === 0xfeff) this.buf = this.buf.slice(1); // a BOM
      this.first = false;
    }
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buf);
      if (!m) break;
      // A CR at the very end may be the first half of a CRLF: wait for the next chunk.
      if (m[0] === "\r" && m.index === this.buf.length - 1) break;
      const line = this.buf.slice(0, m.index);
      this.buf = this.buf.slice(m.index + m[0].length);
      this.line(line);
    }
  }

  // end handles the end of the stream: a CR held back for a LF that never came ends its
  // line; then an event not followed by a blank line is dropped.
  end() {
    if (this.buf.endsWith("\r")) this.line(this.buf.slice(0, -1));
    this.buf = "";
    this.data = [];
    this.type = "";
  }

  line(line) {
    if (line === "") {
      this.dispatch();
      return;
    }
    if (line.startsWith(":")) return;
    const i = line.indexOf(":");
    let field = line;
    let value = "";
    if (i >= 0) {
      field = line.slice(0, i);
      value = line.slice(i + 1);
      if (value.startsWith(" ")) value = value.slice(1);
    }
    switch (field) {
      case "event":
        this.type = value;
        break;
      case "data":
        this.data.push(value);
        break;
      case "id":
        if (!value.includes("\0")) this.lastId = value;
        break;
      case "retry":
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
      default:
      // ignored, as the standard says
    }
  }

  dispatch() {
    const type = this.type || "message";
    const data = this.data.join("\n");
    const had = this.data.length > 0;
    this.data = [];
    this.type = "";
    if (had) this.onEvent({ type, data, id: this.lastId });
  }
}

// Watcher keeps the page's jobs up to date. Callbacks:
//   onJob(job)                 a job's new state
//   onProgress(id, progress)   a job's progress
//   onMode(mode)               "stream", "poll" or "offline"
//   onResync()                 the stream (re)connected: reload the list, events may be missed
export class Watcher {
  constructor(api, { onJob, onProgress, onMode, onResync }) {
    this.api = api;
    this.onJob = onJob;
    this.onProgress = onProgress;
    this.onMode = onMode;
    this.onResync = onResync;
    this.stopper = new AbortController();
    this.mode = "";
    this.active = new Map(); // job id -> the job, for the long-poll fallback
    this.polling = false;
  }

  start() {
    this.stream();
  }

  stop() {
    this.stopper.abort();
  }

  setMode(mode) {
    if (mode !== this.mode) {
      this.mode = mode;
      this.onMode(mode);
    }
  }

  // track tells the watcher about a job that is not final, for the fallback to follow.
  track(job) {
    if (isFinal(job)) {
      this.active.delete(job.id);
      return;
    }
    this.active.set(job.id, job);
    if (this.mode === "poll") this.poll();
  }

  async stream() {
    const signal = this.stopper.signal;
    let failures = 0;
    let lastId = "";
    while (!signal.aborted) {
      let res;
      try {
        const headers = { Accept: "text/event-stream" };
        if (lastId) headers["Last-Event-ID"] = lastId;
        res = await this.api.fetch("/v1/events", { headers, signal });
      } catch (err) {
        if (signal.aborted) return;
        this.setMode("offline");
        failures++;
        await sleep(Math.min(30000, 1000 * 2 ** Math.min(failures, 5)), signal);
        continue;
      }
      if (res.status === 404 || res.status === 405 || res.status === 501) {
        this.setMode("poll");
        this.poll();
        return;
      }
      if (res.status === 401) return; // the session ended; the page shows the login
      const type = res.headers.get("Content-Type") || "";
      if (!res.ok || !type.startsWith("text/event-stream") || !res.body) {
        res.body?.cancel().catch(() => {});
        failures++;
        if (failures >= 3) {
          this.setMode("poll");
          this.poll();
          return;
        }
        await sleep(1000 * failures, signal);
        continue;
      }
      failures = 0;
      this.setMode("stream");
      this.onResync();
      const parser = new SSEParser((ev) => this.event(ev));
      try {
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          parser.feed(value);
        }
      } catch {
        if (signal.aborted) return;
      }
      parser.end();
      lastId = parser.lastId || lastId;
      if (signal.aborted) return;
      // The stream ended (a restart, a proxy's timeout): reconnect after the server's delay.
      await sleep(parser.retry || 1000, signal);
    }
  }

  event(ev) {
    let data;
    try {
      data = JSON.parse(ev.data);
    } catch {
      return;
    }
    if (!data || typeof data.id !== "string") return;
    if (ev.type === "state") this.onJob(data);
    else if (ev.type === "progress" && typeof data.progress === "number") this.onProgress(data.id, data.progress);
  }

  // poll follows the active jobs without the stream: the newest one with the long-poll
  // (which answers as soon as it is done or failed), and all of them with a reload of the
  // list every few seconds, so that their progress moves.
  async poll() {
    if (this.polling) return;
    this.polling = true;
    const signal = this.stopper.signal;
    const ticker = this.tick(signal);
    try {
      while (!signal.aborted && this.active.size > 0) {
        const ids = [...this.active.keys()];
        const id = ids[ids.length - 1];
        try {
          const job = await this.api.job(id, "30s", signal);
          this.setMode("poll");
          this.onJob(job);
          if (isFinal(job)) this.active.delete(id);
        } catch (err) {
          if (signal.aborted) break;
          if (err instanceof ApiError && err.status === 404) {
            this.active.delete(id);
            continue;
          }
          if (err instanceof ApiError && err.status === 401) break;
          this.setMode("offline");
          await sleep(3000, signal);
        }
      }
    } finally {
      await ticker;
      this.polling = false;
      // A job tracked while this loop was ending is followed by another round.
      if (!signal.aborted && this.active.size > 0) this.poll();
    }
  }

  async tick(signal) {
    while (!signal.aborted && this.active.size > 0) {
      await sleep(2000, signal);
      if (signal.aborted || this.active.size === 0) break;
      try {
        for (const job of await this.api.jobs()) {
          if (this.active.has(job.id)) {
            this.onJob(job);
            if (isFinal(job)) this.active.delete(job.id);
          }
        }
      } catch {
        // the long-poll reports trouble
      }
    }
  }
}
