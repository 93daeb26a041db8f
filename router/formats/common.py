"""What every codec shares: the Codec protocol, request-field validation, and the helpers both
OpenAI formats (Chat Completions and Responses) use.

SSE framing lives beside this module in :mod:`router.formats.sse`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, Protocol, cast

from router import ir
from router.errors import BadRequest, FieldError

OPENAI_FORMATS = ("openai-chat", "responses")


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


# --------------------------------------------------------------------------- validation


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


def bad(path: str, message: str) -> BadRequest:
    return BadRequest(f"'{path}': {message}", [FieldError(path, message)])


def field(
    obj: dict[str, Any],
    key: str,
    kind: type | tuple[type, ...],
    label: str,
    path: str = "",
    *,
    required: bool = False,
) -> Any:
    """``require``/``optional`` for a nested object, reporting the full field path."""
    try:
        if required:
            return require(obj, key, kind, label)
        return optional(obj, key, kind, label)
    except BadRequest as exc:
        if not path:
            raise
        full = f"{path}.{key}"
        raise BadRequest(
            exc.message.replace(f"'{key}'", f"'{full}'", 1),
            [FieldError(full, d.message) for d in exc.details],
        ) from None


def as_object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad(path, "expected an object")
    return cast(dict[str, Any], value)


# --------------------------------------------------------------------------- small helpers


def obj(value: Any) -> dict[str, Any]:
    """A JSON object from an upstream body, or an empty one when it is anything else."""
    return cast(dict[str, Any], value) if isinstance(value, dict) else {}


def as_int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def as_str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def add_dropped(req: ir.Request, name: str) -> None:
    if name not in req.dropped:
        req.dropped.append(name)


def new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:24]}"


def image_from_url(url: str) -> ir.ImageBlock:
    """``data:`` URLs become inline data so other formats can carry them as base64."""
    if url.startswith("data:"):
        head, sep, data = url[5:].partition(",")
        if sep and head.endswith(";base64"):
            return ir.ImageBlock(media_type=head[: -len(";base64")] or None, data=data)
    return ir.ImageBlock(url=url)


def image_url(block: ir.ImageBlock) -> str:
    if block.data is not None:
        return f"data:{block.media_type or 'image/png'};base64,{block.data}"
    return block.url or ""


# --------------------------------------------------------------------------- OpenAI family


def parse_effort(value: Any, path: str) -> ir.Effort | None:
    if value is None:
        return None
    if value not in ir.EFFORTS:
        raise bad(path, f"expected one of {', '.join(ir.EFFORTS)}")
    return cast(ir.Effort, value)


def parse_stop(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return list(value)
    raise bad("stop", "expected a string or an array of strings")


def function_tool(spec: dict[str, Any], path: str, skip: tuple[str, ...] = ()) -> ir.Tool:
    """A function tool from the object holding its name/description/parameters (Chat nests
    it under ``function``, Responses keeps it flat); other keys ride along in ``extra``."""
    params = field(spec, "parameters", dict, "an object", path)
    known = ("name", "description", "parameters", *skip)
    return ir.Tool(
        name=field(spec, "name", str, "a string", path, required=True),
        description=field(spec, "description", str, "a string", path),
        parameters=params if params is not None else {"type": "object", "properties": {}},
        extra={k: v for k, v in spec.items() if k not in known},
    )


def parse_tool_choice(
    body: dict[str, Any], req: ir.Request, named: Callable[[dict[str, Any]], str | None]
) -> None:
    """``tool_choice`` of either OpenAI format; ``named`` gives the function a choice object
    names, or None for shapes with no IR slot (allowed_tools and friends: kept in extra)."""
    choice = body.get("tool_choice")
    if choice is None:
        return
    if isinstance(choice, str):
        if choice not in ("auto", "none", "required"):
            raise bad("tool_choice", "expected 'auto', 'none', 'required' or a function")
        req.tool_choice = ir.ToolChoice(cast(Any, choice))
        return
    if not isinstance(choice, dict):
        raise bad("tool_choice", "expected a string or an object")
    name = named(choice)
    if name is not None:
        req.tool_choice = ir.ToolChoice("tool", name)
    else:
        req.extra["tool_choice"] = choice


def tool_extra(tool: ir.Tool, req: ir.Request) -> dict[str, Any]:
    """Tool fields (``strict``) OpenAI formats share; other formats' tool fields are dropped."""
    if req.source_format in OPENAI_FORMATS:
        return dict(tool.extra)
    for key in tool.extra:
        add_dropped(req, f"tools.{key}")
    return {}


def render_sampling(req: ir.Request, body: dict[str, Any]) -> None:
    """temperature/top_p, which OpenAI reasoning models reject outright."""
    reasoning = ir.is_openai_reasoning_model(req.model)
    for name in ("temperature", "top_p"):
        value = getattr(req, name)
        if value is None:
            continue
        if reasoning:
            add_dropped(req, name)
        else:
            body[name] = value
    if req.top_k is not None:
        add_dropped(req, "top_k")


def render_effort(req: ir.Request) -> ir.Effort | None:
    if req.reasoning_effort is not None:
        return req.reasoning_effort
    if req.thinking_budget is not None:
        if ir.is_openai_reasoning_model(req.model):
            return ir.effort_for_budget(req.thinking_budget)
        add_dropped(req, "thinking_budget")
    return None


def render_metadata(req: ir.Request, body: dict[str, Any]) -> None:
    """Anthropic's metadata is ``{user_id}``; OpenAI has a ``user`` field for exactly that."""
    if req.user is not None:
        body["user"] = req.user
    if req.metadata is None:
        return
    if req.source_format in OPENAI_FORMATS:
        body["metadata"] = req.metadata
    elif isinstance(req.metadata.get("user_id"), str) and "user" not in body:
        body["user"] = req.metadata["user_id"]
    else:
        add_dropped(req, "metadata")


def merge_extra(req: ir.Request, body: dict[str, Any], same: bool) -> None:
    """Unknown fields go back into a same-format body and are listed as dropped otherwise."""
    for key, value in req.extra.items():
        if not same:
            add_dropped(req, key)
        elif key == "tools" and isinstance(value, list):
            body["tools"] = [*body.get("tools", []), *value]
        elif isinstance(value, dict) and isinstance(body.get(key), dict):
            body[key] = {**value, **body[key]}
        elif key not in body:
            body[key] = value
