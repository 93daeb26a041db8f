// The Agents view: the AgentBridge listener, one card per agent (hosts, divert support, DNS,
// route-all, detected models, the mapping editor), the CA (fingerprint, trust, download,
// regenerate, manual steps per OS), the upstream CA, bypass patterns, diagnose and repair.
// Everything goes through /api/tools/agent-bridge/*.

import { clear, fmtInt, h } from "./dom.js";
import { api as request, listOf } from "./http.js";
import { datalist, errorText, fmtStamp, placeholders, section, stat, statusLine, table } from "./page.js";

const B = "/api/tools/agent-bridge";

// The bridge API names its fields in snake_case (the contract's AgentState rows) and camelCase
// (state, repair); this page reads one convention, camelCase, whichever the server sends.
function camel(value) {
  if (Array.isArray(value)) return value.map(camel);
  if (!value || typeof value !== "object") return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k.replace(/_([a-z])/g, (_, c) => c.toUpperCase()), camel(v)]));
}

async function api(method, path, body) {
  const res = await request(method, path, body);
  return res.data && typeof res.data === "object" && !res.data.error ? { ...res, data: camel(res.data) } : res;
}
const EFFORTS = [["", "as sent"], ["none", "none (remove)"], ["low", "low"], ["medium", "medium"], ["high", "high"], ["xhigh", "xhigh"]];
const SECTIONS = ["ag-server", "ag-agents", "ag-cert", "ag-bypass", "ag-upstream", "ag-diagnose"];

const view = { root: null, targets: [], agents: [], timer: null };

export async function loadAgentsView(root) {
  view.root = root;
  clear(root);
  placeholders(root, SECTIONS);
  const models = await api("GET", "/api/models");
  // Mapping targets: every model the router serves (provider/model, combos, aliases).
  view.targets = models.ok ? listOf(models.data?.models).map((m) => m.id) : [];
  await Promise.all([loadServer(), loadCert(), loadAgents(), loadBypass(), loadUpstream(), loadDiagnose(false)]);
  // Intercepted calls and open connections move on their own: refresh the figures in place.
  clearInterval(view.timer);
  view.timer = setInterval(async () => {
    const el = document.getElementById("ag-server");
    if (!el) return clearInterval(view.timer);
    if (el.closest("[hidden]")) return;
    const res = await api("GET", `${B}/state`);
    if (!res.ok) return;
    setStat("ag-intercepted", fmtInt(res.data.interceptedCount ?? 0));
    setStat("ag-active", fmtInt(res.data.activeConnections ?? 0));
  }, 3000);
}

function setStat(id, text) {
  const el = document.getElementById(id);
  if (el && el.textContent !== text) el.textContent = text;
}

function replace(id, el) {
  document.getElementById(id)?.replaceWith(el);
}

function failed(id, title, res) {
  replace(id, section(id, title, h("div", { class: "error-box", text: errorText(res) })));
}

// --------------------------------------------------------------------------- listener

async function loadServer(message) {
  const res = await api("GET", `${B}/state`);
  if (!res.ok) return failed("ag-server", "AgentBridge listener", res);
  const s = res.data;
  const status = statusLine("ag-server-status", message);
  const act = (action) => async () => {
    const r = await api("POST", `${B}/server`, { action });
    await loadServer(r.ok ? { ok: true, text: `${action}: done.` } : { ok: false, text: `${action} failed: ${errorText(r)}` });
    if (r.ok) await loadAgents();
  };
  const lastError = s.lastError ?? null;
  replace(
    "ag-server",
    section(
      "ag-server",
      "AgentBridge listener",
      h("p", { class: "muted small", text: "Agents whose DNS is switched on below resolve their API hosts to this listener; it decrypts their TLS with llmtap's CA and diverts chat calls to the router (or passes them through)." }),
      h(
        "div",
        { class: "health-summary" },
        stat("State", s.running ? "running" : "stopped", s.running ? "ok" : "", "ag-running"),
        stat("Port", s.port ? String(s.port) : "not bound", "", "ag-port"),
        stat("Intercepted", fmtInt(s.interceptedCount ?? 0), "", "ag-intercepted"),
        stat("Active connections", fmtInt(s.activeConnections ?? 0), "", "ag-active"),
        stat("Started", s.lastStartedAt ? fmtStamp(s.lastStartedAt) : s.running ? "with llmtap" : "never", "", "ag-started"),
        stat("CA", s.certReady ? "ready" : "missing", s.certReady ? "ok" : "bad", "ag-ca-ready"),
      ),
      lastError ? h("div", { class: "error-box", id: "ag-last-error", text: `Last error: ${lastError}` }) : null,
      s.available === false ? h("div", { class: "warn-box", text: s.note ?? "the listener is not available in this process" }) : null,
      h(
        "div",
        { class: "row-actions" },
        h("button", { type: "button", id: "ag-start", class: "primary", text: "Start", disabled: s.running || s.available === false, onclick: act("start") }),
        h("button", { type: "button", id: "ag-stop", text: "Stop", disabled: !s.running, onclick: act("stop") }),
        h("button", { type: "button", id: "ag-restart", text: "Restart", disabled: s.available === false, onclick: act("restart") }),
        h("span", { class: "muted small", text: "Stop removes the hosts-file lines first, so agents never resolve to a dead port." }),
      ),
      status,
    ),
  );
}

// --------------------------------------------------------------------------- agents

async function loadAgents() {
  const res = await api("GET", `${B}/agents`);
  if (!res.ok) return failed("ag-agents", "Agents", res);
  view.agents = listOf(res.data);
  const cards = await Promise.all(view.agents.map(agentCard));
  replace(
    "ag-agents",
    section(
      "ag-agents",
      "Agents",
      h("p", { class: "muted small", text: "A mapping sends an agent's model to another model of the router (provider/model, an alias or a combo); it applies to the very next call, no restart. Exact names win over *." }),
      datalist("ag-targets", view.targets),
      h("div", { class: "agent-cards" }, cards),
    ),
  );
}

async function agentCard(a) {
  const id = encodeURIComponent(a.agentId);
  const [mappings, detected] = await Promise.all([api("GET", `${B}/agents/${id}/mappings`), api("GET", `${B}/agents/${id}/detected-models`)]);
  const seen = detected.ok ? listOf(detected.data) : [];
  const status = statusLine(`ag-status-${a.agentId}`);
  const dns = h("input", { type: "checkbox", class: "ag-dns", checked: !!a.dnsEnabled, disabled: !a.hosts.length, "aria-label": `DNS for ${a.displayName}` });
  dns.addEventListener("change", async () => {
    const r = await api("POST", `${B}/agents/${id}/dns`, { enabled: dns.checked });
    if (!r.ok) {
      dns.checked = !dns.checked;
      return status.show(false, errorText(r));
    }
    const added = listOf(r.data.hostsLinesAdded).length;
    const removed = listOf(r.data.hostsLinesRemoved).length;
    status.show(true, `${dns.checked ? "DNS on" : "DNS off"}: ${added} hosts line(s) added, ${removed} removed. ${r.data.hint ?? ""}`);
  });
  const routeAll = h("input", { type: "checkbox", class: "ag-route-all", checked: !!a.routeAll, disabled: !a.divert, "aria-label": `Route all of ${a.displayName}` });
  routeAll.addEventListener("change", async () => {
    const r = await api("POST", `${B}/agents/${id}/route-all`, { routeAll: routeAll.checked });
    if (!r.ok) {
      routeAll.checked = !routeAll.checked;
      return status.show(false, errorText(r));
    }
    status.show(true, routeAll.checked ? "Every chat call goes through the router (unmapped models unchanged)." : "Unmapped models pass through to the real origin.");
  });
  const card = h(
    "div",
    { class: `agent-card ${a.divert ? "" : "capture-only"}`, dataset: { agent: a.agentId } },
    h(
      "div",
      { class: "agent-head" },
      h("span", { class: "agent-name", text: a.displayName }),
      h("span", { class: "badge mono", text: a.format }),
      a.divert ? h("span", { class: "state ok ag-divert", text: "divert supported" }) : h("span", { class: "state warn ag-divert", text: "capture only", title: a.captureOnlyReason ?? "" }),
    ),
    a.divert ? null : h("div", { class: "muted small ag-why", text: a.captureOnlyReason ?? "" }),
    h("div", { class: "mono small ag-hosts", text: a.hosts.length ? a.hosts.join(", ") : "no verified host (add it as a custom host)" }),
    h(
      "div",
      { class: "agent-toggles" },
      h("label", { class: "toggle" }, dns, " DNS to llmtap"),
      a.dnsActive ? h("span", { class: "state ok small", text: "hosts lines present" }) : a.dnsEnabled ? h("span", { class: "state warn small", text: "lines added when the listener starts" }) : null,
      h("label", { class: "toggle", title: "Divert chat calls whose model has no mapping too, with the model unchanged" }, routeAll, " route all"),
    ),
    a.lastError ? h("div", { class: "error-box small ag-error", text: a.lastError }) : null,
    detectedList(seen),
    a.divert ? mappingEditor(a, mappings.ok ? listOf(mappings.data) : [], seen, status) : null,
    status,
  );
  return card;
}

function detectedList(seen) {
  if (!seen.length) return h("div", { class: "muted small ag-detected", text: "No models seen from this agent yet." });
  return h(
    "div",
    { class: "ag-detected" },
    h("span", { class: "muted small", text: "Seen: " }),
    seen.map((m) => h("span", { class: "chip small detected", dataset: { model: m.model }, title: m.mappedTo ? `mapped to ${m.mappedTo}` : "not mapped" }, `${m.model} ×${fmtInt(m.count)}`, m.mappedTo ? ` → ${m.mappedTo}` : "")),
  );
}

function mappingEditor(a, rows, seen, status) {
  const listId = `ag-sources-${a.agentId}`;
  const body = h("tbody");
  const addRow = (m = {}) => {
    const source = h("input", { class: "m-source", type: "text", value: m.sourceModel ?? "", placeholder: "model or *", list: listId, "aria-label": "Source model" });
    const target = h("input", { class: "m-target", type: "text", value: m.targetModel ?? "", placeholder: "router model or combo", list: "ag-targets", "aria-label": "Target model" });
    const effort = h("select", { class: "m-effort", "aria-label": "Effort" }, EFFORTS.map(([v, t]) => h("option", { value: v, text: t })));
    effort.value = m.effort ?? "";
    const tr = h("tr", { class: "mapping" }, h("td", null, source), h("td", { text: "→" }), h("td", null, target), h("td", null, effort), h("td", null, h("button", { type: "button", class: "link danger m-remove", text: "remove", onclick: () => tr.remove() })));
    tr.read = () => ({ source: source.value.trim(), target: target.value.trim(), ...(effort.value ? { effort: effort.value } : {}) });
    body.append(tr);
  };
  for (const m of rows) addRow(m);
  const none = h("div", { class: "muted small m-none", text: a.routeAll ? "No mappings: every chat call goes through the router with its model unchanged (route all)." : "No mappings: calls pass through to the real origin." });
  none.hidden = rows.length > 0;
  const save = async () => {
    const mappings = [...body.querySelectorAll("tr.mapping")].map((tr) => tr.read()).filter((m) => m.source || m.target);
    const r = await api("PUT", `${B}/agents/${encodeURIComponent(a.agentId)}/mappings`, { mappings });
    if (!r.ok) return status.show(false, `Not saved: ${errorText(r)}`);
    status.show(true, `Saved ${mappings.length} mapping(s): the next call uses them.`);
  };
  return h(
    "div",
    { class: "mapping-editor" },
    datalist(listId, ["*", ...seen.map((m) => m.model)]),
    h("table", { class: "grid mappings" }, h("thead", null, h("tr", null, ["Agent asks for", "", "Router serves", "Effort", ""].map((t) => h("th", { text: t })))), body),
    none,
    h(
      "div",
      { class: "row-actions" },
      h("button", { type: "button", class: "m-add", text: "+ mapping", onclick: () => { none.hidden = true; addRow({}); } }),
      h("button", { type: "button", class: "primary m-save", text: "Save mappings", onclick: save }),
    ),
  );
}

// --------------------------------------------------------------------------- certificate

const MANUAL = {
  Linux: (p) => [`sudo cp ${p} /usr/local/share/ca-certificates/llmtap-ca.crt`, "sudo update-ca-certificates", "# Fedora/RHEL: /etc/pki/ca-trust/source/anchors/ + sudo update-ca-trust", `# Firefox/Chrome (NSS): certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n llmtap -i ${p}`],
  macOS: (p) => [`sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain ${p}`],
  Windows: (p) => [`certutil -addstore Root ${p}`, "# run from an elevated prompt"],
  "Per tool": (p) => [`export NODE_EXTRA_CA_CERTS=${p}   # Node, Electron IDEs (restart them from this shell)`, `export SSL_CERT_FILE=${p}   # better: the combined bundle from \`llmtap env\``, `export REQUESTS_CA_BUNDLE=${p}`, `export CURL_CA_BUNDLE=${p}`],
};

async function loadCert(message) {
  const res = await api("GET", `${B}/cert`);
  if (!res.ok) return failed("ag-cert", "Certificate", res);
  const c = res.data;
  const status = statusLine("ag-cert-status", message);
  const guide = h("pre", { class: "guide", id: "ag-guide", hidden: true });
  const confirm = h(
    "div",
    { class: "warn-box", id: "ag-regen-confirm", hidden: true },
    h("div", { text: "A new CA key pair replaces this one at once. Agents running now hold TLS connections made with leaves of the old CA, and tools that trust only the old CA (NODE_EXTRA_CA_CERTS, a bundle file) fail TLS until they trust the new one and restart. If the old CA was in the OS store, the new one replaces it there." }),
    h("button", { type: "button", class: "danger", id: "ag-regen-yes", text: "Regenerate now", onclick: async () => {
      const r = await api("POST", `${B}/cert`, { action: "regenerate" });
      await loadCert(r.ok ? { ok: true, text: `New CA ${r.data.fingerprint}${r.data.trusted ? ", trusted" : ", not trusted yet: trust it again"}.` } : { ok: false, text: errorText(r) });
    } }),
    h("button", { type: "button", text: "Cancel", onclick: () => (confirm.hidden = true) }),
  );
  const os = h("div", { class: "manual" }, Object.entries(MANUAL).map(([name, lines]) => h("details", { class: "manual-os", dataset: { os: name } }, h("summary", { text: name }), h("pre", { class: "guide", text: lines(c.path).join("\n") }))));
  replace(
    "ag-cert",
    section(
      "ag-cert",
      "Certificate (llmtap's CA)",
      h(
        "div",
        { class: "kv" },
        h("div", null, h("span", { class: "muted", text: "SHA-256 " }), h("span", { class: "mono", id: "ag-fingerprint", text: c.fingerprint })),
        h("div", null, h("span", { class: "muted", text: "Trusted by the OS " }), h("span", { class: `state ${c.trusted ? "ok" : "bad"}`, id: "ag-trusted", text: c.trusted ? "yes" : "no" })),
        h("div", null, h("span", { class: "muted", text: "File " }), h("span", { class: "mono", text: c.path })),
        h("div", null, h("span", { class: "muted", text: "Valid until " }), h("span", { text: fmtStamp(c.notAfter) })),
      ),
      h(
        "div",
        { class: "row-actions" },
        h("button", { type: "button", id: "ag-download", text: "Download PEM", onclick: () => download(status) }),
        h("button", { type: "button", id: "ag-trust", class: "primary", text: "Trust", disabled: c.trusted, onclick: async () => {
          const r = await api("POST", `${B}/server`, { action: "trust-cert" });
          if (!r.ok) return status.show(false, errorText(r));
          await loadCert({ ok: r.data.trusted, text: `${r.data.status}: ${r.data.detail}` });
          if (r.data.guide) {
            const g = document.getElementById("ag-guide");
            g.textContent = r.data.guide;
            g.hidden = false;
          }
        } }),
        h("button", { type: "button", id: "ag-regen", class: "danger", text: "Regenerate…", onclick: () => (confirm.hidden = false) }),
      ),
      confirm,
      status,
      guide,
      h("div", { class: "muted small", text: "Trust by hand (where llmtap cannot write the store, e.g. without root or in a container):" }),
      os,
    ),
  );
}

async function download(status) {
  const resp = await fetch(`${B}/cert`, { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ action: "download" }) });
  if (!resp.ok) return status.show(false, `HTTP ${resp.status}`);
  const url = URL.createObjectURL(new Blob([await resp.text()], { type: "application/x-pem-file" }));
  const a = h("a", { href: url, download: "llmtap-ca.pem" });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  status.show(true, "Downloaded llmtap-ca.pem.");
}

// --------------------------------------------------------------------------- bypass

async function loadBypass(message) {
  const res = await api("GET", `${B}/bypass`);
  if (!res.ok) return failed("ag-bypass", "Bypass", res);
  const rows = listOf(res.data);
  const defaults = rows.filter((r) => r.source === "default");
  const user = rows.filter((r) => r.source === "user");
  const text = h("textarea", { id: "ag-bypass-user", rows: "4", "aria-label": "Your bypass patterns", placeholder: "one pattern per line, e.g. *.corp.example", text: user.map((r) => r.pattern).join("\n") });
  const status = statusLine("ag-bypass-status", message);
  replace(
    "ag-bypass",
    section(
      "ag-bypass",
      "Bypass (never decrypted)",
      h("p", { class: "muted small", text: "A host matching a pattern is tunnelled untouched in every capture mode, decided from the TLS SNI before any decryption. Only * is special; a bare word matches a whole label (bank, gov)." }),
      h("div", { class: "ag-bypass-defaults" }, h("span", { class: "muted small", text: "Defaults: " }), defaults.map((r) => h("span", { class: "chip small", text: r.pattern }))),
      text,
      h("div", { class: "row-actions" }, h("button", { type: "button", class: "primary", id: "ag-bypass-save", text: "Save patterns", onclick: async () => {
        const patterns = text.value.split("\n").map((p) => p.trim()).filter(Boolean);
        const r = await api("PUT", `${B}/bypass`, { patterns });
        await loadBypass(r.ok ? { ok: true, text: `Saved ${patterns.length} pattern(s): applies to the next connection.` } : { ok: false, text: `Not saved: ${errorText(r)}` });
      } })),
      status,
    ),
  );
}

// --------------------------------------------------------------------------- upstream CA

async function loadUpstream(message) {
  const res = await api("GET", `${B}/upstream-ca`);
  if (!res.ok) return failed("ag-upstream", "Upstream CA", res);
  const u = res.data;
  const path = h("input", { id: "ag-upstream-path", type: "text", value: u.stored ?? "", placeholder: "/path/to/corporate-root.pem", "aria-label": "Upstream CA path" });
  const status = statusLine("ag-upstream-status", message);
  const from = { env: "LLMTAP_UPSTREAM_CA", flag: "--upstream-ca", api: "this page" }[u.source] ?? "";
  replace(
    "ag-upstream",
    section(
      "ag-upstream",
      "Upstream CA (corporate TLS)",
      h("p", { class: "muted small", text: "Behind a TLS-inspecting corporate proxy, give its root certificate here: it is added to the default roots for every upstream connection (router and proxies)." }),
      h("div", { id: "ag-upstream-current", text: u.path ? `In use: ${u.path} (from ${from})${u.valid === false ? ` — invalid: ${u.error}` : ""}` : "None: the system roots only." }),
      h(
        "form",
        { class: "add-form", onsubmit: async (ev) => {
          ev.preventDefault();
          const r = await api("POST", `${B}/upstream-ca`, { path: path.value.trim() });
          const note = r.ok ? (r.data.overriddenBy ? ` (but ${r.data.overriddenBy} wins)` : r.data.appliesAfterRestart ? "; applies after a restart of llmtap" : "") : "";
          await loadUpstream(r.ok ? { ok: true, text: `Saved${note}.` } : { ok: false, text: `Not saved: ${errorText(r)}` });
        } },
        path,
        h("button", { type: "submit", class: "primary", id: "ag-upstream-save", text: "Set" }),
      ),
      status,
    ),
  );
}

// --------------------------------------------------------------------------- diagnose, repair

async function loadDiagnose(run = true, repaired) {
  const res = run ? await api("GET", `${B}/diagnose`) : null;
  const checks = res?.ok ? listOf(res.data?.checks).filter((c) => c.status !== "skip") : [];
  const result = !run
    ? h("div", { class: "muted", text: "Run the checks to see what stands between an agent and llmtap." })
    : !res.ok
      ? h("div", { class: "error-box", text: errorText(res) })
      : table(
          "checks",
          ["Check", "Result", "Detail", "Fix"],
          checks.map((c) =>
            h(
              "tr",
              { class: `check ${c.status}`, dataset: { check: c.id, agent: c.agent ?? "" } },
              h("td", { text: c.agent ? `${c.id} (${c.agent})` : c.id }),
              h("td", null, h("span", { class: `state ${c.ok ? "ok" : "bad"}`, text: c.status })),
              h("td", { class: "small", text: c.detail }),
              h("td", { class: "mono small fix", text: c.fix ?? "" }),
            ),
          ),
          { id: "ag-checks" },
        );
  const confirm = h(
    "div",
    { class: "warn-box", id: "ag-repair-confirm", hidden: true },
    "Repair removes every hosts-file line llmtap wrote (all agents lose DNS until the listener starts again) and reverts the OS proxy from the journal. ",
    h("button", { type: "button", class: "danger", id: "ag-repair-yes", text: "Repair now", onclick: async () => {
      const r = await api("POST", `${B}/repair`, {});
      const text = r.ok ? `Removed ${listOf(r.data.hostsLinesRemoved).length} hosts line(s); system proxy ${r.data.systemProxyReverted ? "reverted" : "unchanged"}${listOf(r.data.errors).length ? `; errors: ${r.data.errors.join("; ")}` : ""}.` : errorText(r);
      await Promise.all([loadDiagnose(true, { ok: r.ok, text }), loadAgents()]);
    } }),
  );
  const status = statusLine("ag-repair-status", repaired);
  replace(
    "ag-diagnose",
    section(
      "ag-diagnose",
      "Diagnose and repair",
      h(
        "div",
        { class: "row-actions" },
        h("button", { type: "button", id: "ag-diagnose-run", class: "primary", text: "Run checks", onclick: () => loadDiagnose(true) }),
        res?.ok ? h("span", { class: `state ${res.data.ok ? "ok" : "bad"}`, id: "ag-diagnose-summary", text: res.data.ok ? "all checks pass" : `${checks.filter((c) => !c.ok).length} check(s) failing` }) : null,
        h("button", { type: "button", id: "ag-repair", class: "danger", text: "Repair…", onclick: () => (confirm.hidden = false) }),
      ),
      result,
      confirm,
      status,
    ),
  );
}
