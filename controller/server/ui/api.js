// api.js - the page's only way to the server: the public API with the
// token the user signed in with (kept in sessionStorage), and the watch
// stream read with fetch(), so the token travels in the Authorization
// header (never in a URL) and the resume point in Last-Event-ID.

const KEY = "pocketctl.session";

export function loadSession() {
  try {
    const s = JSON.parse(sessionStorage.getItem(KEY) || "null");
    return s && typeof s.token === "string" ? s : null;
  } catch {
    return null;
  }
}

export function saveSession(s) {
  if (s) sessionStorage.setItem(KEY, JSON.stringify(s));
  else sessionStorage.removeItem(KEY);
}

// Listeners for an expired or refused token (a 401 on any call).
const expiredHandlers = [];
export function onExpired(fn) {
  expiredHandlers.push(fn);
}
function expired() {
  saveSession(null);
  for (const fn of expiredHandlers) fn();
}

// fetch() with the session's token; resolves {status, body} (body: the
// parsed JSON, or null). A 401 with a token means it expired.
export async function api(path, { method = "GET", body, headers = {} } = {}) {
  const s = loadSession();
  const h = { ...headers };
  if (s) h.Authorization = s.token;
  if (body !== undefined) h["Content-Type"] = "application/json";
  const res = await fetch(path, {
    method,
    headers: h,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
  });
  let data = null;
  const text = await res.text();
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { message: text };
  }
  if (res.status === 401 && s) expired();
  return { status: res.status, body: data };
}

// Sign in as a superuser (as "superuser") or as a users record, which
// must be an admin (as "admin"). Resolves {ok, session} or {ok: false,
// message}.
export async function signIn(email, password, as) {
  const coll = as === "admin" ? "users" : "_superusers";
  const r = await api(`/api/collections/${coll}/auth-with-password`, {
    method: "POST",
    body: { identity: email, password },
  });
  if (r.status === 429) return { ok: false, message: "Too many attempts; wait a minute and try again." };
  if (r.status !== 200) return { ok: false, message: "Wrong e-mail or password." };
  if (as === "admin" && r.body.record?.role !== "admin") {
    return { ok: false, message: "Not allowed: this page is for superusers and admins only." };
  }
  return { ok: true, session: { token: r.body.token, kind: as === "admin" ? "admin" : "superuser", email } };
}

// Parse SSE text into frames; returns the unparsed rest.
function parseFrames(text, onFrame) {
  let at;
  while ((at = text.search(/\r?\n\r?\n/)) >= 0) {
    const raw = text.slice(0, at);
    text = text.slice(at + (text[at] === "\r" ? 4 : 2));
    const f = { id: null, event: "message", data: [] };
    for (const line of raw.split(/\r?\n/)) {
      if (!line || line.startsWith(":")) continue;
      const i = line.indexOf(":");
      const k = i < 0 ? line : line.slice(0, i);
      const v = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
      if (k === "id") f.id = v;
      else if (k === "event") f.event = v;
      else if (k === "data") f.data.push(v);
    }
    if (f.data.length || f.id !== null) onFrame(f);
  }
  return text;
}

// The change stream. onEvent(name, data, id) for every event; onState
// ("connecting" | "live" | "reconnecting", detail). After a disconnect it
// reconnects with Last-Event-ID = the last id seen (backoff 0.25 s to
// 5 s), so no change is lost. Returns {close()}.
export function watch({ since, onEvent, onState }) {
  let last = since === undefined || since === null ? null : String(since);
  let closed = false;
  let ctl = null;
  let delay = 250;

  async function once() {
    const s = loadSession();
    if (!s) return "stop";
    ctl = new AbortController();
    const headers = { Authorization: s.token, Accept: "text/event-stream" };
    if (last !== null) headers["Last-Event-ID"] = last;
    const res = await fetch("/api/v1/watch", { headers, signal: ctl.signal, cache: "no-store" });
    if (res.status === 401) {
      expired();
      return "stop";
    }
    if (res.status !== 200 || !res.body) throw new Error(`watch answered ${res.status}`);
    onState("live");
    delay = 250;
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf = parseFrames(buf + dec.decode(value, { stream: true }), (f) => {
        if (f.id !== null && f.id !== "") last = f.id;
        let data = null;
        try {
          data = JSON.parse(f.data.join("\n"));
        } catch {
          data = f.data.join("\n");
        }
        onEvent(f.event, data, f.id);
      });
    }
    throw new Error("the stream ended");
  }

  (async () => {
    onState("connecting");
    while (!closed) {
      try {
        if ((await once()) === "stop") return;
      } catch (e) {
        if (closed) return;
        onState("reconnecting", e.message || String(e));
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 5000);
      }
    }
  })();
  return {
    close() {
      closed = true;
      if (ctl) ctl.abort();
    },
    lastId: () => last,
  };
}
