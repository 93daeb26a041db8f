// llmtap inspector: live flow list over the WebSocket, filters, detail pane, capture modes,
// recording sessions and the router overview. No build step; ES modules served as-is.

import {
  clear,
  fmtCost,
  fmtDur,
  fmtInt,
  fmtTime,
  h,
  hueOf,
  jsonView,
  bodyView,
  setText,
} from "./dom.js";
import {
  conversationTab,
  latencies,
  requestTab,
  responseTab,
  statusChip,
  timingTab,
} from "./detail.js";
import { api, listOf } from "./http.js";
import { loadAgentsView } from "./agents.js";
import { loadRouterView } from "./router.js";

const API = "/api/tools/traffic-inspector";
const MAX_RECORDS = 2000;
const $ = (id) => document.getElementById(id);

// --------------------------------------------------------------------------- state

const records = new Map(); // id -> record
const rows = new Map(); // id -> <tr>
const state = {
  selected: null,
  detailOpen: true,
  tab: "conversation",
  showAll: false,
  filter: { profile: "all", text: "", status: "", source: "", agent: "", session: "", context: null },
  sources: new Set(),
  agents: new Set(),
  activeSession: null,
};

// --------------------------------------------------------------------------- records

function tsOf(record) {
  const ms = Date.parse(record.timestamp);
  return Number.isFinite(ms) ? ms : 0;
}

function statusClass(status) {
  if (status === "in-flight") return "in-flight";
  if (status === "error") return "error";
  if (typeof status === "number" && status >= 200 && status < 600) return `${Math.floor(status / 100)}xx`;
  return "";
}

function matches(r) {
  const f = state.filter;
  if (f.profile === "llm" && r.detectedKind !== "llm") return false;
  if (f.profile === "custom" && r.source !== "custom-host") return false;
  if (f.status && statusClass(r.status) !== f.status) return false;
  if (f.source && r.source !== f.source) return false;
  if (f.agent && r.agent !== f.agent) return false;
  if (f.session && r.sessionId !== f.session) return false;
  if (f.context && r.contextKey !== f.context) return false;
  if (f.text) {
    const hay = `${r.host} ${r.path} ${r.llm?.model ?? ""} ${r.sourceModel ?? ""} ${r.mappedModel ?? ""}`;
    if (!hay.toLowerCase().includes(f.text)) return false;
  }
  return true;
}

function upsert(record, isNew) {
  if (!record || typeof record.id !== "string") return;
  const existed = records.has(record.id);
  records.set(record.id, record);
  noteValues(record);
  let tr = rows.get(record.id);
  if (!tr) {
    tr = makeRow(record);
    rows.set(record.id, tr);
    placeRow(tr, record, isNew && !existed);
  }
  paintRow(tr, record);
  if (records.size > MAX_RECORDS) evictOldest();
  if (record.id === state.selected) renderDetail(false);
}

// New calls go on top; an update of an unknown id (snapshot order, reconnects) is placed by
// timestamp so the list stays newest first.
function placeRow(tr, record, atTop) {
  const body = $("flow-body");
  if (atTop || !body.firstChild) return body.prepend(tr);
  const ts = tsOf(record);
  for (let el = body.firstChild; el; el = el.nextSibling) {
    const other = records.get(el.dataset.id);
    if (other && tsOf(other) < ts) return body.insertBefore(tr, el);
  }
  body.appendChild(tr);
}

function evictOldest() {
  const body = $("flow-body");
  while (records.size > MAX_RECORDS && body.lastChild) {
    const id = body.lastChild.dataset.id;
    body.lastChild.remove();
    rows.delete(id);
    records.delete(id);
  }
}

function removeAll() {
  records.clear();
  rows.clear();
  clear($("flow-body"));
  select(null);
  scheduleFooter();
}

function loadSnapshot(list) {
  const sorted = [...list].filter((r) => r && r.id).sort((a, b) => tsOf(b) - tsOf(a));
  const keep = state.selected;
  records.clear();
  rows.clear();
  const frag = document.createDocumentFragment();
  for (const r of sorted.slice(0, MAX_RECORDS)) {
    records.set(r.id, r);
    noteValues(r);
    const tr = makeRow(r);
    rows.set(r.id, tr);
    paintRow(tr, r);
    frag.appendChild(tr);
  }
  const body = $("flow-body");
  clear(body);
  body.appendChild(frag);
  if (keep && records.has(keep)) select(keep);
  else select(null);
  scheduleFooter();
}

// --------------------------------------------------------------------------- rows

const SOURCE_LABELS = {
  "agent-bridge": "bridge",
  "custom-host": "custom",
  "http-proxy": "proxy",
  "system-proxy": "system",
  router: "router",
};

function makeRow(record) {
  const tr = h("tr", { class: "flow", dataset: { id: record.id } });
  for (const cls of ["time", "source", "agent", "method", "url", "status", "model", "tokens", "cost", "dur"]) {
    tr.appendChild(h("td", { class: `c-${cls}` }));
  }
  return tr;
}

function paintRow(tr, r) {
  const c = tr.children;
  setText(c[0], fmtTime(tsOf(r)));
  setText(c[1], SOURCE_LABELS[r.source] ?? String(r.source ?? ""));
  c[1].title = r.source ?? "";
  setText(c[2], r.agent ?? "");
  setText(c[3], r.method ?? "");
  paintUrl(c[4], r);
  paintStatus(c[5], r);
  const model = r.llm?.model ?? r.mappedModel ?? r.sourceModel ?? "";
  setText(c[6], model);
  c[6].title = r.sourceModel && r.mappedModel && r.sourceModel !== r.mappedModel ? `${r.sourceModel} → ${r.mappedModel}` : model;
  const llm = r.llm;
  setText(c[7], llm && (llm.tokensIn || llm.tokensOut) ? `${llm.usageEstimated ? "~" : ""}${fmtInt(llm.tokensIn ?? 0)} / ${fmtInt(llm.tokensOut ?? 0)}` : "");
  setText(c[8], llm && llm.costUsd !== null && llm.costUsd !== undefined ? fmtCost(llm.costUsd) : "");
  setText(c[9], fmtDur(latencies(r).total));

  const key = r.contextKey || "";
  if (tr.dataset.ctx !== key) {
    tr.dataset.ctx = key;
    if (key) tr.style.setProperty("--hue", String(hueOf(key)));
    else tr.style.removeProperty("--hue");
    tr.classList.toggle("has-ctx", !!key);
  }
  tr.classList.toggle("is-llm", r.detectedKind === "llm");
  tr.classList.toggle("has-note", !!r.annotation);
  tr.hidden = !matches(r);
}

function paintUrl(td, r) {
  const host = String(r.host ?? "");
  const path = String(r.path ?? "");
  if (td.dataset.v === host + "\u0000" + path) return;
  td.dataset.v = host + "\u0000" + path;
  clear(td);
  td.append(h("span", { class: "host", text: host }), h("span", { class: "path", text: path }));
  td.title = host + path;
}

function paintStatus(td, r) {
  const key = `${r.status}`;
  if (td.dataset.v === key) return;
  td.dataset.v = key;
  clear(td);
  td.appendChild(statusChip(r));
  td.parentElement?.classList.toggle("row-error", r.status === "error" || (typeof r.status === "number" && r.status >= 400));
}

function noteValues(r) {
  if (r.source && !state.sources.has(r.source)) {
    state.sources.add(r.source);
    addOption($("f-source"), r.source, r.source);
  }
  if (r.agent && !state.agents.has(r.agent)) {
    state.agents.add(r.agent);
    addOption($("f-agent"), r.agent, r.agent);
  }
}

function addOption(select, value, label) {
  const opt = document.createElement("option");
  opt.value = value;
  opt.textContent = label;
  select.appendChild(opt);
}

function applyFilter() {
  for (const [id, tr] of rows) {
    const r = records.get(id);
    if (r) tr.hidden = !matches(r);
  }
  scheduleFooter();
  updateExportLinks();
}

// --------------------------------------------------------------------------- footer

let footerPending = false;
function scheduleFooter() {
  if (footerPending) return;
  footerPending = true;
  setTimeout(() => {
    footerPending = false;
    renderFooter();
  }, 50);
}

function renderFooter() {
  let shown = 0;
  let tin = 0;
  let tout = 0;
  let cost = 0;
  let priced = false;
  for (const [id, tr] of rows) {
    if (tr.hidden) continue;
    shown++;
    const llm = records.get(id)?.llm;
    if (!llm) continue;
    tin += llm.tokensIn ?? 0;
    tout += llm.tokensOut ?? 0;
    if (Number.isFinite(llm.costUsd)) {
      cost += llm.costUsd;
      priced = true;
    }
  }
  setText($("f-count"), `${fmtInt(shown)} shown / ${fmtInt(records.size)} captured`);
  setText($("f-tokens"), `tokens in ${fmtInt(tin)} · out ${fmtInt(tout)}`);
  setText($("f-cost"), `cost ${priced ? fmtCost(cost) : "–"}`);
  $("empty").hidden = records.size > 0;
}

// --------------------------------------------------------------------------- selection + detail

function select(id, { scroll = false } = {}) {
  if (state.selected && rows.get(state.selected)) rows.get(state.selected).classList.remove("selected");
  if (state.selected !== id) state.showAll = false;
  state.selected = id && records.has(id) ? id : null;
  const tr = state.selected ? rows.get(state.selected) : null;
  if (tr) {
    tr.classList.add("selected");
    if (scroll) tr.scrollIntoView({ block: "nearest" });
  }
  $("f-context").disabled = !(tr && records.get(state.selected).contextKey) && !state.filter.context;
  renderDetail(true);
}

function visibleIds() {
  const ids = [];
  for (let el = $("flow-body").firstChild; el; el = el.nextSibling) if (!el.hidden) ids.push(el.dataset.id);
  return ids;
}

function move(delta) {
  const ids = visibleIds();
  if (!ids.length) return;
  const i = ids.indexOf(state.selected);
  const next = i < 0 ? (delta > 0 ? 0 : ids.length - 1) : Math.min(ids.length - 1, Math.max(0, i + delta));
  select(ids[next], { scroll: true });
}

function paintHue(el, key) {
  el.style.setProperty("--hue", String(hueOf(key)));
}

// Annotate/replay hold user input: an update of the record must not wipe what is being typed.
function renderDetail(force) {
  const pane = $("detail");
  const r = state.selected ? records.get(state.selected) : null;
  const open = !!r && state.detailOpen;
  pane.hidden = !open;
  document.body.classList.toggle("with-detail", open);
  if (!open) return;
  if (!force && (state.tab === "annotate" || state.tab === "replay")) return;

  const title = $("detail-title");
  clear(title);
  title.append(
    statusChip(r),
    h("span", { class: "mono method", text: r.method ?? "" }),
    h("span", { class: "mono", text: `${r.host}${r.path}` }),
    r.llm?.model ? h("span", { class: "badge model", text: r.llm.model }) : null,
  );
  for (const btn of document.querySelectorAll(".tab")) btn.classList.toggle("active", btn.dataset.tab === state.tab);
  const body = $("tab-body");
  const keepScroll = force ? 0 : body.scrollTop;
  clear(body);
  body.appendChild(tabContent(r));
  body.scrollTop = keepScroll;
}

function tabContent(r) {
  switch (state.tab) {
    case "response":
      return responseTab(r);
    case "request":
      return requestTab(r);
    case "timing":
      return timingTab(r);
    case "annotate":
      return annotateTab(r);
    case "replay":
      return replayTab(r);
    default:
      return conversationTab(r, {
        records: records.values(),
        showAll: state.showAll,
        paintHue,
        toggleShowAll: () => {
          state.showAll = !state.showAll;
          renderDetail(false);
        },
      });
  }
}

function annotateTab(r) {
  const area = h("textarea", { id: "annotation", maxlength: "10000", rows: "8", placeholder: "Notes about this call (kept with the record and in any session holding it)" });
  area.value = r.annotation ?? "";
  const status = h("span", { class: "muted", id: "annotation-status" });
  const save = h("button", {
    type: "button",
    id: "annotation-save",
    class: "primary",
    text: "Save annotation",
    onclick: async () => {
      save.disabled = true;
      const res = await api("PUT", `${API}/requests/${encodeURIComponent(r.id)}/annotation`, { annotation: area.value });
      save.disabled = false;
      if (res.ok) {
        const current = records.get(r.id);
        if (current) upsert({ ...current, annotation: area.value }, false);
        status.textContent = "saved";
      } else {
        status.textContent = `not saved: ${res.message}`;
      }
    },
  });
  return h("div", { class: "pad-sections" }, area, h("div", { class: "row-actions" }, save, status));
}

function replayTab(r) {
  const model = h("input", { type: "text", id: "replay-model", placeholder: r.llm?.model ? `model (default ${r.llm.model})` : "model override (optional)" });
  const result = h("div", { id: "replay-result" });
  const run = h("button", {
    type: "button",
    id: "replay-run",
    class: "primary",
    text: "Replay through the router",
    onclick: async () => {
      run.disabled = true;
      clear(result);
      result.append(h("div", { class: "muted" }, h("span", { class: "spinner" }), " replaying…"));
      const body = model.value.trim() ? { model: model.value.trim() } : {};
      const res = await api("POST", `${API}/requests/${encodeURIComponent(r.id)}/replay`, body);
      run.disabled = false;
      clear(result);
      const figures = ["model", "provider", "tokens-in", "tokens-out", "response-cost", "latency-ms"]
        .map((k) => [k, res.headers?.get(`x-omniroute-${k}`)])
        .filter(([, v]) => v);
      result.append(
        h("div", { class: "status-line" }, h("span", { class: `status ${res.ok ? "st-2xx" : "st-error"}`, text: String(res.status || "failed") }), " ", figures.map(([k, v]) => h("span", { class: "badge", text: `${k} ${v}` }))),
        res.ok ? null : h("div", { class: "error-box", text: res.message }),
        typeof res.data === "object" && res.data !== null ? jsonView(res.data) : bodyView(res.text ?? ""),
        h("p", { class: "muted small", text: "The replay is recorded as a new call (source router) in the list." }),
      );
    },
  });
  return h(
    "div",
    { class: "pad-sections" },
    h("p", { class: "muted", text: "Sends the recorded request again through the router in its own format, optionally against another model." }),
    h("div", { class: "row-actions" }, model, run),
    result,
  );
}

// --------------------------------------------------------------------------- websocket

const conn = { ws: null, attempt: 0, timer: null };

function setConn(kind, text) {
  const el = $("conn");
  el.className = `conn conn-${kind}`;
  setText(el.querySelector(".conn-text"), text);
}

const queue = [];
let flushScheduled = false;

function connect() {
  clearTimeout(conn.timer);
  setConn("connecting", conn.attempt ? "reconnecting…" : "connecting…");
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}${API}/ws`);
  conn.ws = ws;
  ws.onopen = () => {
    conn.attempt = 0;
    setConn("live", "live");
  };
  ws.onmessage = (ev) => {
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch {
      return;
    }
    queue.push(msg);
    scheduleFlush();
  };
  ws.onclose = () => {
    if (conn.ws !== ws) return;
    conn.ws = null;
    const delay = Math.min(15000, 500 * 2 ** conn.attempt) + Math.floor(Math.random() * 250);
    conn.attempt++;
    setConn("down", `offline · retry in ${Math.ceil(delay / 1000)}s`);
    conn.timer = setTimeout(connect, delay);
  };
}

// Events are applied in batches so a burst of traffic costs one layout, not one per event.
function scheduleFlush() {
  if (flushScheduled) return;
  flushScheduled = true;
  const run = () => {
    flushScheduled = false;
    flush();
  };
  if (document.hidden) setTimeout(run, 100);
  else requestAnimationFrame(run);
}

let snapshotPages = [];

function flush() {
  const batch = queue.splice(0);
  let sessionTouched = false;
  for (const msg of batch) {
    switch (msg.type) {
      case "snapshot": {
        // The snapshot comes in pages (page 0 first, "more" until the last): shown whole.
        const data = Array.isArray(msg.data) ? msg.data : [];
        if (!msg.page) snapshotPages = [];
        snapshotPages.push(...data);
        if (!msg.more) {
          loadSnapshot(snapshotPages);
          snapshotPages = [];
        }
        break;
      }
      case "new":
      case "update":
        upsert(msg.data, msg.type === "new");
        if (msg.data?.sessionId) sessionTouched = true;
        break;
      case "clear":
        removeAll();
        break;
      default:
        break;
    }
  }
  scheduleFooter();
  if (sessionTouched && state.activeSession) scheduleSessions();
}

// --------------------------------------------------------------------------- capture modes

// unavailable: why the capture actions cannot run here (a 503 from one of them), shown until
// one succeeds; the GET alone answers even when this process runs no proxy.
const capture = { data: null, timer: null, tick: null, unavailable: null };

async function loadCapture() {
  clearTimeout(capture.timer);
  const res = await api("GET", `${API}/capture-modes`);
  const box = $("capture");
  clear(box);
  if (!res.ok) {
    capture.data = null;
    box.append(h("span", { class: "chip off", title: res.message, text: "capture not running" }));
    // 404: this build has no capture endpoint; polling it would only repeat the 404.
    if (res.status !== 404) capture.timer = setTimeout(loadCapture, 15000);
    return;
  }
  capture.data = res.data ?? {};
  renderCapture(box, capture.data);
  capture.timer = setTimeout(loadCapture, 10000);
}

function partialBadges(mode) {
  // Only what the API says: capture-only / partial flags and notes are shown, never inferred.
  const out = [];
  if (mode?.captureOnly) out.push(h("span", { class: "badge warn", text: "capture-only", title: mode.note ?? "recorded but not diverted to the router" }));
  if (mode?.partial) out.push(h("span", { class: "badge warn", text: "partial", title: String(mode.note ?? "") }));
  const note = mode?.note ?? mode?.limitation ?? (Array.isArray(mode?.limitations) ? mode.limitations.join("; ") : null);
  if (note && !mode?.captureOnly && !mode?.partial) out.push(h("span", { class: "badge warn", text: "note", title: String(note) }));
  if (mode?.error) out.push(h("span", { class: "badge bad", text: "error", title: String(mode.error) }));
  return out;
}

function chip(label, active, extra, title) {
  return h("span", { class: `chip ${active ? "on" : "off"}`, title }, h("span", { class: "dot" }), label, extra);
}

function renderCapture(box, d) {
  const ab = d.agentBridge ?? {};
  const ch = d.customHosts ?? {};
  const hp = d.httpProxy ?? {};
  const sp = d.systemProxy ?? {};
  const down = d.running === false ? (d.reason ?? "capture is not running") : capture.unavailable;
  if (down) box.append(h("span", { class: "chip bad", id: "capture-down", title: down, text: "capture not running" }));
  box.append(
    chip("Agent bridge", !!ab.active, partialBadges(ab), "Agents' hosts resolved to llmtap (see the agent-bridge API)"),
    chip(`Custom hosts${Number.isFinite(ch.count) ? ` (${ch.count})` : ""}`, !!ch.active, partialBadges(ch)),
  );
  const proxyBtn = h("button", {
    type: "button",
    id: "http-proxy-toggle",
    class: `chip ${hp.active ? "on" : "off"}`,
    title: hp.active ? "Stop the explicit HTTP proxy" : "Start the explicit HTTP proxy",
    onclick: () => captureAction("http-proxy", { action: hp.active ? "stop" : "start" }),
  }, h("span", { class: "dot" }), `HTTP proxy${hp.port ? ` :${hp.port}` : ""} ${hp.active ? "on" : "off"}`);
  const tls = h("input", {
    type: "checkbox",
    id: "tls-intercept",
    checked: !!hp.tlsIntercept,
    onchange: (ev) => captureAction("tls-intercept", { enabled: ev.target.checked }),
  });
  const guard = h("span", { class: "guard", id: "guard" });
  const sysBtn = h("button", {
    type: "button",
    id: "system-proxy-toggle",
    class: `chip ${sp.active ? "on" : "off"}`,
    title: sp.active ? "Restore the previous OS proxy setting" : `Point the OS proxy at llmtap (auto-revert after ${sp.guardMinutes ?? 30} min)`,
    onclick: () => captureAction("system-proxy", sp.active ? { action: "revert" } : { action: "apply" }),
  }, h("span", { class: "dot" }), sp.active ? "System proxy: revert" : "System proxy: apply", guard);
  box.append(
    h("span", { class: "group" }, proxyBtn, h("label", { class: "toggle", title: "Decrypt HTTPS with the llmtap CA" }, tls, "TLS intercept"), partialBadges(hp)),
    h("span", { class: "group" }, sysBtn, partialBadges(sp)),
    h("span", { class: "capture-msg", id: "capture-msg" }),
  );
  startGuard(sp.active ? sp.guardUntil : null);
}

function deadline(value) {
  if (value === null || value === undefined || value === "") return null;
  if (typeof value === "number") return value < 1e12 ? value * 1000 : value;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : null;
}

function startGuard(until) {
  clearInterval(capture.tick);
  const end = deadline(until);
  if (end === null) return;
  const paint = () => {
    const el = $("guard");
    if (!el) return clearInterval(capture.tick);
    const left = Math.max(0, Math.round((end - Date.now()) / 1000));
    el.textContent = ` · reverts in ${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
    if (left === 0) {
      clearInterval(capture.tick);
      setTimeout(loadCapture, 1500);
    }
  };
  paint();
  capture.tick = setInterval(paint, 1000);
}

async function captureAction(which, body) {
  const res = await api("POST", `${API}/capture-modes/${which}`, body);
  if (res.status === 503 || res.status === 404) capture.unavailable = res.message || "capture is not running";
  else if (res.ok) capture.unavailable = null;
  await loadCapture();
  const msg = $("capture-msg");
  if (msg) msg.textContent = res.ok ? "" : `${which}: ${res.message}`;
}

// --------------------------------------------------------------------------- sessions

let sessionsTimer = null;
function scheduleSessions() {
  if (sessionsTimer) return;
  sessionsTimer = setTimeout(() => {
    sessionsTimer = null;
    loadSessions();
  }, 1000);
}

async function loadSessions() {
  const res = await api("GET", `${API}/sessions`);
  if (!res.ok) {
    $("session").hidden = res.status === 404;
    return;
  }
  $("session").hidden = false;
  const list = listOf(res.data, "sessions", "data");
  state.activeSession = list.find((s) => !s.ended_at && !s.endedAt) ?? null;
  renderSessions(list);
}

function renderSessions(list) {
  const btn = $("rec-btn");
  const status = $("rec-status");
  const active = state.activeSession;
  btn.textContent = active ? "■ Stop" : "● Record";
  btn.classList.toggle("recording", !!active);
  $("session-name").hidden = !!active;
  clear(status);
  if (active) {
    status.append(h("span", { class: "rec-dot" }), h("span", { class: "session-label", text: `REC ${active.name || "session"}` }), ` · ${fmtInt(active.request_count ?? active.requestCount ?? 0)} calls`);
  }

  const box = $("sessions-list");
  clear(box);
  if (!list.length) box.append(h("div", { class: "muted pad", text: "No sessions yet. Record one to keep calls beyond the live buffer." }));
  for (const s of list) {
    const ended = s.ended_at ?? s.endedAt;
    const started = Date.parse(s.started_at ?? s.startedAt);
    box.append(
      h(
        "div",
        { class: "session-row", dataset: { id: String(s.id) } },
        h("span", { class: "session-name", text: s.name || "(unnamed)" }),
        h("span", { class: "muted", text: `${Number.isFinite(started) ? new Date(started).toLocaleString() : ""} · ${fmtInt(s.request_count ?? s.requestCount ?? 0)} calls · ${ended ? "ended" : "recording"}` }),
        h("span", { class: "session-actions" },
          h("button", { type: "button", class: "link", text: "show", onclick: () => setSessionFilter(String(s.id)) }),
          h("a", { href: `${API}/sessions/${encodeURIComponent(s.id)}/export.har`, download: `llmtap-session.har`, text: "HAR" }),
          h("button", {
            type: "button",
            class: "link danger",
            text: "delete",
            onclick: async () => {
              await api("DELETE", `${API}/sessions/${encodeURIComponent(s.id)}`);
              loadSessions();
            },
          }),
        ),
      ),
    );
  }
  const sel = $("f-session");
  const current = sel.value;
  while (sel.options.length > 1) sel.remove(1);
  for (const s of list) addOption(sel, String(s.id), s.name || String(s.id));
  sel.value = list.some((s) => String(s.id) === current) ? current : "";
}

function setSessionFilter(id) {
  $("f-session").value = id;
  state.filter.session = id;
  $("sessions-menu").open = false;
  applyFilter();
}

async function toggleRecording() {
  const btn = $("rec-btn");
  btn.disabled = true;
  if (state.activeSession) {
    await api("PATCH", `${API}/sessions/${encodeURIComponent(state.activeSession.id)}`, { action: "stop" });
  } else {
    const name = $("session-name").value.trim();
    const res = await api("POST", `${API}/sessions`, name ? { name } : {});
    if (res.ok) $("session-name").value = "";
    else setText($("rec-status"), `could not start: ${res.message}`);
  }
  btn.disabled = false;
  await loadSessions();
}

// --------------------------------------------------------------------------- exports

function updateExportLinks() {
  const q = new URLSearchParams();
  if (state.filter.profile !== "all") q.set("profile", state.filter.profile);
  if (state.filter.session) q.set("sessionId", state.filter.session);
  const qs = q.toString() ? `?${q}` : "";
  $("export-har").href = `${API}/export.har${qs}`;
  $("export-jsonl").href = `${API}/export.jsonl${qs}`;
}

function showView(name) {
  for (const btn of document.querySelectorAll(".view-tab")) btn.classList.toggle("active", btn.dataset.view === name);
  $("traffic-view").hidden = name !== "traffic";
  $("router-view").hidden = name !== "router";
  $("agents-view").hidden = name !== "agents";
  if (name === "router") loadRouterView($("router-view"));
  if (name === "agents") loadAgentsView($("agents-view"));
}

// --------------------------------------------------------------------------- wiring

function wire() {
  $("flow-body").addEventListener("click", (ev) => {
    const tr = ev.target.closest("tr.flow");
    if (!tr) return;
    state.detailOpen = true;
    select(tr.dataset.id);
  });
  for (const btn of document.querySelectorAll(".tab")) {
    btn.addEventListener("click", () => {
      state.tab = btn.dataset.tab;
      renderDetail(true);
    });
  }
  for (const btn of document.querySelectorAll(".view-tab")) btn.addEventListener("click", () => showView(btn.dataset.view));
  $("router-tab").hidden = false;
  $("agents-tab").hidden = false;
  // The Router view's call log opens a call here (the call-log id is the record's id).
  window.addEventListener("llmtap:open-call", (ev) => {
    showView("traffic");
    state.detailOpen = true;
    select(ev.detail.id, { scroll: true });
  });
  $("detail-close").addEventListener("click", () => {
    state.detailOpen = false;
    renderDetail(true);
  });

  let textTimer = null;
  $("f-text").addEventListener("input", (ev) => {
    clearTimeout(textTimer);
    textTimer = setTimeout(() => {
      state.filter.text = ev.target.value.trim().toLowerCase();
      applyFilter();
    }, 80);
  });
  const bindSelect = (id, key) =>
    $(id).addEventListener("change", (ev) => {
      state.filter[key] = ev.target.value;
      applyFilter();
    });
  bindSelect("f-profile", "profile");
  bindSelect("f-status", "status");
  bindSelect("f-source", "source");
  bindSelect("f-agent", "agent");
  bindSelect("f-session", "session");
  $("f-context").addEventListener("change", (ev) => {
    const r = state.selected ? records.get(state.selected) : null;
    state.filter.context = ev.target.checked ? (r?.contextKey ?? null) : null;
    if (ev.target.checked && !state.filter.context) ev.target.checked = false;
    applyFilter();
  });
  $("clear-btn").addEventListener("click", async () => {
    const res = await api("DELETE", `${API}/requests`);
    if (res.ok) removeAll();
  });
  $("rec-btn").addEventListener("click", toggleRecording);
  $("sessions-menu").addEventListener("toggle", (ev) => {
    if (ev.target.open) loadSessions();
  });

  document.addEventListener("keydown", (ev) => {
    const tag = ev.target?.tagName;
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || ev.ctrlKey || ev.metaKey || ev.altKey) {
      if (ev.key === "Escape") ev.target.blur?.();
      return;
    }
    switch (ev.key) {
      case "j":
      case "ArrowDown":
        move(1);
        break;
      case "k":
      case "ArrowUp":
        move(-1);
        break;
      case "Enter":
        state.detailOpen = true;
        if (!state.selected) move(1);
        else renderDetail(true);
        break;
      case "Escape":
        state.detailOpen = false;
        renderDetail(true);
        break;
      case "/":
        $("f-text").focus();
        break;
      default:
        return;
    }
    ev.preventDefault();
  });
}

async function loadVersion() {
  const res = await api("GET", "/v1");
  if (res.ok && res.data?.version) setText($("version"), `v${res.data.version}`);
}

wire();
updateExportLinks();
renderFooter();
loadVersion();
loadCapture();
loadSessions();
connect();
