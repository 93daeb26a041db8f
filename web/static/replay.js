// Copy as curl, and edit-and-resend: the recorded request (body and model editable) sent
// through the router or to its original host, the new answer rendered beside the old one.

import { clear, h, tryParse } from "./dom.js";
import { answerView, statusChip } from "./detail.js";
import { api } from "./http.js";

const API = "/api/tools/traffic-inspector";

// Headers whose recorded value is masked: a curl line takes them from the environment.
const SECRET_HEADERS = new Set(["authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key", "cookie"]);
// Set by curl itself, or meaningless on a new connection.
const SKIP_HEADERS = new Set(["host", "content-length", "transfer-encoding", "connection", "accept-encoding", "keep-alive", "proxy-connection"]);

function shellQuote(text) {
  return `'${String(text).replaceAll("'", "'\\''")}'`;
}

function urlOf(r) {
  if (r.method === "CONNECT") return null;
  const def = (r.scheme === "https" && r.port === 443) || (r.scheme === "http" && r.port === 80);
  const host = String(r.host ?? "").includes(":") ? `[${r.host}]` : r.host;
  return `${r.scheme}://${host}${def || !r.port ? "" : `:${r.port}`}${r.path ?? ""}`;
}

// A curl command for a request as recorded ({method, url, headers, body}). Masked secrets
// become "$LLMTAP_API_KEY" (double-quoted, so the shell fills it in); everything else is
// single-quoted verbatim.
export function curlCommand({ method, url, headers, body }) {
  const lines = [`curl -sS -X ${method || "GET"} ${shellQuote(url)}`];
  let secret = false;
  for (const [name, value] of Object.entries(headers || {})) {
    const lower = name.toLowerCase();
    if (SKIP_HEADERS.has(lower)) continue;
    if (SECRET_HEADERS.has(lower)) {
      secret = true;
      const scheme = /^(Bearer|Basic)\s/i.exec(String(value));
      lines.push(`-H "${lower}: ${scheme ? scheme[0] : ""}$LLMTAP_API_KEY"`);
      continue;
    }
    lines.push(`-H ${shellQuote(`${lower}: ${value}`)}`);
  }
  if (body) lines.push(`--data-raw ${shellQuote(body)}`);
  const cmd = lines.join(" \\\n  ");
  return secret ? `# the key was masked when recorded: export LLMTAP_API_KEY=... first\n${cmd}` : cmd;
}

export function curlFor(r, which) {
  if (which === "upstream") {
    const up = r.upstreamRequest;
    return up ? curlCommand({ method: up.method, url: up.url, headers: up.headers, body: up.body }) : null;
  }
  const url = urlOf(r);
  return url ? curlCommand({ method: r.method, url, headers: r.requestHeaders, body: r.requestBody }) : null;
}

export function curlBox(r, which, label) {
  const text = curlFor(r, which);
  if (!text) return null;
  const pre = h("pre", { class: "code curl", id: `curl-${which}`, text });
  const status = h("span", { class: "muted small" });
  const copy = h("button", {
    type: "button",
    id: `copy-curl-${which}`,
    text: label,
    onclick: async () => {
      try {
        await navigator.clipboard.writeText(text);
        status.textContent = "copied";
      } catch {
        // No clipboard permission (plain http on another name, or a headless browser):
        // select the text so one Ctrl+C copies it.
        const range = document.createRange();
        range.selectNodeContents(pre);
        getSelection().removeAllRanges();
        getSelection().addRange(range);
        status.textContent = "selected: press Ctrl+C";
      }
      pre.hidden = false;
    },
  });
  pre.hidden = true;
  return h("div", { class: "curl-box" }, h("div", { class: "row-actions" }, copy, status), pre);
}

function prettyBody(text) {
  const parsed = tryParse(text ?? "");
  return parsed.ok ? JSON.stringify(parsed.value, null, 2) : String(text ?? "");
}

function headerLines(text) {
  const out = {};
  for (const line of text.split("\n")) {
    const at = line.indexOf(":");
    if (at > 0) out[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return out;
}

// The Replay tab: edit, send, compare. ``ctx.open(id)`` selects a call in the list.
export function replayTab(r, ctx) {
  const canResend = r.method !== "CONNECT" && !!r.requestBody;
  if (!canResend) {
    return h("div", { class: "muted pad", text: "Nothing to resend: this record has no request body (a tunnel, or a call without one)." });
  }
  const bodyArea = h("textarea", { id: "resend-body", rows: "12", spellcheck: "false", class: "mono" });
  bodyArea.value = prettyBody(r.requestBody);
  const model = h("input", { type: "text", id: "resend-model", placeholder: r.llm?.model ? `model (default ${r.llm.model})` : "model override (optional)" });
  const target = h(
    "select",
    { id: "resend-target", "aria-label": "Send to" },
    h("option", { value: "router", text: "through the router" }),
    h("option", { value: "original", text: `to ${r.host ?? "the original host"}` }),
  );
  const headers = h("textarea", { id: "resend-headers", rows: "2", spellcheck: "false", class: "mono", placeholder: "extra headers for the original host, one per line (e.g. authorization: Bearer …); sent, never stored" });
  headers.hidden = true;
  target.addEventListener("change", () => {
    headers.hidden = target.value !== "original";
  });
  const result = h("div", { id: "resend-result" });
  const run = h("button", {
    type: "button",
    id: "resend-run",
    class: "primary",
    text: "Send",
    onclick: async () => {
      run.disabled = true;
      clear(result);
      result.append(h("div", { class: "muted" }, h("span", { class: "spinner" }), " sending…"));
      const edited = tryParse(bodyArea.value);
      const payload = { target: target.value };
      if (bodyArea.value.trim() !== prettyBody(r.requestBody).trim()) payload.body = edited.ok ? edited.value : bodyArea.value;
      if (model.value.trim()) payload.model = model.value.trim();
      if (target.value === "original") payload.headers = headerLines(headers.value);
      const res = await api("POST", `${API}/requests/${encodeURIComponent(r.id)}/resend`, payload);
      run.disabled = false;
      clear(result);
      result.append(res.ok ? compareView(r, res.data, ctx) : h("div", { class: "error-box", text: res.message || `HTTP ${res.status}` }));
    },
  });
  return h(
    "div",
    { class: "pad-sections" },
    h("p", { class: "muted", text: "Send this request again, as recorded or edited. Through the router it is recorded as a new call; to the original host it goes straight there (masked keys are not sent: add the real one below)." }),
    bodyArea,
    h("div", { class: "row-actions" }, model, target, run),
    headers,
    result,
  );
}

function compareView(r, data, ctx) {
  const status = data.status;
  const chip = statusChip({ status: typeof status === "number" ? status : "error", error: data.error ?? null });
  const open = data.recordId
    ? h("button", { type: "button", class: "link", id: "resend-open", text: "open the new call", onclick: () => ctx.open(data.recordId) })
    : null;
  return h(
    "div",
    { class: "pad-sections" },
    h("div", { class: "status-line" }, chip, h("span", { class: "muted mono", text: data.url ?? "" }), open),
    data.error ? h("div", { class: "error-box", text: data.error }) : null,
    h(
      "div",
      { class: "compare" },
      h("div", { class: "answer-old" }, h("h4", { text: "Recorded answer" }), answerView(data.original?.answer, r.error)),
      h("div", { class: "answer-new" }, h("h4", { text: "New answer" }), answerView(data.answer, data.answer?.length ? null : bodyText(data))),
    ),
  );
}

function bodyText(data) {
  if (!data.body) return "(empty reply)";
  const parsed = tryParse(data.body);
  return parsed.ok ? JSON.stringify(parsed.value, null, 2) : data.body;
}
