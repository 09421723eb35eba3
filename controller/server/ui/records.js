// records.js - the Records view: a collection's records through the
// records API (PocketBase filter, sort, paging; only id, name and times
// are fetched, so no secret value reaches the list), one record's JSON
// through /api/v1/manifests (secrets masked by the server), relations as
// links, and, for superusers, a form that PATCHes the record's fields and
// shows the server's validation errors beside them.

import { h, fill, table } from "./dom.js";
import { api } from "./api.js";

const PER_PAGE = 50;
const FALLBACK = ["ai_agents", "ai_prompts", "ai_models", "mcp_servers", "llm_keys", "llm_providers",
  "tool_permissions", "sops", "proposals", "ssh_keys", "cron_jobs", "containers", "chats", "messages",
  "users", "notifications", "reconcile_status"];

let meta = null; // {names: [...], byId: {id: name}, fields: {coll: [...]}}

async function collections() {
  if (meta) return meta;
  const r = await api("/api/collections?perPage=500");
  if (r.status === 200) {
    meta = { names: r.body.items.map((c) => c.name), byId: {}, fields: {} };
    for (const c of r.body.items) {
      meta.byId[c.id] = c.name;
      meta.fields[c.name] = c.fields || [];
    }
  } else {
    meta = { names: FALLBACK, byId: {}, fields: {} }; // admins may not read metadata
  }
  return meta;
}

// The current view, so that app.js can update it live.
export const current = { coll: null, id: null, rows: null, record: null, rerender: null };

function errorText(r) {
  return r.body?.message || `the server answered ${r.status}`;
}

// Draw the view the hash route names: ["records", coll?, id | "name", name?]
export async function drawRecords(el, parts, query, session) {
  const m = await collections();
  const coll = parts[1] || "";
  Object.assign(current, { coll: coll || null, id: null, rows: null, record: null, rerender: null });
  const picker = h("nav", { class: "colls", "aria-label": "collections" },
    m.names.map((n) => h("a", { href: `#records/${n}`, "aria-current": n === coll ? "page" : false }, n)));
  if (!coll) {
    fill(el, picker, h("p", { class: "muted" }, "Pick a collection."));
    return;
  }
  if (parts[2]) {
    await drawRecord(el, picker, coll, parts[2] === "name" ? null : parts[2], parts[2] === "name" ? decodeURIComponent(parts[3] || "") : null, session);
    return;
  }
  const filter = query.get("filter") || "";
  const sort = query.get("sort") || "-updated";
  const page = Math.max(1, parseInt(query.get("page") || "1", 10) || 1);
  const form = h("form", { class: "query", role: "search" },
    h("label", {}, "Filter ", h("input", { name: "filter", value: filter, placeholder: "name ~ 'po'", size: 30 })),
    h("label", {}, "Sort ", h("input", { name: "sort", value: sort, size: 12 })),
    h("button", { type: "submit" }, "Apply"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams({ filter: form.filter.value, sort: form.sort.value, page: "1" });
    location.hash = `#records/${coll}?${q}`;
  });
  const q = new URLSearchParams({ page, perPage: PER_PAGE, sort, fields: "id,name,created,updated" });
  if (filter) q.set("filter", filter);
  const r = await api(`/api/collections/${encodeURIComponent(coll)}/records?${q}`);
  if (r.status !== 200) {
    fill(el, picker, form, h("p", { class: "error", role: "alert" }, errorText(r)));
    return;
  }
  const rows = new Map();
  const trs = r.body.items.map((it) => {
    const upd = h("td", {}, it.updated || "");
    const tr = h("tr", { "data-id": it.id },
      h("td", { class: "mono" }, h("a", { href: `#records/${coll}/${it.id}` }, it.id)),
      h("td", {}, it.name ?? ""), upd);
    rows.set(it.id, { tr, upd });
    return tr;
  });
  current.rows = rows;
  const pages = r.body.totalPages || 1;
  const link = (p, label) => {
    const qq = new URLSearchParams({ filter, sort, page: p });
    return h("a", { href: `#records/${coll}?${qq}`, class: "pager" }, label);
  };
  fill(el, picker, form,
    h("p", { class: "muted" }, `${r.body.totalItems} records · page ${page} of ${pages}`),
    table("records", ["id", "name", "updated"], trs),
    h("p", {}, page > 1 ? link(page - 1, "← previous") : "", " ", page < pages ? link(page + 1, "next →") : ""));
}

// Show the record's JSON (masked), relations as links, and the edit form.
async function drawRecord(el, picker, coll, id, name, session) {
  if (!name) {
    const r = await api(`/api/collections/${encodeURIComponent(coll)}/records/${encodeURIComponent(id)}?fields=id,name`);
    if (r.status !== 200) {
      fill(el, picker, h("p", { class: "error", role: "alert" }, errorText(r)));
      return;
    }
    name = r.body.name ?? id; // a collection without a name field: the store names the record by id
  }
  const r = await api(`/api/v1/manifests/${encodeURIComponent(coll)}/${encodeURIComponent(name)}?view=record`);
  if (r.status !== 200) {
    fill(el, picker, h("p", { class: "error", role: "alert" }, errorText(r)));
    return;
  }
  current.id = r.body.id;
  current.record = r.body;
  const m = await collections();
  const fields = m.fields[coll] || [];
  const title = h("h2", {});
  const links = h("ul", { class: "rels" });
  const pre = h("pre", { id: "record-json", tabindex: 0 });
  // A live change redraws the JSON and the links, never the form, so an
  // edit in progress (and the errors beside it) survives status writes.
  const draw = (rec) => {
    current.record = rec;
    const rels = fields.filter((f) => f.type === "relation" && f.collectionId);
    fill(links, rels.flatMap((f) => {
      const v = rec.data?.[f.name];
      const ids = Array.isArray(v) ? v : v ? [v] : [];
      const target = m.byId[f.collectionId] || f.collectionId;
      return ids.map((x) => h("li", {}, `${f.name} → `, h("a", { href: `#records/${target}/${x}` }, `${target}/${x}`)));
    }));
    fill(title, `${coll}/${rec.name}`);
    pre.textContent = JSON.stringify(rec, null, 2);
  };
  current.rerender = draw;
  draw(r.body);
  const box = h("div", {}, title, links, pre,
    session.kind === "superuser" ? editForm(coll, r.body, fields) : h("p", { class: "muted" }, "Only superusers may edit records here."));
  fill(el, picker, box);
}

function editForm(coll, rec, fields) {
  const data = rec.data || {};
  const skip = new Set(["id", "created", "updated"]);
  const names = (fields.length ? fields.map((f) => f.name) : Object.keys(data)).filter((n) => !skip.has(n));
  const inputs = {};
  const errs = {};
  const rowsEl = names.map((n) => {
    const v = data[n];
    const secret = typeof v === "string" && v.startsWith("***hmac:");
    const text = v === undefined || v === null ? "" : typeof v === "string" ? v : JSON.stringify(v);
    const input = text.length > 60 || typeof v === "object"
      ? h("textarea", { name: n, rows: 3, id: `f-${n}` }, text)
      : h("input", { name: n, id: `f-${n}`, value: text });
    input.dataset.orig = text;
    input.dataset.json = typeof v === "string" || v === undefined || v === null ? "" : "1";
    if (secret) input.setAttribute("placeholder", "secret: type a new value to replace it");
    if (secret) input.value = "", (input.dataset.orig = "");
    inputs[n] = input;
    errs[n] = h("span", { class: "field-error", id: `e-${n}`, role: "alert" });
    return h("div", { class: "field" }, h("label", { for: `f-${n}` }, n), input, errs[n]);
  });
  const status = h("output", { "aria-live": "polite" });
  const form = h("form", { class: "edit", id: "edit-form" }, h("h3", {}, "Edit"), rowsEl,
    h("button", { type: "submit" }, "Save"), " ", status);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    for (const e of Object.values(errs)) e.textContent = "";
    const body = {};
    for (const [n, input] of Object.entries(inputs)) {
      if (input.value === input.dataset.orig) continue;
      if (input.dataset.json) {
        try {
          body[n] = JSON.parse(input.value);
        } catch {
          errs[n].textContent = "not valid JSON";
          return;
        }
      } else {
        body[n] = input.value;
      }
    }
    if (!Object.keys(body).length) {
      status.textContent = "Nothing changed.";
      return;
    }
    status.textContent = "Saving…";
    const r = await api(`/api/collections/${encodeURIComponent(coll)}/records/${encodeURIComponent(rec.id)}`, { method: "PATCH", body });
    if (r.status === 200) {
      status.textContent = "Saved.";
      return;
    }
    status.textContent = r.body?.message || `the server answered ${r.status}`;
    for (const [n, e] of Object.entries(r.body?.data || {})) {
      if (errs[n]) errs[n].textContent = e.message || e.code || "invalid";
      else status.textContent += ` (${n}: ${e.message || e.code})`;
    }
  });
  return form;
}
