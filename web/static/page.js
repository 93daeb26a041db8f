// Shared pieces of the management pages (Router, Agents): sections that fill in as their
// endpoint answers, error text with field details, small form and table builders.

import { h } from "./dom.js";

export function errorText(res) {
  const details = res.data?.error?.details;
  if (Array.isArray(details) && details.length) {
    return `${res.message}: ${details.map((d) => `${d.field} ${d.message}`).join("; ")}`;
  }
  return res.message || `HTTP ${res.status}`;
}

export function section(id, title, ...content) {
  return h("section", { class: "router-section", id }, h("h2", { text: title }), content);
}

// Replace a section in place (its slot is made up front, so sections keep their order).
export function replaceSection(root, id, el) {
  const old = document.getElementById(id);
  if (old) old.replaceWith(el);
  else root.append(el);
}

export function placeholders(root, ids) {
  for (const id of ids) root.append(h("section", { class: "router-section", id }, h("div", { class: "muted", text: "loading…" })));
}

export function stat(label, value, cls, id) {
  return h("div", { class: "stat" }, h("div", { class: "stat-label", text: label }), h("div", { class: `stat-value ${cls ?? ""}`, id, text: value ?? "" }));
}

// A status line under a form: green for done, red for refused. `message` ({ ok, text }), when
// given, shows at once: a section re-rendered after an action says how the action went.
export function statusLine(id, message) {
  const el = h("div", { id, class: "form-status", "aria-live": "polite" });
  el.show = (ok, text) => {
    el.className = `form-status ${ok ? "" : "bad"}`;
    el.textContent = text;
  };
  if (message) el.show(message.ok, message.text);
  return el;
}

export function table(cls, headers, rows, attrs = {}) {
  return h(
    "table",
    { class: `grid ${cls}`, ...attrs },
    h("thead", null, h("tr", null, headers.map((t) => h("th", { text: t })))),
    h("tbody", null, rows),
  );
}

export function fmtStamp(iso) {
  const d = new Date(iso);
  if (!iso || !Number.isFinite(d.getTime())) return "";
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function fmtSeconds(seconds) {
  if (!Number.isFinite(seconds)) return "";
  const s = Math.max(0, Math.floor(seconds));
  const d = Math.floor(s / 86400);
  const hh = Math.floor((s % 86400) / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const parts = d ? [`${d}d`, `${hh}h`, `${mm}m`] : hh ? [`${hh}h`, `${mm}m`] : mm ? [`${mm}m`, `${s % 60}s`] : [`${s % 60}s`];
  return parts.join(" ");
}

// A breaker's state as a word a user reads: closed, open (with the time to the next probe),
// half-open.
export function breakerLabel(b) {
  const state = typeof b === "string" ? b : b?.state;
  if (state === "open") {
    const wait = typeof b === "object" && Number.isFinite(b.retryInSeconds) ? ` · probe in ${Math.ceil(b.retryInSeconds)} s` : "";
    return { text: `open${wait}`, cls: "bad" };
  }
  if (state === "half_open" || state === "half-open") return { text: "half-open", cls: "warn" };
  return { text: String(state ?? "closed"), cls: "ok" };
}

export function breakerBadge(b, cls = "") {
  const { text, cls: tone } = breakerLabel(b);
  return h("span", { class: `state ${tone} ${cls}`, text });
}

// Copy to the clipboard; falls back to selecting the text where the Clipboard API is refused.
export async function copyText(text, input) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    if (input) {
      input.focus();
      input.select();
    }
    return false;
  }
}

// A datalist for an input's suggestions (the input stays free text).
export function datalist(id, values) {
  return h("datalist", { id }, [...new Set(values)].map((v) => h("option", { value: v })));
}
