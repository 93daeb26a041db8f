"""What every codec shares: request-field validation, small helpers, and the pieces both OpenAI
formats (Chat Completions and Responses) use. The Codec protocol and the facades' base are in
:mod:`router.formats.codec`.

SSE framing lives beside this module in :mod:`router.formats.sse`.
"""

from __future__ import annotations

import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any, cast

from router import ir
from router.errors import BadRequest, FieldError

OPENAI_FORMATS = ("openai-chat", "responses")


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
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, kind) and not isinstance(value, bool):  # the usual case, at once
        return value
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
    value = obj.get(key)
    if value is None and not required:
        return None
    if isinstance(value, kind) and not isinstance(value, bool):  # the usual case, at once
        return value
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


# Chat nests a function under ``function`` (in tools and in tool_choice); Responses keeps it
# flat. ``nested`` below says which.


def parse_tooling(body: dict[str, Any], req: ir.Request, *, nested: bool) -> None:
    """``tools``, ``tool_choice`` and ``parallel_tool_calls`` of either OpenAI format."""
    _parse_tools(body, req, nested=nested)
    _parse_tool_choice(body, req, nested=nested)
    req.parallel_tool_calls = field(body, "parallel_tool_calls", bool, "a boolean")


def _parse_tools(body: dict[str, Any], req: ir.Request, *, nested: bool) -> None:
    other: list[Any] = []
    for k, raw in enumerate(field(body, "tools", list, "an array") or []):
        tpath = f"tools[{k}]"
        tool = as_object(raw, tpath)
        # Chat's type defaults to function; Responses names every tool's type.
        if tool.get("type", "function" if nested else None) != "function":
            other.append(tool)  # built-in and custom tools ride along for same-format renders
            continue
        if nested:
            function = field(tool, "function", dict, "an object", tpath, required=True)
            req.tools.append(function_tool(function, f"{tpath}.function"))
        else:
            req.tools.append(function_tool(tool, tpath, skip=("type",)))
    if other:
        req.extra["tools"] = other


def _parse_tool_choice(body: dict[str, Any], req: ir.Request, *, nested: bool) -> None:
    """A choice object naming a function becomes the IR's; other shapes have no IR slot
    (allowed_tools and friends: kept in extra)."""
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
    spec, path = (
        (choice.get("function"), "tool_choice.function") if nested else (choice, "tool_choice")
    )
    if choice.get("type") == "function" and isinstance(spec, dict):
        name = field(spec, "name", str, "a string", path, required=True)
        req.tool_choice = ir.ToolChoice("tool", name)
    else:
        req.extra["tool_choice"] = choice


def content_parts(content: Any, path: str) -> Iterator[tuple[str, dict[str, Any], str]]:
    """Each part of an OpenAI message ``content`` as (type, part, path); a string is one
    ``text`` part."""
    if isinstance(content, str):
        yield "text", {"type": "text", "text": content}, path
        return
    if not isinstance(content, list):
        raise bad(f"{path}.content", "expected a string or an array of content parts")
    for j, raw in enumerate(content):
        ppath = f"{path}.content[{j}]"
        part = as_object(raw, ppath)
        yield field(part, "type", str, "a string", ppath, required=True), part, ppath


def render_tool_choice(choice: ir.ToolChoice, *, nested: bool) -> str | dict[str, Any]:
    if choice.mode != "tool":
        return choice.mode
    name = {"name": choice.name or ""}
    return {"type": "function", "function": name} if nested else {"type": "function", **name}


def parse_user_and_extra(body: dict[str, Any], req: ir.Request, known: frozenset[str]) -> None:
    """``user`` and ``metadata`` of either OpenAI format; every field not in ``known`` rides
    along in ``extra``."""
    req.user = field(body, "user", str, "a string")
    req.metadata = field(body, "metadata", dict, "an object")
    for key, value in body.items():
        if key not in known:
            req.extra[key] = value


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


class OpenAIStreamRenderer(ABC):
    """What both OpenAI stream renderers share: the reply's id, model and creation time once
    started, the stop reason and usage the message deltas carry, and the order of a render
    (the first event starts the reply unless it is an error; message deltas are only held;
    every other event is the format's, in :meth:`_event`)."""

    def __init__(self, req: ir.Request) -> None:
        self._req = req
        self._id = ""
        self._model = req.model
        self._created = 0
        self._started = False
        self._done = False
        self._stop: ir.StopReason | None = None
        self._usage: ir.Usage | None = None

    def render(self, event: ir.StreamEvent) -> bytes:
        if self._done:
            return b""
        out = b""
        if not self._started and not isinstance(event, ir.ErrorEvent):
            out += self._start(event if isinstance(event, ir.MessageStart) else None)
        if isinstance(event, ir.MessageDelta):
            if event.stop_reason is not None:
                self._stop = event.stop_reason
            if event.usage is not None:
                if self._usage is None:
                    self._usage = ir.Usage(estimated=event.usage.estimated)
                self._usage.merge(event.usage)
            return out
        return out + self._event(event)

    def finish(self) -> bytes:
        return b"" if self._done else self._end()

    def _begin(self, event: ir.MessageStart | None, reply_id: str) -> None:
        """Mark the reply started under ``reply_id``, with the upstream's model and time."""
        self._started = True
        self._id = reply_id
        self._model = (event.model if event else "") or self._req.model
        self._created = (event.created if event else None) or int(time.time())

    @abstractmethod
    def _start(self, event: ir.MessageStart | None) -> bytes:
        """The reply's opening bytes (calls :meth:`_begin`)."""

    @abstractmethod
    def _event(self, event: ir.StreamEvent) -> bytes:
        """The bytes of any event but a message delta."""

    @abstractmethod
    def _end(self) -> bytes:
        """The bytes still owed when the events did not end the reply."""
