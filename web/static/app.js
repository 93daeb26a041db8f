// llmtap inspector: wiring of the Traffic view (filters, search, detail pane, keyboard, the
// login notice) and the switch to the Router view. No build step; ES modules served as-is.
// The list is list.js, the data store.js, the live feed live.js, sessions sessions.js,
// capture modes capture.js, the detail tabs detail.js and replay.js.

import { clear, fmtCost, fmtInt, h, setText } from "./dom.js";
import { conversationTab, requestTab, responseTab, statusChip, timingTab } from "./detail.js";
import { api, hooks } from "./http.js";
import { loadCapture } from "./capture.js";
import { connect } from "./live.js";
import { buildHeader, initList, render, repaint, schedule, scrollToId } from "./list.js";
import { replayTab } from "./replay.js";
import { initSessions, loadSessions, scheduleSessions, showSession } from "./sessions.js";
import {
  clearLive,
  dropStored,
  evict,
  invalidate,
  newValues,
  onChange,
  pinned,
  put,
  records,
  replaceLive,
  state,
  stored,
  tintOf,
  tsOf,
  visibleOrder,
} from "./store.js";
import { loadAgentsView } from "./agents.js";
import { loadRouterView } from "./router.js";

const API = "/api/tools/traffic-inspector";
const $ = (id) => document.getElementById(id);

// --------------------------------------------------------------------------- list updates

onChange(() => {
  schedule();
  scheduleFooter();
});

function applyFilter() {
  invalidate();
  updateExportLinks();
}

function addNewOptions() {
  for (const v of newValues.sources.splice(0)) addOption($("f-source"), v);
  for (const v of newValues.agents.splice(0)) addOption($("f-agent"), v);
}

function addOption(select, value) {
  const opt = document.createElement("option");
  opt.value = value;
  opt.textContent = value;
  select.appendChild(opt);
}

const live = {
  snapshot(list) {
    replaceLive([...list].filter((r) => r && r.id).sort((a, b) => tsOf(a) - tsOf(b)));
    addNewOptions();
    if (state.selected && !records.has(state.selected)) select(null);
    else renderDetail(false);
    invalidate();
    if (state.filter.text) scheduleSearch(2000);
  },
  event(type, record) {
    if (!record || typeof record.id !== "string") return;
    const added = put(record);
    if (record.wsTruncated && record.id === state.selected) loadWhole(record.id);
    if (added) {
      evict();
      invalidate();
    } else if (state.sort.key !== "time" || state.filter.status || state.filter.text) {
      invalidate(); // an update can move or hide the row
    } else {
      repaint(record.id);
      scheduleFooter();
    }
    if (record.id === state.selected) renderDetail(false);
    if (state.filter.text) scheduleSearch(2000);
  },
  clear() {
    clearLive();
    if (state.selected && !records.has(state.selected)) select(null);
    invalidate();
  },
  batchDone(sessionTouched) {
    addNewOptions();
    if (sessionTouched && state.activeSession) scheduleSessions();
  },
  opened(again) {
    setLogin(null);
    if (again) {
      loadSessions();
      loadCapture();
    }
  },
  closed(neverOpened) {
    // A WebSocket refused at the handshake gives no status: ask the API why.
    if (neverOpened) api("GET", `${API}/sessions`);
  },
};

// --------------------------------------------------------------------------- search

let searchTimer = null;
let searchSeq = 0;

// Typing searches after a short pause; new traffic refreshes the hits at most every 2 s.
function scheduleSearch(delay = 250) {
  if (searchTimer && delay > 250) return;
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => {
    searchTimer = null;
    runSearch();
  }, delay);
}

// The server searches request/response bodies and conversations (live buffer and stored
// sessions, masked content only); host, path and model match locally at once.
async function runSearch() {
  const q = state.filter.text;
  const seq = ++searchSeq;
  const s = state.search;
  if (!q) {
    s.ids = null;
    s.snippets.clear();
    s.query = "";
    dropStored((r) => r.sessionId === state.filter.session && !!state.filter.session);
    setText($("search-note"), "");
    invalidate();
    return;
  }
  setText($("search-note"), "searching bodies…");
  const params = new URLSearchParams({ q, limit: "2000" });
  if (state.filter.session) params.set("sessionId", state.filter.session);
  const res = await api("GET", `${API}/search?${params}`);
  if (seq !== searchSeq) return;
  if (!res.ok) {
    setText($("search-note"), `search: ${res.message}`);
    return;
  }
  const data = res.data ?? {};
  s.query = q;
  s.ids = new Set((data.results ?? []).map((x) => x.id));
  s.snippets = new Map((data.results ?? []).map((x) => [x.id, x.snippet]));
  for (const r of data.records ?? []) put(r, { fromStore: true });
  const fromStore = (data.records ?? []).length;
  setText($("search-note"), `${fmtInt(s.ids.size)}${data.truncated ? "+" : ""} in bodies${fromStore ? ` (${fmtInt(fromStore)} from stored sessions)` : ""}`);
  invalidate();
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
  const ids = visibleOrder();
  let tin = 0;
  let tout = 0;
  let cost = 0;
  let priced = false;
  let unpriced = 0; // calls with tokens but no price: the sum says it leaves them out
  for (const id of ids) {
    const llm = records.get(id)?.llm;
    if (!llm) continue;
    tin += llm.tokensIn ?? 0;
    tout += llm.tokensOut ?? 0;
    if (Number.isFinite(llm.costUsd)) {
      cost += llm.costUsd;
      priced = true;
    } else if (llm.tokensIn || llm.tokensOut) {
      unpriced += 1;
    }
  }
  const captured = records.size - stored.size;
  setText($("f-count"), `${fmtInt(ids.length)} shown / ${fmtInt(captured)} captured${stored.size ? ` · ${fmtInt(stored.size)} stored` : ""}`);
  setText($("f-tokens"), `tokens in ${fmtInt(tin)} · out ${fmtInt(tout)}`);
  setText($("f-cost"), `cost ${priced ? fmtCost(cost) : unpriced ? "unknown" : "–"}${priced && unpriced ? ` + ${fmtInt(unpriced)} unpriced` : ""}`);
  $("empty").hidden = records.size > 0;
}

// --------------------------------------------------------------------------- selection + detail

function select(id, { scroll = false } = {}) {
  const before = state.selected;
  if (before !== id) state.showAll = false;
  state.selected = id && records.has(id) ? id : null;
  if (before) repaint(before);
  if (state.selected) {
    repaint(state.selected);
    if (scroll) scrollToId(state.selected);
  }
  const r = state.selected ? records.get(state.selected) : null;
  $("f-context").disabled = !r?.contextKey && !state.filter.context;
  renderDetail(true);
  if (r?.wsTruncated) loadWhole(r.id);
}

// A record too big for one WebSocket frame arrives without its bodies (wsTruncated): once it
// is selected, the detail view reads it whole.
async function loadWhole(id) {
  const res = await api("GET", `${API}/requests/${encodeURIComponent(id)}`);
  if (!res.ok || res.data?.id !== id || records.get(id)?.wsTruncated !== true) return;
  put(res.data);
  if (state.selected === id) renderDetail(true);
}

// Select a call in the list (from a resend result or another view): a call the page does not
// hold (older than the live feed) is fetched, live or from a recorded session.
async function open(id) {
  state.detailOpen = true;
  if (!records.has(id)) {
    const res = await api("GET", `${API}/requests/${encodeURIComponent(id)}`);
    if (!res.ok || !res.data?.id) return;
    put(res.data, { fromStore: true });
    pinned.add(id);
    invalidate();
  }
  if (!visibleOrder().includes(id)) resetFilters();
  select(id, { scroll: true });
}

function resetFilters() {
  Object.assign(state.filter, { profile: "all", text: "", status: "", source: "", agent: "", context: null });
  for (const [el, v] of [["f-profile", "all"], ["f-text", ""], ["f-status", ""], ["f-source", ""], ["f-agent", ""]]) $(el).value = v;
  $("f-context").checked = false;
  runSearch();
  applyFilter();
}

function move(delta) {
  const ids = visibleOrder();
  if (!ids.length) return;
  const i = ids.indexOf(state.selected);
  const next = i < 0 ? (delta > 0 ? 0 : ids.length - 1) : Math.min(ids.length - 1, Math.max(0, i + delta));
  select(ids[next], { scroll: true });
}

function paintHue(el, key) {
  el.style.setProperty("--hue", String(tintOf(key)));
}

function titleOf(r) {
  const where = r.method === "CONNECT" ? `${r.host ?? ""}:${r.port ?? 443}` : `${r.host ?? ""}${r.path ?? ""}`;
  return [
    statusChip(r),
    h("span", { class: "mono method", text: r.method ?? "" }),
    h("span", { class: "mono", text: where }),
    r.llm?.model ? h("span", { class: "badge model", text: r.llm.model }) : null,
    stored.has(r.id) ? h("span", { class: "badge", text: "stored", title: "from a recorded session, not the live buffer" }) : null,
    r.note ? h("span", { class: "badge", text: r.note, title: r.note }) : null,
  ];
}

// Annotate/replay hold user input: an update of the record must not wipe what is being typed.
function renderDetail(force) {
  const pane = $("detail");
  const r = state.selected ? records.get(state.selected) : null;
  const isOpen = !!r && state.detailOpen;
  const was = document.body.classList.contains("with-detail");
  pane.hidden = !isOpen;
  document.body.classList.toggle("with-detail", isOpen);
  if (was !== isOpen) buildHeader(); // the narrow list drops source, agent and method
  if (!isOpen) return;
  if (!force && (state.tab === "annotate" || state.tab === "replay")) return;
  const title = $("detail-title");
  clear(title);
  title.append(...titleOf(r).filter(Boolean));
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
      return replayTab(r, {
        open: (id) => {
          state.tab = "conversation";
          open(id);
        },
      });
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
        if (current) live.event("update", { ...current, annotation: area.value });
        status.textContent = "saved";
      } else {
        status.textContent = `not saved: ${res.message}`;
      }
    },
  });
  return h("div", { class: "pad-sections" }, area, h("div", { class: "row-actions" }, save, status));
}

// --------------------------------------------------------------------------- login

// With requireLogin on, every /api call answers 401 until the browser has the token cookie,
// which the start URL (/?token=..., printed by `llmtap up`) sets. Say so, instead of a page
// that looks like a dead server.
function setLogin(message) {
  const box = $("login");
  box.hidden = !message;
  box.title = message ?? "";
  if (!message) return;
  setText($("empty"), "Log in to see the traffic (see above).");
  setConnDown();
}

function setConnDown() {
  const el = $("conn");
  el.className = "conn conn-down";
  setText(el.querySelector(".conn-text"), "login required");
}

hooks.unauthorized = (message) => setLogin(message || "login required");

// --------------------------------------------------------------------------- exports + views

function updateExportLinks() {
  const q = new URLSearchParams();
  if (state.filter.profile !== "all") q.set("profile", state.filter.profile);
  if (state.filter.session) q.set("sessionId", state.filter.session);
  if (state.filter.status) q.set("status", state.filter.status);
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
  else if (name === "agents") loadAgentsView($("agents-view"));
  else render();
}

// --------------------------------------------------------------------------- wiring

function wire() {
  initList({ onOpen: open });
  initSessions({ applyFilter });
  for (const btn of document.querySelectorAll(".tab")) {
    btn.addEventListener("click", () => {
      state.tab = btn.dataset.tab;
      renderDetail(true);
    });
  }
  for (const btn of document.querySelectorAll(".view-tab")) btn.addEventListener("click", () => showView(btn.dataset.view));
  $("router-tab").hidden = false;
  $("agents-tab").hidden = false;
  // Another view (the Router's call log) opens a call here; the call-log id is the record's.
  window.addEventListener("llmtap:open-call", (ev) => {
    showView("traffic");
    open(ev.detail?.id);
  });
  $("detail-close").addEventListener("click", () => {
    state.detailOpen = false;
    renderDetail(true);
  });
  $("login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const token = $("login-token").value.trim();
    if (token) location.assign(`/?token=${encodeURIComponent(token)}`);
  });

  let textTimer = null;
  $("f-text").addEventListener("input", (ev) => {
    clearTimeout(textTimer);
    textTimer = setTimeout(() => {
      state.filter.text = ev.target.value.trim().toLowerCase();
      applyFilter();
      scheduleSearch();
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
  $("f-session").addEventListener("change", (ev) => showSession(ev.target.value));
  $("f-context").addEventListener("change", (ev) => {
    const r = state.selected ? records.get(state.selected) : null;
    state.filter.context = ev.target.checked ? (r?.contextKey ?? null) : null;
    if (ev.target.checked && !state.filter.context) ev.target.checked = false;
    applyFilter();
  });
  $("clear-btn").addEventListener("click", async () => {
    const res = await api("DELETE", `${API}/requests`);
    if (res.ok) live.clear();
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
connect(live);
