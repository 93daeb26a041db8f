// The capture-mode chips of the top bar: agent bridge, custom hosts, the explicit HTTP proxy
// (start/stop, TLS intercept) and the OS proxy with its auto-revert guard.

import { clear, h } from "./dom.js";
import { api } from "./http.js";

const API = "/api/tools/traffic-inspector";
const $ = (id) => document.getElementById(id);


// unavailable: why the capture actions cannot run here (a 503 from one of them), shown until
// one succeeds; the GET alone answers even when this process runs no proxy.
const capture = { data: null, timer: null, tick: null, unavailable: null };

export async function loadCapture() {
  clearTimeout(capture.timer);
  const res = await api("GET", `${API}/capture-modes`);
  const box = $("capture");
  clear(box);
  if (res.status === 401) return; // the login notice says it all; the page reloads on login
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

