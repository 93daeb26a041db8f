"""The streaming pipe: upstream SSE -> client SSE, event by event, tapping usage on the way.

Failover is allowed until the first content reaches the client, so the pipe holds back what
comes before it (``message_start``, pings, a role-only chunk): an upstream error in that window
(an in-band error event, garbage, a stream that ends or breaks) is raised as an
:class:`UpstreamError` and the router tries the next step. After it, the error goes to the
client in-band, well-formed in the client's own format, and the stream ends there.

A same-format stream is passed through frame by frame (bytes untouched) while a parser taps it;
a frame that is not SSE or parses to an error is never forwarded as is.

The pipe knows codecs and the upstream call, nothing about plans, guards or observers: it
reports to the router through :class:`StreamHooks` (first token, trailer, outcome).
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from router import ir, jsonfast
from router.errors import UpstreamError, UpstreamKind
from router.formats import Codec
from router.formats.sse import FrameSplitter
from router.providers.http import UpstreamCall

log = logging.getLogger("llmtap.router")

_SENT_CAP = 4 * 1024 * 1024  # the inspector shows the SSE text; a capped copy bounds memory

# Events that are content for the client: once one is sent, failover is over. What comes
# before (message start, an empty block start) is held back.
_CONTENT = (ir.BlockDelta, ir.BlockStop, ir.MessageDelta, ir.MessageStop)

# A frame of SSE lines: each empty, a comment, or one of the four fields (value optional),
# ended by CR LF, CR or LF (the last line's end is optional). One match per frame.
_SSE_LINE = rb"(?:|:[^\r\n]*|(?:data|event|id|retry)(?::[^\r\n]*)?)"
_SSE_FRAME = re.compile(rb"(?:" + _SSE_LINE + rb"(?:\r\n|\r|\n))*" + _SSE_LINE)


@dataclass(slots=True)
class StreamOutcome:
    """How a stream ended, as the router records it."""

    response: ir.Response  # what the events so far amount to (``incomplete`` when cut short)
    sent: bytes  # what the client got (capped copy)
    error: UpstreamError | None  # the failure sent in-band, if any
    completed: bool  # the stream reached its end; False when the client left first


class StreamHooks(Protocol):
    """What the pipe asks of the router for one attempt."""

    def first_token(self) -> None:
        """The first content delta arrived (time to first token)."""
        ...

    def trailer(self, response: ir.Response) -> bytes:
        """The stream is about to end with ``response``: bytes to write before the end."""
        ...

    def finished(self, outcome: StreamOutcome) -> None:
        """Called once, after the upstream call is closed, however the stream ended."""
        ...


class StreamPipe:
    """``prefetch`` pulls until the first content exists (failover is still allowed while it
    runs); ``run`` yields it and the rest. Closing the generator (client gone) closes the
    upstream call and still reports what arrived (router.md case 11)."""

    def __init__(
        self,
        call: UpstreamCall,
        req: ir.Request,
        codec_in: Codec,
        codec_out: Codec,
        hooks: StreamHooks,
    ) -> None:
        self.call, self.codec_in, self.hooks = call, codec_in, hooks
        same = codec_in.name == codec_out.name
        self.parser = codec_out.stream_parser()
        self.renderer = None if same else codec_in.stream_renderer(req)
        self.splitter = FrameSplitter() if same else None
        self.acc = ir.StreamAccumulator()
        # We asked for usage the client did not ask for: drop that extra chunk (case 5).
        self.strip_usage = same and codec_in.name == "openai-chat" and not req.include_usage
        self.source = call.chunks()
        self.sent: list[bytes] = []
        self.sent_size = 0
        self.committed = False  # content reached the client: no failover from here on
        self.done = False  # nothing more goes to the client (the end, or an in-band error)
        self.error: UpstreamError | None = None
        self.seen_token = False

    async def prefetch(self) -> bytes:
        """The first client bytes, held until they include content. Raises
        :class:`UpstreamError` when the upstream failed before that (the caller fails over)."""
        held: list[bytes] = []
        try:
            async for chunk in self.source:
                held.append(self._process(chunk))
                if self.committed or self.done:
                    return b"".join(held)
            held.append(self._end())
            return b"".join(held)
        except BaseException:
            await self._close_upstream()
            raise

    async def run(self, first: bytes) -> AsyncIterator[bytes]:
        try:
            yield self._keep(first)
            while not self.done:
                try:
                    chunk = await anext(self.source, None)
                    out = self._end() if chunk is None else self._process(chunk)
                except UpstreamError as exc:  # the upstream broke or stalled mid-stream
                    out = self._in_band(exc)
                if out:
                    yield self._keep(out)
        finally:
            await self._close_upstream()
            # A client that hangs up once it has the terminal event (Codex does, before the
            # upstream's EOF) got the whole answer: that is a completed stream.
            completed = self.done or self.acc.stopped
            self.hooks.finished(
                StreamOutcome(self.acc.result(), b"".join(self.sent), self.error, completed)
            )

    def _keep(self, out: bytes) -> bytes:
        if self.sent_size < _SENT_CAP:
            self.sent.append(out)
            self.sent_size += len(out)
        return out

    # ------------------------------------------------------------------ upstream -> client

    def _process(self, chunk: bytes) -> bytes:
        if self.splitter is None:
            return self._emit(self.parser.feed(chunk))
        parts: list[bytes] = []
        for frame in self.splitter.feed(chunk):
            parts.append(self._frame(frame))
            if self.done:
                break
        return b"".join(parts)

    def _frame(self, frame: bytes) -> bytes:
        """One whole upstream frame of a same-format stream: forwarded verbatim unless it is
        not SSE or carries an error. Nothing after the terminal event is forwarded."""
        if self.acc.stopped:
            return b""
        if _SSE_FRAME.fullmatch(frame) is None:
            return self._emit([ir.ErrorEvent("upstream sent a stream frame that is not SSE")])
        events = self.parser.feed(frame)
        for ev in events:
            if isinstance(ev, ir.ErrorEvent):
                # The frame is not forwarded: what it held besides the error cannot be sent
                # alone.
                return self._in_band(error_from_event(ev), ev)
        head = self._emit(events, passthrough=True)
        if self.strip_usage and _usage_only_chunk(frame):
            return head
        return head + frame

    def _emit(self, events: list[ir.StreamEvent], *, passthrough: bool = False) -> bytes:
        """Tap ``events`` and render them for the client (``passthrough``: the caller forwards
        the upstream frame itself; only the trailer is returned)."""
        parts: list[bytes] = []
        for ev in events:
            if self.acc.stopped:
                break  # the client has its terminal event; what follows is drained, not sent
            if isinstance(ev, ir.ErrorEvent):
                parts.append(self._in_band(error_from_event(ev), ev))
                break
            self.acc.feed(ev)
            if isinstance(ev, _CONTENT):
                self.committed = True
            if not self.seen_token and isinstance(ev, ir.BlockDelta):
                self.seen_token = True
                self.hooks.first_token()
            if isinstance(ev, ir.MessageStop):
                parts.append(self.hooks.trailer(self.acc.result()))
            if not passthrough and self.renderer is not None:
                parts.append(self.renderer.render(ev))
        return b"".join(parts)

    def _end(self) -> bytes:
        """The upstream finished: flush. A stream cut short yields an error event here (the
        parser's ``close``), which fails over or goes in-band like any other."""
        out = b""
        if self.splitter is not None:
            rest = self.splitter.close()
            if rest.strip():
                out += self._frame(rest)
            if not self.done:
                out += self._emit(self.parser.close(), passthrough=True)
        else:
            out += self._emit(self.parser.close())
            if not self.done and self.renderer is not None:
                out += self.renderer.finish()
        self.done = True
        return out

    def _in_band(self, error: UpstreamError, event: ir.ErrorEvent | None = None) -> bytes:
        """The upstream failed: before any content, raise it (failover); after, end the
        client's stream with it (``event``: as the upstream typed it), well-formed in the
        client's format."""
        if not self.committed:
            raise error
        self.done = True
        self.error = error
        if event is None:
            event = ir.ErrorEvent(error.message, _client_error_type(error))
        self.acc.feed(event)
        if self.renderer is not None:
            return self.renderer.render(event) + self.renderer.finish()
        return self.codec_in.error_event(event.message, event.error_type)

    async def _close_upstream(self) -> None:
        try:
            await self.call.aclose()
        except Exception:  # closing a broken connection may fail; nothing to do
            log.debug("closing upstream call failed", exc_info=True)


def error_from_event(event: ir.ErrorEvent) -> UpstreamError:
    """An upstream's in-band error (a stream's error event, a 200 body carrying ``error``) as
    the error its HTTP twin would have raised: ``overloaded_error`` or a 503 inside a 200
    fails over exactly like a 503 status."""
    etype = event.error_type.lower()
    status = event.status
    kind: UpstreamKind = "server"
    if status == 429 or "rate_limit" in etype or etype == "resource_exhausted":
        kind = "rate_limit"
    elif status in (401, 403) or "auth" in etype or "permission" in etype:
        kind = "auth"
    elif status == 404 or "not_found" in etype:
        kind = "not_found"
    elif (status is not None and 400 <= status < 500) or "invalid" in etype:
        kind = "bad_request"
    return UpstreamError(
        event.message, kind=kind, status=status if status is not None and status >= 400 else None
    )


def _client_error_type(error: UpstreamError) -> str:
    return {"rate_limit": "rate_limit_error", "timeout": "timeout_error"}.get(
        error.kind, "api_error"
    )


def _usage_only_chunk(frame: bytes) -> bool:
    if b'"usage"' not in frame:
        return False
    for line in frame.splitlines():
        if line.startswith(b"data:"):
            try:
                data = jsonfast.loads(line[5:])
            except ValueError:
                return False
            return isinstance(data, dict) and data.get("choices") == [] and bool(data.get("usage"))
    return False
