// The flow list: a virtualised table (only the rows in view are in the DOM, so 10,000 calls
// scroll as smoothly as ten), sortable by any column, columns resizable by dragging their
// header edge (widths kept in localStorage).

import { clear, fmtBytes, fmtCost, fmtDur, fmtInt, fmtTime, h, setText } from "./dom.js";
import { latencies, statusChip } from "./detail.js";
import { failedAfterSuccess, matches, records, setSort, state, stored, tintOf, tsOf, visibleOrder } from "./store.js";

const $ = (id) => document.getElementById(id);
const OVERSCAN = 8; // rows rendered beyond each edge of the viewport
const WIDTHS_KEY = "llmtap.columns";

// wide: only while the detail pane is closed (the narrow list leaves them out).
export const COLUMNS = [
  { key: "time", label: "Time", width: 104 },
  { key: "source", label: "Source", width: 72, wide: true },
  { key: "agent", label: "Agent", width: 84, wide: true },
  { key: "method", label: "Method", width: 70, wide: true },
  { key: "url", label: "Host / path", width: null },
  { key: "status", label: "Status", width: 82 },
  { key: "model", label: "Model", width: 150 },
  { key: "tokens", label: "Tokens in / out", width: 124, num: true },
  { key: "cost", label: "Cost", width: 98, num: true, wide: true },
  { key: "size", label: "Size ↑/↓", width: 132, num: true, wide: true },
  { key: "dur", label: "Duration", width: 86, num: true },
];

const SOURCE_LABELS = {
  "agent-bridge": "bridge",
  "custom-host": "custom",
  "http-proxy": "proxy",
  "system-proxy": "system",
  router: "router",
};

const view = {
  rowHeight: 28,
  rendered: new Map(), // id -> <tr> in the DOM now
  painted: new WeakMap(), // <tr> -> the record object it shows
  widths: loadWidths(),
  columns: [],
  pending: false,
  onOpen: null,
};

function loadWidths() {
  try {
    const saved = JSON.parse(localStorage.getItem(WIDTHS_KEY) || "{}");
    return saved && typeof saved === "object" ? saved : {};
  } catch {
    return {};
  }
}

// Narrow: the detail pane is open, or the window is too small for every column (1024 px).
function isNarrow() {
  return document.body.classList.contains("with-detail") || window.innerWidth < 1200;
}

function activeColumns() {
  const narrow = isNarrow();
  return COLUMNS.filter((c) => !(narrow && c.wide));
}

// --------------------------------------------------------------------------- header

export function buildHeader() {
  view.columns = activeColumns();
  const head = $("flow-head");
  const cols = () => view.columns.map((c) => {
    const col = h("col", { class: `c-${c.key}` });
    const w = view.widths[c.key] ?? c.width;
    if (w) col.style.width = `${w}px`;
    return col;
  });
  for (const table of [head, $("flow-table")]) {
    const old = table.querySelector("colgroup");
    if (old) old.remove();
    table.prepend(h("colgroup", null, cols()));
  }
  const tr = h("tr");
  for (const c of view.columns) {
    const sorted = state.sort.key === c.key;
    const th = h(
      "th",
      {
        class: `c-${c.key}${c.num ? " num" : ""}${sorted ? " sorted" : ""}`,
        dataset: { key: c.key },
        title: `Sort by ${c.label.toLowerCase()}`,
        "aria-sort": sorted ? (state.sort.dir > 0 ? "ascending" : "descending") : "none",
      },
      h("span", { class: "th-label", text: c.label }),
      sorted ? h("span", { class: "sort-mark", text: state.sort.dir > 0 ? " ▲" : " ▼" }) : null,
      h("span", { class: "resizer", title: "Drag to resize" }),
    );
    tr.appendChild(th);
  }
  const thead = head.querySelector("thead");
  clear(thead);
  thead.appendChild(tr);
  for (const el of view.rendered.values()) el.remove();
  view.rendered.clear();
  schedule();
}

function wireHeader() {
  const head = $("flow-head");
  head.addEventListener("click", (ev) => {
    if (ev.target.closest(".resizer")) return;
    const th = ev.target.closest("th[data-key]");
    if (!th) return;
    setSort(th.dataset.key);
    buildHeader();
  });
  head.addEventListener("pointerdown", (ev) => {
    const handle = ev.target.closest(".resizer");
    if (!handle) return;
    ev.preventDefault();
    const th = handle.parentElement;
    const key = th.dataset.key;
    const startX = ev.clientX;
    const startW = th.getBoundingClientRect().width;
    const cols = document.querySelectorAll(`col.c-${key}`);
    const move = (e) => {
      const w = Math.max(40, Math.round(startW + e.clientX - startX));
      view.widths[key] = w;
      for (const col of cols) col.style.width = `${w}px`;
    };
    const up = () => {
      window.removeEventListener("pointermove", move);
      window.removeEventListener("pointerup", up);
      try {
        localStorage.setItem(WIDTHS_KEY, JSON.stringify(view.widths));
      } catch {
        /* storage full or off: widths last for this page only */
      }
    };
    window.addEventListener("pointermove", move);
    window.addEventListener("pointerup", up);
  });
}

// --------------------------------------------------------------------------- rows

function makeRow(id) {
  const tr = h("tr", { class: "flow", dataset: { id } });
  for (const c of view.columns) tr.appendChild(h("td", { class: `c-${c.key}` }));
  return tr;
}

function paint(tr, r) {
  const cells = tr.children;
  view.columns.forEach((c, i) => paintCell(c.key, cells[i], r));
  const key = r.contextKey || "";
  if (tr.dataset.ctx !== key) {
    tr.dataset.ctx = key;
    if (key) tr.style.setProperty("--hue", String(tintOf(key)));
    else tr.style.removeProperty("--hue");
    tr.classList.toggle("has-ctx", !!key);
  }
  tr.classList.toggle("is-llm", r.detectedKind === "llm");
  tr.classList.toggle("has-note", !!r.annotation);
  tr.classList.toggle("is-stored", stored.has(r.id));
  tr.classList.toggle("row-error", r.status === "error" || (typeof r.status === "number" && r.status >= 400) || failedAfterSuccess(r));
  tr.classList.toggle("selected", r.id === state.selected);
  const snippet = state.search.snippets.get(r.id);
  tr.title = snippet ? `found: ${snippet}` : "";
}

function paintCell(key, td, r) {
  const llm = r.llm;
  switch (key) {
    case "time":
      return setText(td, fmtTime(tsOf(r)));
    case "source":
      td.title = r.source ?? "";
      return setText(td, SOURCE_LABELS[r.source] ?? String(r.source ?? ""));
    case "agent":
      return setText(td, r.agent ?? "");
    case "method":
      return setText(td, r.method ?? "");
    case "url":
      return paintUrl(td, r);
    case "status":
      return paintStatus(td, r);
    case "model": {
      const model = llm?.model ?? r.mappedModel ?? r.sourceModel ?? "";
      td.title = r.sourceModel && r.mappedModel && r.sourceModel !== r.mappedModel ? `${r.sourceModel} → ${r.mappedModel}` : model;
      return setText(td, model);
    }
    case "tokens":
      return setText(td, llm && (llm.tokensIn || llm.tokensOut) ? `${llm.usageEstimated ? "~" : ""}${fmtInt(llm.tokensIn ?? 0)} / ${fmtInt(llm.tokensOut ?? 0)}` : "");
    case "cost":
      return setText(td, llm && llm.costUsd !== null && llm.costUsd !== undefined ? fmtCost(llm.costUsd) : "");
    case "size": {
      const up = r.requestSize ?? 0;
      const down = r.responseSize ?? 0;
      td.title = `${fmtInt(up)} bytes sent · ${fmtInt(down)} bytes received`;
      return setText(td, up || down ? `${fmtBytes(up)} / ${fmtBytes(down)}` : "");
    }
    case "dur":
      return setText(td, fmtDur(latencies(r).total));
    default:
      return undefined;
  }
}

function paintUrl(td, r) {
  const host = String(r.host ?? "");
  // A CONNECT tunnel has no path: its target is host:port.
  const path = r.method === "CONNECT" ? `:${r.port ?? 443}` : String(r.path ?? "");
  const v = `${host}\u0000${path}`;
  if (td.dataset.v === v) return;
  td.dataset.v = v;
  clear(td);
  td.append(h("span", { class: "host", text: host }), h("span", { class: "path", text: path }));
  td.title = host + path;
}

function paintStatus(td, r) {
  const key = `${r.status}|${failedAfterSuccess(r)}`;
  if (td.dataset.v === key) return;
  td.dataset.v = key;
  clear(td);
  td.appendChild(statusChip(r));
}

// --------------------------------------------------------------------------- window

export function schedule() {
  if (view.pending) return;
  view.pending = true;
  requestAnimationFrame(() => {
    view.pending = false;
    render();
  });
}

export function render() {
  const scroller = $("flows");
  const body = $("flow-body");
  const ids = visibleOrder();
  $("flow-sizer").style.height = `${ids.length * view.rowHeight}px`;
  const top = scroller.scrollTop;
  const height = scroller.clientHeight || 600;
  const first = Math.max(0, Math.floor(top / view.rowHeight) - OVERSCAN);
  const last = Math.min(ids.length, Math.ceil((top + height) / view.rowHeight) + OVERSCAN);
  const want = ids.slice(first, last);
  const keep = new Set(want);
  for (const [id, tr] of view.rendered) {
    if (!keep.has(id)) {
      tr.remove();
      view.rendered.delete(id);
    }
  }
  let prev = null;
  for (const id of want) {
    let tr = view.rendered.get(id);
    if (!tr) {
      tr = makeRow(id);
      view.rendered.set(id, tr);
    }
    const r = records.get(id);
    if (view.painted.get(tr) !== r || tr.classList.contains("selected") !== (id === state.selected)) {
      paint(tr, r);
      view.painted.set(tr, r);
    }
    const at = prev ? prev.nextSibling : body.firstChild;
    if (at !== tr) body.insertBefore(tr, at);
    prev = tr;
  }
  $("flow-table").style.transform = `translateY(${first * view.rowHeight}px)`;
  measure(body);
}

// The row height comes from the stylesheet; measured once from a real row.
function measure(body) {
  const row = body.firstElementChild;
  if (!row || view.measured) return;
  const height = row.getBoundingClientRect().height;
  if (height > 0) {
    view.measured = true;
    if (Math.abs(height - view.rowHeight) > 0.5) {
      view.rowHeight = height;
      schedule();
    }
  }
}

export function scrollToId(id) {
  const i = visibleOrder().indexOf(id);
  if (i < 0) return;
  const scroller = $("flows");
  const head = $("flow-head").getBoundingClientRect().height;
  const top = i * view.rowHeight;
  if (top < scroller.scrollTop) scroller.scrollTop = top;
  else if (top + view.rowHeight > scroller.scrollTop + scroller.clientHeight - head) {
    scroller.scrollTop = top + view.rowHeight - scroller.clientHeight + head;
  }
  render();
}

export function repaint(id) {
  const tr = view.rendered.get(id);
  const r = records.get(id);
  if (tr && r) {
    paint(tr, r);
    view.painted.set(tr, r);
  }
}

export function shownCount() {
  return visibleOrder().length;
}

export function isShown(r) {
  return matches(r);
}

export function initList({ onOpen }) {
  view.onOpen = onOpen;
  buildHeader();
  wireHeader();
  $("flows").addEventListener("scroll", schedule, { passive: true });
  new ResizeObserver(schedule).observe($("flows"));
  window.addEventListener("resize", () => {
    if (view.columns.length !== activeColumns().length) buildHeader();
  });
  $("flow-body").addEventListener("click", (ev) => {
    const tr = ev.target.closest("tr.flow");
    if (tr) view.onOpen(tr.dataset.id);
  });
}
