// The Router view: health, provider connections (add, test, edit, enable/disable, delete),
// then the routing, access and usage sections of their own modules. Everything goes through
// the management API (/api/...); a section whose endpoint this build lacks (404) is left out.

import { clear, fmtBytes, fmtDur, fmtInt, h, setText } from "./dom.js";
import { api, listOf } from "./http.js";
import { breakerBadge, errorText, fmtSeconds, placeholders, replaceSection as replaceIn, section, stat } from "./page.js";
import { loadAccess } from "./access.js";
import { loadRouting } from "./routing.js";
import { loadUsage } from "./usage.js";

const KINDS = ["openai", "anthropic", "gemini"];
const SECTIONS = [
  ["rt-health", "Health"],
  ["rt-providers", "Providers"],
  ["rt-combos", "Combos"],
  ["rt-aliases", "Aliases"],
  ["rt-chains", "Fallback chains"],
  ["rt-keys", "API keys"],
  ["rt-settings", "Settings"],
  ["rt-usage", "Usage"],
  ["rt-calls", "Router calls"],
];

// Shared with the section modules: the connections (names by id) and a way to refresh
// everything that depends on them.
export const routerState = { root: null, providers: [], tests: new Map(), confirming: null, editing: null, healthTimer: null };

function replaceSection(id, el) {
  replaceIn(routerState.root, id, el);
}

export function connName(id) {
  const conn = routerState.providers.find((c) => c.id === id);
  return conn ? conn.name : id;
}

export async function loadRouterView(root) {
  routerState.root = root;
  clear(root);
  root.append(
    h(
      "nav",
      { class: "router-nav", "aria-label": "Router sections" },
      SECTIONS.map(([id, title]) => h("a", { href: `#${id}`, text: title, onclick: (ev) => { ev.preventDefault(); document.getElementById(id)?.scrollIntoView({ block: "start" }); } })),
    ),
  );
  // Fixed order, filled as each answer arrives; health on top as the one-glance "is it up".
  placeholders(root, SECTIONS.map(([id]) => id));
  // Providers first: the other sections name connections by their id.
  await loadProviders();
  await Promise.all([loadHealth(), loadRouting(root), loadAccess(root), loadUsage(root)]);
  // Uptime and breakers move on their own: refresh health while the view is on screen.
  clearInterval(routerState.healthTimer);
  routerState.healthTimer = setInterval(() => {
    const el = document.getElementById("rt-health");
    if (!el) return clearInterval(routerState.healthTimer);
    if (!el.closest("[hidden]")) loadHealth();
  }, 3000);
}

// An endpoint this build lacks: its section goes.
function absent(id) {
  document.getElementById(id)?.remove();
}

// --------------------------------------------------------------------------- health

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
    stat("Uptime", fmtSeconds(d.uptimeSeconds), "", "h-uptime"),
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
              { dataset: { id } },
              h("td", { text: connName(id) }),
              h("td", { class: "b-state" }, breakerBadge(b)),
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
    section(
      "rt-health",
      "Health",
      summary,
      h(
        "div",
        { class: "health-tables" },
        h("div", null, h("h3", { text: "Listeners" }), listenerTable),
        h(
          "div",
          null,
          h("h3", { text: "Circuit breakers" }),
          breakerBox,
          breakers.length
            ? h("button", { type: "button", id: "h-reset", class: "link", text: "reset every breaker and 429 cooldown", onclick: async () => {
                const r = await api("POST", "/api/resilience/reset", {});
                if (r.ok) await loadHealth();
              } })
            : null,
        ),
      ),
    ),
  );
}

// --------------------------------------------------------------------------- providers

async function loadProviders(message) {
  const res = await api("GET", "/api/providers");
  if (res.status === 404) return absent("rt-providers");
  if (!res.ok) {
    replaceSection("rt-providers", section("rt-providers", "Providers", h("div", { class: "error-box", text: errorText(res) })));
    return;
  }
  routerState.providers = listOf(res.data, "connections");
  replaceSection("rt-providers", section("rt-providers", "Providers", providerTable(), addForm(message)));
}

function providerTable() {
  if (!routerState.providers.length) return h("div", { class: "muted", text: "No provider connection yet: add one below." });
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
      h("tbody", null, routerState.providers.map((c) => (routerState.editing === c.id ? editRow(c) : providerRow(c)))),
    ),
  );
}

function providerRow(c) {
  const models = c.models ?? [];
  const test = routerState.tests.get(c.id);
  const testCell = h("td", { class: "p-test" });
  if (test?.running) testCell.append(h("span", { class: "muted", text: "testing…" }));
  else if (test?.ok) testCell.append(h("span", { class: "state ok", text: `ok · ${fmtDur(test.latencyMs)} · ${fmtInt(test.models ?? 0)} models` }));
  else if (test) testCell.append(h("span", { class: "state bad", title: test.error ?? "", text: `error · ${fmtDur(test.latencyMs)}: ${test.error ?? ""}` }));
  else testCell.append(h("span", { class: `state ${c.testStatus === "active" ? "ok" : c.testStatus === "error" ? "bad" : "off"}`, text: c.testStatus === "active" ? "ok" : c.testStatus ?? "unknown" }));

  const confirming = routerState.confirming === c.id;
  const actions = confirming
    ? [
        h("span", { class: "confirm-text", text: `Delete ${c.name}?` }),
        h("button", { type: "button", class: "danger p-confirm-delete", text: "Delete", onclick: () => removeProvider(c) }),
        h("button", { type: "button", class: "p-cancel", text: "Cancel", onclick: () => { routerState.confirming = null; rerenderProviders(); } }),
      ]
    : [
        h("button", { type: "button", class: "p-test-btn", text: "Test", disabled: !!test?.running, onclick: () => testProvider(c) }),
        h("button", { type: "button", class: "p-toggle", text: c.isActive ? "Disable" : "Enable", onclick: () => toggleProvider(c) }),
        h("button", { type: "button", class: "link p-edit", text: "edit", onclick: () => { routerState.editing = c.id; rerenderProviders(); } }),
        h("button", { type: "button", class: "link danger p-delete", text: "delete", onclick: () => { routerState.confirming = c.id; rerenderProviders(); } }),
      ];
  return h(
    "tr",
    { class: c.isActive ? "" : "inactive", dataset: { id: c.id, name: c.name } },
    h("td", { class: "p-name", title: `${c.id} · priority ${c.priority ?? 0}` }, c.name, c.priority ? h("span", { class: "muted small", text: ` p${c.priority}` }) : null),
    h("td", { class: "p-kind", text: c.provider }),
    h("td", { class: "p-url mono", text: c.url, title: c.url }),
    h("td", { class: "p-key mono", text: c.keyPreview ?? "(no key)" }),
    h("td", { class: "p-models", title: models.join("\n"), text: models.length ? `${models.length}: ${models.slice(0, 3).join(", ")}${models.length > 3 ? "…" : ""}` : "any (none listed)" }),
    h("td", { class: "p-active" }, h("span", { class: `state ${c.isActive ? "ok" : "off"}`, text: c.isActive ? "enabled" : "disabled" })),
    testCell,
    h("td", { class: "p-actions" }, actions),
  );
}

// Edit in place: URL, key (replaced, never shown: only its preview), models, priority, enabled.
// Only the fields that changed are sent.
function editRow(c) {
  const url = h("input", { class: "e-url", type: "text", value: c.url, "aria-label": "URL" });
  const name = h("input", { class: "e-name", type: "text", value: c.name, "aria-label": "Name", maxlength: "64" });
  const key = h("input", { class: "e-key", type: "password", placeholder: c.keyPreview ? `key ${c.keyPreview}: type to replace` : "no key: type one to set it", "aria-label": "Replace API key", autocomplete: "off" });
  const models = h("input", { class: "e-models", type: "text", value: (c.models ?? []).join(", "), placeholder: "models, comma-separated (empty: any)", "aria-label": "Models" });
  const priority = h("input", { class: "e-priority", type: "number", step: "1", value: String(c.priority ?? 0), "aria-label": "Priority", title: "lower is tried first among connections that serve a bare model name" });
  const enabled = h("input", { class: "e-enabled", type: "checkbox", checked: !!c.isActive, "aria-label": "Enabled" });
  const status = h("span", { class: "form-status bad e-status", "aria-live": "polite" });
  const save = async () => {
    const patch = {};
    if (url.value.trim() !== c.url) patch.url = url.value.trim();
    if (name.value.trim() !== c.name) patch.name = name.value.trim();
    if (key.value) patch.apiKey = key.value;
    const list = models.value.split(",").map((m) => m.trim()).filter(Boolean);
    if (list.join(",") !== (c.models ?? []).join(",")) patch.models = list;
    const prio = Number(priority.value);
    if (prio !== (c.priority ?? 0)) patch.priority = prio;
    if (enabled.checked !== !!c.isActive) patch.isActive = enabled.checked;
    if (!Object.keys(patch).length) {
      routerState.editing = null;
      return rerenderProviders();
    }
    const res = await api("PATCH", `/api/providers/${encodeURIComponent(c.id)}`, patch);
    if (!res.ok) return setText(status, `Not saved: ${errorText(res)}`);
    routerState.editing = null;
    const changed = Object.keys(patch).map((k) => (k === "apiKey" ? "key replaced" : k)).join(", ");
    await loadProviders({ ok: true, text: `Saved ${res.data.name}: ${changed}.` });
  };
  const field = (label, input) => h("label", { class: "edit-field" }, h("span", { class: "muted small", text: label }), input);
  return h(
    "tr",
    { class: "editing", dataset: { id: c.id, name: c.name } },
    h(
      "td",
      { colspan: "8" },
      h(
        "form",
        { class: "edit-form", onsubmit: (ev) => { ev.preventDefault(); save(); } },
        h("span", { class: "form-title", text: `Edit ${c.name} (${c.provider})` }),
        field("Name", name),
        field("Base URL", url),
        field("API key", key),
        field("Models", models),
        field("Priority", priority),
        h("label", { class: "edit-field check" }, enabled, h("span", { text: "enabled" })),
        h("button", { type: "submit", class: "primary e-save", text: "Save" }),
        h("button", { type: "button", class: "e-cancel", text: "Cancel", onclick: () => { routerState.editing = null; rerenderProviders(); } }),
        status,
      ),
    ),
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
  routerState.tests.set(c.id, { running: true });
  rerenderProviders();
  const res = await api("POST", `/api/providers/${encodeURIComponent(c.id)}/test`, {});
  routerState.tests.set(c.id, res.ok ? res.data : { ok: false, error: errorText(res) });
  await loadProviders();
}

async function toggleProvider(c) {
  const res = await api("PATCH", `/api/providers/${encodeURIComponent(c.id)}`, { isActive: !c.isActive });
  await loadProviders(res.ok ? { ok: true, text: `${c.name} ${c.isActive ? "disabled" : "enabled"}.` } : { ok: false, text: errorText(res) });
}

async function removeProvider(c) {
  routerState.confirming = null;
  const res = await api("DELETE", `/api/providers/${encodeURIComponent(c.id)}`);
  routerState.tests.delete(c.id);
  await loadProviders(res.ok ? { ok: true, text: `Deleted ${c.name}.` } : { ok: false, text: errorText(res) });
}

