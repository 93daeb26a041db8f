// The Router view: health, provider connections (add, test, enable/disable, delete), combos
// and the router's call log. Everything goes through the management API (/api/...); a
// section whose endpoint this build lacks (404) is left out.

import { clear, fmtBytes, fmtCost, fmtDur, fmtInt, h, setText } from "./dom.js";
import { api, listOf } from "./http.js";

const KINDS = ["openai", "anthropic", "gemini"];
const LOG_PAGE = 25;

const view = { root: null, providers: [], logOffset: 0, tests: new Map(), confirming: null };

function errorText(res) {
  const details = res.data?.error?.details;
  if (Array.isArray(details) && details.length) {
    return `${res.message}: ${details.map((d) => `${d.field} ${d.message}`).join("; ")}`;
  }
  return res.message || `HTTP ${res.status}`;
}

function section(id, title, ...content) {
  return h("section", { class: "router-section", id }, h("h2", { text: title }), content);
}

function replaceSection(id, el) {
  const old = document.getElementById(id);
  if (old) old.replaceWith(el);
  else view.root.append(el);
}

function connName(id) {
  const conn = view.providers.find((c) => c.id === id);
  return conn ? conn.name : id;
}

export async function loadRouterView(root) {
  view.root = root;
  clear(root);
  // Fixed order, filled as each answer arrives; health on top as the one-glance "is it up".
  for (const id of ["rt-health", "rt-providers", "rt-combos", "rt-calls"]) {
    root.append(h("section", { class: "router-section", id }, h("div", { class: "muted", text: "loading…" })));
  }
  // Providers first: the other sections name connections by their id.
  await loadProviders();
  await Promise.all([loadHealth(), loadCombos(), loadCallLog()]);
}

// An endpoint this build lacks: its section goes.
function absent(id) {
  document.getElementById(id)?.remove();
}

// --------------------------------------------------------------------------- health

function fmtUptime(seconds) {
  if (!Number.isFinite(seconds)) return "";
  const s = Math.floor(seconds);
  const d = Math.floor(s / 86400);
  const hh = Math.floor((s % 86400) / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const parts = d ? [`${d}d`, `${hh}h`, `${mm}m`] : hh ? [`${hh}h`, `${mm}m`] : mm ? [`${mm}m`, `${s % 60}s`] : [`${s % 60}s`];
  return parts.join(" ");
}

function breakerText(b) {
  if (b.state === "open") {
    const retry = Number.isFinite(b.retryInSeconds) ? ` · probe in ${Math.ceil(b.retryInSeconds)} s` : "";
    return `open${retry}`;
  }
  if (b.state === "half_open" || b.state === "half-open") return "half-open";
  return String(b.state ?? "");
}

async function loadHealth() {
  const res = await api("GET", "/api/monitoring/health");
  if (res.status === 404) return absent("rt-health");
  if (!res.ok) return replaceSection("rt-health", section("rt-health", "Health", h("div", { class: "error-box", text: errorText(res) })));
  const d = res.data ?? {};
  const summary = h(
    "div",
    { class: "health-summary" },
    stat("Status", d.status, d.status === "ok" ? "ok" : "bad", "h-status"),
    stat("Version", d.version, "", "h-version"),
    stat("Uptime", fmtUptime(d.uptimeSeconds), "", "h-uptime"),
    stat("Memory (RSS)", fmtBytes(d.memory?.rssBytes), "", "h-memory"),
    stat("Call-log writes pending", fmtInt(d.callLogsPending ?? 0), "", "h-pending"),
    stat("dropped", fmtInt(d.callLogsDropped ?? 0), (d.callLogsDropped ?? 0) > 0 ? "bad" : "", "h-dropped"),
  );
  const listeners = listOf(d.listeners);
  const listenerTable = h(
    "table",
    { class: "grid", id: "h-listeners" },
    h("thead", null, h("tr", null, h("th", { text: "Listener" }), h("th", { text: "Address" }), h("th", { text: "State" }))),
    h(
      "tbody",
      null,
      listeners.map((l) =>
        h(
          "tr",
          { dataset: { name: l.name } },
          h("td", { text: l.name }),
          h("td", { class: "mono", text: l.port ? `${l.host}:${l.port}` : `${l.host} (no port)` }),
          h("td", null, h("span", { class: `state ${l.active ? "ok" : "off"}`, text: l.active ? "listening" : "not running" })),
        ),
      ),
    ),
  );
  const breakers = Object.entries(d.breakers ?? {});
  const breakerBox = breakers.length
    ? h(
        "table",
        { class: "grid", id: "h-breakers" },
        h("thead", null, h("tr", null, ["Connection", "Breaker", "Failures in a row", "Trips", "Rate limited"].map((t) => h("th", { text: t })))),
        h(
          "tbody",
          null,
          breakers.map(([id, b]) =>
            h(
              "tr",
              null,
              h("td", { text: connName(id) }),
              h("td", null, h("span", { class: `state ${b.state === "closed" ? "ok" : b.state === "open" ? "bad" : "warn"}`, text: breakerText(b) })),
              h("td", { text: fmtInt(b.consecutiveFailures ?? 0) }),
              h("td", { text: fmtInt(b.trips ?? 0) }),
              h("td", { text: b.rateLimited ? "yes" : Object.keys(b.rateLimitedModels ?? {}).join(", ") || "no" }),
            ),
          ),
        ),
      )
    : h("div", { class: "muted", id: "h-breakers", text: "No breaker has seen a call yet: every connection is closed (healthy)." });
  replaceSection(
    "rt-health",
    section("rt-health", "Health", summary, h("div", { class: "health-tables" }, h("div", null, h("h3", { text: "Listeners" }), listenerTable), h("div", null, h("h3", { text: "Circuit breakers" }), breakerBox))),
  );
}

function stat(label, value, cls, id) {
  return h("div", { class: "stat" }, h("div", { class: "stat-label", text: label }), h("div", { class: `stat-value ${cls}`, id, text: value ?? "" }));
}

// --------------------------------------------------------------------------- providers

async function loadProviders(message) {
  const res = await api("GET", "/api/providers");
  if (res.status === 404) return absent("rt-providers");
  if (!res.ok) {
    replaceSection("rt-providers", section("rt-providers", "Providers", h("div", { class: "error-box", text: errorText(res) })));
    return;
  }
  view.providers = listOf(res.data, "connections");
  replaceSection("rt-providers", section("rt-providers", "Providers", providerTable(), addForm(message)));
}

function providerTable() {
  if (!view.providers.length) return h("div", { class: "muted", text: "No provider connection yet: add one below." });
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "grid fixed providers" },
      h(
        "colgroup",
        null,
        ["c-name", "c-kind", "c-url", "c-key", "c-models", "c-state", "c-test", "c-actions"].map((c) => h("col", { class: c })),
      ),
      h("thead", null, h("tr", null, ["Name", "Kind", "Base URL", "Key", "Models", "State", "Last test", ""].map((t) => h("th", { text: t })))),
      h("tbody", null, view.providers.map(providerRow)),
    ),
  );
}

function providerRow(c) {
  const models = c.models ?? [];
  const test = view.tests.get(c.id);
  const testCell = h("td", { class: "p-test" });
  if (test?.running) testCell.append(h("span", { class: "muted", text: "testing…" }));
  else if (test?.ok) testCell.append(h("span", { class: "state ok", text: `ok · ${fmtDur(test.latencyMs)} · ${fmtInt(test.models ?? 0)} models` }));
  else if (test) testCell.append(h("span", { class: "state bad", title: test.error ?? "", text: `error · ${fmtDur(test.latencyMs)}: ${test.error ?? ""}` }));
  else testCell.append(h("span", { class: `state ${c.testStatus === "active" ? "ok" : c.testStatus === "error" ? "bad" : "off"}`, text: c.testStatus === "active" ? "ok" : c.testStatus ?? "unknown" }));

  const confirming = view.confirming === c.id;
  const actions = confirming
    ? [
        h("span", { class: "confirm-text", text: `Delete ${c.name}?` }),
        h("button", { type: "button", class: "danger p-confirm-delete", text: "Delete", onclick: () => removeProvider(c) }),
        h("button", { type: "button", class: "p-cancel", text: "Cancel", onclick: () => { view.confirming = null; rerenderProviders(); } }),
      ]
    : [
        h("button", { type: "button", class: "p-test-btn", text: "Test", disabled: !!test?.running, onclick: () => testProvider(c) }),
        h("button", { type: "button", class: "p-toggle", text: c.isActive ? "Disable" : "Enable", onclick: () => toggleProvider(c) }),
        h("button", { type: "button", class: "link danger p-delete", text: "delete", onclick: () => { view.confirming = c.id; rerenderProviders(); } }),
      ];
  return h(
    "tr",
    { class: c.isActive ? "" : "inactive", dataset: { id: c.id, name: c.name } },
    h("td", { class: "p-name", text: c.name, title: c.id }),
    h("td", { class: "p-kind", text: c.provider }),
    h("td", { class: "p-url mono", text: c.url, title: c.url }),
    h("td", { class: "p-key mono", text: c.keyPreview ?? "(no key)" }),
    h("td", { class: "p-models", title: models.join("\n"), text: models.length ? `${models.length}: ${models.slice(0, 3).join(", ")}${models.length > 3 ? "…" : ""}` : "any (none listed)" }),
    h("td", { class: "p-active" }, h("span", { class: `state ${c.isActive ? "ok" : "off"}`, text: c.isActive ? "enabled" : "disabled" })),
    testCell,
    h("td", { class: "p-actions" }, actions),
  );
}

function rerenderProviders() {
  const old = document.querySelector("#rt-providers .table-wrap, #rt-providers > .muted");
  const table = providerTable();
  if (old) old.replaceWith(table);
}

function addForm(message) {
  const kind = h("select", { id: "p-new-kind", "aria-label": "Kind" }, KINDS.map((k) => h("option", { value: k, text: k })));
  const name = h("input", { id: "p-new-name", type: "text", placeholder: "name (optional)", "aria-label": "Name", maxlength: "100" });
  const url = h("input", { id: "p-new-url", type: "text", placeholder: "URL as in the provider's docs", "aria-label": "URL", required: true });
  const key = h("input", { id: "p-new-key", type: "password", placeholder: "API key", "aria-label": "API key", autocomplete: "off" });
  const models = h("input", { id: "p-new-models", type: "text", placeholder: "models, comma-separated (optional)", "aria-label": "Models" });
  const status = h("div", { id: "p-new-status", class: `form-status ${message?.ok === false ? "bad" : ""}`, "aria-live": "polite", text: message?.text ?? "" });
  const form = h(
    "form",
    {
      class: "add-form",
      id: "p-new",
      onsubmit: async (ev) => {
        ev.preventDefault();
        const body = { provider: kind.value, url: url.value.trim() };
        if (name.value.trim()) body.name = name.value.trim();
        if (key.value) body.apiKey = key.value;
        const list = models.value.split(",").map((m) => m.trim()).filter(Boolean);
        if (list.length) body.models = list;
        submit.disabled = true;
        const res = await api("POST", "/api/providers", body);
        submit.disabled = false;
        if (!res.ok) {
          status.className = "form-status bad";
          setText(status, `Not added: ${errorText(res)}`);
          return;
        }
        const conn = res.data;
        const text = conn.url === body.url ? `Added ${conn.name} (${conn.url}).` : `Added ${conn.name}; URL normalised to ${conn.url}.`;
        await loadProviders({ ok: true, text });
      },
    },
    h("span", { class: "form-title", text: "Add a provider" }),
    kind,
    name,
    url,
    key,
    models,
  );
  const submit = h("button", { type: "submit", class: "primary", id: "p-new-add", text: "Add" });
  form.append(submit);
  return h("div", null, form, status);
}

async function testProvider(c) {
  view.tests.set(c.id, { running: true });
  rerenderProviders();
  const res = await api("POST", `/api/providers/${encodeURIComponent(c.id)}/test`, {});
  view.tests.set(c.id, res.ok ? res.data : { ok: false, error: errorText(res) });
  await loadProviders();
}

async function toggleProvider(c) {
  const res = await api("PATCH", `/api/providers/${encodeURIComponent(c.id)}`, { isActive: !c.isActive });
  await loadProviders(res.ok ? { ok: true, text: `${c.name} ${c.isActive ? "disabled" : "enabled"}.` } : { ok: false, text: errorText(res) });
}

async function removeProvider(c) {
  view.confirming = null;
  const res = await api("DELETE", `/api/providers/${encodeURIComponent(c.id)}`);
  view.tests.delete(c.id);
  await loadProviders(res.ok ? { ok: true, text: `Deleted ${c.name}.` } : { ok: false, text: errorText(res) });
}

// --------------------------------------------------------------------------- combos

function nodeText(n) {
  if (n.combo) return `combo ${n.combo}`;
  const conn = n.connectionId ? connName(n.connectionId) : "any connection";
  return `${conn} · ${n.model ?? "(requested model)"}`;
}

async function loadCombos() {
  const res = await api("GET", "/api/combos");
  if (res.status === 404) return absent("rt-combos");
  if (!res.ok) return replaceSection("rt-combos", section("rt-combos", "Combos", h("div", { class: "error-box", text: errorText(res) })));
  const combos = listOf(res.data, "combos");
  const body = combos.length
    ? h(
        "div",
        { class: "combos" },
        combos.map((c) =>
          h(
            "div",
            { class: "combo", dataset: { name: c.name } },
            h("div", { class: "combo-head" }, h("span", { class: "combo-name", text: c.name }), h("span", { class: "badge", text: c.strategy }), c.model ? h("span", { class: "muted", text: `serves ${c.model}` }) : null),
            h(
              "ol",
              { class: "combo-nodes" },
              [...(c.nodes ?? [])]
                .sort((a, b) => (a.priority ?? 0) - (b.priority ?? 0))
                .map((n) =>
                  h(
                    "li",
                    { class: "combo-node" },
                    h("span", { class: "node-target", text: nodeText(n) }),
                    h("span", { class: "node-weight", text: ` × ${n.weight ?? 1}` }),
                    h("span", { class: "muted", text: ` · priority ${n.priority ?? 0}` }),
                  ),
                ),
            ),
          ),
        ),
      )
    : h("div", { class: "muted", text: "No combos. Create them with `llmtap combos` or POST /api/combos." });
  replaceSection("rt-combos", section("rt-combos", "Combos", body));
}

// --------------------------------------------------------------------------- call log

const LOG_COLS = [
  ["c-time", "Time"],
  ["c-model", "Model"],
  ["c-provider", "Provider"],
  ["c-status", "Status"],
  ["c-tokens", "Tokens in / out"],
  ["c-cost", "Cost"],
  ["c-latency", "Latency"],
];

function fmtStamp(iso) {
  const d = new Date(iso);
  if (!Number.isFinite(d.getTime())) return "";
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

async function loadCallLog() {
  const res = await api("GET", `/api/usage/call-logs?limit=${LOG_PAGE}&offset=${view.logOffset}`);
  if (res.status === 404) return absent("rt-calls");
  if (!res.ok) return replaceSection("rt-calls", section("rt-calls", "Router calls", h("div", { class: "error-box", text: errorText(res) })));
  const logs = listOf(res.data, "logs");
  const total = res.data?.total ?? logs.length;
  const first = total ? view.logOffset + 1 : 0;
  const last = view.logOffset + logs.length;
  const pager = h(
    "div",
    { class: "pager" },
    h("button", { type: "button", id: "log-prev", text: "‹ Newer", disabled: view.logOffset === 0, onclick: () => pageLog(-LOG_PAGE) }),
    h("span", { id: "log-range", text: `${fmtInt(first)}–${fmtInt(last)} of ${fmtInt(total)}` }),
    h("button", { type: "button", id: "log-next", text: "Older ›", disabled: last >= total, onclick: () => pageLog(LOG_PAGE) }),
    h("button", { type: "button", class: "link", id: "log-refresh", text: "refresh", onclick: () => loadCallLog() }),
  );
  const table = h(
    "table",
    { class: "grid fixed calls", id: "call-log" },
    h("colgroup", null, LOG_COLS.map(([c]) => h("col", { class: c }))),
    h("thead", null, h("tr", null, LOG_COLS.map(([c, t]) => h("th", { class: c, text: t })))),
    h(
      "tbody",
      null,
      logs.map((r) => {
        const model = r.model && r.model !== r.requestedModel ? `${r.requestedModel} → ${r.model}` : r.requestedModel;
        const provider = r.connectionId ? connName(r.connectionId) : r.provider ?? "";
        const ok = r.status >= 200 && r.status < 400;
        return h(
          "tr",
          { class: "call", dataset: { id: r.id } },
          h("td", { class: "c-time", text: fmtStamp(r.timestamp) }),
          h("td", { class: "c-model", text: model, title: `${model}${r.combo ? ` (combo ${r.combo})` : ""}` }),
          h("td", { class: "c-provider", text: provider, title: r.provider ?? "" }),
          h("td", { class: "c-status" }, h("span", { class: `state ${ok ? "ok" : "bad"}`, title: r.error ?? "", text: String(r.status) })),
          h("td", { class: "c-tokens", text: `${fmtInt(r.tokensIn ?? 0)} / ${fmtInt(r.tokensOut ?? 0)}${r.usageEstimated ? " ~" : ""}` }),
          h("td", { class: "c-cost", text: fmtCost(r.costUsd) }),
          h("td", { class: "c-latency", text: fmtDur(r.latencyMs) }),
        );
      }),
    ),
  );
  const body = logs.length ? [table, pager] : [h("div", { class: "muted", text: "No router calls yet." }), pager];
  replaceSection("rt-calls", section("rt-calls", "Router calls", body));
}

function pageLog(delta) {
  view.logOffset = Math.max(0, view.logOffset + delta);
  loadCallLog();
}
