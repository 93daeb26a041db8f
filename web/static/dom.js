// DOM building and formatting helpers. Record data is attacker-controlled: it only ever
// reaches the page as text nodes or property values, never as HTML.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") el.className = value;
      else if (key === "text") el.textContent = value;
      else if (key === "dataset") Object.assign(el.dataset, value);
      else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else if (key in el && typeof value !== "string") el[key] = value;
      else el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

export function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
}

// --------------------------------------------------------------------------- formatting

export function fmtTime(ms) {
  if (!Number.isFinite(ms)) return "";
  const d = new Date(ms);
  const p = (n, w = 2) => String(n).padStart(w, "0");
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

export function fmtDur(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(2)} s`;
  return `${Math.floor(ms / 60000)}m ${Math.round((ms % 60000) / 1000)}s`;
}

export function fmtCost(usd) {
  if (usd === null || usd === undefined || !Number.isFinite(usd)) return "–";
  if (usd === 0) return "$0";
  if (usd < 0.000001) return "<$0.000001";
  if (usd < 0.01) return `$${usd.toFixed(6)}`;
  return `$${usd.toFixed(4)}`;
}

export function fmtInt(n) {
  return Number.isFinite(n) ? n.toLocaleString("en-US") : "0";
}

export function fmtBytes(n) {
  if (!Number.isFinite(n) || n <= 0) return "0 B";
  if (n < 1024) return `${n} B`;
  if (n < 1048576) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1048576).toFixed(1)} MB`;
}

// A stable hue per context key, so one agent thread keeps its colour across reloads.
export function hueOf(key) {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % 360;
}

// --------------------------------------------------------------------------- JSON views

const HIGHLIGHT_LIMIT = 200_000;

export function tryParse(text) {
  if (typeof text !== "string") return { ok: false };
  const trimmed = text.trim();
  if (!trimmed || (trimmed[0] !== "{" && trimmed[0] !== "[")) return { ok: false };
  try {
    return { ok: true, value: JSON.parse(trimmed) };
  } catch {
    return { ok: false };
  }
}

// A <pre> with the value pretty-printed; small values get coloured tokens (built as spans).
export function jsonView(value) {
  const text = JSON.stringify(value, null, 2) ?? String(value);
  const pre = h("pre", { class: "code json" });
  if (text.length > HIGHLIGHT_LIMIT) {
    pre.textContent = text;
    return pre;
  }
  renderJson(pre, value, 0);
  return pre;
}

function renderJson(out, value, depth) {
  const pad = "  ".repeat(depth);
  if (value === null) return out.appendChild(h("span", { class: "j-null", text: "null" }));
  switch (typeof value) {
    case "string":
      return out.appendChild(h("span", { class: "j-str", text: JSON.stringify(value) }));
    case "number":
      return out.appendChild(h("span", { class: "j-num", text: String(value) }));
    case "boolean":
      return out.appendChild(h("span", { class: "j-bool", text: String(value) }));
    default:
      break;
  }
  const isArray = Array.isArray(value);
  const entries = isArray ? value.map((v, i) => [i, v]) : Object.entries(value);
  if (!entries.length) return out.appendChild(document.createTextNode(isArray ? "[]" : "{}"));
  out.appendChild(document.createTextNode(isArray ? "[\n" : "{\n"));
  entries.forEach(([key, child], i) => {
    out.appendChild(document.createTextNode(pad + "  "));
    if (!isArray) {
      out.appendChild(h("span", { class: "j-key", text: JSON.stringify(key) }));
      out.appendChild(document.createTextNode(": "));
    }
    renderJson(out, child, depth + 1);
    out.appendChild(document.createTextNode(i < entries.length - 1 ? ",\n" : "\n"));
  });
  out.appendChild(document.createTextNode(pad + (isArray ? "]" : "}")));
  return out;
}

// A body as stored (a string): pretty JSON when it parses, else the text itself.
export function bodyView(text) {
  if (text === null || text === undefined || text === "") {
    return h("div", { class: "muted", text: "(no body)" });
  }
  const parsed = tryParse(text);
  if (parsed.ok) return jsonView(parsed.value);
  return h("pre", { class: "code", text });
}

export function headersTable(headers) {
  const entries = Object.entries(headers || {});
  if (!entries.length) return h("div", { class: "muted", text: "(no headers)" });
  return h(
    "table",
    { class: "kv headers" },
    h(
      "tbody",
      null,
      entries.map(([k, v]) => h("tr", null, h("th", { text: k }), h("td", { text: String(v) }))),
    ),
  );
}

export function kvTable(rows) {
  return h(
    "table",
    { class: "kv" },
    h(
      "tbody",
      null,
      rows
        .filter(([, v]) => v !== null && v !== undefined && v !== "")
        .map(([k, v]) => h("tr", null, h("th", { text: k }), h("td", null, v))),
    ),
  );
}
