// dom.js - building the page's elements. Every piece of data becomes a
// text node (textContent), never markup: a record holding "<script>" or
// "<img onerror>" shows as those characters.

// h("tr", {class: "x", onclick: fn}, "text", node, [more]) -> Element.
// Attributes: functions under on* are listeners; false/null are left out;
// "href" accepts only in-page links ("#...") and same-origin paths.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith("on") && typeof v === "function") {
      el.addEventListener(k.slice(2), v);
    } else if (k === "href") {
      const s = String(v);
      el.setAttribute("href", s.startsWith("#") || s.startsWith("/") ? s : "#");
    } else {
      el.setAttribute(k, v === true ? "" : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

// Replace the children of el with children.
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// SVG elements (the chart).
export function svg(tag, attrs, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  append(el, children);
  return el;
}

// "2026-12-07 01:39:18.770Z" (PocketBase's form) -> Date, or null.
export function parseTime(s) {
  if (!s) return null;
  const d = new Date(String(s).replace(" ", "T"));
  return isNaN(d) ? null : d;
}

// A short "12 s ago" / "3 min ago" for a time string, "—" for none.
export function ago(s, now = Date.now()) {
  const d = parseTime(s);
  if (!d) return "—";
  const sec = Math.max(0, Math.round((now - d.getTime()) / 1000));
  if (sec < 60) return `${sec} s ago`;
  if (sec < 3600) return `${Math.floor(sec / 60)} min ago`;
  if (sec < 86400) return `${Math.floor(sec / 3600)} h ago`;
  return d.toISOString().slice(0, 16).replace("T", " ");
}

// A status pill: ok (green), bad (red), warn, or plain.
export function pill(text, kind) {
  return h("span", { class: `pill ${kind || ""}` }, text);
}

// <div class=scroll><table id=ID> with a header row of heads and the rows
// given; every cell gets data-label = its column's head, which the phone
// layout shows beside the value (app.css) when rows fold into cards.
export function table(id, heads, rows) {
  for (const tr of rows) {
    [...tr.children].forEach((cell, i) => {
      if (heads[i]) cell.dataset.label = heads[i];
    });
  }
  return h("div", { class: "scroll" }, h("table", { id, class: "cards" },
    h("thead", {}, h("tr", {}, heads.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows)));
}

// Put rows (each with data-key) into box's table id, keeping the rows and
// cells already there whose content is unchanged: a live redraw then
// never replaces a button under the pointer or the keyboard focus. The
// first call builds the table (see table()).
export function patchTable(box, id, heads, rows) {
  const fresh = table(id, heads, rows);
  const tbody = box.querySelector(`#${id} tbody`);
  if (!tbody) {
    box.replaceChildren(fresh);
    return;
  }
  const old = new Map([...tbody.rows].map((r) => [r.dataset.key, r]));
  const keep = new Set();
  rows.forEach((row, i) => {
    let tr = old.get(row.dataset.key);
    if (tr && tr.cells.length === row.cells.length) {
      [...row.cells].forEach((cell, j) => {
        if (tr.cells[j].innerHTML !== cell.innerHTML) tr.cells[j].replaceChildren(...cell.childNodes);
      });
    } else {
      if (tr) tr.remove();
      tr = row;
    }
    keep.add(tr);
    if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] || null);
  });
  for (const tr of [...tbody.rows]) if (!keep.has(tr)) tr.remove();
}
