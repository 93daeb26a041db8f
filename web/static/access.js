// The Router view's access sections: router API keys (the full key shown once, on create)
// and the settings the API may change, each with what it does.

import { h } from "./dom.js";
import { api, listOf } from "./http.js";
import { copyText, errorText, fmtStamp, section, statusLine, table } from "./page.js";

export async function loadAccess() {
  await Promise.all([loadKeys(), loadSettings()]);
}

function replace(id, el) {
  document.getElementById(id)?.replaceWith(el);
}

// --------------------------------------------------------------------------- keys

async function loadKeys(message, created) {
  const res = await api("GET", "/api/keys");
  if (res.status === 404) return document.getElementById("rt-keys")?.remove();
  const keys = res.ok ? listOf(res.data, "keys") : [];
  const label = h("input", { id: "k-label", type: "text", placeholder: "label (who or what uses it)", "aria-label": "Key label", maxlength: "200" });
  const status = statusLine("k-status", message);
  const rows = keys.map((k) =>
    h(
      "tr",
      { class: `key ${k.isActive ? "" : "inactive"}`, dataset: { id: k.id } },
      h("td", { class: "k-label", text: k.label }),
      h("td", { class: "k-preview mono", text: k.keyPreview }),
      h("td", { class: "k-created", text: fmtStamp(k.createdAt) }),
      h("td", { class: "k-active" }, h("span", { class: `state ${k.isActive ? "ok" : "off"}`, text: k.isActive ? "active" : "revoked" })),
      h(
        "td",
        { class: "k-actions" },
        h("button", { type: "button", class: "k-toggle", text: k.isActive ? "Deactivate" : "Activate", onclick: async () => {
          const r = await api("PATCH", `/api/keys/${encodeURIComponent(k.id)}`, { isActive: !k.isActive });
          await loadKeys(r.ok ? { ok: true, text: `${k.label} ${k.isActive ? "deactivated" : "activated"}.` } : { ok: false, text: errorText(r) });
        } }),
        h("button", { type: "button", class: "link danger k-delete", text: "delete", onclick: async (ev) => {
          // Two clicks: the first arms the button, the second deletes.
          if (ev.target.dataset.armed !== "1") {
            ev.target.dataset.armed = "1";
            ev.target.textContent = `delete ${k.label}? click again`;
            return;
          }
          const r = await api("DELETE", `/api/keys/${encodeURIComponent(k.id)}`);
          await loadKeys(r.ok ? { ok: true, text: `Deleted ${k.label}: clients using it now get 401.` } : { ok: false, text: errorText(r) });
        } }),
      ),
    ),
  );
  replace(
    "rt-keys",
    section(
      "rt-keys",
      "API keys",
      h("p", { class: "muted small", text: "Keys for clients of /v1 (Authorization: Bearer …). They are required only when the requireApiKey setting is on. The server stores a hash: a key is shown once, when it is created." }),
      created ? shownOnce(created) : null,
      res.ok ? (keys.length ? table("keys", ["Label", "Key", "Created", "State", ""], rows) : h("div", { class: "muted", text: "No keys." })) : h("div", { class: "error-box", text: errorText(res) }),
      h(
        "form",
        { class: "add-form", id: "k-new", onsubmit: async (ev) => {
          ev.preventDefault();
          const r = await api("POST", "/api/keys", { label: label.value.trim() });
          if (!r.ok) return status.show(false, `Not created: ${errorText(r)}`);
          await loadKeys({ ok: true, text: `Created ${r.data.label}.` }, r.data);
        } },
        h("span", { class: "form-title", text: "Create a key" }),
        label,
        h("button", { type: "submit", class: "primary", id: "k-add", text: "Create" }),
      ),
      status,
    ),
  );
}

// The one time the full key is on screen: it is not kept in any state, so a reload forgets it.
function shownOnce(created) {
  const input = h("input", { id: "k-full", class: "mono", type: "text", readonly: true, value: created.key, "aria-label": "New key", size: String(Math.min(80, created.key.length + 2)) });
  const note = h("span", { class: "muted small", id: "k-copied" });
  return h(
    "div",
    { class: "once-box", id: "k-once" },
    h("div", null, h("strong", { text: `Key for ${created.label}: ` }), "copy it now, it will not be shown again."),
    h(
      "div",
      { class: "add-form" },
      input,
      h("button", { type: "button", id: "k-copy", text: "Copy", onclick: async () => {
        note.textContent = (await copyText(created.key, input)) ? "copied" : "selected: press Ctrl+C";
      } }),
      h("button", { type: "button", id: "k-dismiss", text: "Done", onclick: () => document.getElementById("k-once")?.remove() }),
      note,
    ),
  );
}

// --------------------------------------------------------------------------- settings

// What each setting does, in the words a user needs before changing it.
const SETTINGS = [
  ["requireApiKey", "bool", "Require an API key on /v1", "On: every /v1 call needs Authorization: Bearer with an active key from above; calls without one get 401. Off: any local process may use the router."],
  ["requireLogin", "bool", "Require the management token on /api and the UI", "On: the UI and /api need the token printed by `llmtap token` (the start URL sets it as a cookie). Turning it on from here keeps this page working only if you opened it with that URL."],
  ["tlsIntercept", "bool", "Decrypt HTTPS in the HTTP proxy", "On: HTTPS through :proxyPort is decrypted with llmtap's CA and recorded in full. Off: each CONNECT tunnel is one record (host, bytes, duration), untouched."],
  ["maxBodyKb", "int", "Body cap in the live buffer (KB)", "Request and response bodies kept per call in the Traffic view; longer ones are cut and marked truncated."],
  ["bufferSize", "int", "Calls kept in the live buffer", "The Traffic view keeps this many most recent calls in memory; older ones are evicted (recorded sessions keep theirs)."],
  ["maxRequestMb", "int", "Largest request body (MB)", "A /v1 request above this gets 413 before it is parsed."],
  ["guardMinutes", "int", "System-proxy guard (minutes)", "After the OS proxy is pointed at llmtap, it is reverted automatically after this long unless renewed: a crash never leaves the machine without network."],
  ["proxyPort", "int", "HTTP proxy port", "Where the explicit proxy (and the system proxy) listens."],
  ["bridgePort", "int", "AgentBridge port", "Where the agent bridge listens for diverted agents (443 by default: agents connect to their usual HTTPS port)."],
];

// The circuit breakers' thresholds (GET/PATCH /api/resilience), in the same table.
const RESILIENCE = [
  ["failureThreshold", "Breaker: failures to open", "Consecutive timeouts, connection errors, 408s or 5xx from one connection before its breaker opens and the router stops trying it."],
  ["cooldownSeconds", "Breaker: first cooldown (s)", "How long an open breaker waits before letting one probe request through (half-open); each failed probe doubles it."],
  ["maxCooldownSeconds", "Breaker: longest cooldown (s)", "The cap for the doubled cooldown."],
  ["rateLimitDefaultCooldownSeconds", "429 cooldown without Retry-After (s)", "After a 429, the connection and model rest this long unless the upstream said how long."],
];

async function loadSettings(message) {
  const resilience = await api("GET", "/api/resilience");
  const res = await api("GET", "/api/settings");
  if (res.status === 404) return document.getElementById("rt-settings")?.remove();
  if (!res.ok) return replace("rt-settings", section("rt-settings", "Settings", h("div", { class: "error-box", text: errorText(res) })));
  const current = res.data;
  const pending = listOf(current.pendingRestart);
  const status = statusLine("s-status", message);
  const inputs = new Map();
  const rows = SETTINGS.filter(([key]) => key in current).map(([key, type, label, effect]) => {
    const input =
      type === "bool"
        ? h("input", { type: "checkbox", class: "s-input", id: `s-${key}`, checked: !!current[key], "aria-label": label })
        : h("input", { type: "number", class: "s-input", id: `s-${key}`, value: String(current[key]), min: "0", step: "1", "aria-label": label });
    inputs.set(key, [type, input]);
    return h(
      "tr",
      { class: "setting", dataset: { key } },
      h("td", { class: "s-label" }, h("label", { for: `s-${key}`, text: label })),
      h("td", { class: "s-value" }, input, pending.includes(key) ? h("span", { class: "state warn s-pending", text: "applies after a restart" }) : null),
      h("td", { class: "s-effect muted small", text: effect.replace(":proxyPort", String(current.proxyPort ?? "")) }),
    );
  });
  const breakers = resilience.ok ? resilience.data : null;
  const limits = new Map();
  if (breakers) {
    for (const [key, label, effect] of RESILIENCE) {
      if (!(key in breakers)) continue;
      const input = h("input", { type: "number", class: "s-input", id: `s-${key}`, value: String(breakers[key]), min: "0", step: "any", "aria-label": label });
      limits.set(key, input);
      rows.push(h("tr", { class: "setting", dataset: { key } }, h("td", { class: "s-label" }, h("label", { for: `s-${key}`, text: label })), h("td", { class: "s-value" }, input), h("td", { class: "s-effect muted small", text: effect })));
    }
  }
  replace(
    "rt-settings",
    section(
      "rt-settings",
      "Settings",
      pending.length ? h("div", { class: "warn-box", id: "s-pending", text: `Waiting for a restart of llmtap: ${pending.join(", ")}. The rest took effect at once.` }) : null,
      table("settings", ["Setting", "Value", "Effect"], rows),
      h(
        "div",
        { class: "row-actions" },
        h("button", { type: "button", class: "primary", id: "s-save", text: "Save settings", onclick: async () => {
          const patch = {};
          for (const [key, [type, input]] of inputs) {
            const value = type === "bool" ? input.checked : Number(input.value);
            if (value !== current[key]) patch[key] = value;
          }
          const limitPatch = {};
          for (const [key, input] of limits) if (Number(input.value) !== breakers[key]) limitPatch[key] = Number(input.value);
          if (Object.keys(limitPatch).length) {
            const r = await api("PATCH", "/api/resilience", limitPatch);
            if (!r.ok) return status.show(false, `Not saved: ${errorText(r)}`);
            if (!Object.keys(patch).length) return loadSettings({ ok: true, text: `Saved ${Object.keys(limitPatch).join(", ")}, in effect now.` });
          }
          if (!Object.keys(patch).length) return status.show(true, "Nothing changed.");
          const r = await api("PATCH", "/api/settings", patch);
          const restart = listOf(r.data?.pendingRestart).filter((k) => k in patch);
          const text = r.ok
            ? `Saved ${Object.keys(patch).join(", ")}${restart.length ? `; ${restart.join(", ")} after a restart` : ", in effect now"}.`
            : `Not saved: ${errorText(r)}`;
          await loadSettings({ ok: r.ok, text });
        } }),
      ),
      status,
    ),
  );
}
