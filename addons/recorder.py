"""Recorder addon: every captured HTTP flow becomes one InterceptedRequest, pushed in-flight at
``request`` and updated in place (same id) at ``response``/``error``. Never awaits I/O."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mitmproxy import http

from addons import meta
from router import formats, ir, jsonfast
from router.traffic import detect, merge
from router.traffic.masking import mark_masked, mask_body, mask_headers, mask_text, masked_copy
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
    parsed: ir.Request | None  # the request in the IR, parsed once (LLM calls only)
    host: str
    path: str
    cap: int
    keep_bodies: bool  # LLM calls and custom hosts: bodies recorded; other traffic: headers


_UNPARSED: Any = object()


class Recorder:
    """Builds the record once per flow from what the capture addons tagged in metadata."""

    def __init__(
        self,
        publish_new: Callable[[InterceptedRequest], Any],
        publish_update: Callable[[InterceptedRequest], Any],
        *,
        cost_fn: Callable[[str, ir.Usage], float | None] | None = None,
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
        if flow.response is not None and "text/event-stream" in (
            meta.header(flow.response.headers.fields, b"content-type") or ""
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
        # Every value is masked as it is built (masked once, here: the buffer takes a masked
        # record as it is), and the record is one copy with everything new, or none.
        update = self._complete(flow, cached) if final else {}
        if meta.PROCESS in flow.metadata:
            update["pid"], update["process_name"] = flow.metadata[meta.PROCESS]
        return masked_copy(cached.record, update) if update else cached.record

    def _request_part(self, flow: http.HTTPFlow) -> _RequestPart:
        req = flow.request
        cap = self.max_body_bytes()
        headers = _headers(req.headers)  # read once: every lookup below uses it
        content_type = headers.get("content-type", "")
        custom_kind = flow.metadata.get(meta.CUSTOM_KIND)
        user_agent = headers.get("user-agent")
        host, path = req.pretty_host, req.path
        # What the host, path, User-Agent or a custom host say, before any work on the body.
        detected = detect.detect_kind(
            host,
            path,
            user_agent=user_agent,
            body_is_json="json" in content_type,
            custom_kind=custom_kind,
        )
        req_json: Any = None
        req_text: str | None = None
        req_truncated = False
        encoding = headers.get("content-encoding", "identity")
        if detected == "llm" or custom_kind is not None or _may_name_a_model(req, encoding):
            req_text, req_truncated = _body_text(req, cap)
            req_json = flow.metadata.get(meta.REQUEST_JSON, _UNPARSED)
            if req_json is _UNPARSED:  # the capture tagger did not parse it already
                req_json = _json_or_none(req, req_text, req_truncated)
            if detected != "llm":  # a JSON body with a model and a prompt is an LLM call
                detected = detect.detect_kind(
                    host,
                    path,
                    user_agent=user_agent,
                    body=req_json,
                    body_is_json=req_json is not None or "json" in content_type,
                    custom_kind=custom_kind,
                )
        keep = detected == "llm" or custom_kind is not None
        if not keep:
            # Traffic that is not an LLM call is recorded by its headers, sizes and timings:
            # its bodies are neither decoded, parsed nor masked (capture does no work it does
            # not need). A custom host's bodies are kept: the user asked to see that host.
            req_text, req_truncated, req_json = None, False, None
        fmt = detect.call_format(path, req_json) if detected == "llm" else None
        parsed: ir.Request | None = None
        if detected == "llm":
            # The one parse of the request: the context key now, the llm summary at the end.
            hint = req_json.get("model") if isinstance(req_json, dict) else None
            hint = hint if isinstance(hint, str) else merge.model_from_path(path)
            parsed = detect.parse_request(
                fmt or formats.format_for_body(req_json), req_json, model=hint
            )
        source_model = flow.metadata.get(meta.SOURCE_MODEL) or (
            req_json.get("model") if isinstance(req_json, dict) else None
        )
        mapped_model = flow.metadata.get(meta.MAPPED_MODEL)
        # Built from masked values without validation: every value has its field's type
        # here, and pydantic's validation of ~35 fields was a large part of a flow's cost.
        record = InterceptedRequest.trusted(
            id=flow.metadata.get(meta.ID) or uuid.uuid4().hex,
            source=flow.metadata.get(meta.SOURCE, "http-proxy"),
            agent=flow.metadata.get(meta.AGENT),
            timestamp=datetime.fromtimestamp(req.timestamp_start, UTC),
            method=req.method,
            scheme=req.scheme,
            host=host,
            port=req.port,
            path=mask_text(path),
            request_headers=mask_headers(headers),
            request_body=mask_body(req_text, headers.get("content-type")) if req_text else req_text,
            request_size=len(req.raw_content or b""),
            detected_kind=detected,
            context_key=detect.request_key(parsed),
            source_model=mask_text(source_model) if isinstance(source_model, str) else None,
            mapped_model=mask_text(mapped_model) if isinstance(mapped_model, str) else None,
            body_truncated=req_truncated or None,
        )
        mark_masked(record)
        keep = detected == "llm" or custom_kind is not None
        return _RequestPart(record, fmt, req_json, parsed, host, path, cap, keep)

    def _complete(self, flow: http.HTTPFlow, part: _RequestPart) -> dict[str, Any]:
        """What the end of the flow adds to the request part's record."""
        req, resp = flow.request, flow.response
        fmt, cap, base = part.fmt, part.cap, part.record
        t_recv = req.timestamp_start
        t_sent = _sent_time(flow)
        update: dict[str, Any] = {}
        if resp is not None:
            headers = _headers(resp.headers)
            update["status"] = resp.status_code
            update["response_headers"] = mask_headers(headers)
            update["response_size"] = len(resp.raw_content or b"")
            content = b""
            if part.keep_bodies:
                # Decoded once: the body text and the reply parse below read the same bytes.
                content = (resp.get_content(strict=False) if resp.raw_content else b"") or b""
                text, truncated = _text_of(content, cap)
                ctype = headers.get("content-type")
                update["response_body"] = mask_body(text, ctype) if text else text
                update["body_truncated"] = base.body_truncated or truncated or None
            elif base.detected_kind == "unknown" and "json" in headers.get("content-type", ""):
                update["detected_kind"] = "app"  # a JSON response makes it app traffic too
            t_end = resp.timestamp_end or time.time()
            update["ttfb_ms"] = _ms(resp.timestamp_start - t_sent) if resp.timestamp_start else None
            update["upstream_latency_ms"] = _ms(t_end - t_sent)
            update["total_latency_ms"] = _ms(t_end - t_recv)
            if base.detected_kind == "llm" and fmt is not None:
                update["llm"] = self._llm(flow, fmt, part, content, headers)
        if flow.error is not None:
            update["status"] = "error"
            update["error"] = mask_text(flow.error.msg)
            update["total_latency_ms"] = _ms(time.time() - t_recv)
        update["proxy_latency_ms"] = _ms(t_sent - t_recv)
        return update

    def _llm(
        self, flow: http.HTTPFlow, fmt: str, part: _RequestPart, raw: bytes, headers: dict[str, str]
    ) -> Any:
        streamed = "text/event-stream" in headers.get("content-type", "")
        if streamed:
            merged = merge.merge_stream(fmt, raw)
        else:
            try:
                merged = merge.parse_response(fmt, jsonfast.loads(raw)) if raw else None
            except ValueError:
                merged = None
        # A diverted call was answered by the router: the provider is the one it routed to.
        routed = headers.get("x-omniroute-provider") if meta.DIVERT in flow.metadata else None
        parsed = (
            part.parsed if part.parsed is not None and part.parsed.source_format == fmt else None
        )
        return merge.llm_summary(
            fmt,
            part.req_json,
            merged,
            provider=routed or detect.provider_for_host(part.host),
            streamed=streamed,
            path=part.path,
            cost_fn=self.cost_fn,
            request=parsed,
        )

    def _attribute(self, flow: http.HTTPFlow, record: InterceptedRequest) -> None:
        """Find the local process behind the client socket, off the event loop, once per
        client connection (a keep-alive connection's requests share one lookup: scanning
        the process table per flow cost more than everything else the proxy does)."""
        if self.attribute_process is None:
            return
        conn_id = flow.client_conn.id
        cached = self._processes.get(conn_id)  # found for an earlier flow of the connection
        if cached is not None:
            flow.metadata[meta.PROCESS] = cached
            return
        peer = flow.client_conn.peername
        if not peer or not is_loopback_peer(peer):
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
                # A copy: the published record is the one the live buffer holds.
                update = {"pid": found[0], "process_name": found[1]}
                final = flow.metadata[meta.FINAL] = masked_copy(final, update)
                self.publish_update(final)

        task = loop.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _headers(headers: http.Headers) -> dict[str, str]:
    out: dict[str, str] = {}
    # The raw fields, decoded as mitmproxy decodes them: its per-field accessors cost a few
    # Python calls each, on every flow.
    for raw_name, raw_value in headers.fields:
        key = raw_name.decode("utf-8", "surrogateescape").lower()
        if key in HOP_BY_HOP:
            continue
        value = raw_value.decode("utf-8", "surrogateescape")
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


def _body_text(message: http.Message, cap: int) -> tuple[str | None, bool]:
    return _text_of(message.get_content(strict=False) if message.raw_content else b"", cap)


def _text_of(content: bytes | None, cap: int) -> tuple[str | None, bool]:
    if not content:
        return None, False
    truncated = len(content) > cap
    text = content[:cap].decode("utf-8", errors="replace")
    return text, truncated


def _may_name_a_model(req: http.Request, encoding: str) -> bool:
    """Could the body be a JSON LLM request (``model`` beside a prompt field) on a host and
    path that do not say so? Decided on the raw bytes, without decoding: an encoded body
    (gzip, zstd, ...) is decoded to find out."""
    raw = req.raw_content
    if not raw:
        return False
    if encoding.lower() not in ("", "identity"):
        return True
    return b'"model"' in raw


def _json_or_none(req: http.Request, text: str | None, truncated: bool) -> Any:
    if not text or text.lstrip()[:1] not in ("{", "["):
        return None  # not a JSON object or array: no parser needs to see it
    if truncated:  # the cut text is not JSON; parse the whole body once for model/system
        try:
            return jsonfast.loads(req.get_content(strict=False) or b"")
        except ValueError:
            return None
    try:
        return jsonfast.loads(text)
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


class LocalProcesses:
    """Finds the local process owning a loopback client socket (Linux ``/proc``).

    The socket's inode comes from ``/proc/net/tcp{,6}`` (the row whose local port is the
    peer's); its owner is the process with an fd pointing at ``socket:[inode]``. Processes
    found before are searched first: an agent opens many connections, and checking its own
    fds costs a few syscalls where walking every process's fds (what
    ``psutil.net_connections`` does, about 17 ms of CPU on a busy machine) costs thousands,
    which under a stream of new connections took the proxy's CPU. Thread-safe: called from
    the default executor.
    """

    RECENT = 8

    def __init__(self, proc: str = "/proc") -> None:
        self.proc = proc
        self._recent: dict[int, str] = {}  # pid -> name, most recent last
        self._lock = threading.Lock()

    def __call__(self, peer: tuple[str, int]) -> tuple[int, str] | None:
        inode = self._inode(peer[1])
        if inode is None:
            return None
        target = f"socket:[{inode}]"
        with self._lock:
            recent = list(reversed(self._recent))
        pid = next((p for p in recent if self._owns(p, target)), None)
        if pid is None:
            others = (int(d) for d in _listdir(self.proc) if d.isdigit())
            pid = next((p for p in others if p not in recent and self._owns(p, target)), None)
        if pid is None:
            return None
        name = self._name(pid)
        if name is None:
            return None
        with self._lock:
            self._recent.pop(pid, None)
            self._recent[pid] = name
            while len(self._recent) > self.RECENT:
                del self._recent[next(iter(self._recent))]
        return pid, name

    def _inode(self, port: int) -> str | None:
        want = f":{port:04X}"
        for table in ("tcp", "tcp6"):
            try:
                with open(f"{self.proc}/net/{table}", encoding="ascii") as fh:
                    next(fh, None)  # header
                    for line in fh:
                        fields = line.split()
                        # local address is field 1 ("0100007F:D431"); inode is field 9
                        if len(fields) > 9 and fields[1].endswith(want) and fields[9] != "0":
                            return fields[9]
            except OSError:
                continue
        return None

    def _owns(self, pid: int, target: str) -> bool:
        fd_dir = f"{self.proc}/{pid}/fd"
        for fd in _listdir(fd_dir):
            try:
                if os.readlink(f"{fd_dir}/{fd}") == target:
                    return True
            except OSError:
                continue
        return False

    def _name(self, pid: int) -> str | None:
        try:
            with open(f"{self.proc}/{pid}/comm", encoding="utf-8", errors="replace") as fh:
                return fh.read().strip() or None
        except OSError:
            return None


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []
