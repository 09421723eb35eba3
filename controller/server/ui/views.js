// views.js - the Overview, Timeline and Files views, drawn from the
// page's state (app.js). Each draw replaces its section's children once;
// app.js calls them at most once per animation frame.

import { h, fill, svg, ago, pill, table, patchTable } from "./dom.js";

function cond(conds, type) {
  return (conds || []).find((c) => c.type === type) || null;
}

// Ready / Degraded of a reconciler or container status.
function health(status) {
  const ready = cond(status?.conditions, "Ready");
  const degraded = cond(status?.conditions, "Degraded");
  if (degraded?.status === "True") return { text: "Degraded", kind: "bad", c: degraded };
  if (ready?.status === "True") return { text: "Ready", kind: "ok", c: ready };
  return { text: ready ? "Not ready" : "Unknown", kind: "warn", c: ready || degraded };
}

export function drawOverview(el, state, actions) {
  const rows = [...state.reconcilers.values()].map((r) => {
    const hl = health(r);
    return h(
      "tr",
      { "data-reconciler": r.name, "data-key": r.name },
      h("th", { scope: "row" }, r.name, h("div", { class: "muted" }, r.description || "")),
      h("td", {}, pill(hl.text, hl.kind)),
      h("td", {}, hl.c?.reason || ""),
      h("td", { class: "msg" }, hl.c?.message || r.lastError || ""),
      h("td", { class: "num" }, r.observedRevision ?? "—"),
      h("td", {}, r.lastPass ? ago(r.lastPass) : "—", h("div", { class: "muted" }, r.queue?.state || "")),
    );
  });
  const ctrs = [...state.containers.values()].map((c) => {
    const st = c.status || {};
    const hl = health(st);
    const la = st.lastAction;
    const br = st.breaker || {};
    const bud = st.budget;
    return h(
      "tr",
      { "data-container": c.name, "data-key": c.name },
      h("th", { scope: "row" }, c.name),
      h("td", {}, pill(hl.text, hl.kind), " ",
        st.container ? h("span", { class: "muted" }, st.container.status || "") : ""),
      h("td", {}, la ? `${la.action} ${la.phase} ${ago(la.finishedAt || la.at)}` : "—"),
      h("td", { class: "num" }, bud ? `${bud.left} of ${bud.max} left` : "—",
        h("div", { class: "muted" }, bud ? `per ${Math.round(bud.windowS / 60)} min · ${st.actions ?? 0} actions` : `${st.actions ?? 0} actions`)),
      h("td", {}, br.open ? pill(`open until ${br.until || "?"}`, "bad") : pill("closed", "ok")),
      h("td", {}, h("button", { type: "button", "data-restart": c.name,
        onclick: () => actions.restart(c.name) }, "Restart")),
    );
  });
  const eng = state.engine || {};
  // The frame (buttons included) is built once per visit; live redraws
  // patch the facts, the result and the tables' rows.
  if (el.dataset.view !== "overview") {
    el.dataset.view = "overview";
    fill(el,
      h("div", { class: "facts", id: "facts" }),
      h("div", { class: "actions" },
        h("button", { type: "button", id: "act-reconcile", onclick: actions.reconcile }, "Reconcile now"),
        h("button", { type: "button", id: "act-ledger", onclick: actions.verifyLedger }, "Verify ledger"),
        h("output", { id: "action-result", "aria-live": "polite" })),
      h("h2", {}, "Reconcilers"),
      h("div", { id: "reconcilers-box" }),
      h("h2", {}, "Containers"),
      h("div", { id: "containers-box" }));
  }
  const waiting = [...state.reconcilers.values()].filter((r) => r.queue && r.queue.state !== "idle").length;
  fill(el.querySelector("#facts"),
    h("div", {}, h("span", { class: "muted" }, "head revision "), h("strong", { id: "head", "data-head": state.head }, state.head)),
    h("div", {}, h("span", { class: "muted" }, "observed "), h("strong", {}, state.observed ?? "—")),
    h("div", {}, h("span", { class: "muted" }, "engine queue "), h("strong", {}, `${waiting} waiting`),
      h("span", { class: "muted" }, ` · ${eng.passes ?? 0} passes, full pass ${eng.fullPassCompleted ?? 0}/${eng.fullPassRequested ?? 0}`)));
  const out = el.querySelector("#action-result");
  if (out.textContent !== (state.actionResult || "")) out.textContent = state.actionResult || "";
  patchTable(el.querySelector("#reconcilers-box"), "reconcilers",
    ["Reconciler", "State", "Reason", "Message", "Observed", "Last pass"], rows);
  const box = el.querySelector("#containers-box");
  if (ctrs.length) patchTable(box, "containers", ["Container", "State", "Last restart", "Budget", "Breaker", ""], ctrs);
  else fill(box, h("p", { class: "muted" }, "No managed containers."));
}

const CHART_KINDS = [
  ["change", "changes"],
  ["drift", "drift corrected"],
  ["restart", "restarts"],
];

// Changes, drift corrections and restarts per 5 minutes over the last hour.
function chart(events, now) {
  const W = 600, H = 120, N = 12, span = 3600e3, step = span / N;
  const counts = CHART_KINDS.map(() => new Array(N).fill(0));
  for (const e of events) {
    const i = Math.floor((e.time - (now - span)) / step);
    const k = CHART_KINDS.findIndex(([g]) => g === e.group);
    if (i >= 0 && i < N && k >= 0) counts[k][i]++;
  }
  const max = Math.max(1, ...counts.flat());
  const bw = W / N / (CHART_KINDS.length + 1);
  const bars = [];
  counts.forEach((row, k) =>
    row.forEach((n, i) => {
      const bh = (n / max) * (H - 20);
      bars.push(svg("rect", { class: `bar k${k}`, x: i * (W / N) + k * bw + bw / 2, y: H - 14 - bh, width: bw, height: bh },
        svg("title", {}, `${n} ${CHART_KINDS[k][1]}`)));
    }));
  const labels = [0, 4, 8, 11].map((i) =>
    svg("text", { x: i * (W / N) + 2, y: H - 2, class: "axis" }, `-${60 - i * 5} min`));
  return h("figure", { class: "chart" },
    svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "changes, drift corrections and restarts over the last hour" },
      svg("text", { x: W - 4, y: 12, class: "axis end" }, `max ${max}`), bars, labels),
    h("figcaption", {}, CHART_KINDS.map(([, label], k) => h("span", { class: `key k${k}` }, label))));
}

export function drawTimeline(el, state) {
  const now = Date.now();
  const items = state.events.slice(-200).reverse().map((e) =>
    h("li", { class: `ev ${e.group}`, "data-kind": e.kind },
      h("time", { datetime: new Date(e.time).toISOString() }, new Date(e.time).toLocaleTimeString()),
      h("span", { class: "kind" }, e.kind),
      h("span", { class: "what" }, e.title),
      h("span", { class: "muted" }, e.detail || ""),
      h("span", { class: "muted actor" }, e.actor ? `by ${e.actor}` : ""),
      h("span", { class: "rev" }, e.revision ? `r${e.revision}` : "")));
  fill(el, chart(state.events, now),
    items.length ? h("ol", { id: "events", class: "events" }, items) : h("p", { class: "muted" }, "No events yet."));
}

function shortHash(s) {
  return s ? s.slice(0, 12) : "—";
}

export function drawFiles(el, state) {
  if (!state.files) {
    fill(el, h("p", { class: "muted" }, "Loading…"));
    return;
  }
  const rows = state.files.map((f) =>
    h("tr", { "data-path": f.relPath },
      h("th", { scope: "row", class: "path" }, f.relPath,
        f.secret ? h("div", { class: "muted" }, "secret · keys: ", f.keys.length ? f.keys.join(", ") : "none") : ""),
      h("td", {}, f.ready === "True" ? pill("Ready", "ok") : pill(f.ready || "Unknown", "warn")),
      h("td", { class: "mono", title: f.sha256 }, shortHash(f.sha256)),
      h("td", { class: "num" }, f.size ?? "missing"),
      h("td", { class: "mono" }, f.mode || ""),
      h("td", {}, f.reconciler,
        h("div", { class: "muted" },
          f.record
            ? h("a", { href: `#records/${f.record.collection}/name/${encodeURIComponent(f.record.name)}` }, `${f.record.collection}/${f.record.name}`)
            : f.sources.map((c, i) => [i ? ", " : "", h("a", { href: `#records/${c}` }, c)])))));
  fill(el, table("files", ["File", "State", "SHA-256", "Bytes", "Mode", "From"], rows));
}

