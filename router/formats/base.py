"""The codec protocol every wire format implements, and the shared request-body helpers."""

from __future__ import annotations

from typing import Any, Protocol

from router import ir
from router.errors import BadRequest, FieldError


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


def require(body: dict[str, Any], name: str, kind: type | tuple[type, ...], label: str) -> Any:
    """Fetch a required field or raise a field-level BadRequest."""
    if name not in body or body[name] is None:
        raise BadRequest(f"'{name}' is required", [FieldError(name, "field required")])
    value = body[name]
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
        raise BadRequest(f"'{name}' must be {label}", [FieldError(name, f"expected {label}")])
    return value


def optional(body: dict[str, Any], name: str, kind: type | tuple[type, ...], label: str) -> Any:
    """Fetch an optional field (None when absent) or raise a field-level BadRequest."""
    if body.get(name) is None:
        return None
    return require(body, name, kind, label)


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)
