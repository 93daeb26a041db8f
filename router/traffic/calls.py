"""Router /v1 calls as inspector records: built once from what the engine already holds,
masked as they are built (:class:`CallRecorder`), and the request a diverted call sent upstream."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from router import jsonfast
from router.engine import CallInfo
from router.providers import call_head
from router.traffic.buffer import cap_strings
from router.traffic.detect import request_key
from router.traffic.masking import (
    clean_json,
    dumps_masked,
    mark_masked,
    mask_body,
    mask_headers,
    mask_json,
    mask_text,
    masked_copy,
)
from router.traffic.merge import model_from_path, render_response, request_turns, response_turns
from router.traffic.record import (
    InterceptedRequest,
    LlmInfo,
    Status,
    UpstreamRequest,
)
from router.traffic.service import Inspector
from router.usage import token_fields

log = logging.getLogger(__name__)


def _ms(start: float | None, end: float | None) -> float | None:
    if start is None or end is None:
        return None
    return round(max(0.0, end - start) * 1000, 3)


class CallRecorder:
    """Router /v1 calls as inspector records: in-flight at start, final at finish, each built
    once from what the engine already holds (the parsed body, the IR request, the merged IR
    response, the usage and cost it computed) and masked as it is built, so the buffer takes
    it as it is. The final record reuses the start record's masked request side.

    Diverted agent traffic (``source`` other than "router") is recorded by the capture path.
    The engine calls observers just after the current step of the event loop, so the reply is
    never held up by building a record. The in-flight record is due ``IN_FLIGHT_AFTER_S``
    after the call starts: a call that ends sooner (most whole replies) gets both states right
    after its reply, so building them never competes with the upstream answer for the loop;
    subscribers still see ``new`` (in flight) then ``update``. A due in-flight record is built
    when someone would see it: at once while anyone watches (a WebSocket client, a recording
    session), else when the live records are next read (:meth:`publish_due`, which the
    inspector runs before every read), so a call nobody looks at while it runs costs one
    record, not two.
    """

    _MAX_OPEN = 4096  # start records waiting for their finish; a bound, not a working limit
    IN_FLIGHT_AFTER_S = 0.005

    def __init__(self, inspector: Inspector, port: Callable[[], int]) -> None:
        self.inspector = inspector
        self.port = port
        # In-flight records awaiting their finish, with whether their request side needed no
        # masking (what the final record may then skip scanning again).
        self._open: dict[str, tuple[InterceptedRequest, bool]] = {}
        # In-flight records not yet published, in start order: (when due, loop time; call).
        # One timer serves them all (armed for the oldest), not one timer per call.
        self._due: dict[str, tuple[float, CallInfo]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop the calls run on
        inspector.add_pending(self.publish_due)

    def observe(self, info: CallInfo, phase: str) -> None:
        if info.inbound.source != "router" and not info.inbound.router_records:
            # A diverted call: the capture path owns its record; the router adds what only
            # it knows, the request it sent upstream.
            if phase == "finish":
                upstream = upstream_from_call(info, max_chars=self._max_chars())
                if upstream is not None:
                    self.inspector.attach_upstream(info.inbound.request_id, upstream)
            return
        self.record(info, phase)

    def record(self, info: CallInfo, phase: str) -> None:
        request_id = info.inbound.request_id
        if phase == "start":
            if info.finished:  # its finish came first (observed at once): that record has all
                return
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop (a synchronous caller): at once
                self._start(info)
                return
            self._due[request_id] = (loop.time() + self.IN_FLIGHT_AFTER_S, info)
            while len(self._due) > self._MAX_OPEN:
                self._due.pop(next(iter(self._due)))
            if self._loop is not loop:
                self._loop, self._timer = loop, None
            if self._timer is None and self.inspector.watched():
                self._timer = loop.call_later(self.IN_FLIGHT_AFTER_S, self._tick, loop)
            return
        # Ended before its in-flight record was due: when someone sees events, both states in
        # order; else nobody would see the in-flight state: the final record alone, built once.
        if self._due.pop(request_id, None) is not None and self.inspector.watched():
            self._start(info)
        base, clean = self._open.pop(request_id, (None, False))
        # upsert: a call refused before it started (unknown model) has only a finish
        self.inspector.upsert(
            record_from_call(
                info, port=self.port(), base=base, base_clean=clean, max_chars=self._max_chars()
            )
        )

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        """The timer: publish the in-flight records now due, if anyone would see them."""
        if loop is not self._loop:
            return  # armed on a loop the calls no longer run on (its timer was dropped)
        self._timer = None
        if self.inspector.watched():
            self._publish(loop)
        # Else nobody would see them now: a reader publishes what is due (publish_due), and
        # the next call started while someone watches arms the timer again.

    def publish_due(self) -> None:
        """Publish the in-flight records now due (the inspector runs this before every read
        of its live records). Only on the calls' own loop: a reader on another thread
        (a search) has them published by its handler first."""
        loop = self._loop
        if loop is None or not self._due:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            return
        if running is loop:
            self._publish(loop)

    def _publish(self, loop: asyncio.AbstractEventLoop) -> None:
        """Publish the due in-flight records; arm the timer for the next one, if any."""
        now = loop.time()
        while self._due:
            when, info = next(iter(self._due.values()))
            if when > now:  # the rest started later: due later
                if self._timer is None:
                    self._timer = loop.call_at(when, self._tick, loop)
                return
            try:
                self._start(info)  # takes it out of _due
            except Exception:  # one bad record must not hold back the others
                self._due.pop(info.inbound.request_id, None)
                log.exception("in-flight record of %s failed", info.inbound.request_id)

    def _start(self, info: CallInfo) -> None:
        request_id = info.inbound.request_id
        self._due.pop(request_id, None)
        start, clean = _start_record(
            info,
            port=self.port(),
            host="127.0.0.1",
            note=None,
            max_chars=self._max_chars(),
            in_flight=True,
        )
        self._open[request_id] = (self.inspector.add(start), clean)
        while len(self._open) > self._MAX_OPEN:
            self._open.pop(next(iter(self._open)))

    def _max_chars(self) -> int:
        # The live buffer cuts every body to this anyway: nothing longer is worth masking.
        return self.inspector.buffer.max_body_kb * 1024


def record_from_call(
    info: CallInfo,
    *,
    port: int,
    host: str = "127.0.0.1",
    note: str | None = None,
    base: InterceptedRequest | None = None,
    base_clean: bool = False,
    max_chars: int | None = None,
) -> InterceptedRequest:
    """A router /v1 call as a masked inspector record (source ``router``): in-flight until
    the engine has finished it, then final with the reply the client got, tokens and cost
    from the call and the latencies of inspector.md. ``base``, the masked in-flight record
    of the same call, saves building and masking the request side again (``base_clean``: its
    request side needed no masking, see :func:`_final_fields`). ``max_chars``
    caps every string the record keeps (bodies, conversation, upstream request) *before* it
    is masked or serialised: a 30 MB prompt is then never copied whole by recording, and the
    record the live buffer holds after the call is small."""
    if base is None or not base.masked or base.llm is None:
        return _start_record(info, port=port, host=host, note=note, max_chars=max_chars)[0]
    if not info.finished:
        return base
    return _final_record(info, base, max_chars, base_clean)


def _capped(value: Any, max_chars: int | None, size: int | None) -> Any:
    """``value`` with its long strings cut (:func:`cap_strings`), unless the body it came
    from (``size`` bytes, when known) is too small to hold one: skips the walk per call."""
    if max_chars is None or (size is not None and size <= max_chars):
        return value
    return cap_strings(value, max_chars)


def _size(info: CallInfo) -> int | None:
    """The inbound body's size in bytes, when the client said: a bound on every string the
    call's request side carries."""
    length = info.inbound.headers.get("content-length", "")
    return int(length) if length.isdigit() else None


def _start_record(
    info: CallInfo,
    *,
    port: int,
    host: str,
    note: str | None,
    max_chars: int | None = None,
    in_flight: bool = False,
) -> tuple[InterceptedRequest, bool]:
    """The call's record from what the engine holds: in flight (``in_flight``, or while the
    call runs), else final at once; and whether its request side needed no masking."""
    inbound = info.inbound
    scheme = "http"
    if inbound.router_records:
        # A diverted agent call: the agent's own host, as its capture would show it.
        agent_host = urlsplit("//" + inbound.headers.get("host", ""))
        if agent_host.hostname:
            scheme, host, port = "https", agent_host.hostname, agent_host.port or 443
    size = _size(info)
    body = _capped(inbound.body, max_chars, size)
    body_blob = jsonfast.dumps(body)
    path = f"{inbound.path}?{inbound.query}" if inbound.query else inbound.path
    req = info.request
    hint = inbound.body.get("model")
    if not isinstance(hint, str) or not hint:
        hint = inbound.path_model or model_from_path(inbound.path)
    turns = _capped(request_turns(req), max_chars, size) if req is not None else []
    model = hint or (req.model if req is not None else "")
    # A diverted call shows the agent's own model and what the mapping made of it.
    override = inbound.model_override
    source_model = (hint or "") if override else info.requested_model
    small = [path, model, source_model, override or "", note or ""]
    # One scan of every piece at once: usually no masking rule can fire in any of them, and
    # then each is its own masked form. Else each piece is masked on its own.
    clean = _clean_docs(body_blob, [turns, small])
    if clean:
        body_text = body_blob.decode("utf-8", "surrogatepass")
    else:
        body_text = dumps_masked(body)
        turns = mask_json(turns)
        path, model, source_model = mask_text(path), mask_text(model), mask_text(source_model)
        override = mask_text(override) if override else override
        note = mask_text(note) if note else note
    # The turns are the client's text; the context key is our own digest of them.
    convo = {"request": turns, "response": [], "contextKey": request_key(req)}
    llm_fields: dict[str, Any] = {
        "format": inbound.format,
        "model": model or None,
        "streamed": info.streamed,
        "conversation": convo,
    }
    fields = dict(
        id=inbound.request_id,
        source=inbound.source,
        agent=inbound.agent,
        timestamp=datetime.fromtimestamp(info.started_at, UTC),
        method="POST",
        scheme=scheme,
        host=host,
        port=port,
        path=path,
        request_headers=mask_headers(inbound.headers or {"content-type": "application/json"}),
        request_body=body_text,
        request_size=size if size is not None else len(body_text.encode()),
        status="in-flight",
        proxy_latency_ms=_ms(info.t0, info.t_sent),
        ttfb_ms=_ms(info.t_sent, info.t_headers),
        source_model=source_model or None,
        mapped_model=override or None,
        detected_kind="llm",
        context_key=convo["contextKey"],
        note=note or None,
        body_truncated=True if body is not inbound.body else None,
    )
    if info.finished and not in_flight:  # over: the final record at once, no copy of a start
        final = _final_fields(info, llm_fields, max_chars, request_clean=clean)
        llm_fields.update(final.pop("llm"))
        fields.update(final)
    # Every value was masked as it was built above: the record is marked so, not re-masked.
    # Without validation (``trusted``): every value above has its field's type already.
    fields["llm"] = mark_masked(LlmInfo.trusted(**llm_fields))
    return mark_masked(InterceptedRequest.trusted(**fields)), clean


def _clean_docs(*parts: bytes | list[Any]) -> bool:
    """True when no masking rule can fire in any of ``parts`` (JSON text, or JSON data to
    serialise), so each is its own masked form: one serialisation and one scan for all of a
    record's pieces (:func:`router.traffic.masking.clean_json`)."""
    try:
        blobs = [part if isinstance(part, bytes) else jsonfast.dumps(part) for part in parts]
    except (TypeError, ValueError):  # not plain JSON data: each piece is masked on its own
        return False
    return clean_json(*blobs)


def _final_record(
    info: CallInfo, base: InterceptedRequest, max_chars: int | None, request_clean: bool
) -> InterceptedRequest:
    """The final record from the call's masked in-flight one (its request side kept)."""
    assert base.llm is not None
    llm = {"model": base.llm.model, "conversation": base.llm.conversation}
    update = _final_fields(info, llm, max_chars, request_clean=request_clean)
    update["llm"] = masked_copy(base.llm, update["llm"])
    return masked_copy(base, update)


def _final_fields(
    info: CallInfo, llm: dict[str, Any], max_chars: int | None, *, request_clean: bool = False
) -> dict[str, Any]:
    """What the end of the call adds to its record (masked), given the request side's ``llm``
    fields (model, conversation); ``"llm"`` holds the LlmInfo fields to change.

    ``request_clean``: no masking rule fired anywhere in the client's body. An upstream of the
    same format was then sent that body with only top-level values replaced by the model and
    llmtap's own constants (``passthrough_body``), so it is not scanned again: for an agent's
    100+ KiB prompt that is a third of the record's scanning. The model is scanned here."""
    inbound = info.inbound
    step = info.step
    raw = info.response_bytes
    content_type = "text/event-stream" if info.streamed else "application/json"
    resp = info.response
    turns: list[Any] | None = None
    rendered: dict[str, Any] | None = None
    if resp is not None:
        turns = _capped(response_turns(resp), max_chars, len(raw) if raw is not None else None)
        # A streamed reply's merged form, in the client's format (the UI shows it beside the
        # SSE text). A whole reply is already the response body: no second copy of it.
        if info.streamed and info.request is not None:
            rendered = render_response(inbound.format, resp, info.request)
    mapped = inbound.model_override or (
        step.model if step is not None and step.model != info.requested_model else None
    )
    model = resp.model if resp is not None and resp.model else None
    error = info.error or ""
    upstream_body = _upstream_blob(info, max_chars)
    # A whole reply is our own JSON text: scanned with the rest. An SSE text is masked apart.
    whole = raw is not None and not info.streamed and raw[:1] in (b"{", b"[")
    sent_model = step.model if step is not None else ""
    docs: list[bytes | list[Any]] = [
        [turns, rendered, [model or "", mapped or "", error, sent_model]]
    ]
    passthrough = request_clean and info.target_format == inbound.format
    if upstream_body is not None and not passthrough:
        docs.append(upstream_body)
    if whole:
        assert raw is not None
        docs.append(raw)
    clean = _clean_docs(*docs)
    response_text = raw.decode("utf-8", errors="replace") if raw is not None else None
    if not clean:
        turns = mask_json(turns)
        rendered = mask_json(rendered) if rendered is not None else None
        model = mask_text(model) if model else model
        mapped = mask_text(mapped) if mapped else mapped
        error = mask_text(error) if error else error
    if not (clean and whole):
        response_text = mask_body(response_text, content_type)
    llm_update: dict[str, Any] = {
        "provider": step.connection.provider if step is not None else None,
        "model": model or llm["model"],
    }
    usage = info.usage
    if usage is not None:
        cost = info.cost_usd
        llm_update.update(token_fields(usage), cost_usd=None if cost is None else float(cost))
    if resp is not None:
        convo = dict(llm["conversation"] or {})
        convo["response"] = turns
        llm_update["conversation"] = convo
        llm_update["incomplete"] = resp.incomplete  # a stream cut short or ended by an error
        if info.streamed and info.request is not None:
            llm_update["response"] = rendered
    status: Status = info.status if info.status is not None else "error"
    return {
        "response_headers": {"content-type": content_type} if raw is not None else {},
        "response_body": response_text,
        "response_size": len(raw or b""),
        "status": status,
        "proxy_latency_ms": _ms(info.t0, info.t_sent),
        "ttfb_ms": _ms(info.t_sent, info.t_headers),
        "upstream_latency_ms": _ms(info.t_sent, info.t_done),
        "total_latency_ms": _ms(info.t0, info.t_done),
        "error": error or None,
        "mapped_model": mapped or None,
        "llm": llm_update,
        "upstream_request": upstream_from_call(
            info,
            max_chars=max_chars,
            body_text=upstream_body.decode("utf-8", "surrogatepass")
            if clean and upstream_body is not None
            else None,
        ),
    }


def _upstream_blob(info: CallInfo, max_chars: int | None) -> bytes | None:
    """The body the call's last attempt sent upstream, its strings cut, as JSON text."""
    if info.step is None or info.upstream_body is None:
        return None
    try:
        return jsonfast.dumps(_capped(info.upstream_body, max_chars, _size(info)))
    except (TypeError, ValueError):  # not plain JSON data: upstream_from_call masks it
        return None


def upstream_from_call(
    info: CallInfo, *, max_chars: int | None = None, body_text: str | None = None
) -> UpstreamRequest | None:
    """The request the call's last attempt sent upstream (URL, headers with their secrets
    masked, translated and mapped body, its strings cut to ``max_chars``), masked once as it
    is built; None when no attempt was sent. ``body_text``: the body already serialised and
    known to need no masking (the record's one scan found nothing)."""
    step, body = info.step, info.upstream_body
    if step is None or body is None:
        return None
    conn = step.connection
    stream = info.request.stream if info.request is not None else info.streamed
    extra = info.upstream_extra_headers
    key = (
        conn.id, conn.provider, conn.name, conn.url, conn.api_key, step.model, stream,
        info.target_format, tuple(extra.items()) if extra else (),
    )  # fmt: skip
    head = _UPSTREAM_HEADS.get(key)
    if head is None:
        # The URL and headers are a function of these alone: built and masked once per
        # connection, model and header set, not once per call.
        url, headers = call_head(
            conn, step.model, stream=stream, api_format=info.target_format, extra_headers=extra
        )
        head = (mask_text(url), mask_headers(headers), mask_text(conn.name))
        if len(_UPSTREAM_HEADS) >= _MAX_UPSTREAM_HEADS:
            _UPSTREAM_HEADS.clear()
        _UPSTREAM_HEADS[key] = head
    upstream = UpstreamRequest.trusted(
        url=head[0],
        headers=dict(head[1]),  # each record its own (the cached one is shared)
        body=body_text
        if body_text is not None
        else dumps_masked(_capped(body, max_chars, _size(info))),
        format=info.target_format,
        provider=head[2],
    )
    return mark_masked(upstream)


_UPSTREAM_HEADS: dict[tuple[Any, ...], tuple[str, dict[str, str], str]] = {}
_MAX_UPSTREAM_HEADS = 256
