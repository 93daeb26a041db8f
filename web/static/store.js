// The Traffic view's data: every record the page knows (live from the WebSocket, or loaded
// from a stored session or a search), the filter and sort state, and the ordered list of
// the records to show. The list module renders only the visible slice of that order.

export const MAX_LIVE = 20000; // live records kept in the page (the list is virtualised)

export const records = new Map(); // id -> record
export const stored = new Set(); // ids loaded from a session or a search, not from the live feed
export const pinned = new Set(); // stored ids opened on purpose (from another view): kept shown

export const state = {
  selected: null,
  detailOpen: true,
  tab: "conversation",
  showAll: false,
  filter: { profile: "all", text: "", status: "", source: "", agent: "", session: "", context: null },
  search: { query: "", ids: null, snippets: new Map(), pending: false, error: null, stored: 0 },
  sort: { key: "time", dir: -1 },
  sources: new Set(),
  agents: new Set(),
  activeSession: null,
};

let order = null; // cached ordered ids of the shown records; null when stale
const listeners = new Set();

export function onChange(fn) {
  listeners.add(fn);
}

export function invalidate() {
  order = null;
  for (const fn of listeners) fn();
}

export function tsOf(record) {
  const ms = Date.parse(record.timestamp);
  return Number.isFinite(ms) ? ms : 0;
}

// A call whose client got a 2xx and then lost the stream (cut, or an error event) failed:
// the same rule as the server's record_status_class.
export function failedAfterSuccess(r) {
  return typeof r.status === "number" && r.status < 400 && !!(r.error || r.llm?.incomplete);
}

export function statusClass(r) {
  const status = r.status;
  if (status === "in-flight") return "in-flight";
  if (status === "error" || failedAfterSuccess(r)) return "error";
  if (typeof status === "number" && status >= 200 && status < 600) return `${Math.floor(status / 100)}xx`;
  return "";
}

function textMatches(r, text) {
  const hay = `${r.method ?? ""} ${r.host ?? ""}${r.path ?? ""} ${r.llm?.model ?? ""} ${r.sourceModel ?? ""} ${r.mappedModel ?? ""}`.toLowerCase();
  return text.split(/\s+/).every((w) => hay.includes(w));
}

export function matches(r) {
  const f = state.filter;
  if (f.profile === "llm" && r.detectedKind !== "llm") return false;
  if (f.profile === "custom" && r.source !== "custom-host") return false;
  if (f.status && statusClass(r) !== f.status) return false;
  if (f.source && r.source !== f.source) return false;
  if (f.agent && r.agent !== f.agent) return false;
  if (f.session && r.sessionId !== f.session) return false;
  if (!f.session && stored.has(r.id) && !state.search.ids?.has(r.id) && !pinned.has(r.id)) return false;
  if (f.context && r.contextKey !== f.context) return false;
  if (f.text) {
    // Host, path and model here at once; bodies and conversations by the server's search.
    if (!textMatches(r, f.text) && !state.search.ids?.has(r.id)) return false;
  }
  return true;
}

// --------------------------------------------------------------------------- sorting

export function sizeOf(r) {
  return (r.requestSize ?? 0) + (r.responseSize ?? 0);
}

function durationOf(r) {
  const l = r.latencies && typeof r.latencies === "object" ? r.latencies : r;
  return l.totalLatencyMs ?? -1;
}

const SORT_KEYS = {
  time: tsOf,
  source: (r) => r.source ?? "",
  agent: (r) => r.agent ?? "",
  method: (r) => r.method ?? "",
  url: (r) => `${r.host ?? ""}${r.path ?? ""}`,
  status: (r) => (typeof r.status === "number" ? (failedAfterSuccess(r) ? 1000 : r.status) : r.status === "error" ? 1000 : -1),
  model: (r) => r.llm?.model ?? r.mappedModel ?? r.sourceModel ?? "",
  tokens: (r) => (r.llm?.tokensIn ?? 0) + (r.llm?.tokensOut ?? 0),
  cost: (r) => r.llm?.costUsd ?? -1,
  size: sizeOf,
  dur: durationOf,
};

export function setSort(key) {
  if (!(key in SORT_KEYS)) return;
  if (state.sort.key === key) state.sort.dir = -state.sort.dir;
  else state.sort = { key, dir: key === "time" || key === "size" || key === "dur" || key === "cost" || key === "tokens" ? -1 : 1 };
  invalidate();
}

export function visibleOrder() {
  if (order) return order;
  const keyOf = SORT_KEYS[state.sort.key] ?? tsOf;
  const dir = state.sort.dir;
  const list = [];
  for (const r of records.values()) if (matches(r)) list.push(r);
  list.sort((a, b) => {
    const ka = keyOf(a);
    const kb = keyOf(b);
    let c = typeof ka === "number" && typeof kb === "number" ? ka - kb : String(ka).localeCompare(String(kb));
    if (c === 0) c = tsOf(a) - tsOf(b);
    return c * dir;
  });
  order = list.map((r) => r.id);
  return order;
}

// --------------------------------------------------------------------------- records

export function put(record, { fromStore = false } = {}) {
  if (!record || typeof record.id !== "string") return false;
  const existed = records.has(record.id);
  if (fromStore) {
    if (existed && !stored.has(record.id)) return false; // the live copy is the newer one
    stored.add(record.id);
  } else {
    stored.delete(record.id);
  }
  records.set(record.id, record);
  noteValues(record);
  tintOf(record.contextKey);
  return !existed;
}

// Over the cap, the oldest live records go in one batch (down to 90%), so a busy feed pays
// for one sort now and then, not one per call.
export function evict() {
  let live = records.size - stored.size;
  if (live <= MAX_LIVE) return;
  const target = Math.floor(MAX_LIVE * 0.9);
  const oldest = [...records.values()].filter((r) => !stored.has(r.id)).sort((a, b) => tsOf(a) - tsOf(b));
  for (const r of oldest) {
    if (live <= target) break;
    records.delete(r.id);
    live--;
  }
}

// A snapshot is the server's whole live state: live records it no longer has go (a restarted
// server starts empty), the rest are replaced by id, so a resync never duplicates a row.
export function replaceLive(list) {
  for (const id of [...records.keys()]) if (!stored.has(id)) records.delete(id);
  for (const r of list) put(r);
  evict();
}

export function dropStored(keep) {
  for (const id of [...stored]) {
    if (pinned.has(id) || keep(records.get(id))) continue;
    stored.delete(id);
    records.delete(id);
  }
}

export function clearLive() {
  for (const id of [...records.keys()]) if (!stored.has(id)) records.delete(id);
}

export const newValues = { sources: [], agents: [] };

function noteValues(r) {
  if (r.source && !state.sources.has(r.source)) {
    state.sources.add(r.source);
    newValues.sources.push(r.source);
  }
  if (r.agent && !state.agents.has(r.agent)) {
    state.agents.add(r.agent);
    newValues.agents.push(r.agent);
  }
}

// --------------------------------------------------------------------------- context tints

// Hues are handed out in the order contexts first appear, from a list ordered so that the
// first ones on screen are far apart on the colour wheel (a hash put two contexts on nearly
// the same red); red itself is left out, it means "error" here. Past the list, a golden
// angle (~137.5°) keeps spreading them.
const tints = new Map();
const PALETTE = [210, 35, 140, 285, 180, 320, 95, 250, 60, 160, 300, 115];
const GOLDEN = 137.508;

export function tintOf(key) {
  if (!key) return null;
  let hue = tints.get(key);
  if (hue === undefined) {
    const n = tints.size;
    hue = n < PALETTE.length ? PALETTE[n] : Math.round((PALETTE[0] + 17 + n * GOLDEN) % 360);
    tints.set(key, hue);
  }
  return hue;
}
