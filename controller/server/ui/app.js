// app.js - the status page: sign-in, the hash router (#overview,
// #timeline, #files, #records/...), the state the views draw from, and
// the live feed (EventSource with a watch ticket, api.js; every change in
// the timeline says when, by whom - the event's actor - and at which
// revision). Changes from the watch stream are queued and applied
// once per animation frame, so a burst of a thousand changes costs one
// redraw of each affected view, not a thousand.

import { h, fill, parseTime } from "./dom.js";
import { api, signIn, loadSession, saveSession, onExpired, watch } from "./api.js";
import { drawOverview, drawTimeline, drawFiles } from "./views.js";
import { drawRecords, current } from "./records.js";

const $ = (id) => document.getElementById(id);
const EVENTS_KEPT = 2000;

const state = {
  head: 0,
  changes: 0, // change events applied (data-changes on #head-top)
  observed: null,
  engine: null,
  reconcilers: new Map(),
  containers: new Map(),
  events: [],
  seen: new Set(), // status events already in the timeline
  files: null,
  actionResult: "",
};
let stream = null;
let queue = [];
let frame = 0;
const dirty = new Set();

// ---- sign-in ------------------------------------------------------------

// The sign-in form's line: an error (red) unless kind is "info".
function signinMsg(text, kind) {
  const el = $("signin-msg");
  el.textContent = text || "";
  el.dataset.kind = kind || "error";
}

function showSignIn(message, kind) {
  if (stream) stream.close();
  stream = null;
  $("app").hidden = true;
  $("signin").hidden = false;
  signinMsg(message, kind);
  $("email").focus();
}

onExpired(() => showSignIn("Your session expired or was refused; sign in again."));

$("signin-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const btn = ev.target.querySelector("button");
  btn.disabled = true;
  signinMsg("Signing in…", "info");
  try {
    const as = document.querySelector('input[name="as"]:checked').value;
    const r = await signIn($("email").value.trim(), $("password").value, as);
    if (!r.ok) {
      signinMsg(r.message);
      return;
    }
    saveSession(r.session);
    $("password").value = "";
    await start();
  } catch (e) {
    signinMsg(`Cannot reach the server: ${e.message}`);
  } finally {
    btn.disabled = false;
  }
});

$("signout").addEventListener("click", () => {
  saveSession(null);
  showSignIn("Signed out.", "info");
});

// ---- the feed -------------------------------------------------------------

function addEvent(e) {
  state.events.push(e);
  if (state.events.length > EVENTS_KEPT) state.events.splice(0, state.events.length - EVENTS_KEPT);
  dirty.add("timeline");
}

// The status events (DriftCorrected, ...) of reconciler name, once each.
function statusEvents(name, status, revision) {
  for (const ev of status?.events || []) {
    const key = `${name}|${ev.type}|${ev.time}|${ev.file}`;
    if (state.seen.has(key)) continue;
    state.seen.add(key);
    addEvent({
      time: parseTime(ev.time)?.getTime() || Date.now(),
      kind: ev.type,
      group: ev.type === "DriftCorrected" ? "drift" : "status",
      title: ev.file || name,
      detail: ev.message || ev.reason || "",
      actor: name,
      revision,
    });
  }
}

function applyReconciler(rec, revision, time) {
  const name = rec.name;
  const old = state.reconcilers.get(name) || { name };
  const st = rec.status || {};
  if (st.lastError && st.lastError !== old.lastError) {
    addEvent({ time, kind: "ReconcileError", group: "error", title: name, detail: st.lastError, actor: name, revision });
  }
  state.reconcilers.set(name, { ...old, ...st, name, lastPass: rec.updated || old.lastPass });
  statusEvents(name, st, revision);
  dirty.add("overview");
}

function applyContainer(rec, revision, time) {
  const old = state.containers.get(rec.name);
  const la = rec.status?.lastAction;
  const ola = old?.status?.lastAction;
  if (la && (!ola || ola.at !== la.at || ola.phase !== la.phase)) {
    addEvent({ time, kind: `${la.action} ${la.phase}`, group: la.phase === "InProgress" ? "status" : "restart",
      title: rec.name, detail: la.message || la.reason || "", actor: "containers", revision });
    if (pendingRestart === rec.name && la.phase !== "InProgress") {
      state.actionResult = `restart of ${rec.name}: ${la.phase}${la.message ? ` (${la.message})` : ""}`;
      pendingRestart = null;
    }
  }
  state.containers.set(rec.name, rec);
  dirty.add("overview");
}

function applyChange(ev) {
  const rev = ev.revision || 0;
  if (rev > state.head) state.head = rev;
  state.changes++;
  dirty.add("head");
  const rec = ev.record || {};
  const time = parseTime(rec.updated)?.getTime() || Date.now();
  if (ev.collection === "reconcile_status") applyReconciler(rec, rev, time);
  else if (ev.collection === "containers") {
    if (ev.action === "delete") state.containers.delete(ev.name);
    else applyContainer(rec, rev, time);
  }
  if (!ev.statusOnly) {
    addEvent({
      time, revision: rev, kind: `${ev.collection} ${ev.action}`,
      group: "change", title: ev.name || ev.id,
      detail: ev.collection === "sops" && ev.action === "create" ? "sealed into the ledger" : "",
      actor: ev.actor || "", // who wrote it; none for changes older than the actor column
    });
    if (ev.collection === "sops" && ev.action === "create") {
      addEvent({ time, revision: rev, kind: "Sealed", group: "status", title: ev.name, detail: "", actor: ev.actor || "" });
    }
  }
  if (current.coll === ev.collection) {
    if (current.id === ev.id && current.rerender && ev.action !== "delete") current.rerender(rec);
    const row = current.rows?.get(ev.id);
    if (row) row.upd.textContent = rec.updated || "";
  }
}

function flush() {
  frame = 0;
  const batch = queue;
  queue = [];
  for (const [name, data] of batch) {
    if (name === "create" || name === "update" || name === "delete") applyChange(data);
    else if (name === "reset") {
      state.head = data.revision || state.head;
      addEvent({ time: Date.now(), kind: "reset", group: "status", title: "the stream restarted from the head", detail: data.reason || "", revision: data.revision });
      loadStatus().then(draw, () => {});
    } else if (name === "heartbeat" && data.revision > state.head) {
      state.head = data.revision;
      dirty.add("head");
    }
  }
  draw();
}

function onWatchEvent(name, data) {
  queue.push([name, data]);
  if (!frame) frame = requestAnimationFrame(flush);
}

function onWatchState(s, detail) {
  const el = $("live");
  el.dataset.state = s;
  el.textContent = s === "live" ? "live" : s === "reconnecting" ? "reconnecting…" : "connecting…";
  el.title = detail || "";
}

// ---- loading -------------------------------------------------------------

async function loadStatus() {
  const [st, ctr, rs] = await Promise.all([
    api("/api/v1/status"),
    api("/api/v1/manifests/containers?view=record"),
    api("/api/collections/reconcile_status/records?perPage=200&fields=name,updated"),
  ]);
  if (st.status !== 200) throw new Error(st.body?.message || `status answered ${st.status}`);
  const s = st.body;
  state.head = Math.max(state.head, s.head || 0);
  state.observed = s.observedRevision;
  state.engine = s.engine;
  const updated = new Map((rs.body?.items || []).map((x) => [x.name, x.updated]));
  for (const r of s.reconcilers || []) {
    state.reconcilers.set(r.name, { ...r, lastPass: updated.get(r.name) });
    statusEvents(r.name, r, null);
  }
  if (ctr.status === 200) for (const c of ctr.body.items || []) state.containers.set(c.name, c);
  dirty.add("overview");
  return s.head || 0;
}

async function loadFiles() {
  const r = await api("/api/v1/files");
  state.files = r.status === 200 ? r.body.items : [];
  dirty.add("files");
  draw();
}

// ---- actions ---------------------------------------------------------------

let pendingRestart = null;

function result(text) {
  state.actionResult = text;
  dirty.add("overview");
  draw();
}

const actions = {
  async reconcile() {
    result("reconciling…");
    const r = await api("/api/v1/reconcile?wait=true&timeout=30", { method: "POST" });
    result(r.status === 200 ? `full pass ${r.body.requested} completed` : r.body?.message || `answered ${r.status}`);
  },
  async verifyLedger() {
    result("verifying the ledger…");
    const r = await api("/api/v1/ledger/verify");
    if (r.status !== 200) return result(r.body?.message || `answered ${r.status}`);
    const b = r.body;
    result(b.ok ? `ledger ok: ${b.verified} of ${b.entries} entries verified` : `ledger broken at entry ${b.firstBad}: ${b.message || ""}`);
  },
  async restart(name) {
    result(`restart of ${name} requested…`);
    const r = await api(`/api/v1/containers/${encodeURIComponent(name)}/restart`, { method: "POST" });
    if (r.status >= 300) return result(r.body?.message || `answered ${r.status}`);
    pendingRestart = name;
    result(`restart of ${name}: ${r.body.message || "requested"}; waiting for the outcome…`);
  },
};

// ---- views -----------------------------------------------------------------

function route() {
  const raw = location.hash.replace(/^#/, "") || "overview";
  const [path, qs] = raw.split("?");
  return { parts: path.split("/"), query: new URLSearchParams(qs || "") };
}

// The timeline redraws 200 entries and the chart: at most every 200 ms,
// so that a burst of changes leaves frames for input and scrolling.
const TIMELINE_EVERY_MS = 200;
let timelineAt = 0;
let timelineTimer = 0;
function drawTimelineSoon() {
  const wait = timelineAt + TIMELINE_EVERY_MS - performance.now();
  if (wait <= 0) {
    timelineAt = performance.now();
    drawTimeline($("view"), state);
  } else if (!timelineTimer) {
    timelineTimer = setTimeout(() => {
      timelineTimer = 0;
      if (route().parts[0] === "timeline") drawTimelineSoon();
    }, wait);
  }
}

function draw() {
  const { parts } = route();
  const view = parts[0];
  if (dirty.has("head") && $("head-top")) $("head-top").textContent = `r${state.head}`;
  if (view === "overview" && (dirty.has("overview") || dirty.has("head"))) drawOverview($("view"), state, actions);
  if (view === "timeline" && dirty.has("timeline")) drawTimelineSoon();
  if (view === "files" && dirty.has("files")) drawFiles($("view"), state);
  $("head-top").dataset.head = state.head;
  $("head-top").dataset.changes = state.changes;
  dirty.clear();
}

async function show() {
  const { parts, query } = route();
  const view = parts[0];
  for (const a of document.querySelectorAll("#tabs a")) {
    if (a.getAttribute("href") === `#${view}`) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (view === "records") {
    delete $("view").dataset.view;
    await drawRecords($("view"), parts, query, loadSession());
    return;
  }
  current.coll = null;
  delete $("view").dataset.view; // the overview builds its frame again
  timelineAt = 0; // a view just opened draws at once
  dirty.add(view);
  if (view === "files") loadFiles();
  draw();
}

window.addEventListener("hashchange", () => {
  if (loadSession()) show();
});

async function start() {
  const s = loadSession();
  if (!s) return showSignIn("", "info");
  $("signin").hidden = true;
  $("app").hidden = false;
  $("who").textContent = `${s.email} (${s.kind})`;
  let head;
  try {
    head = await loadStatus();
  } catch (e) {
    if (!loadSession()) return; // expired: the sign-in form is showing
    $("view").replaceChildren(h("p", { class: "error", role: "alert" }, e.message));
    return;
  }
  // The last few hundred changes fill the timeline and the chart; the
  // stream then goes on live from there.
  stream = watch({ since: Math.max(0, head - 500), onEvent: onWatchEvent, onState: onWatchState });
  await show();
}

start();
fill($("year"), new Date().getFullYear());
