// The detail pane's tab bodies for one record: conversation, response, request, timing,
// annotate and replay. Everything is built with DOM nodes and text, never HTML strings.

import {
  bodyView,
  fmtBytes,
  fmtCost,
  fmtDur,
  fmtInt,
  h,
  headersTable,
  jsonView,
  kvTable,
  tryParse,
} from "./dom.js";
import { curlBox } from "./replay.js";
import { failedAfterSuccess } from "./store.js";

// --------------------------------------------------------------------------- threads

function turns(record, part) {
  const list = record?.llm?.conversation?.[part];
  return Array.isArray(list) ? list.filter((t) => t && typeof t === "object") : [];
}

// Same rule as router.traffic.buffer._turn_key: role + visible blocks, thinking ignored
// (clients strip or re-sign it when they send history back).
function turnKey(turn) {
  const blocks = Array.isArray(turn.blocks) ? turn.blocks : [];
  const kept = blocks
    .filter((b) => b && typeof b === "object" && b.type !== "thinking")
    .map((b) => JSON.stringify(b, Object.keys(b).sort()));
  return `${turn.role}\u0000${kept.join("\u0001")}`;
}

export function previousInThread(records, record) {
  const key = record.contextKey;
  if (!key) return null;
  const ts = Date.parse(record.timestamp);
  let best = null;
  let bestTs = -Infinity;
  for (const other of records) {
    if (other.id === record.id || other.contextKey !== key) continue;
    const ots = Date.parse(other.timestamp);
    if (ots < ts && ots > bestTs) {
      best = other;
      bestTs = ots;
    }
  }
  return best;
}

// Index of the first request turn this call added: after the prefix shared with the previous
// call's request, skipping the previous answer echoed back as history.
export function firstNewTurn(prev, record) {
  if (!prev) return 0;
  const request = turns(record, "request");
  const prevRequest = turns(prev, "request");
  let shared = 0;
  while (
    shared < request.length &&
    shared < prevRequest.length &&
    turnKey(request[shared]) === turnKey(prevRequest[shared])
  ) {
    shared++;
  }
  if (shared === prevRequest.length) {
    let echoed = turns(prev, "response").length;
    while (echoed && shared < request.length && request[shared].role === "assistant") {
      shared++;
      echoed--;
    }
  }
  return shared;
}

// --------------------------------------------------------------------------- conversation

function blockView(block) {
  if (!block || typeof block !== "object") return h("pre", { class: "code", text: String(block) });
  switch (block.type) {
    case "text":
      return h("div", { class: "blk blk-text", text: String(block.text ?? "") });
    case "thinking": {
      const text = String(block.thinking ?? "");
      const label = block.redacted ? "thinking (redacted)" : `thinking · ${fmtInt(text.length)} chars`;
      return h(
        "details",
        { class: "blk blk-thinking" },
        h("summary", { text: label }),
        h("div", { class: "thinking-text", text }),
      );
    }
    case "tool_use": {
      let input = block.input;
      if ((input === undefined || input === null) && typeof block.rawArguments === "string") {
        const parsed = tryParse(block.rawArguments);
        input = parsed.ok ? parsed.value : block.rawArguments;
      }
      return h(
        "div",
        { class: "blk blk-tool-use" },
        h(
          "div",
          { class: "blk-head" },
          h("span", { class: "badge tool", text: "tool_use" }),
          h("span", { class: "tool-name", text: String(block.name ?? "") }),
          block.id ? h("span", { class: "muted mono", text: String(block.id) }) : null,
        ),
        typeof input === "string" ? h("pre", { class: "code", text: input }) : jsonView(input ?? {}),
      );
    }
    case "tool_result": {
      const content = Array.isArray(block.content) ? block.content : [];
      return h(
        "div",
        { class: `blk blk-tool-result${block.isError ? " is-error" : ""}` },
        h(
          "div",
          { class: "blk-head" },
          h("span", { class: "badge result", text: block.isError ? "tool_result · error" : "tool_result" }),
          block.name ? h("span", { class: "tool-name", text: String(block.name) }) : null,
          block.toolUseId ? h("span", { class: "muted mono", text: String(block.toolUseId) }) : null,
        ),
        content.length ? content.map(blockView) : h("div", { class: "muted", text: "(empty)" }),
      );
    }
    case "image": {
      const parts = ["image", block.mediaType, block.url, block.dataLength ? fmtBytes(block.dataLength) : null];
      return h("div", { class: "blk blk-image muted", text: `[${parts.filter(Boolean).join(" · ")}]` });
    }
    default:
      return h("div", { class: "blk" }, h("span", { class: "badge", text: String(block.type ?? "block") }), jsonView(block));
  }
}

function turnView(turn, isResponse) {
  const role = ["system", "user", "assistant", "tool"].includes(turn.role) ? turn.role : "other";
  const blocks = Array.isArray(turn.blocks) ? turn.blocks : [];
  return h(
    "div",
    { class: `turn role-${role}${isResponse ? " is-response" : ""}` },
    h(
      "div",
      { class: "turn-role" },
      String(turn.role ?? "?"),
      isResponse ? h("span", { class: "badge resp", text: "response" }) : null,
    ),
    h("div", { class: "turn-blocks" }, blocks.length ? blocks.map(blockView) : h("div", { class: "muted", text: "(empty)" })),
  );
}

// A reply as its rendered turns (text, tool calls, thinking), never raw SSE; ``fallback`` is
// shown when nothing was understood (an error body, a non-LLM reply).
export function answerView(turns, fallback) {
  const list = Array.isArray(turns) ? turns.filter((t) => t && typeof t === "object") : [];
  if (list.length) return h("div", { class: "convo" }, list.map((t) => turnView(t, true)));
  if (fallback) return h("pre", { class: "code", text: String(fallback) });
  return h("div", { class: "muted", text: "(no answer)" });
}

export function conversationTab(record, ctx) {
  const convo = record?.llm?.conversation;
  if (!convo) {
    const why =
      record.status === "in-flight"
        ? "Waiting for the call to finish…"
        : `No conversation understood for this call (kind: ${record.detectedKind ?? "unknown"}). See the Request and Response tabs.`;
    return h("div", { class: "muted pad", text: why });
  }
  const request = turns(record, "request");
  const response = turns(record, "response");
  const prev = previousInThread(ctx.records, record);
  const first = firstNewTurn(prev, record);
  const showAll = ctx.showAll || !prev;
  const shown = showAll ? request : request.slice(first);
  const hidden = request.length - shown.length;

  const head = h("div", { class: "convo-head" });
  if (record.contextKey) {
    head.append(
      h("span", { class: "ctx-chip", dataset: { hue: "1" } }, "context ", h("span", { class: "mono", text: record.contextKey })),
    );
    ctx.paintHue(head.lastChild, record.contextKey);
  }
  if (prev) {
    head.append(
      h("span", {
        class: "muted",
        text: showAll
          ? `full history: ${request.length} request turns`
          : `${shown.length} new turn${shown.length === 1 ? "" : "s"} since the previous call in this thread` +
            (hidden ? ` · ${hidden} earlier hidden` : ""),
      }),
      h("button", {
        type: "button",
        class: "link",
        id: "toggle-history",
        text: showAll ? "show only what this call added" : "show everything",
        onclick: ctx.toggleShowAll,
      }),
    );
  } else {
    head.append(h("span", { class: "muted", text: `${request.length} request turns` }));
  }
  if (record.llm?.streamed) head.append(h("span", { class: "badge", text: "streamed" }));

  const body = h("div", { class: "convo" });
  for (const turn of shown) body.appendChild(turnView(turn, false));
  if (response.length) {
    for (const turn of response) body.appendChild(turnView(turn, true));
  } else if (record.status === "in-flight") {
    body.appendChild(h("div", { class: "muted pad" }, h("span", { class: "spinner" }), " waiting for the response…"));
  } else if (record.error) {
    body.appendChild(h("div", { class: "error-box", text: record.error }));
  }
  return h("div", null, head, body);
}

// --------------------------------------------------------------------------- response / request

export function responseTab(record) {
  const out = h("div", { class: "pad-sections" });
  const llm = record.llm;
  out.append(
    h("div", { class: "status-line" }, statusChip(record), " ", record.responseSize ? fmtBytes(record.responseSize) : ""),
  );
  if (record.error) out.append(h("div", { class: "error-box", text: record.error }));
  if (record.bodyTruncated) out.append(h("div", { class: "warn-box", text: "Body truncated by the inspector's size cap." }));
  if (llm) {
    const usage = [
      ["Model", llm.model],
      ["Provider", llm.provider],
      ["API", llm.apiKind],
      ["Tokens in", fmtInt(llm.tokensIn ?? 0) + (llm.usageEstimated ? " (estimated)" : "")],
      ["Tokens out", fmtInt(llm.tokensOut ?? 0)],
      ["Cache read / write", llm.cacheReadTokens || llm.cacheWriteTokens ? `${fmtInt(llm.cacheReadTokens)} / ${fmtInt(llm.cacheWriteTokens)}` : null],
      ["Reasoning tokens", llm.reasoningTokens ? fmtInt(llm.reasoningTokens) : null],
      // No price for the model: "unknown", never a $0 that reads as free.
      ["Cost", llm.costUsd === null || llm.costUsd === undefined ? "unknown" : fmtCost(llm.costUsd)],
    ];
    out.append(kvTable(usage));
  }
  out.append(section("Response headers", headersTable(record.responseHeaders), true));
  if (llm?.response) {
    out.append(section(llm.streamed ? "Merged response (from the stream)" : "Response", jsonView(llm.response)));
  }
  if (llm?.streamed) {
    out.append(section("Raw SSE", h("pre", { class: "code sse", text: record.responseBody ?? "" }), !!llm.response));
  } else if (!llm?.response || record.responseBody) {
    out.append(section("Body", bodyView(record.responseBody), !!llm?.response));
  }
  return out;
}

export function requestTab(record) {
  const port = portSuffix(record);
  const target = record.method === "CONNECT" ? `${record.host}:${record.port ?? 443}` : `${record.scheme}://${record.host}${port}${record.path ?? ""}`;
  const mapped =
    record.sourceModel || record.mappedModel
      ? `${record.sourceModel ?? "?"} → ${record.mappedModel ?? record.sourceModel ?? "?"}`
      : null;
  const overview = kvTable([
    ["URL", h("span", { class: "mono", text: `${record.method ?? ""} ${target}` })],
    ["Source", record.source],
    ["Agent", record.agent],
    ["Model mapping", mapped],
    ["Detected kind", record.detectedKind],
    ["Context key", record.contextKey],
    ["Session", record.sessionId],
    ["Process", record.processName ? `${record.processName}${record.pid ? ` (pid ${record.pid})` : ""}` : null],
    ["Note", record.note],
    ["Size", record.requestSize ? fmtBytes(record.requestSize) : null],
  ]);
  const client = h(
    "div",
    { class: "side", id: "req-client" },
    h("h4", { text: record.upstreamRequest ? "Client's request" : "Request" }),
    curlBox(record, "client", "Copy as curl"),
    section("Request headers", headersTable(record.requestHeaders)),
    section("Request body", bodyView(record.requestBody)),
  );
  const up = record.upstreamRequest;
  const upstream = up
    ? h(
        "div",
        { class: "side", id: "req-upstream" },
        h("h4", { text: "Sent upstream" }),
        h("div", { class: "mono small", text: `${up.method ?? "POST"} ${up.url ?? ""}` }),
        h("div", { class: "muted small", text: [up.provider, up.format].filter(Boolean).join(" · ") }),
        curlBox(record, "upstream", "Copy upstream as curl"),
        section("Headers", headersTable(up.headers)),
        section("Body (translated and mapped)", bodyView(up.body)),
      )
    : null;
  return h("div", { class: "pad-sections" }, overview, h("div", { class: up ? "side-by-side" : "" }, client, upstream));
}

function portSuffix(r) {
  const def = (r.scheme === "https" && r.port === 443) || (r.scheme === "http" && r.port === 80);
  return def || !r.port ? "" : `:${r.port}`;
}

function section(title, content, collapsed = false) {
  const el = h("details", { class: "section" }, h("summary", { text: title }), content);
  el.open = !collapsed;
  return el;
}

export function statusChip(record) {
  const s = record.status;
  if (s === "in-flight") return h("span", { class: "status st-flight" }, h("span", { class: "spinner" }), " in flight");
  if (s === "error") return h("span", { class: "status st-error", text: "error", title: record.error ?? "" });
  if (failedAfterSuccess(record)) {
    // The client got this status, then the stream broke: an error, not a success.
    const why = record.error || "the stream ended before its finish";
    return h("span", { class: "status st-error", title: `HTTP ${s}, then: ${why}`, text: "error" }, h("span", { class: "muted small", text: ` ${s} cut` }));
  }
  const cls = s >= 500 ? "st-5xx" : s >= 400 ? "st-4xx" : s >= 300 ? "st-3xx" : "st-2xx";
  return h("span", { class: `status ${cls}`, text: String(s) });
}

// --------------------------------------------------------------------------- timing

export function latencies(record) {
  const l = record.latencies && typeof record.latencies === "object" ? record.latencies : record;
  return {
    proxy: l.proxyLatencyMs ?? null,
    ttfb: l.ttfbMs ?? null,
    upstream: l.upstreamLatencyMs ?? null,
    total: l.totalLatencyMs ?? null,
  };
}

export function timingTab(record) {
  const t = latencies(record);
  const proxy = t.proxy ?? 0;
  // Waterfall: proxy from 0; ttfb and upstream start when the upstream request was sent.
  const bars = [
    ["Proxy", 0, t.proxy, "request received → upstream request sent"],
    ["TTFB", proxy, t.ttfb, "upstream request sent → first response byte"],
    ["Upstream", proxy, t.upstream, "upstream request sent → last byte"],
    ["Total", 0, t.total, "request received → last byte sent to the client"],
  ];
  const span = Math.max(1, ...bars.map(([, start, len]) => (len ?? 0) + start));
  const rows = bars.map(([name, start, len, desc]) =>
    h(
      "div",
      { class: "bar-row" },
      h("div", { class: "bar-name", text: name, title: desc }),
      h("div", { class: "bar-track" }, len === null ? null : bar(start, len, span, name)),
      h("div", { class: "bar-val", text: len === null ? "–" : fmtDur(len) }),
    ),
  );
  return h(
    "div",
    { class: "pad-sections" },
    record.status === "in-flight" ? h("div", { class: "muted", text: "Still in flight; timings fill in when it completes." }) : null,
    h("div", { class: "timing" }, rows),
    h("p", { class: "muted small", text: "Proxy: received → sent upstream. TTFB: sent → first byte. Upstream: sent → last byte. Total: received → last byte to the client." }),
  );
}

function bar(start, len, span, name) {
  const el = h("div", { class: `bar bar-${name.toLowerCase()}` });
  el.style.setProperty("left", `${(start / span) * 100}%`);
  el.style.setProperty("width", `${Math.max(0.5, (len / span) * 100)}%`);
  return el;
}
