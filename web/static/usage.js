// The Router view's usage sections: cost, tokens and requests over time per model, provider,
// agent or combo as a stacked bar chart (plain SVG), and the router's call log below it
// (paged, sortable by column, a row opening the call in the Traffic view).

import { fmtCost, fmtDur, fmtInt, h } from "./dom.js";
import { api, listOf } from "./http.js";
import { errorText, fmtStamp, section, stat } from "./page.js";
import { connName } from "./router.js";

const SVG = "http://www.w3.org/2000/svg";
const LOG_PAGE = 25;
const MAX_SERIES = 7; // the rest is drawn as one "other" series
// Categorical colours that stay apart on dark and light backgrounds.
const PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#76b7b2", "#edc948"];
const OTHER = "#8b93a1";
const GROUPS = { model: ["modelSeries", "byModel"], provider: ["providerSeries", "byProvider"], agent: ["agentSeries", "byAgent"], combo: ["comboSeries", "byCombo"] };
const METRICS = {
  cost: ["cost (USD)", (b) => b.costUsd, (v) => fmtCost(v), (b) => b.unpriced ?? 0],
  tokens: ["tokens (in + out)", (b) => (b.tokensIn ?? 0) + (b.tokensOut ?? 0), (v) => fmtInt(v)],
  requests: ["requests", (b) => b.requests, (v) => fmtInt(v)],
};

// A cost figure never hides the calls it leaves out: calls to a model without a price have
// no cost ("unknown"), and a sum over them says how many it could not include.
function costText(b) {
  const unpriced = b?.unpriced ?? 0;
  if (!unpriced) return fmtCost(b?.costUsd ?? 0);
  if (unpriced >= (b?.requests ?? 0)) return "unknown";
  return `${fmtCost(b?.costUsd ?? 0)} + ${fmtInt(unpriced)} unpriced`;
}

const UNPRICED_HINT = "calls to models without a price are not in the sum: add a price with POST /api/pricing";

const view = { period: "day", group: "model", metric: "tokens", logOffset: 0, sort: "-timestamp", data: null };

export async function loadUsage() {
  await Promise.all([loadChart(), loadCallLog()]);
}

function replace(id, el) {
  document.getElementById(id)?.replaceWith(el);
}

// --------------------------------------------------------------------------- chart

// Every bucket of the period, oldest first, so quiet hours and days show as gaps.
function buckets(period, now = new Date()) {
  const out = [];
  if (period === "day") {
    const t = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate(), now.getUTCHours()));
    for (let i = 23; i >= 0; i--) out.push(new Date(t.getTime() - i * 3600e3).toISOString().slice(0, 13) + ":00Z");
  } else {
    const days = period === "week" ? 7 : 30;
    const t = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
    for (let i = days - 1; i >= 0; i--) out.push(new Date(t - i * 86400e3).toISOString().slice(0, 10));
  }
  return out;
}

async function loadChart() {
  const bucket = view.period === "day" ? "hour" : "day";
  const res = await api("GET", `/api/usage/analytics?period=${view.period}&bucket=${bucket}`);
  if (res.status === 404) return document.getElementById("rt-usage")?.remove();
  if (!res.ok) return replace("rt-usage", section("rt-usage", "Usage", h("div", { class: "error-box", text: errorText(res) })));
  view.data = res.data;
  const totals = res.data.totals ?? {};
  const select = (id, value, options, onchange) =>
    h("select", { id, "aria-label": id, onchange: (ev) => { onchange(ev.target.value); loadChart(); } }, options.map(([v, t]) => h("option", { value: v, text: t, selected: v === value })));
  const controls = h(
    "div",
    { class: "add-form usage-controls" },
    select("u-period", view.period, [["day", "last 24 hours"], ["week", "last 7 days"], ["month", "last 30 days"]], (v) => (view.period = v)),
    select("u-metric", view.metric, Object.entries(METRICS).map(([k, [t]]) => [k, t]), (v) => (view.metric = v)),
    h("span", { class: "muted", text: "per" }),
    select("u-group", view.group, Object.keys(GROUPS).map((k) => [k, k]), (v) => (view.group = v)),
  );
  const summary = h(
    "div",
    { class: "health-summary" },
    stat("Requests", fmtInt(totals.requests ?? 0), "", "u-requests"),
    stat("Errors", fmtInt(totals.errors ?? 0), (totals.errors ?? 0) > 0 ? "bad" : "", "u-errors"),
    stat("Tokens in / out", `${fmtInt(totals.tokensIn ?? 0)} / ${fmtInt(totals.tokensOut ?? 0)}`, "", "u-tokens"),
    stat("Cost", costText(totals), "", "u-cost"),
  );
  if (totals.unpriced) summary.querySelector("#u-cost").title = UNPRICED_HINT;
  replace("rt-usage", section("rt-usage", "Usage", controls, summary, chart(res.data)));
}

function chart(data) {
  const [seriesKey, byKey] = GROUPS[view.group];
  const [metricLabel, value, fmt, unpricedOf = () => 0] = METRICS[view.metric];
  const text = view.metric === "cost" ? costText : (b) => fmt(value(b) ?? 0);
  const points = listOf(data[seriesKey]);
  const slots = buckets(view.period);
  // Series ranked by their total; the tail folds into "other".
  const ranked = Object.entries(data[byKey] ?? {}).sort((a, b) => (value(b[1]) ?? 0) - (value(a[1]) ?? 0)).map(([k]) => k);
  const shown = ranked.slice(0, MAX_SERIES);
  const colour = (key) => (shown.includes(key) ? PALETTE[shown.indexOf(key)] : OTHER);
  const cells = new Map(); // bucket -> [{key, value, requests, unpriced}]
  for (const p of points) {
    const key = shown.includes(p.key) ? p.key : "other";
    const slot = p.bucket || p.day;
    const list = cells.get(slot) ?? [];
    let cell = list.find((c) => c.key === key);
    if (!cell) list.push((cell = { key, value: 0, requests: 0, unpriced: 0 }));
    cell.value += value(p) ?? 0;
    cell.requests += p.requests ?? 0;
    cell.unpriced += unpricedOf(p);
    cells.set(slot, list);
  }
  if (!points.length) {
    return h("div", { class: "chart-empty muted", id: "u-chart", text: `No router calls ${view.period === "day" ? "in the last 24 hours" : `in the last ${view.period}`}${view.group === "combo" ? " served by a combo" : ""}.` });
  }
  const W = 960;
  const H = 220;
  const pad = { l: 64, r: 8, t: 10, b: 26 };
  const top = Math.max(...slots.map((s) => (cells.get(s) ?? []).reduce((a, c) => a + c.value, 0)), 0) || 1;
  const bw = (W - pad.l - pad.r) / slots.length;
  const y = (v) => pad.t + (H - pad.t - pad.b) * (1 - v / top);
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("class", "chart");
  svg.setAttribute("id", "u-chart");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${metricLabel} per ${view.group} over time`);
  const el = (tag, attrs, text) => {
    const n = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
    if (text !== undefined) n.textContent = text;
    svg.append(n);
    return n;
  };
  for (const f of [0, 0.5, 1]) {
    el("line", { x1: pad.l, x2: W - pad.r, y1: y(top * f), y2: y(top * f), class: "gridline" });
    el("text", { x: pad.l - 6, y: y(top * f) + 4, "text-anchor": "end", class: "axis" }, fmt(top * f));
  }
  slots.forEach((slot, i) => {
    let base = 0;
    for (const c of cells.get(slot) ?? []) {
      if (c.value <= 0 && !c.unpriced) continue; // an unpriced-only cell still shows, 1 px
      const y1 = y(base + c.value);
      const rect = el("rect", { x: pad.l + i * bw + 1, y: y1, width: Math.max(1, bw - 2), height: Math.max(1, y(base) - y1), fill: colour(c.key), class: "seg", "data-key": c.key, "data-bucket": slot, "data-value": c.value });
      const t = document.createElementNS(SVG, "title");
      t.textContent = `${c.key} · ${slot.replace("T", " ")}: ${view.metric === "cost" ? costText({ costUsd: c.value, requests: c.requests, unpriced: c.unpriced }) : fmt(c.value)}`;
      rect.append(t);
      base += c.value;
    }
    const every = view.period === "day" ? 3 : view.period === "week" ? 1 : 5;
    if (i % every === 0) el("text", { x: pad.l + i * bw + bw / 2, y: H - 8, "text-anchor": "middle", class: "axis" }, view.period === "day" ? `${slot.slice(11, 13)}:00` : slot.slice(5));
  });
  const legend = h(
    "div",
    { class: "legend", id: "u-legend" },
    [...shown, ...(ranked.length > shown.length ? ["other"] : [])].map((key) => {
      const sum = (f) => ranked.slice(MAX_SERIES).reduce((a, k) => a + (f(data[byKey][k]) ?? 0), 0);
      const bucket = key === "other" ? { costUsd: sum((b) => b.costUsd), tokensIn: sum((b) => b.tokensIn), tokensOut: sum((b) => b.tokensOut), requests: sum((b) => b.requests), unpriced: sum((b) => b.unpriced) } : data[byKey][key];
      return h("span", { class: "legend-item", dataset: { key } }, swatch(colour(key)), `${key} `, h("span", { class: "muted", text: text(bucket) }));
    }),
  );
  return h("div", { class: "chart-wrap" }, svg, legend, h("div", { class: "muted small", text: `UTC ${view.period === "day" ? "hours" : "days"}; ${view.group === "agent" ? "\"direct\" is a client of /v1, not a captured agent; " : ""}${view.metric === "cost" && data.totals?.unpriced ? `${fmtInt(data.totals.unpriced)} unpriced call(s): ${UNPRICED_HINT}.` : "calls to models without a price have cost \"unknown\", never $0."}` }));
}

// Set through the CSSOM: the page's CSP refuses style attributes.
function swatch(colour) {
  const el = h("span", { class: "swatch" });
  el.style.background = colour;
  return el;
}

// --------------------------------------------------------------------------- call log

const LOG_COLS = [
  ["c-time", "Time", "timestamp"],
  ["c-model", "Model", "model"],
  ["c-provider", "Provider", "provider"],
  ["c-status", "Status", "status"],
  ["c-tokens", "Tokens in / out", "tokensIn"],
  ["c-cost", "Cost", "costUsd"],
  ["c-latency", "Latency", "latencyMs"],
];

export async function loadCallLog() {
  const res = await api("GET", `/api/usage/call-logs?limit=${LOG_PAGE}&offset=${view.logOffset}&sort=${encodeURIComponent(view.sort)}`);
  if (res.status === 404) return document.getElementById("rt-calls")?.remove();
  if (!res.ok) return replace("rt-calls", section("rt-calls", "Router calls", h("div", { class: "error-box", text: errorText(res) })));
  const logs = listOf(res.data, "logs");
  const total = res.data?.total ?? logs.length;
  const first = total ? view.logOffset + 1 : 0;
  const last = view.logOffset + logs.length;
  const pager = h(
    "div",
    { class: "pager" },
    h("button", { type: "button", id: "log-prev", text: "‹ Previous", disabled: view.logOffset === 0, onclick: () => pageLog(-LOG_PAGE) }),
    h("span", { id: "log-range", text: `${fmtInt(first)}–${fmtInt(last)} of ${fmtInt(total)}` }),
    h("button", { type: "button", id: "log-next", text: "Next ›", disabled: last >= total, onclick: () => pageLog(LOG_PAGE) }),
    h("button", { type: "button", class: "link", id: "log-refresh", text: "refresh", onclick: () => Promise.all([loadCallLog(), loadChart()]) }),
    h("span", { class: "muted small", text: "click a row to open the call in the Traffic view" }),
  );
  const note = h("div", { class: "form-status bad", id: "log-note", "aria-live": "polite" });
  const sortKey = view.sort.replace(/^-/, "");
  const desc = view.sort.startsWith("-");
  const head = LOG_COLS.map(([c, t, key]) =>
    h(
      "th",
      { class: `${c} sortable ${key === sortKey ? "sorted" : ""}`, dataset: { sort: key }, "aria-sort": key === sortKey ? (desc ? "descending" : "ascending") : "none", title: "sort", onclick: () => sortBy(key) },
      t,
      key === sortKey ? (desc ? " ▼" : " ▲") : "",
    ),
  );
  const table = h(
    "table",
    { class: "grid fixed calls", id: "call-log" },
    h("colgroup", null, LOG_COLS.map(([c]) => h("col", { class: c }))),
    h("thead", null, h("tr", null, head)),
    h("tbody", null, logs.map(logRow)),
  );
  const body = logs.length ? [table, pager, note] : [h("div", { class: "muted", text: "No router calls yet." }), pager];
  replace("rt-calls", section("rt-calls", "Router calls", body));
}

function logRow(r) {
  const model = r.model && r.model !== r.requestedModel ? `${r.requestedModel} → ${r.model}` : r.requestedModel;
  const provider = r.connectionId ? connName(r.connectionId) : r.provider ?? "";
  const ok = r.status >= 200 && r.status < 400 && !r.error;
  const failover = r.attempt > 1 ? ` (attempt ${r.attempt})` : "";
  return h(
    "tr",
    { class: "call", dataset: { id: r.id }, tabindex: "0", title: "open in the Traffic view", onclick: () => openInTraffic(r.id), onkeydown: (ev) => ev.key === "Enter" && openInTraffic(r.id) },
    h("td", { class: "c-time", text: fmtStamp(r.timestamp) }),
    h("td", { class: "c-model", text: `${model}${failover}`, title: `${model}${r.combo ? ` (combo ${r.combo})` : ""}${r.agent ? ` · agent ${r.agent}` : ""}` }),
    h("td", { class: "c-provider", text: provider, title: r.provider ?? "" }),
    h("td", { class: "c-status" }, h("span", { class: `state ${ok ? "ok" : "bad"}`, title: r.error ?? "", text: r.status === 200 && r.error ? "200 error" : String(r.status) })),
    h("td", { class: "c-tokens", text: `${fmtInt(r.tokensIn ?? 0)} / ${fmtInt(r.tokensOut ?? 0)}${r.usageEstimated ? " ~" : ""}` }),
    h("td", { class: "c-cost", text: r.costUsd === null ? "unknown" : fmtCost(r.costUsd), title: r.costUsd === null ? "no price for this model: add one with POST /api/pricing" : "" }),
    h("td", { class: "c-latency", text: fmtDur(r.latencyMs) }),
  );
}

// The Traffic view owns the record list: it listens for this and selects the call. A call the
// live buffer no longer holds (evicted, or from before a restart) is said so here instead.
async function openInTraffic(id) {
  const res = await api("GET", `/api/tools/traffic-inspector/requests/${encodeURIComponent(id)}`);
  if (!res.ok) {
    const note = document.getElementById("log-note");
    if (note) note.textContent = res.status === 404 ? "That call is no longer in the live buffer (evicted or from before a restart): its row here is all that is kept." : errorText(res);
    return;
  }
  window.dispatchEvent(new CustomEvent("llmtap:open-call", { detail: { id } }));
}

function sortBy(key) {
  view.sort = view.sort === `-${key}` ? key : `-${key}`;
  view.logOffset = 0;
  loadCallLog();
}

function pageLog(delta) {
  view.logOffset = Math.max(0, view.logOffset + delta);
  loadCallLog();
}
