// The live feed: one WebSocket to the inspector, reconnected with exponential backoff (and
// jitter) whenever it drops. Each (re)connect starts with a snapshot of the server's buffer,
// which replaces the page's live records by id: a resync never duplicates a row.

import { setText } from "./dom.js";

const API = "/api/tools/traffic-inspector";
const $ = (id) => document.getElementById(id);
const MAX_DELAY_MS = 15000;

const conn = { ws: null, attempt: 0, timer: null, handlers: null, opened: 0 };
const queue = [];
let flushScheduled = false;
let snapshotPages = [];

function setConn(kind, text) {
  const el = $("conn");
  el.className = `conn conn-${kind}`;
  setText(el.querySelector(".conn-text"), text);
}

// handlers: snapshot(list), event(type, record), clear(), batchDone(touchedSession),
// opened(), closed(neverOpened)
export function connect(handlers) {
  conn.handlers = handlers ?? conn.handlers;
  clearTimeout(conn.timer);
  setConn("connecting", conn.attempt ? "reconnecting…" : "connecting…");
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}${API}/ws`);
  let opened = false;
  conn.ws = ws;
  ws.onopen = () => {
    opened = true;
    conn.attempt = 0;
    conn.opened++;
    setConn("live", "live");
    conn.handlers.opened?.(conn.opened > 1);
  };
  ws.onmessage = (ev) => {
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch {
      return;
    }
    queue.push(msg);
    scheduleFlush();
  };
  ws.onclose = () => {
    if (conn.ws !== ws) return;
    conn.ws = null;
    const delay = Math.min(MAX_DELAY_MS, 500 * 2 ** conn.attempt) + Math.floor(Math.random() * 250);
    conn.attempt++;
    setConn("down", `offline · retry in ${Math.ceil(delay / 1000)}s`);
    conn.handlers.closed?.(!opened);
    conn.timer = setTimeout(() => connect(), delay);
  };
}

// Events are applied in batches so a burst of traffic costs one layout, not one per event.
function scheduleFlush() {
  if (flushScheduled) return;
  flushScheduled = true;
  const run = () => {
    flushScheduled = false;
    flush();
  };
  if (document.hidden) setTimeout(run, 100);
  else requestAnimationFrame(run);
}

function flush() {
  const batch = queue.splice(0);
  const h = conn.handlers;
  let sessionTouched = false;
  for (const msg of batch) {
    switch (msg.type) {
      case "snapshot": {
        // The snapshot comes in pages (page 0 first, "more" until the last): applied whole.
        const data = Array.isArray(msg.data) ? msg.data : [];
        if (!msg.page) snapshotPages = [];
        snapshotPages.push(...data);
        if (!msg.more) {
          h.snapshot(snapshotPages);
          snapshotPages = [];
        }
        break;
      }
      case "new":
      case "update":
        h.event(msg.type, msg.data);
        if (msg.data?.sessionId) sessionTouched = true;
        break;
      case "clear":
        h.clear();
        break;
      default:
        break;
    }
  }
  h.batchDone(sessionTouched);
}
