// Recording sessions: the Record/Stop button, the sessions menu, and a session's stored
// calls shown in the list (they outlive the live buffer and restarts, so "show" loads them
// from the server instead of filtering the live feed).

import { clear, fmtInt, h, setText } from "./dom.js";
import { api, listOf } from "./http.js";
import { dropStored, invalidate, put, state } from "./store.js";

const API = "/api/tools/traffic-inspector";
const $ = (id) => document.getElementById(id);

let sessionsTimer = null;
let shownSession = null; // the session whose stored records are loaded
let onFilter = () => {};

export function initSessions({ applyFilter }) {
  onFilter = applyFilter;
  $("rec-btn").addEventListener("click", toggleRecording);
  $("sessions-menu").addEventListener("toggle", (ev) => {
    if (ev.target.open) loadSessions();
  });
}

export function scheduleSessions() {
  if (sessionsTimer) return;
  sessionsTimer = setTimeout(() => {
    sessionsTimer = null;
    loadSessions();
  }, 1000);
}

const endedOf = (s) => s.endedAt ?? s.ended_at ?? null;
const countOf = (s) => s.requestCount ?? s.request_count ?? 0;
const startedOf = (s) => Date.parse(s.startedAt ?? s.started_at);

export async function loadSessions() {
  const res = await api("GET", `${API}/sessions`);
  if (!res.ok) {
    $("session").hidden = res.status === 404;
    return;
  }
  $("session").hidden = false;
  const list = listOf(res.data, "sessions", "data");
  state.activeSession = list.find((s) => !endedOf(s)) ?? null;
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
    status.append(h("span", { class: "rec-dot" }), h("span", { class: "session-label", text: `REC ${active.name || "session"}` }), ` · ${fmtInt(countOf(active))} calls`);
  }

  const box = $("sessions-list");
  clear(box);
  if (!list.length) box.append(h("div", { class: "muted pad", text: "No sessions yet. Record one to keep calls beyond the live buffer." }));
  for (const s of list) {
    const started = startedOf(s);
    box.append(
      h(
        "div",
        { class: "session-row", dataset: { id: String(s.id) } },
        h("span", { class: "session-name", text: s.name || "(unnamed)" }),
        h("span", { class: "muted", text: `${Number.isFinite(started) ? new Date(started).toLocaleString() : ""} · ${fmtInt(countOf(s))} calls · ${endedOf(s) ? "ended" : "recording"}` }),
        h("span", { class: "session-actions" },
          h("button", { type: "button", class: "link", text: "show", onclick: () => showSession(String(s.id)) }),
          h("a", { href: `${API}/sessions/${encodeURIComponent(s.id)}/export.har`, download: "llmtap-session.har", text: "HAR" }),
          h("button", {
            type: "button",
            class: "link danger",
            text: "delete",
            onclick: async () => {
              await api("DELETE", `${API}/sessions/${encodeURIComponent(s.id)}`);
              if (state.filter.session === String(s.id)) showSession("");
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
  for (const s of list) {
    const opt = document.createElement("option");
    opt.value = String(s.id);
    opt.textContent = s.name || String(s.id);
    sel.appendChild(opt);
  }
  sel.value = list.some((s) => String(s.id) === current) ? current : "";
}

// Show one session: its stored calls join the list (live copies win), the rest are filtered
// out; "" goes back to the live feed.
export async function showSession(id) {
  $("f-session").value = id;
  $("sessions-menu").open = false;
  state.filter.session = id;
  setText($("session-note"), id ? "loading session…" : "");
  if (shownSession && shownSession !== id) dropStored((r) => state.search.ids?.has(r.id));
  shownSession = id || null;
  onFilter();
  if (!id) return;
  const res = await api("GET", `${API}/sessions/${encodeURIComponent(id)}`);
  if (state.filter.session !== id) return; // another choice meanwhile
  if (!res.ok) {
    setText($("session-note"), `session: ${res.message}`);
    return;
  }
  const list = listOf(res.data, "requests", "records");
  for (const r of list) put(r, { fromStore: true });
  setText($("session-note"), `${fmtInt(list.length)} stored calls`);
  invalidate();
  onFilter();
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
