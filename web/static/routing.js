// The Router view's routing sections: combos (editor, live per-node metrics and breakers, the
// dry-run "test plan"), model aliases and global fallback chains.

import { fmtDur, fmtInt, h, setText } from "./dom.js";
import { api, listOf } from "./http.js";
import { breakerBadge, datalist, errorText, fmtStamp, section, statusLine, table } from "./page.js";
import { connName, routerState } from "./router.js";

// One line per strategy: how it orders a combo's nodes for one request (router.md).
export const STRATEGIES = [
  ["priority", "by priority (lowest first), then list order"],
  ["weighted", "first node drawn at random by weight, the rest by weight, heaviest first"],
  ["round-robin", "rotates the starting node on each request; the rest follow in list order"],
  ["fill-first", "keeps using the first healthy node until it fails or hits its concurrency limit"],
  ["random", "a fresh shuffle for every request"],
  ["strict-random", "a shuffled deck: every node once before the deck is reshuffled"],
  ["least-used", "fewest recent requests (and calls in flight) first"],
  ["p2c", "picks two at random and puts the healthier, faster one first"],
  ["cost-optimized", "cheapest input price first; unpriced models last"],
  ["latency-optimized", "lowest recent median time-to-first-token first"],
  ["lkgp", "the node whose last call succeeded most recently first (last known good)"],
  ["context-optimized", "largest context window first; windows smaller than the request are skipped"],
];
const EXPLAIN = Object.fromEntries(STRATEGIES);

const SKIP_WHY = {
  breaker_open: "breaker open",
  probe_in_flight: "half-open: its one probe is already out",
  rate_limited: "cooling down after a 429",
  at_capacity: "at its concurrency limit (tried last)",
  context_too_small: "context window smaller than the request",
  connection_missing: "its connection was deleted",
  connection_inactive: "its connection is disabled",
};

const view = { root: null, combos: [], metrics: null, models: [], plans: new Map(), confirming: null, editing: undefined, timer: null };

export async function loadRouting(root) {
  view.root = root;
  await Promise.all([loadCombos(), loadAliases(), loadChains(), loadModels()]);
  startPolling();
}

function replace(id, el) {
  const old = document.getElementById(id);
  if (old) old.replaceWith(el);
}

async function loadModels() {
  const res = await api("GET", "/api/models");
  view.models = res.ok ? listOf(res.data?.models).map((m) => m.id) : [];
  view.aliases = res.ok ? listOf(res.data?.aliases) : [];
}

// Live figures: metrics are polled while the combos section is on screen; the editor and the
// open plans are kept across refreshes.
function startPolling() {
  clearInterval(view.timer);
  view.timer = setInterval(async () => {
    const list = document.getElementById("combo-list");
    if (!list || list.closest("[hidden]")) {
      if (!list) clearInterval(view.timer);
      return;
    }
    const res = await api("GET", "/api/combos/metrics");
    if (res.ok) {
      view.metrics = res.data;
      document.getElementById("combo-list")?.replaceWith(comboList());
    }
  }, 1500);
}

// --------------------------------------------------------------------------- combos

async function loadCombos(message) {
  const [res, metrics] = await Promise.all([api("GET", "/api/combos"), api("GET", "/api/combos/metrics")]);
  if (res.status === 404) return document.getElementById("rt-combos")?.remove();
  if (!res.ok) return replace("rt-combos", section("rt-combos", "Combos", h("div", { class: "error-box", text: errorText(res) })));
  view.combos = listOf(res.data, "combos");
  view.metrics = metrics.ok ? metrics.data : null;
  const status = statusLine("combo-status", message);
  replace(
    "rt-combos",
    section(
      "rt-combos",
      "Combos",
      h("p", { class: "muted small", text: "A combo is a model name clients can ask for; its strategy orders the nodes for each request and the router fails over down that order until one answers." }),
      comboList(),
      h("div", { class: "row-actions" }, h("button", { type: "button", id: "combo-new", class: "primary", text: "New combo", onclick: () => openEditor(null) })),
      h("div", { id: "combo-editor-slot" }, view.editing !== undefined ? comboEditor(view.editing) : null),
      status,
    ),
  );
}

function nodeMetrics(comboId) {
  return listOf(view.metrics?.combos).find((m) => m.id === comboId)?.nodes ?? [];
}

function comboList() {
  if (!view.combos.length) return h("div", { id: "combo-list", class: "muted", text: "No combos yet: create one with New combo." });
  return h("div", { id: "combo-list", class: "combos" }, view.combos.map(comboCard));
}

function nodeName(n) {
  if (n.combo) return `combo ${n.combo}`;
  return `${n.connection ?? connName(n.connectionId) ?? "?"} · ${n.model ?? "(requested model)"}`;
}

function comboCard(c) {
  const metrics = nodeMetrics(c.id);
  const total = listOf(view.metrics?.combos).find((m) => m.id === c.id);
  const breakers = view.metrics?.breakers ?? {};
  const rows = (c.nodes ?? []).map((node, i) => {
    const m = metrics[i] ?? {};
    const detail = node.connectionId ? breakers[node.connectionId] ?? m.breaker : null;
    return h(
      "tr",
      { class: "combo-node", dataset: { index: String(i), connection: node.connectionId ?? "", combo: node.combo ?? "" } },
      h("td", { class: "n-target", text: node.combo ? `combo ${node.combo}` : `${connName(node.connectionId)} · ${node.model ?? c.model ?? "(requested model)"}` }),
      h("td", { class: "n-weight num", text: String(node.weight ?? 1) }),
      h("td", { class: "n-priority num", text: String(node.priority ?? 0) }),
      h("td", { class: "n-requests num", text: fmtInt(m.requests ?? 0) }),
      h("td", { class: "n-failures num", text: fmtInt(m.failures ?? 0) }),
      h("td", { class: "n-latency num", text: m.avgLatencyMs ? fmtDur(m.avgLatencyMs) : "–" }),
      h("td", { class: "n-last", text: m.lastUsed ? fmtStamp(m.lastUsed) : "never" }),
      h("td", { class: "n-breaker" }, node.combo ? h("span", { class: "muted", text: "(its own nodes)" }) : breakerBadge(detail ?? "closed")),
    );
  });
  const confirming = view.confirming === c.id;
  const plan = view.plans.get(c.name);
  return h(
    "div",
    { class: "combo", dataset: { name: c.name, id: c.id } },
    h(
      "div",
      { class: "combo-head" },
      h("span", { class: "combo-name", text: c.name }),
      h("span", { class: "badge", text: c.strategy, title: EXPLAIN[c.strategy] ?? "" }),
      c.model ? h("span", { class: "muted", text: `default model ${c.model}` }) : null,
      total ? h("span", { class: "muted combo-totals", text: `${fmtInt(total.requests)} requests · ${fmtInt(total.failures)} failed` }) : null,
      h("span", { class: "spacer" }),
      h("button", { type: "button", class: "c-plan", text: "Test plan", onclick: () => testPlan(c.name) }),
      h("button", { type: "button", class: "link c-edit", text: "edit", onclick: () => openEditor(c) }),
      confirming
        ? [
            h("span", { class: "confirm-text", text: `Delete ${c.name}?` }),
            h("button", { type: "button", class: "danger c-confirm-delete", text: "Delete", onclick: () => removeCombo(c) }),
            h("button", { type: "button", class: "c-cancel", text: "Cancel", onclick: () => { view.confirming = null; rerenderList(); } }),
          ]
        : h("button", { type: "button", class: "link danger c-delete", text: "delete", onclick: () => { view.confirming = c.id; rerenderList(); } }),
    ),
    h("div", { class: "muted small", text: EXPLAIN[c.strategy] ?? "" }),
    table("combo-nodes", ["Node", "Weight", "Priority", "Requests", "Failures", "Avg latency", "Last used", "Breaker"], rows),
    plan ? planView(plan) : null,
  );
}

function rerenderList() {
  document.getElementById("combo-list")?.replaceWith(comboList());
}

async function removeCombo(c) {
  view.confirming = null;
  const res = await api("DELETE", `/api/combos/${encodeURIComponent(c.id)}`);
  view.plans.delete(c.name);
  await loadCombos(res.ok ? { ok: true, text: `Deleted ${c.name}.` } : { ok: false, text: errorText(res) });
}

// The dry run: the order the next request would take, and why a node would be passed over.
async function testPlan(name) {
  const res = await api("POST", "/api/combos/test", { model: name });
  view.plans.set(name, res.ok ? res.data : { error: errorText(res) });
  rerenderList();
}

function planView(plan) {
  if (plan.error) return h("div", { class: "plan error-box", text: plan.error });
  const steps = listOf(plan.steps);
  return h(
    "div",
    { class: "plan" },
    h("div", { class: "plan-title", text: `Next request for ${plan.model} would try, in this order:` }),
    steps.length
      ? h(
          "ol",
          { class: "plan-steps" },
          steps.map((s) =>
            h(
              "li",
              { class: `plan-step ${s.skipReason ? "skip" : ""}` },
              h("span", { class: "mono", text: `${s.connection}/${s.model}` }),
              s.combo && s.combo !== plan.combo ? h("span", { class: "muted", text: ` via combo ${s.combo}` }) : null,
              s.via === "fallback" ? h("span", { class: "muted", text: " (fallback chain)" }) : s.via === "alias" ? h("span", { class: "muted", text: " (via alias)" }) : null,
              " ",
              breakerBadge(s.breaker),
              s.skipReason ? h("span", { class: "skip-why", text: ` skipped now: ${SKIP_WHY[s.skipReason] ?? s.skipReason}` }) : null,
            ),
          ),
        )
      : h("div", { class: "bad", text: "no node can serve it: the request would fail" }),
    listOf(plan.skipped).length
      ? h(
          "ul",
          { class: "plan-skipped" },
          plan.skipped.map((s) => h("li", { class: "muted", text: `left out: ${s.connection ?? s.connectionId ?? s.combo}/${s.model ?? ""}: ${SKIP_WHY[s.reason] ?? s.reason}` })),
        )
      : null,
    h("div", { class: "muted small", text: ["weighted", "random", "strict-random", "p2c", "round-robin"].includes(plan.strategy) ? "This strategy draws or rotates per request: the next real request may start elsewhere." : "" }),
  );
}

// --------------------------------------------------------------------------- combo editor

function openEditor(combo) {
  view.editing = combo;
  const slot = document.getElementById("combo-editor-slot");
  slot.replaceChildren(comboEditor(combo));
  slot.querySelector("input")?.focus();
}

function comboEditor(combo) {
  const conns = routerState.providers;
  const otherCombos = view.combos.filter((c) => !combo || c.id !== combo.id).map((c) => c.name);
  const name = h("input", { id: "ce-name", type: "text", value: combo?.name ?? "", placeholder: "name (the model clients ask for)", "aria-label": "Combo name", maxlength: "64" });
  const model = h("input", { id: "ce-model", type: "text", value: combo?.model ?? "", placeholder: "default upstream model (optional)", "aria-label": "Default model" });
  const strategy = h("select", { id: "ce-strategy", "aria-label": "Strategy" }, STRATEGIES.map(([s, why]) => h("option", { value: s, text: s, title: why, selected: (combo?.strategy ?? "priority") === s })));
  const explain = h("div", { id: "ce-explain", class: "muted small", text: EXPLAIN[strategy.value] });
  strategy.addEventListener("change", () => setText(explain, EXPLAIN[strategy.value]));
  const body = h("tbody");
  const addNode = (n = {}) => body.append(nodeRow(n, conns, otherCombos));
  for (const n of combo?.nodes ?? []) addNode(n);
  if (!combo) addNode({});
  const status = statusLine("ce-status");
  const save = async (ev) => {
    ev.preventDefault();
    const nodes = [...body.querySelectorAll("tr")].map((tr) => tr.readNode());
    const payload = { name: name.value.trim(), strategy: strategy.value, nodes };
    if (model.value.trim()) payload.model = model.value.trim();
    else if (combo?.model) payload.model = null;
    const res = combo ? await api("PATCH", `/api/combos/${encodeURIComponent(combo.id)}`, payload) : await api("POST", "/api/combos", payload);
    if (!res.ok) return status.show(false, `Not saved: ${errorText(res)}`);
    view.editing = undefined;
    await Promise.all([loadCombos({ ok: true, text: `${combo ? "Saved" : "Created"} ${res.data.name}.` }), loadModels()]);
  };
  return h(
    "form",
    { class: "combo-editor", id: "combo-editor", onsubmit: save },
    h("div", { class: "form-title", text: combo ? `Edit combo ${combo.name}` : "New combo" }),
    h("div", { class: "add-form" }, name, model, h("label", { class: "muted", text: "strategy" }), strategy),
    explain,
    h(
      "table",
      { class: "grid node-editor" },
      h("thead", null, h("tr", null, ["Node", "Connection or combo", "Model", "Weight", "Priority", ""].map((t) => h("th", { text: t })))),
      body,
    ),
    datalist("ce-models", [...conns.flatMap((c) => c.models ?? []), ...view.models.map((m) => m.split("/").slice(1).join("/")).filter(Boolean)]),
    h(
      "div",
      { class: "row-actions" },
      h("button", { type: "button", id: "ce-add-node", text: "+ node", onclick: () => addNode({}) }),
      h("button", { type: "submit", class: "primary", id: "ce-save", text: combo ? "Save" : "Create" }),
      h("button", { type: "button", id: "ce-cancel", text: "Cancel", onclick: () => { view.editing = undefined; document.getElementById("combo-editor")?.remove(); } }),
    ),
    status,
  );
}

function nodeRow(n, conns, combos) {
  const kind = h("select", { class: "ne-kind", "aria-label": "Node kind" }, h("option", { value: "connection", text: "connection" }), h("option", { value: "combo", text: "nested combo", disabled: !combos.length }));
  kind.value = n.combo ? "combo" : "connection";
  const conn = h("select", { class: "ne-conn", "aria-label": "Connection" }, conns.map((c) => h("option", { value: c.id, text: `${c.name} (${c.provider})` })));
  if (n.connectionId) conn.value = n.connectionId;
  const nested = h("select", { class: "ne-combo", "aria-label": "Nested combo" }, combos.map((c) => h("option", { value: c, text: c })));
  if (n.combo) nested.value = n.combo;
  const model = h("input", { class: "ne-model", type: "text", value: n.model ?? "", placeholder: "upstream model", list: "ce-models", "aria-label": "Model" });
  const weight = h("input", { class: "ne-weight", type: "number", min: "0", step: "any", value: String(n.weight ?? 1), "aria-label": "Weight" });
  const priority = h("input", { class: "ne-priority", type: "number", step: "1", value: String(n.priority ?? 0), "aria-label": "Priority" });
  const sync = () => {
    const isCombo = kind.value === "combo";
    conn.hidden = isCombo;
    model.hidden = isCombo;
    nested.hidden = !isCombo;
  };
  kind.addEventListener("change", sync);
  sync();
  const tr = h(
    "tr",
    { class: "node-edit" },
    h("td", null, kind),
    h("td", null, conn, nested),
    h("td", null, model),
    h("td", null, weight),
    h("td", null, priority),
    h("td", null, h("button", { type: "button", class: "link danger ne-remove", text: "remove", onclick: () => tr.remove() })),
  );
  tr.readNode = () => {
    const out = { weight: Number(weight.value || 1), priority: Number(priority.value || 0) };
    if (kind.value === "combo") out.combo = nested.value;
    else {
      out.connectionId = conn.value;
      if (model.value.trim()) out.model = model.value.trim();
    }
    return out;
  };
  return tr;
}

// --------------------------------------------------------------------------- aliases

async function loadAliases(message) {
  await loadModels();
  const res = await api("GET", "/api/models");
  if (res.status === 404) return document.getElementById("rt-aliases")?.remove();
  const aliases = res.ok ? listOf(res.data?.aliases) : [];
  const alias = h("input", { id: "al-alias", type: "text", placeholder: "alias (what clients ask for)", "aria-label": "Alias" });
  const target = h("input", { id: "al-target", type: "text", placeholder: "target: provider/model or a combo", list: "al-targets", "aria-label": "Target" });
  const status = statusLine("al-status", message);
  const rows = aliases.map((a) =>
    h(
      "tr",
      { class: "alias", dataset: { alias: a.alias } },
      h("td", { class: "mono", text: a.alias }),
      h("td", { class: "mono", text: `→ ${a.target}` }),
      h("td", null, h("button", { type: "button", class: "link danger al-delete", text: "delete", onclick: async () => {
        const r = await api("DELETE", `/api/models/alias/${encodeURIComponent(a.alias)}`);
        await loadAliases(r.ok ? { ok: true, text: `Deleted alias ${a.alias}.` } : { ok: false, text: errorText(r) });
      } })),
    ),
  );
  replace(
    "rt-aliases",
    section(
      "rt-aliases",
      "Aliases",
      h("p", { class: "muted small", text: "An alias is another name for a model or combo: a client asking for the alias is served by the target. Set one again to repoint it." }),
      res.ok ? (aliases.length ? table("aliases", ["Alias", "Target", ""], rows) : h("div", { class: "muted", text: "No aliases." })) : h("div", { class: "error-box", text: errorText(res) }),
      datalist("al-targets", view.models),
      h(
        "form",
        { class: "add-form", id: "al-new", onsubmit: async (ev) => {
          ev.preventDefault();
          const r = await api("POST", "/api/models/alias", { alias: alias.value.trim(), target: target.value.trim() });
          await loadAliases(r.ok ? { ok: true, text: `${r.data.alias} → ${r.data.target}.` } : { ok: false, text: `Not set: ${errorText(r)}` });
        } },
        h("span", { class: "form-title", text: "Set an alias" }),
        alias,
        target,
        h("button", { type: "submit", class: "primary", id: "al-add", text: "Set" }),
      ),
      status,
    ),
  );
}

// --------------------------------------------------------------------------- fallback chains

async function loadChains(message) {
  const res = await api("GET", "/api/fallback/chains");
  if (res.status === 404) return document.getElementById("rt-chains")?.remove();
  const chains = res.ok ? listOf(res.data, "chains") : [];
  const model = h("input", { id: "fc-model", type: "text", placeholder: "model", "aria-label": "Model", list: "al-targets" });
  const links = h("input", { id: "fc-chain", type: "text", placeholder: "connections in order, comma-separated (name or name/model)", "aria-label": "Chain" });
  const status = statusLine("fc-status", message);
  const rows = chains.map((c) =>
    h(
      "tr",
      { class: "chain", dataset: { model: c.model } },
      h("td", { class: "mono", text: c.model }),
      h("td", { class: "mono", text: [...c.chain].sort((a, b) => a.priority - b.priority).map((l) => `${l.provider}${l.enabled ? "" : " (off)"}`).join(" → ") }),
      h("td", null, h("button", { type: "button", class: "link danger fc-delete", text: "delete", onclick: async () => {
        const r = await api("DELETE", `/api/fallback/chains?model=${encodeURIComponent(c.model)}`);
        await loadChains(r.ok ? { ok: true, text: `Deleted the chain of ${c.model}.` } : { ok: false, text: errorText(r) });
      } })),
    ),
  );
  replace(
    "rt-chains",
    section(
      "rt-chains",
      "Fallback chains",
      h("p", { class: "muted small", text: "When a plain model (not a combo) fails on its own connection, the router tries these connections in order before giving up." }),
      res.ok ? (chains.length ? table("chains", ["Model", "Then try", ""], rows) : h("div", { class: "muted", text: "No fallback chains." })) : h("div", { class: "error-box", text: errorText(res) }),
      h(
        "form",
        { class: "add-form", id: "fc-new", onsubmit: async (ev) => {
          ev.preventDefault();
          const chain = links.value.split(",").map((p) => p.trim()).filter(Boolean).map((provider, i) => ({ provider, priority: i, enabled: true }));
          const r = await api("POST", "/api/fallback/chains", { model: model.value.trim(), chain });
          await loadChains(r.ok ? { ok: true, text: `Saved the chain of ${r.data.model}.` } : { ok: false, text: `Not saved: ${errorText(r)}` });
        } },
        h("span", { class: "form-title", text: "Set a chain" }),
        model,
        links,
        h("button", { type: "submit", class: "primary", id: "fc-add", text: "Save" }),
      ),
      status,
    ),
  );
}
