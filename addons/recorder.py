"""Recorder addon: every captured HTTP flow becomes one InterceptedRequest, pushed in-flight at
``request`` and updated in place (same id) at ``response``/``error``. Never awaits I/O."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mitmproxy import http

from addons import meta
from router import ir
from router.traffic import detect, merge
from router.traffic.record import InterceptedRequest
from web.security import is_loopback_peer

log = logging.getLogger("llmtap.recorder")

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
    }
)


@dataclass(slots=True)
class _RequestPart:
    record: InterceptedRequest
    fmt: str | None
    req_json: Any
    host: str
    path: str
    cap: int


class Recorder:
    """Builds the record once per flow from what the capture addons tagged in metadata."""

    def __init__(
        self,
        publish_new: Callable[[InterceptedRequest], Any],
        publish_update: Callable[[InterceptedRequest], Any],
        *,
        cost_fn: Callable[[str, ir.Usage], float] | None = None,
        max_body_bytes: Callable[[], int] = lambda: 1024 * 1024,
        attribute_process: Callable[[tuple[str, int]], tuple[int, str] | None] | None = None,
    ) -> None:
        self.publish_new = publish_new
        self.publish_update = publish_update
        self.cost_fn = cost_fn
        self.max_body_bytes = max_body_bytes
        self.attribute_process = attribute_process
        self._tasks: set[asyncio.Task[None]] = set()
        # client connection id -> (pid, name); dropped when the client disconnects
        self._processes: dict[str, tuple[int, str]] = {}
        self._pending: dict[str, asyncio.Future[tuple[int, str] | None]] = {}

    # ------------------------------------------------------------------ hooks

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.metadata.get(meta.SKIP) or flow.response is not None:
            return
        try:
            record = self._build(flow, final=False)
            flow.metadata[meta.ID] = record.id
            self.publish_new(record)
            self._attribute(flow, record)
        except Exception:  # a bad flow is logged and skipped, never raised into mitmproxy
            log.exception("recording request failed")

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        # SSE goes to the client event by event; store_streamed_bodies keeps the whole text.
        if flow.response is not None and "text/event-stream" in flow.response.headers.get(
            "content-type", ""
        ):
            flow.response.stream = True

    def response(self, flow: http.HTTPFlow) -> None:
        self._final(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._final(flow)

    def client_disconnected(self, client: Any) -> None:
        self._processes.pop(client.id, None)

    def done(self) -> None:
        for task in self._tasks:
            task.cancel()

    # ------------------------------------------------------------------ building

    def _final(self, flow: http.HTTPFlow) -> None:
        if flow.metadata.get(meta.SKIP) or meta.ID not in flow.metadata:
            return
        try:
            record = self._build(flow, final=True)
            flow.metadata[meta.FINAL] = record
            self.publish_update(record)
        except Exception:
            log.exception("recording response failed")

    def _build(self, flow: http.HTTPFlow, *, final: bool) -> InterceptedRequest:
        # The request half is built once, at `request`, from the request as the client sent
        # it: a diverted flow is rewritten to the router hop afterwards, and the record must
        # still show the agent's own call (host, path, headers), never the hop.
        cached: _RequestPart | None = flow.metadata.get(meta.RECORD)
        if cached is None:
            cached = flow.metadata[meta.RECORD] = self._request_part(flow)
        record = cached.record.model_copy()
        if meta.PROCESS in flow.metadata:
            record.pid, record.process_name = flow.metadata[meta.PROCESS]
        if final:
            self._complete(flow, record, cached)
        return record

    def _request_part(self, flow: http.HTTPFlow) -> _RequestPart:
        req = flow.request
        cap = self.max_body_bytes()
        req_text, req_truncated = _body_text(req, cap)
        req_json = _json_or_none(req, req_text, req_truncated)
        content_type = req.headers.get("content-type", "")
        fmt = detect.call_format(req.path, req_json)
        custom_kind = flow.metadata.get(meta.CUSTOM_KIND)
        detected = detect.detect_kind(
            req.pretty_host,
            req.path,
            user_agent=req.headers.get("user-agent"),
            body=req_json,
            body_is_json=req_json is not None or "json" in content_type,
            custom_kind=custom_kind,
        )
        record = InterceptedRequest(
            id=flow.metadata.get(meta.ID) or uuid.uuid4().hex,
            source=flow.metadata.get(meta.SOURCE, "http-proxy"),
            agent=flow.metadata.get(meta.AGENT),
            timestamp=datetime.fromtimestamp(req.timestamp_start, UTC),
            method=req.method,
            scheme=req.scheme,
            host=req.pretty_host,
            port=req.port,
            path=req.path,
            request_headers=_headers(req.headers),
            request_body=req_text,
            request_size=len(req.raw_content or b""),
            detected_kind=detected,
            context_key=detect.context_key(fmt, req_json) if detected == "llm" else None,
            source_model=flow.metadata.get(meta.SOURCE_MODEL)
            or (req_json.get("model") if isinstance(req_json, dict) else None),
            mapped_model=flow.metadata.get(meta.MAPPED_MODEL),
            body_truncated=req_truncated or None,
        )
        return _RequestPart(record, fmt, req_json, req.pretty_host, req.path, cap)

    def _complete(
        self, flow: http.HTTPFlow, record: InterceptedRequest, part: _RequestPart
    ) -> None:
        req, resp = flow.request, flow.response
        fmt, cap = part.fmt, part.cap
        t_recv = req.timestamp_start
        t_sent = _sent_time(flow)
        if resp is not None:
            text, truncated = _body_text(resp, cap)
            record.status = resp.status_code
            record.response_headers = _headers(resp.headers)
            record.response_body = text
            record.response_size = len(resp.raw_content or b"")
            record.body_truncated = record.body_truncated or truncated or None
            t_end = resp.timestamp_end or time.time()
            record.ttfb_ms = _ms(resp.timestamp_start - t_sent) if resp.timestamp_start else None
            record.upstream_latency_ms = _ms(t_end - t_sent)
            record.total_latency_ms = _ms(t_end - t_recv)
            if record.detected_kind == "llm" and fmt is not None:
                record.llm = self._llm(flow, fmt, part)
        if flow.error is not None:
            record.status = "error"
            record.error = flow.error.msg
            record.total_latency_ms = _ms(time.time() - t_recv)
        record.proxy_latency_ms = _ms(t_sent - t_recv)

    def _llm(self, flow: http.HTTPFlow, fmt: str, part: _RequestPart) -> Any:
        resp = flow.response
        assert resp is not None
        streamed = "text/event-stream" in resp.headers.get("content-type", "")
        raw = resp.get_content(strict=False) or b""
        if streamed:
            merged = merge.merge_stream(fmt, raw)
        else:
            try:
                merged = merge.parse_response(fmt, json.loads(raw)) if raw else None
            except ValueError:
                merged = None
        # A diverted call was answered by the router: the provider is the one it routed to.
        routed = resp.headers.get("x-omniroute-provider") if meta.DIVERT in flow.metadata else None
        return merge.llm_summary(
            fmt,
            part.req_json,
            merged,
            provider=routed or detect.provider_for_host(part.host),
            streamed=streamed,
            path=part.path,
            cost_fn=self.cost_fn,
        )

    def _attribute(self, flow: http.HTTPFlow, record: InterceptedRequest) -> None:
        """Find the local process behind the client socket, off the event loop, once per
        client connection (a keep-alive connection's requests share one lookup: scanning
        the process table per flow cost more than everything else the proxy does)."""
        peer = flow.client_conn.peername
        if self.attribute_process is None or not peer or not is_loopback_peer(peer):
            return
        conn_id = flow.client_conn.id
        cached = self._processes.get(conn_id)
        if cached is not None:
            flow.metadata[meta.PROCESS] = cached
            return
        loop = asyncio.get_running_loop()
        attribute = self.attribute_process
        pending = self._pending.get(conn_id)
        if pending is None:
            pending = self._pending[conn_id] = loop.run_in_executor(
                None, attribute, (peer[0], peer[1])
            )

        async def run() -> None:
            found = await pending
            self._pending.pop(conn_id, None)
            if found is None:
                return
            self._processes[conn_id] = found
            flow.metadata[meta.PROCESS] = found  # a final record built later carries it
            final = flow.metadata.get(meta.FINAL)
            if final is not None:  # the call already ended: publish its final state again
                final.pid, final.process_name = found
                self.publish_update(final)

        task = loop.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _headers(headers: http.Headers) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in headers.items(multi=True):
        key = name.lower()
        if key in HOP_BY_HOP:
            continue
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


def _body_text(message: http.Message, cap: int) -> tuple[str | None, bool]:
    content = message.get_content(strict=False) if message.raw_content else b""
    if not content:
        return None, False
    truncated = len(content) > cap
    text = content[:cap].decode("utf-8", errors="replace")
    return text, truncated


def _json_or_none(req: http.Request, text: str | None, truncated: bool) -> Any:
    if not text or text.lstrip()[:1] not in ("{", "["):
        return None  # not a JSON object or array: no parser needs to see it
    if truncated:  # the cut text is not JSON; parse the whole body once for model/system
        try:
            return json.loads(req.get_content(strict=False) or b"")
        except ValueError:
            return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _sent_time(flow: http.HTTPFlow) -> float:
    """When the request left for upstream: after it was read whole and the server connection
    was ready (mitmproxy records no send time of its own)."""
    conn = flow.server_conn
    ready = conn.timestamp_tls_setup or conn.timestamp_tcp_setup or 0.0
    return max(flow.request.timestamp_end or flow.request.timestamp_start, ready)


def _ms(seconds: float) -> float:
    return round(max(seconds, 0.0) * 1000, 2)


def local_process(peer: tuple[str, int]) -> tuple[int, str] | None:
    """The (pid, name) of the local process owning the socket at ``peer`` (Linux, psutil)."""
    import psutil

    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.laddr and conn.laddr.port == peer[1] and conn.pid:
                return conn.pid, psutil.Process(conn.pid).name()
    except (psutil.Error, OSError):
        return None
    return None
