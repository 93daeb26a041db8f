"""The Codec protocol every wire format implements, and :class:`ModuleCodec`, the base of the
per-format facades (``router/formats/<format>/codec.py``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, Protocol

from router import ir

# --------------------------------------------------------------------------- the protocol


class StreamParser(Protocol):
    """Upstream stream bytes -> IR events, incremental; any chunk boundary is fine."""

    def feed(self, chunk: bytes) -> list[ir.StreamEvent]: ...

    def close(self) -> list[ir.StreamEvent]:
        """End of input. A stream that ended without its terminal event yields an
        :class:`ir.ErrorEvent` here (a cut stream is an error, never a silent success)."""
        ...


class StreamRenderer(Protocol):
    """IR events -> the client's stream bytes. Stateful per response."""

    def render(self, event: ir.StreamEvent) -> bytes: ...

    def finish(self) -> bytes:
        """Bytes still owed at the end (e.g. ``data: [DONE]``) if the events did not end it."""
        ...


class Codec(Protocol):
    name: str

    def parse_request(self, body: dict[str, Any]) -> ir.Request:
        """Validate and parse; raise :class:`BadRequest` with field details on bad input."""
        ...

    def render_request(self, req: ir.Request) -> dict[str, Any]:
        """Fields with no equivalent in this format are appended to ``req.dropped``."""
        ...

    def parse_response(self, body: dict[str, Any]) -> ir.Response: ...

    def render_response(self, resp: ir.Response, req: ir.Request) -> dict[str, Any]: ...

    def stream_parser(self) -> StreamParser: ...

    def stream_renderer(self, req: ir.Request) -> StreamRenderer: ...

    def error_event(self, message: str, error_type: str = "api_error") -> bytes:
        """An in-band error in this format's stream framing (router.md case 8)."""
        ...

    def detect_path(self, path: str, body: Any) -> bool:
        """Is a call to ``path`` (no query, no trailing slash) in this format? ``body`` (the
        parsed JSON, or None) decides only where one path serves two formats."""
        ...

    def detect_body(self, body: Any) -> bool:
        """Is ``body`` in this format, for a call whose path says nothing?"""
        ...

    def is_reply(self, body: dict[str, Any]) -> bool:
        """Is a 200 body a reply of this format (it has one of the format's top-level keys)?
        An HTML page with a JSON content type or an empty object is a broken upstream."""
        ...

    def mark_unfinished(self, rendered: dict[str, Any]) -> None:
        """Take the finish reason out of a reply rendered from a stream that never reached its
        end: the renderers fill in the normal one, which would claim a clean ``end_turn``."""
        ...

    def passthrough_body(self, body: dict[str, Any], model: str, *, stream: bool) -> dict[str, Any]:
        """The client's own body for an upstream of the same format: only the model replaced
        (and what the router itself needs from the upstream added)."""
        ...

    @property
    def sse_comments(self) -> bool:
        """May this format's streams carry SSE comment lines (the cost trailer)? Only where its
        official SDK is proven to skip them (tests/web/test_v1_streams.py)."""
        ...


# --------------------------------------------------------------------------- the facade base

# What a format package's modules provide; a module object satisfies these protocols.
_ParserFactory = Callable[[], StreamParser]
_RendererFactory = Callable[[ir.Request], StreamRenderer]


class RequestModule(Protocol):
    def parse_request(self, body: dict[str, Any]) -> ir.Request: ...

    def render_request(self, req: ir.Request) -> dict[str, Any]: ...


class ResponseModule(Protocol):
    def parse_response(self, body: dict[str, Any]) -> ir.Response: ...

    def render_response(self, resp: ir.Response, req: ir.Request) -> dict[str, Any]: ...

    def mark_unfinished(self, rendered: dict[str, Any]) -> None: ...


class StreamModule(Protocol):
    @property
    def StreamParser(self) -> _ParserFactory: ...  # the module's class

    @property
    def StreamRenderer(self) -> _RendererFactory: ...

    def error_event(self, message: str, error_type: str = "api_error") -> bytes: ...


class ModuleCodec(ABC):
    """A format's :class:`Codec`: forwards each direction to its package's ``request``,
    ``response`` and ``stream`` modules. A facade names its format, its reply keys and how it
    detects itself; the rest is here."""

    name: str
    reply_keys: tuple[str, ...]  # the top-level keys a reply of this format has one of
    sse_comments: bool = True

    def __init__(self, request: RequestModule, response: ResponseModule, stream: StreamModule):
        self._request, self._response, self._stream = request, response, stream

    @abstractmethod
    def detect_path(self, path: str, body: Any) -> bool: ...

    @abstractmethod
    def detect_body(self, body: Any) -> bool: ...

    def parse_request(self, body: dict[str, Any]) -> ir.Request:
        return self._request.parse_request(body)

    def render_request(self, req: ir.Request) -> dict[str, Any]:
        return self._request.render_request(req)

    def parse_response(self, body: dict[str, Any]) -> ir.Response:
        return self._response.parse_response(body)

    def render_response(self, resp: ir.Response, req: ir.Request) -> dict[str, Any]:
        return self._response.render_response(resp, req)

    def stream_parser(self) -> StreamParser:
        return self._stream.StreamParser()

    def stream_renderer(self, req: ir.Request) -> StreamRenderer:
        return self._stream.StreamRenderer(req)

    def error_event(self, message: str, error_type: str = "api_error") -> bytes:
        return self._stream.error_event(message, error_type)

    def is_reply(self, body: dict[str, Any]) -> bool:
        return any(key in body for key in self.reply_keys)

    def mark_unfinished(self, rendered: dict[str, Any]) -> None:
        self._response.mark_unfinished(rendered)

    def passthrough_body(self, body: dict[str, Any], model: str, *, stream: bool) -> dict[str, Any]:
        return {**body, "model": model}
