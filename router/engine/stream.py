"""The streaming pipe: upstream SSE -> client SSE, event by event, tapping usage on the way.

The pipe knows codecs and the upstream call, nothing about plans, guards or observers: it
reports to the router through :class:`StreamHooks` (first token, trailer, outcome).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from router import ir, jsonfast
from router.errors import UpstreamError
from router.formats import Codec
from router.formats.sse import FrameSplitter
from router.providers.http import UpstreamCall

log = logging.getLogger("llmtap.router")

_SENT_CAP = 4 * 1024 * 1024  # the inspector shows the SSE text; a capped copy bounds memory


@dataclass(slots=True)
class StreamOutcome:
    """How a stream ended, as the router records it."""

    response: ir.Response  # what the events so far amount to
    sent: bytes  # what the client got (capped copy)
    error: str | None  # an in-band error (the upstream's or ours)
    completed: bool  # the upstream finished; False when the client left first


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
    """``prefetch`` pulls until the first client bytes exist (failover is still allowed while
    it runs); ``run`` yields them and the rest. Closing the generator (client gone) closes the
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
        self.ended = False
        self.error: str | None = None
        self.seen_token = False

    async def prefetch(self) -> bytes:
        try:
            async for chunk in self.source:
                out = self._process(chunk)
                if out:
                    return out
            return self._end()
        except BaseException:
            await self._close_upstream()
            raise

    async def run(self, first: bytes) -> AsyncIterator[bytes]:
        try:
            yield self._keep(first)
            if self.ended:
                return
            try:
                async for chunk in self.source:
                    out = self._process(chunk)
                    if out:
                        yield self._keep(out)
                tail = self._end()
            except UpstreamError as exc:
                tail = self._in_band(exc.message)
            if tail:
                yield self._keep(tail)
        finally:
            await self._close_upstream()
            self.hooks.finished(
                StreamOutcome(self.acc.result(), b"".join(self.sent), self.error, self.ended)
            )

    def _keep(self, out: bytes) -> bytes:
        if self.sent_size < _SENT_CAP:
            self.sent.append(out)
            self.sent_size += len(out)
        return out

    def _process(self, chunk: bytes) -> bytes:
        if self.splitter is not None:
            parts: list[bytes] = []
            for frame in self.splitter.feed(chunk):
                events = self.parser.feed(frame)
                self._tap(events)
                if self.strip_usage and _usage_only_chunk(frame):
                    continue
                if any(isinstance(ev, ir.MessageStop) for ev in events):
                    parts.append(self.hooks.trailer(self.acc.result()))
                parts.append(frame)
            return b"".join(parts)
        return self._render(self.parser.feed(chunk))

    def _render(self, events: list[ir.StreamEvent]) -> bytes:
        assert self.renderer is not None
        self._tap(events)
        parts: list[bytes] = []
        for ev in events:
            if isinstance(ev, ir.MessageStop):
                parts.append(self.hooks.trailer(self.acc.result()))
            parts.append(self.renderer.render(ev))
        return b"".join(parts)

    def _tap(self, events: list[ir.StreamEvent]) -> None:
        for ev in events:
            self.acc.feed(ev)
            if not self.seen_token and isinstance(ev, ir.BlockDelta):
                self.seen_token = True
                self.hooks.first_token()
            if isinstance(ev, ir.ErrorEvent):
                self.error = ev.message

    def _end(self) -> bytes:
        """Upstream finished: flush the parser; a stream cut short becomes an error."""
        self.ended = True
        tail = b""
        if self.splitter is not None:
            rest = self.splitter.close()
            events = self.parser.feed(rest) + self.parser.close() if rest else self.parser.close()
            self._tap(events)
            if rest:
                tail += rest
            error = next((e for e in events if isinstance(e, ir.ErrorEvent)), None)
            if error is not None:
                if not self.sent:
                    raise UpstreamError(error.message, kind="protocol")
                tail += self.codec_in.error_event(error.message, error.error_type)
            return tail
        events = self.parser.close()
        if (
            not self.sent
            and any(isinstance(e, ir.ErrorEvent) for e in events)
            and not self.acc.started
        ):
            msg = next(e.message for e in events if isinstance(e, ir.ErrorEvent))
            raise UpstreamError(msg, kind="protocol")
        assert self.renderer is not None
        return self._render(events) + self.renderer.finish()

    def _in_band(self, message: str) -> bytes:
        self.error = message
        self.acc.feed(ir.ErrorEvent(message))
        if self.renderer is not None:
            return self.renderer.render(ir.ErrorEvent(message)) + self.renderer.finish()
        return self.codec_in.error_event(message, "api_error")

    async def _close_upstream(self) -> None:
        try:
            await self.call.aclose()
        except Exception:  # closing a broken connection may fail; nothing to do
            log.debug("closing upstream call failed", exc_info=True)


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
