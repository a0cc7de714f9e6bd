// The v2m web page: log in, add videos, follow their jobs, download the MP3s. It uses the
// same HTTP API as the CLI (docs/api.md); everything it shows comes from the server's
// answers, and every message from the server (a refused option, a file too large, the reason
// a job failed) is shown as the server wrote it.

import { Api, ApiError, mp3Name } from "./api.js";
import { Upload } from "./upload.js";
import { Watcher, isFinal } from "./events.js";

const $ = (id) => document.getElementById(id);
// One file at a time, its parts four at once: with the event stream and a download, that stays
// within the six connections a browser opens to one server over HTTP/1.1.
const FILES_AT_ONCE = 1;

// The options form: the API's key of each field.
const OPTION_FIELDS = {
  quality: "opt-quality",
  bitrate: "opt-bitrate",
  start: "opt-start",
  end: "opt-end",
  track: "opt-track",
  language: "opt-language",
  normalize: "opt-normalize",
  loudness: "opt-loudness",
  mono: "opt-mono",
  cover: "opt-cover",
  split_chapters: "opt-split",
};

const api = new Api();
const state = {
  watcher: null,
  jobs: new Map(), // job id -> job
  cards: new Map(), // job id, or "upload:N" for an upload not yet a job -> <li>
  queue: [], // entries waiting to upload
  running: new Set(), // entries uploading
  deleted: new Set(), // ids of jobs deleted here: late events must not bring them back
  seq: 0,
};

// ---- messages -------------------------------------------------------------------------

function announce(text) {
  // Polite: screen readers read it when idle. Clearing first makes a repeated text count.
  const s = $("status");
  s.textContent = "";
  requestAnimationFrame(() => {
    s.textContent = text;
  });
}

function notice(text) {
  const n = $("notice");
  n.textContent = text;
  n.hidden = !text;
}

function messageOf(err, what = "") {
  if (err instanceof ApiError) {
    if (err.network) return what ? `${err.message} ${what}` : err.message;
    let m = err.message;
    if (err.status === 429 && err.retryAfter > 0) m += ` Try again in ${err.retryAfter} s.`;
    return m;
  }
  if (err && err.name === "NotReadableError") return "The file could not be read: was it moved or changed?";
  return err && err.message ? err.message : String(err);
}

// ---- formatting -----------------------------------------------------------------------

function bytes(n) {
  if (!Number.isFinite(n)) return "";
  const units = ["bytes", "KB", "MB", "GB", "TB"];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return i === 0 ? `${n} bytes` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

function when(iso) {
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return "";
  return new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" }).format(t);
}

function optionsSummary(o) {
  if (!o) return "";
  const parts = [];
  if (o.bitrate) parts.push(`${o.bitrate}bit/s`);
  if (o.quality !== undefined) parts.push(`VBR quality ${o.quality}`);
  if (o.start) parts.push(`from ${o.start}`);
  if (o.end) parts.push(`to ${o.end}`);
  if (o.loudness !== undefined) parts.push(`${o.loudness} LUFS`);
  else if (o.normalize) parts.push("normalised");
  if (o.track !== undefined) parts.push(`track ${o.track}`);
  if (o.language) parts.push(`language ${o.language}`);
  if (o.mono) parts.push("mono");
  if (o.cover === false) parts.push("no cover");
  if (o.split_chapters) parts.push("one MP3 per chapter");
  return parts.join(", ");
}

// ---- options --------------------------------------------------------------------------

// readOptions builds the job's options from the form. A number field holding something
// that is not a number is sent as it is, so that the server's message says what is wrong.
function readOptions() {
  const o = {};
  const text = (key) => $(OPTION_FIELDS[key]).value.trim();
  const num = (key) => {
    const v = text(key);
    if (v === "") return;
    o[key] = /^[-+]?(\d+(\.\d*)?|\.\d+)$/.test(v) ? Number(v) : v;
  };
  num("quality");
  if (text("bitrate")) o.bitrate = text("bitrate");
  if (text("start")) o.start = text("start");
  if (text("end")) o.end = text("end");
  num("track");
  if (text("language")) o.language = text("language");
  if ($(OPTION_FIELDS.normalize).checked) o.normalize = true;
  num("loudness");
  if ($(OPTION_FIELDS.mono).checked) o.mono = true;
  if (!$(OPTION_FIELDS.cover).checked) o.cover = false;
  if ($(OPTION_FIELDS.split_chapters).checked) o.split_chapters = true;
  return o;
}

function clearOptionError() {
  $("options-error").hidden = true;
  $("options-error").textContent = "";
  for (const id of Object.values(OPTION_FIELDS)) {
    $(id).removeAttribute("aria-invalid");
    $(id).removeAttribute("aria-errormessage");
  }
}

// showOptionError marks the option that the server's message names ("option "start" must
// be ...", "unknown option ...") and shows the message by the form.
function showOptionError(message) {
  const m = /^option "([a-z_]+)"/.exec(message);
  const box = $("options-error");
  box.textContent = message;
  box.hidden = false;
  if (m && OPTION_FIELDS[m[1]]) {
    const field = $(OPTION_FIELDS[m[1]]);
    field.setAttribute("aria-invalid", "true");
    field.setAttribute("aria-errormessage", "options-error");
  }
}

function isOptionError(err) {
  return err instanceof ApiError && err.status === 400 && /^(unknown )?options? "/.test(err.message);
}

// ---- cards ----------------------------------------------------------------------------

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function newCard(key, name) {
  const li = el("li", "card");
  const id = `card-${++state.seq}`;
  const title = el("h3", "name", name);
  title.id = `${id}-name`;
  const status = el("p", "state");
  status.id = `${id}-state`;
  const bar = el("progress", "bar");
  bar.max = 100;
  bar.setAttribute("aria-labelledby", `${id}-name ${id}-state`);
  li.append(title, status, bar, el("p", "meta"), el("p", "error"), el("div", "actions"));
  li.setAttribute("aria-labelledby", title.id);
  li.dataset.order = "0";
  state.cards.set(key, li);
  $("jobs").prepend(li);
  $("jobs-empty").hidden = true;
  return li;
}

const part = (card, cls) => card.querySelector(`.${cls}`);

function setProgress(card, value) {
  const bar = part(card, "bar");
  if (value === null) {
    bar.removeAttribute("value"); // indeterminate
  } else {
    bar.value = Math.max(0, Math.min(100, value));
  }
}

// sortCards puts the uploads that are not jobs yet first, then the jobs newest first, and
// moves nothing when the order is right already (moving a node loses its focus).
function sortCards() {
  const list = $("jobs");
  const now = [...list.children];
  const want = [...now].sort((a, b) => Number(b.dataset.order) - Number(a.dataset.order));
  if (want.every((c, i) => c === now[i])) return;
  const focused = document.activeElement;
  list.append(...want);
  if (focused && list.contains(focused)) focused.focus();
}

function button(text, cls, onClick) {
  const b = el("button", cls, text);
  b.type = "button";
  b.addEventListener("click", onClick);
  return b;
}

// ---- jobs -----------------------------------------------------------------------------

const STATE_TEXT = { queued: "Queued", converting: "Converting", done: "Done", failed: "Failed" };

function renderJob(job) {
  let card = state.cards.get(job.id);
  if (!card) card = newCard(job.id, job.filename);
  card.dataset.jobId = job.id;
  card.dataset.state = job.state;
  card.dataset.order = String(1e15 + (Date.parse(job.created_at) || 0));
  part(card, "name").textContent = job.filename;
  let text = STATE_TEXT[job.state] || job.state;
  if (job.state === "converting") text += ` ${job.progress}%`;
  part(card, "state").textContent = text;
  const bar = part(card, "bar");
  bar.hidden = isFinal(job);
  setProgress(card, job.state === "queued" && !job.progress ? null : job.progress);
  const meta = [bytes(job.source_size || job.size), optionsSummary(job.options), when(job.created_at), keptUntil(job)];
  part(card, "meta").textContent = meta.filter(Boolean).join(" · ");
  const error = part(card, "error");
  error.textContent = job.state === "failed" ? job.error || "The conversion failed." : "";
  error.hidden = job.state !== "failed";
  const actions = part(card, "actions");
  const key = `${job.id}:${job.state}:${job.expired ? "expired" : ""}`;
  if (actions.dataset.for !== key) {
    actions.dataset.for = key;
    const downloads = job.state === "done" && !job.expired ? downloadButtons(job) : [];
    actions.replaceChildren(...downloads, deleteButton(job));
  }
  sortCards();
}

// keptUntil says until when a final job's files are kept, or that they are gone.
function keptUntil(job) {
  if (job.expired) return "Expired: the MP3 was deleted";
  if (!job.expires_at || job.state !== "done") return "";
  const until = when(job.expires_at);
  return until ? `Kept until ${until}` : "";
}

// deleteButton deletes the job after a second click on the same button, which asks first:
// no dialog, and the keyboard works the same.
function deleteButton(job) {
  const b = button("Delete", "delete secondary", async () => {
    if (b.dataset.armed !== "true") {
      b.dataset.armed = "true";
      b.textContent = "Click again to delete";
      b.setAttribute("aria-label", `Delete ${job.filename} for good: press again to confirm`);
      announce(`Press Delete again to delete ${job.filename} and its MP3 for good.`);
      setTimeout(() => {
        if (b.isConnected && b.getAttribute("aria-busy") !== "true") disarm();
      }, 5000);
      return;
    }
    b.setAttribute("aria-busy", "true");
    b.textContent = "Deleting…";
    try {
      await api.deleteJob(job.id);
      removeJob(job.id);
      announce(`${job.filename} deleted.`);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        removeJob(job.id); // gone already
      } else {
        notice(`Could not delete ${job.filename}: ${messageOf(err)}`);
        b.removeAttribute("aria-busy");
        disarm();
      }
    }
  });
  const disarm = () => {
    delete b.dataset.armed;
    b.textContent = "Delete";
    b.setAttribute("aria-label", `Delete ${job.filename}`);
  };
  b.setAttribute("aria-label", `Delete ${job.filename}`);
  return b;
}

function removeJob(id) {
  state.deleted.add(id);
  state.jobs.delete(id);
  const card = state.cards.get(id);
  state.cards.delete(id);
  if (card) {
    const next = card.nextElementSibling || card.previousElementSibling;
    card.remove();
    next?.querySelector("button")?.focus(); // keep the keyboard's place in the list
  }
  if (state.cards.size === 0) $("jobs-empty").hidden = false;
}

function downloadButtons(job) {
  const out = [];
  if (job.files && job.files.length > 0) {
    const album = mp3Name(job.filename).replace(/\.mp3$/, "");
    job.files.forEach((f, i) => {
      const name = `${String(i + 1).padStart(2, "0")} - ${f.title || `Chapter ${i + 1}`}.mp3`;
      const b = button(name, "download", () => download(b, `/v1/files/${encodeURIComponent(f.fid)}`, name));
      b.setAttribute("aria-label", `Download ${name} (${bytes(f.size)})`);
      out.push(b);
    });
    const zip = button("All as a zip", "download secondary", () =>
      download(zip, `/v1/files/${encodeURIComponent(job.mp3_fid)}`, `${album}.zip`));
    zip.setAttribute("aria-label", `Download all ${job.files.length} MP3s of ${job.filename} as a zip`);
    out.push(zip);
  } else {
    const name = mp3Name(job.filename);
    const b = button("Download MP3", "download", () => download(b, `/v1/files/${encodeURIComponent(job.mp3_fid)}`, name));
    b.setAttribute("aria-label", `Download ${name}`);
    out.push(b);
  }
  return out;
}

// upsertJob takes a job from any source (an answer, the stream, the long-poll), keeps the
// newest version of it, and announces when it ends.
function upsertJob(job) {
  if (state.deleted.has(job.id)) return;
  const prev = state.jobs.get(job.id);
  if (prev) {
    if (isFinal(prev) && !isFinal(job)) return; // an older answer arriving late
    if (Date.parse(job.updated_at) < Date.parse(prev.updated_at)) return;
  }
  state.jobs.set(job.id, job);
  renderJob(job);
  if (prev && !isFinal(prev) && isFinal(job)) {
    if (job.state === "done") announce(`${job.filename}: the MP3 is ready to download.`);
    else announce(`${job.filename} failed: ${job.error}`);
  }
  state.watcher?.track(job);
}

function progressOf(id, progress) {
  const job = state.jobs.get(id);
  if (!job || isFinal(job) || progress < job.progress) return;
  const next = { ...job, progress, state: job.state === "queued" ? "converting" : job.state };
  state.jobs.set(id, next);
  renderJob(next);
}

async function loadJobs() {
  try {
    for (const job of await api.jobs()) upsertJob(job);
    if (state.cards.size === 0) $("jobs-empty").hidden = false;
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) notice(messageOf(err));
  }
}

async function download(btn, path, fallback) {
  if (btn.getAttribute("aria-busy") === "true") return;
  btn.setAttribute("aria-busy", "true");
  const label = btn.textContent;
  btn.textContent = "Downloading…";
  try {
    const { blob, name } = await api.download(path, fallback);
    const url = URL.createObjectURL(blob);
    const a = el("a");
    a.href = url;
    a.download = name;
    a.hidden = true;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    announce(`${name} downloaded.`);
  } catch (err) {
    notice(`The download failed: ${messageOf(err)}`);
  } finally {
    btn.textContent = label;
    btn.removeAttribute("aria-busy");
  }
}

// ---- uploads --------------------------------------------------------------------------

function renderUpload(entry) {
  const card = entry.card;
  card.dataset.state = entry.error ? "refused" : "uploading";
  const pct = entry.total > 0 ? Math.floor((entry.sent * 100) / entry.total) : 0;
  part(card, "state").textContent = entry.error ? "Upload failed" : `${entry.phase} ${pct}%`;
  part(card, "bar").hidden = Boolean(entry.error);
  setProgress(card, entry.phase === "Waiting" ? null : pct);
  part(card, "meta").textContent = [bytes(entry.file.size), optionsSummary(entry.options)].filter(Boolean).join(" · ");
  const error = part(card, "error");
  error.textContent = entry.error || "";
  error.hidden = !entry.error;
  const actions = part(card, "actions");
  if (!entry.error) {
    actions.replaceChildren();
    return;
  }
  const dismiss = button("Dismiss", "secondary", () => {
    state.cards.delete(entry.key);
    card.remove();
    if (state.cards.size === 0) $("jobs-empty").hidden = false;
    $("jobs-title").focus();
  });
  dismiss.setAttribute("aria-label", `Dismiss ${entry.file.name}`);
  if (entry.final) {
    actions.replaceChildren(dismiss);
    return;
  }
  const retry = button("Try again", "", () => {
    entry.error = "";
    entry.phase = "Waiting";
    renderUpload(entry);
    enqueue(entry);
  });
  retry.setAttribute("aria-label", `Try uploading ${entry.file.name} again`);
  actions.replaceChildren(retry, dismiss);
}

function addFiles(files) {
  if (!files || files.length === 0) return;
  clearOptionError();
  const options = readOptions();
  for (const file of files) {
    const key = `upload:${++state.seq}`;
    const entry = { key, file, options, sent: 0, total: file.size, phase: "Waiting", error: "", final: false };
    entry.card = newCard(key, file.name);
    entry.card.dataset.order = String(2e15 + state.seq);
    renderUpload(entry);
    enqueue(entry);
  }
  sortCards();
  announce(files.length === 1 ? `Uploading ${files[0].name}.` : `Uploading ${files.length} files.`);
}

function enqueue(entry) {
  state.queue.push(entry);
  pump();
}

function pump() {
  while (state.running.size < FILES_AT_ONCE && state.queue.length > 0) {
    const entry = state.queue.shift();
    state.running.add(entry);
    runUpload(entry).finally(() => {
      state.running.delete(entry);
      pump();
    });
  }
}

async function runUpload(entry) {
  const up = new Upload(api, entry.file, entry.options, {
    onProgress: (sent, total) => {
      entry.sent = sent;
      entry.total = total;
      renderUpload(entry);
    },
    onPhase: (phase) => {
      entry.phase = phase;
      renderUpload(entry);
    },
  });
  entry.upload = up;
  try {
    const job = await up.run();
    attachJob(entry, job);
    announce(`${entry.file.name} uploaded; the job is ${job.state}.`);
  } catch (err) {
    if (entry.cancelled) return;
    entry.error = messageOf(err, "Try again to resume the upload.");
    // Refused for good: a bad option, too large, not allowed. Trying again cannot help.
    entry.final = err instanceof ApiError && [400, 403, 413].includes(err.status);
    if (isOptionError(err)) showOptionError(err.message);
    renderUpload(entry);
    announce(`${entry.file.name}: ${entry.error}`);
  }
}

// attachJob turns an upload's card into its job's card.
function attachJob(entry, job) {
  state.cards.delete(entry.key);
  if (state.cards.has(job.id)) {
    entry.card.remove(); // the stream showed the job first
  } else {
    state.cards.set(job.id, entry.card);
    part(entry.card, "actions").replaceChildren();
  }
  upsertJob(job);
}

// ---- session --------------------------------------------------------------------------

function showAuth() {
  $("app").hidden = true;
  $("account").hidden = true;
  $("auth").hidden = false;
}

function showApp() {
  $("auth").hidden = true;
  $("app").hidden = false;
  $("account").hidden = false;
  $("whoami").textContent = api.session ? api.session.email : "";
}

function liveMode(mode) {
  const text = {
    stream: "Live: updates as they happen.",
    poll: "Updates every few seconds.",
    offline: "Cannot reach the server; trying again…",
  }[mode];
  $("live").textContent = text || "";
}

async function startSession() {
  showApp();
  state.watcher = new Watcher(api, {
    onJob: upsertJob,
    onProgress: progressOf,
    onMode: liveMode,
    onResync: loadJobs,
  });
  await loadJobs();
  state.watcher.start();
}

function endSession(message) {
  state.watcher?.stop();
  state.watcher = null;
  for (const entry of [...state.running, ...state.queue]) {
    entry.cancelled = true;
    entry.upload?.abort(new DOMException("logged out", "AbortError"));
  }
  state.queue = [];
  state.jobs.clear();
  state.cards.clear();
  $("jobs").replaceChildren();
  $("jobs-empty").hidden = false;
  $("live").textContent = "";
  clearOptionError();
  showAuth();
  if (message) notice(message);
  $("email").focus();
}

function authError(text) {
  const e = $("auth-error");
  e.textContent = text;
  e.hidden = !text;
}

async function onAuthSubmit(ev) {
  ev.preventDefault();
  const register = ev.submitter && ev.submitter.value === "register";
  const email = $("email").value.trim();
  const password = $("password").value;
  authError("");
  notice("");
  if (!email || !password) {
    authError("Enter your email and your password.");
    (email ? $("password") : $("email")).focus();
    return;
  }
  const buttons = [$("login"), $("register")];
  buttons.forEach((b) => (b.disabled = true));
  try {
    if (register) await api.register(email, password);
    await api.login(email, password);
    $("password").value = "";
    await startSession();
    announce(register ? `Account created. Logged in as ${api.session.email}.` : `Logged in as ${api.session.email}.`);
    $("main").focus();
  } catch (err) {
    authError(messageOf(err));
    $(err instanceof ApiError && err.status === 401 ? "password" : "email").focus();
  } finally {
    buttons.forEach((b) => (b.disabled = false));
  }
}

async function onLogout() {
  let message = "Logged out.";
  try {
    await api.logout();
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) {
      message = `Logged out on this page; the server could not revoke the token (${messageOf(err)}).`;
    }
  }
  endSession(message);
  announce(message);
}

// ---- wiring ---------------------------------------------------------------------------

function wireDrop() {
  const drop = $("drop");
  const files = $("files");
  files.addEventListener("change", () => {
    addFiles([...files.files]);
    files.value = ""; // the same file again is a change too
  });
  let depth = 0;
  drop.addEventListener("dragenter", (e) => {
    e.preventDefault();
    depth++;
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => {
    if (--depth <= 0) {
      depth = 0;
      drop.classList.remove("over");
    }
  });
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    e.dataTransfer.dropEffect = "copy";
  });
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    depth = 0;
    drop.classList.remove("over");
    addFiles([...e.dataTransfer.files]);
  });
  // A file dropped next to the zone must not replace the page.
  for (const type of ["dragover", "drop"]) {
    window.addEventListener(type, (e) => {
      if (!drop.contains(e.target)) e.preventDefault();
    });
  }
}

function main() {
  api.onUnauthorized = () => endSession("Your session has ended. Log in again.");
  $("auth-form").addEventListener("submit", onAuthSubmit);
  $("logout").addEventListener("click", onLogout);
  $("refresh").addEventListener("click", loadJobs);
  $("options").addEventListener("submit", (e) => e.preventDefault());
  $("options").addEventListener("input", (e) => {
    if (e.target.getAttribute("aria-invalid")) clearOptionError();
  });
  $("jobs-title").tabIndex = -1;
  wireDrop();
  window.addEventListener("offline", () => notice("You are offline. Uploads and updates resume when the connection is back."));
  window.addEventListener("online", () => {
    notice("");
    if (api.loggedIn) loadJobs();
  });
  if (!api.loggedIn) {
    showAuth();
    return;
  }
  api.me().then(startSession, (err) => {
    if (err instanceof ApiError && err.status === 401) return; // onUnauthorized showed the login
    notice(messageOf(err));
    startSession();
  });
}

main();
