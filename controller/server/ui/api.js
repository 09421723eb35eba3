// api.js - the page's only way to the server: the public API with the
// token the user signed in with (kept in sessionStorage; it travels only in
// the Authorization header, never in a URL), and the watch stream over
// EventSource, opened with a short-lived watch ticket (see watch()).

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

// The change stream, over EventSource. EventSource cannot send an
// Authorization header, and the long-lived token must never go into a URL
// (it would end up in logs and history), so the page first trades the
// token for a watch ticket (POST /api/v1/watch/tickets: single-purpose,
// valid for opening streams for a minute) and opens
// /api/v1/watch?ticket=T&since=REV. EventSource's own reconnects reuse that
// URL and send Last-Event-ID, so a reconnect within the ticket's life
// resumes exactly after the last change seen. Once the ticket has expired
// the server answers 401, EventSource gives up (readyState CLOSED), and a
// new ticket opens a new EventSource with since = the last id seen.
//
// onEvent(name, data, id) for every event; onState("connecting" | "live" |
// "reconnecting", detail). Returns {close(), lastId()}.
const STREAM_EVENTS = ["create", "update", "delete", "reset", "heartbeat"];

export function watch({ since, onEvent, onState }) {
  let last = since === undefined || since === null ? null : String(since);
  let closed = false;
  let es = null;
  let delay = 250;
  let timer = 0;

  function handler(name) {
    return (m) => {
      if (m.lastEventId) last = m.lastEventId;
      let data = null;
      try {
        data = JSON.parse(m.data);
      } catch {
        data = m.data;
      }
      onEvent(name, data, m.lastEventId);
    };
  }

  // A fresh ticket and a fresh EventSource; on failure try again later.
  async function open() {
    timer = 0;
    if (closed) return;
    let r;
    try {
      r = await api("/api/v1/watch/tickets", { method: "POST" });
    } catch (e) {
      return retry(e.message || String(e));
    }
    if (closed) return;
    if (r.status === 401) return; // api() reported the expired token
    if (r.status !== 200 || !r.body?.ticket) return retry(r.body?.message || `tickets answered ${r.status}`);
    const q = new URLSearchParams({ ticket: r.body.ticket });
    if (last !== null) q.set("since", last);
    es = new EventSource(`/api/v1/watch?${q}`);
    for (const name of STREAM_EVENTS) es.addEventListener(name, handler(name));
    es.onopen = () => {
      delay = 250;
      onState("live");
    };
    es.onerror = () => {
      if (closed) return;
      // CONNECTING: EventSource reconnects by itself, with Last-Event-ID.
      // CLOSED: it gave up (the ticket expired: 401); open a new one.
      if (es.readyState === EventSource.CONNECTING) {
        onState("reconnecting", "the server is unreachable; reconnecting");
        return;
      }
      es.close();
      es = null;
      retry("the stream was refused; asking for a new ticket");
    };
  }

  function retry(detail) {
    if (closed) return;
    onState("reconnecting", detail);
    timer = setTimeout(open, delay);
    delay = Math.min(delay * 2, 5000);
  }

  onState("connecting");
  open();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      if (es) es.close();
    },
    lastId: () => last,
  };
}
