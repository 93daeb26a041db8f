"""The OpenAI Chat Completions wire format (``openai-chat``): requests, responses and SSE.

Also home of the helpers both OpenAI formats share (field paths, images as URLs, usage,
reasoning-model rules); ``router.formats.responses`` imports them from here.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any, cast

from router import ir
from router.errors import BadRequest, FieldError
from router.formats.base import Codec, StreamParser, StreamRenderer, optional, require
from router.formats.sse import SSEEvent, SSEParser, sse_bytes

NAME = "openai-chat"
DONE = b"data: [DONE]\n\n"
MAX_STOP = 4  # the API rejects more stop sequences than this

EFFORTS: tuple[str, ...] = ("none", "minimal", "low", "medium", "high", "xhigh")
_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")

FINISH_TO_STOP: dict[str, ir.StopReason] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "content_filter",
}

_CHAT_FIELDS = frozenset(
    {
        "model",
        "messages",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stop",
        "seed",
        "reasoning_effort",
        "response_format",
        "stream",
        "stream_options",
        "user",
        "metadata",
    }
)


# --------------------------------------------------------------------------- shared helpers


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


def add_dropped(req: ir.Request, name: str) -> None:
    if name not in req.dropped:
        req.dropped.append(name)


def new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:24]}"


def is_reasoning_model(model: str) -> bool:
    """OpenAI reasoning models take ``max_completion_tokens`` and reject sampling knobs."""
    name = model.rsplit("/", 1)[-1].lower()
    return name.startswith(_REASONING_PREFIXES)


def effort_from_budget(budget: int) -> ir.Effort:
    """An Anthropic-style thinking budget as the nearest OpenAI reasoning effort."""
    if budget < 2048:
        return "low"
    if budget < 16384:
        return "medium"
    return "high"


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


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def obj(value: Any) -> dict[str, Any]:
    """A JSON object from an upstream body, or an empty one when it is anything else."""
    return cast(dict[str, Any], value) if isinstance(value, dict) else {}


def as_int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def parse_effort(value: Any, path: str) -> ir.Effort | None:
    if value is None:
        return None
    if value not in EFFORTS:
        raise bad(path, f"expected one of {', '.join(EFFORTS)}")
    return cast(ir.Effort, value)


def parse_stop(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return list(value)
    raise bad("stop", "expected a string or an array of strings")


def render_sampling(req: ir.Request, body: dict[str, Any]) -> None:
    """temperature/top_p, which OpenAI reasoning models reject outright."""
    reasoning = is_reasoning_model(req.model)
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
        if is_reasoning_model(req.model):
            return effort_from_budget(req.thinking_budget)
        add_dropped(req, "thinking_budget")
    return None


def render_metadata(req: ir.Request, body: dict[str, Any]) -> None:
    """Anthropic's metadata is ``{user_id}``; OpenAI has a ``user`` field for exactly that."""
    if req.user is not None:
        body["user"] = req.user
    if req.metadata is None:
        return
    if req.source_format in (NAME, "responses"):
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


def usage_from_openai(raw: dict[str, Any]) -> ir.Usage:
    prompt = raw.get("prompt_tokens_details") or {}
    completion = raw.get("completion_tokens_details") or {}
    return ir.Usage(
        input_tokens=as_int(raw.get("prompt_tokens")),
        output_tokens=as_int(raw.get("completion_tokens")),
        cache_read_tokens=as_int(prompt.get("cached_tokens")) if isinstance(prompt, dict) else 0,
        cache_write_tokens=as_int(prompt.get("cache_write_tokens"))
        if isinstance(prompt, dict)
        else 0,
        reasoning_tokens=as_int(completion.get("reasoning_tokens"))
        if isinstance(completion, dict)
        else 0,
    )


def usage_to_openai(usage: ir.Usage) -> dict[str, Any]:
    prompt_details: dict[str, Any] = {"cached_tokens": usage.cache_read_tokens}
    if usage.cache_write_tokens:
        prompt_details["cache_write_tokens"] = usage.cache_write_tokens
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": prompt_details,
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def finish_reason(stop: ir.StopReason | None, has_tool_calls: bool) -> str:
    if stop == "max_tokens":
        return "length"
    if stop == "tool_use":
        return "tool_calls"
    if stop == "content_filter":
        return "content_filter"
    # Some upstreams (Gemini) end a tool-calling turn with a plain "stop"; OpenAI clients
    # decide whether to run tools from finish_reason.
    if has_tool_calls and stop in (None, "end_turn"):
        return "tool_calls"
    return "stop"


def error_body(message: str, error_type: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "code": None, "param": None}}


# --------------------------------------------------------------------------- request parsing


def _content_blocks(
    content: Any, path: str, req: ir.Request, *, images: bool
) -> list[ir.TextBlock | ir.ImageBlock]:
    if isinstance(content, str):
        return [ir.TextBlock(content)]
    if not isinstance(content, list):
        raise bad(f"{path}.content", "expected a string or an array of content parts")
    out: list[ir.TextBlock | ir.ImageBlock] = []
    for j, raw in enumerate(content):
        ppath = f"{path}.content[{j}]"
        part = as_object(raw, ppath)
        ptype = field(part, "type", str, "a string", ppath, required=True)
        if ptype == "text":
            text = field(part, "text", str, "a string", ppath, required=True)
            cache = part.get("cache_control")
            out.append(ir.TextBlock(text, cache_control=cache if isinstance(cache, dict) else None))
        elif ptype == "refusal":
            out.append(ir.TextBlock(field(part, "refusal", str, "a string", ppath) or ""))
        elif ptype == "image_url" and images:
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if not isinstance(url, str):
                raise bad(f"{ppath}.image_url.url", "expected a string")
            out.append(image_from_url(url))
        else:
            # audio and file parts have no IR slot
            add_dropped(req, f"{ppath}.{ptype}")
    return out


def _parse_message(req: ir.Request, raw_msg: Any, path: str) -> None:
    msg = as_object(raw_msg, path)
    role = field(msg, "role", str, "a string", path, required=True)
    name = field(msg, "name", str, "a string", path)
    match role:
        case "system" | "developer":
            if msg.get("content") is None:
                raise bad(f"{path}.content", "field required")
            blocks = _content_blocks(msg["content"], path, req, images=False)
            req.system.extend(b for b in blocks if isinstance(b, ir.TextBlock))
        case "user":
            if msg.get("content") is None:
                raise bad(f"{path}.content", "field required")
            user_blocks: list[ir.Block] = [*_content_blocks(msg["content"], path, req, images=True)]
            req.messages.append(ir.Message("user", user_blocks, name=name))
        case "assistant":
            req.messages.append(_parse_assistant(msg, path, req, name))
        case "tool" | "function":
            if role == "tool":
                call_id = field(msg, "tool_call_id", str, "a string", path, required=True)
            else:  # the deprecated function role pairs by name
                call_id = field(msg, "name", str, "a string", path, required=True)
            content = msg.get("content")
            texts = [] if content is None else _content_blocks(content, path, req, images=False)
            result = ir.ToolResultBlock(
                tool_use_id=call_id, content=texts, name=name if role == "function" else None
            )
            last = req.messages[-1] if req.messages else None
            if (
                last is not None
                and last.role == "user"
                and last.content
                and all(isinstance(b, ir.ToolResultBlock) for b in last.content)
            ):
                last.content.append(result)  # parallel tool results form one IR user turn
            else:
                req.messages.append(ir.Message("user", [result]))
        case _:
            raise bad(f"{path}.role", f"unknown role {role!r}")


def _parse_assistant(
    msg: dict[str, Any], path: str, req: ir.Request, name: str | None
) -> ir.Message:
    blocks: list[ir.Block] = []
    reasoning = msg.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        blocks.append(ir.ThinkingBlock(reasoning, origin=NAME))
    content = msg.get("content")
    if content is not None:
        blocks.extend(
            b
            for b in _content_blocks(content, path, req, images=False)
            if not (isinstance(b, ir.TextBlock) and b.text == "")
        )
    refusal = msg.get("refusal")
    if isinstance(refusal, str) and refusal:
        blocks.append(ir.TextBlock(refusal))
    tool_calls = field(msg, "tool_calls", list, "an array", path) or []
    for k, raw in enumerate(tool_calls):
        tpath = f"{path}.tool_calls[{k}]"
        call = as_object(raw, tpath)
        function = field(call, "function", dict, "an object", tpath, required=True)
        fpath = f"{tpath}.function"
        block = ir.ToolUseBlock(
            id=field(call, "id", str, "a string", tpath, required=True),
            name=field(function, "name", str, "a string", fpath, required=True),
        )
        ir.set_tool_arguments(block, field(function, "arguments", str, "a string", fpath) or "")
        blocks.append(block)
    return ir.Message("assistant", blocks, name=name)


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


def _parse_tools(body: dict[str, Any], req: ir.Request) -> None:
    other: list[Any] = []
    for k, raw in enumerate(field(body, "tools", list, "an array") or []):
        tpath = f"tools[{k}]"
        tool = as_object(raw, tpath)
        if tool.get("type", "function") != "function":
            other.append(tool)  # custom tools ride along for a same-format render
            continue
        function = field(tool, "function", dict, "an object", tpath, required=True)
        req.tools.append(function_tool(function, f"{tpath}.function"))
    if other:
        req.extra["tools"] = other


def _named_function(choice: dict[str, Any]) -> str | None:
    function = choice.get("function")
    if choice.get("type") != "function" or not isinstance(function, dict):
        return None
    name: str = field(function, "name", str, "a string", "tool_choice.function", required=True)
    return name


def _parse_tool_choice(body: dict[str, Any], req: ir.Request) -> None:
    parse_tool_choice(body, req, _named_function)


# --------------------------------------------------------------------------- request rendering


def _parts(
    blocks: list[ir.TextBlock | ir.ImageBlock], req: ir.Request, keep_cache: bool
) -> str | list[dict[str, Any]]:
    """A lone plain text block renders as a string, the shape every compatible server takes."""
    if len(blocks) == 1 and isinstance(blocks[0], ir.TextBlock):
        only = blocks[0]
        if only.cache_control is None or not keep_cache:
            if only.cache_control is not None:
                add_dropped(req, "cache_control")
            return only.text
    parts: list[dict[str, Any]] = []
    for block in blocks:
        if isinstance(block, ir.TextBlock):
            part: dict[str, Any] = {"type": "text", "text": block.text}
            if block.cache_control is not None:
                if keep_cache:
                    part["cache_control"] = block.cache_control
                else:
                    add_dropped(req, "cache_control")
            parts.append(part)
        else:
            parts.append({"type": "image_url", "image_url": {"url": image_url(block)}})
    return parts


def _render_user(msg: ir.Message, req: ir.Request, keep_cache: bool) -> list[dict[str, Any]]:
    # Tool results first: the API wants tool messages right after the assistant's calls.
    tool_msgs: list[dict[str, Any]] = []
    rest: list[ir.TextBlock | ir.ImageBlock] = []
    for block in msg.content:
        if isinstance(block, ir.ToolResultBlock):
            texts: list[ir.TextBlock | ir.ImageBlock] = []
            for part in block.content:
                if isinstance(part, ir.TextBlock):
                    texts.append(part)
                else:
                    add_dropped(req, "tool_result.image")
            if block.is_error:
                add_dropped(req, "tool_result.is_error")
            content = _parts(texts, req, keep_cache) if texts else ""
            tool_msgs.append(
                {"role": "tool", "tool_call_id": block.tool_use_id, "content": content}
            )
        elif isinstance(block, ir.TextBlock | ir.ImageBlock):
            rest.append(block)
        else:
            add_dropped(req, f"user.{block.type}")
    out = tool_msgs
    if rest:
        user: dict[str, Any] = {"role": "user", "content": _parts(rest, req, keep_cache)}
        if msg.name:
            user["name"] = msg.name
        out.append(user)
    return out


def _render_assistant(msg: ir.Message, req: ir.Request) -> dict[str, Any]:
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in msg.content:
        match block:
            case ir.TextBlock():
                texts.append(block.text)
            case ir.ThinkingBlock() if block.origin == NAME and not block.redacted:
                reasoning.append(block.thinking)
            case ir.ThinkingBlock():
                add_dropped(req, "thinking")  # another provider's reasoning cannot go back
            case ir.ToolUseBlock():
                calls.append(
                    {
                        "id": block.id,
                        "type": "function",
                        "function": {"name": block.name, "arguments": block.arguments_json()},
                    }
                )
            case _:
                add_dropped(req, f"assistant.{block.type}")
    # Joined into one string: array content on assistant turns is not accepted everywhere.
    out: dict[str, Any] = {
        "role": "assistant",
        "content": "\n\n".join(texts) if texts else (None if calls else ""),
    }
    if reasoning:
        out["reasoning_content"] = "\n\n".join(reasoning)
    if calls:
        out["tool_calls"] = calls
    if msg.name:
        out["name"] = msg.name
    return out


def render_tool_choice_chat(choice: ir.ToolChoice) -> str | dict[str, Any]:
    if choice.mode == "tool":
        return {"type": "function", "function": {"name": choice.name or ""}}
    return choice.mode


def tool_extra(tool: ir.Tool, req: ir.Request) -> dict[str, Any]:
    """Tool fields (``strict``) OpenAI formats share; other formats' tool fields are dropped."""
    if req.source_format in (NAME, "responses"):
        return dict(tool.extra)
    for key in tool.extra:
        add_dropped(req, f"tools.{key}")
    return {}


# --------------------------------------------------------------------------- streams


class ChatStreamParser:
    """chat.completion.chunk SSE -> IR events. Block indices are allocated in start order;
    each ``tool_calls[].index`` keeps its own block so interleaved parallel deltas work."""

    def __init__(self) -> None:
        self._sse = SSEParser()
        self._started = False
        self._finished = False
        self._ended = False
        self._next = 0
        self._open: list[int] = []
        self._current: tuple[str, int] | None = None  # the open text or thinking block
        self._tools: dict[int, int] = {}
        self._tool_ids: dict[int, str] = {}

    def feed(self, chunk: bytes) -> list[ir.StreamEvent]:
        return self._handle(self._sse.feed(chunk))

    def close(self) -> list[ir.StreamEvent]:
        out = self._handle(self._sse.close())
        if self._ended:
            return out
        self._ended = True
        if self._finished:  # some compatible servers never send [DONE]
            out.extend(self._close_blocks())
            out.append(ir.MessageStop())
        else:
            out.append(ir.ErrorEvent("upstream stream ended early", "api_error"))
        return out

    def _handle(self, events: list[SSEEvent]) -> list[ir.StreamEvent]:
        out: list[ir.StreamEvent] = []
        for event in events:
            if not self._ended:
                self._event(event.data.strip(), out)
        return out

    def _event(self, data: str, out: list[ir.StreamEvent]) -> None:
        if not data:
            return
        if data == "[DONE]":
            out.extend(self._close_blocks())
            out.append(ir.MessageStop())
            self._ended = True
            return
        try:
            chunk = json.loads(data)
        except ValueError:
            out.append(ir.ErrorEvent("upstream sent a stream chunk that is not JSON", "api_error"))
            self._ended = True
            return
        if not isinstance(chunk, dict):
            return
        error = chunk.get("error")
        if error:
            info = error if isinstance(error, dict) else {"message": str(error)}
            out.append(
                ir.ErrorEvent(
                    str(info.get("message") or "upstream error"),
                    str(info.get("type") or "api_error"),
                )
            )
            self._ended = True
            return
        if not self._started:
            self._started = True
            created = chunk.get("created")
            out.append(
                ir.MessageStart(
                    id=str(chunk.get("id") or ""),
                    model=str(chunk.get("model") or ""),
                    created=created if isinstance(created, int) else None,
                )
            )
        final: ir.MessageDelta | None = None
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue  # n > 1 is not routed; only the first choice is kept
            delta = choice.get("delta")
            if isinstance(delta, dict):
                self._delta(delta, out)
            reason = choice.get("finish_reason")
            if isinstance(reason, str) and reason:
                out.extend(self._close_blocks())
                final = ir.MessageDelta(stop_reason=FINISH_TO_STOP.get(reason, "end_turn"))
                self._finished = True
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            if final is None:
                final = ir.MessageDelta()
            final.usage = usage_from_openai(usage)
        if final is not None:
            out.append(final)

    def _delta(self, delta: dict[str, Any], out: list[ir.StreamEvent]) -> None:
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            self._text("thinking", reasoning, out)
        for key in ("content", "refusal"):
            text = delta.get(key)
            if isinstance(text, str) and text:
                self._text("text", text, out)
        calls = delta.get("tool_calls")
        if not isinstance(calls, list):
            return
        for position, call in enumerate(calls):
            if not isinstance(call, dict):
                continue
            tool_index = call.get("index", position)
            function = obj(call.get("function"))
            call_id = _str(call.get("id"))
            name = _str(function.get("name"))
            known = self._tool_ids.get(tool_index)
            # A new id on a known index: servers that number every call 0 start another tool.
            if tool_index not in self._tools or (call_id and known and call_id != known):
                out.extend(self._stop_current())
                index = self._allocate()
                self._tools[tool_index] = index
                self._tool_ids[tool_index] = call_id
                out.append(ir.BlockStart(index, ir.ToolUseBlock(id=call_id, name=name)))
            arguments = function.get("arguments")
            if isinstance(arguments, str) and arguments:
                out.append(ir.BlockDelta(self._tools[tool_index], "input_json", arguments))

    def _text(self, kind: str, text: str, out: list[ir.StreamEvent]) -> None:
        if self._current is None or self._current[0] != kind:
            out.extend(self._stop_current())
            index = self._allocate()
            self._current = (kind, index)
            block: ir.Block = ir.TextBlock() if kind == "text" else ir.ThinkingBlock(origin=NAME)
            out.append(ir.BlockStart(index, block))
        out.append(ir.BlockDelta(self._current[1], "text" if kind == "text" else "thinking", text))

    def _allocate(self) -> int:
        index = self._next
        self._next += 1
        self._open.append(index)
        return index

    def _stop_current(self) -> list[ir.StreamEvent]:
        if self._current is None:
            return []
        index = self._current[1]
        self._current = None
        self._open.remove(index)
        return [ir.BlockStop(index)]

    def _close_blocks(self) -> list[ir.StreamEvent]:
        out: list[ir.StreamEvent] = [ir.BlockStop(i) for i in self._open]
        self._open = []
        self._current = None
        self._tools = {}
        self._tool_ids = {}
        return out


class ChatStreamRenderer:
    """IR events -> chat.completion.chunk SSE. Tool calls get their own 0-based index that
    counts only tools; the usage chunk is sent only when the client asked for it."""

    def __init__(self, req: ir.Request) -> None:
        self._req = req
        self._id = ""
        self._model = req.model
        self._created = 0
        self._started = False
        self._done = False
        self._tools: dict[int, int] = {}
        self._stop: ir.StopReason | None = None
        self._usage: ir.Usage | None = None

    def render(self, event: ir.StreamEvent) -> bytes:
        if self._done:
            return b""
        out = b""
        if not self._started and not isinstance(event, ir.ErrorEvent):
            out += self._start(event if isinstance(event, ir.MessageStart) else None)
        match event:
            case ir.BlockStart(block=ir.ToolUseBlock() as block):
                tool_index = len(self._tools)
                self._tools[event.index] = tool_index
                call = {
                    "index": tool_index,
                    "id": block.id,
                    "type": "function",
                    "function": {"name": block.name, "arguments": ""},
                }
                out += self._chunk({"tool_calls": [call]})
            case ir.BlockDelta(kind="text"):
                out += self._chunk({"content": event.text})
            case ir.BlockDelta(kind="thinking"):
                out += self._chunk({"reasoning_content": event.text})
            case ir.BlockDelta(kind="input_json"):
                if event.index not in self._tools:
                    self._tools[event.index] = len(self._tools)
                call = {"index": self._tools[event.index], "function": {"arguments": event.text}}
                out += self._chunk({"tool_calls": [call]})
            case ir.MessageDelta():
                if event.stop_reason is not None:
                    self._stop = event.stop_reason
                if event.usage is not None:
                    if self._usage is None:
                        self._usage = ir.Usage(estimated=event.usage.estimated)
                    self._usage.merge(event.usage)
            case ir.MessageStop():
                out += self._chunk({}, finish_reason(self._stop, bool(self._tools)))
                if self._req.include_usage:
                    out += self._usage_chunk()
                out += DONE
                self._done = True
            case ir.ErrorEvent():
                out += CODEC.error_event(event.message, event.error_type)
                self._done = True
            case _:
                pass
        return out

    def finish(self) -> bytes:
        if self._done:
            return b""
        self._done = True
        return DONE

    def _start(self, event: ir.MessageStart | None) -> bytes:
        self._started = True
        self._id = (event.id if event else "") or new_id("chatcmpl-")
        self._model = (event.model if event else "") or self._req.model
        self._created = (event.created if event else None) or int(time.time())
        return self._chunk({"role": "assistant", "content": ""})

    def _base(self) -> dict[str, Any]:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
        }

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return sse_bytes({**self._base(), "choices": [choice]})

    def _usage_chunk(self) -> bytes:
        usage = usage_to_openai(self._usage or ir.Usage())
        return sse_bytes({**self._base(), "choices": [], "usage": usage})


# --------------------------------------------------------------------------- the codec


class OpenAIChatCodec:
    name = NAME

    def parse_request(self, body: dict[str, Any]) -> ir.Request:
        body = as_object(body, "body")
        req = ir.Request(model=require(body, "model", str, "a string"), source_format=NAME)
        messages = require(body, "messages", list, "an array")
        if not messages:
            raise bad("messages", "must contain at least one message")
        for i, raw in enumerate(messages):
            _parse_message(req, raw, f"messages[{i}]")
        _parse_tools(body, req)
        _parse_tool_choice(body, req)
        req.parallel_tool_calls = field(body, "parallel_tool_calls", bool, "a boolean")
        max_tokens = field(body, "max_completion_tokens", int, "an integer")
        if max_tokens is None:
            max_tokens = field(body, "max_tokens", int, "an integer")
        req.max_tokens = max_tokens
        req.temperature = field(body, "temperature", (int, float), "a number")
        req.top_p = field(body, "top_p", (int, float), "a number")
        req.stop = parse_stop(body.get("stop"))
        req.seed = field(body, "seed", int, "an integer")
        req.reasoning_effort = parse_effort(body.get("reasoning_effort"), "reasoning_effort")
        req.response_format = field(body, "response_format", dict, "an object")
        req.stream = bool(field(body, "stream", bool, "a boolean"))
        options = field(body, "stream_options", dict, "an object") or {}
        req.include_usage = bool(
            field(options, "include_usage", bool, "a boolean", "stream_options")
        )
        rest = {k: v for k, v in options.items() if k != "include_usage"}
        if rest:
            req.extra["stream_options"] = rest
        req.user = field(body, "user", str, "a string")
        req.metadata = field(body, "metadata", dict, "an object")
        for key, value in body.items():
            if key not in _CHAT_FIELDS:
                req.extra[key] = value
        return req

    def render_request(self, req: ir.Request) -> dict[str, Any]:
        same = req.source_format == NAME
        body: dict[str, Any] = {"model": req.model}
        messages: list[dict[str, Any]] = []
        if req.system:
            system: list[ir.TextBlock | ir.ImageBlock] = list(req.system)
            messages.append({"role": "system", "content": _parts(system, req, same)})
        for msg in req.messages:
            if msg.role == "assistant":
                messages.append(_render_assistant(msg, req))
            elif msg.role == "system":
                texts: list[ir.TextBlock | ir.ImageBlock] = [
                    b for b in msg.content if isinstance(b, ir.TextBlock)
                ]
                messages.append({"role": "system", "content": _parts(texts, req, same)})
            else:
                messages.extend(_render_user(msg, req, same))
        body["messages"] = messages
        if req.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        **({"description": tool.description} if tool.description else {}),
                        "parameters": tool.parameters,
                        **tool_extra(tool, req),
                    },
                }
                for tool in req.tools
            ]
            # The API rejects tool_choice / parallel_tool_calls when no tools are given.
            if req.tool_choice is not None:
                body["tool_choice"] = render_tool_choice_chat(req.tool_choice)
            if req.parallel_tool_calls is not None:
                body["parallel_tool_calls"] = req.parallel_tool_calls
        if req.max_tokens is not None:
            key = "max_completion_tokens" if is_reasoning_model(req.model) else "max_tokens"
            body[key] = req.max_tokens
        render_sampling(req, body)
        if req.stop:
            body["stop"] = req.stop[:MAX_STOP]
            if len(req.stop) > MAX_STOP:
                add_dropped(req, f"stop[{MAX_STOP}:]")
        if req.seed is not None:
            body["seed"] = req.seed
        effort = render_effort(req)
        if effort is not None:
            body["reasoning_effort"] = effort
        if req.response_format is not None:
            body["response_format"] = req.response_format
        body["stream"] = req.stream
        if req.stream:
            # Always ask for usage: the router needs it for cost even when the client did
            # not; the stream renderer strips that chunk again (router.md case 5).
            body["stream_options"] = {"include_usage": True}
        render_metadata(req, body)
        merge_extra(req, body, same)
        return body

    def parse_response(self, body: dict[str, Any]) -> ir.Response:
        created = body.get("created")
        resp = ir.Response(
            id=str(body.get("id") or ""),
            model=str(body.get("model") or ""),
            created=created if isinstance(created, int) else None,
        )
        choices = body.get("choices") or []
        choice = obj(choices[0]) if choices else {}
        message = obj(choice.get("message"))
        reasoning = message.get("reasoning_content") or message.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            resp.content.append(ir.ThinkingBlock(reasoning, origin=NAME))
        for key in ("content", "refusal"):
            text = message.get(key)
            if isinstance(text, str) and text:
                resp.content.append(ir.TextBlock(text))
        for call in message.get("tool_calls") or []:
            if not isinstance(call, dict):
                continue
            function = obj(call.get("function"))
            block = ir.ToolUseBlock(
                id=str(call.get("id") or ""), name=str(function.get("name") or "")
            )
            arguments = function.get("arguments")
            ir.set_tool_arguments(block, arguments if isinstance(arguments, str) else "")
            resp.content.append(block)
        reason = choice.get("finish_reason")
        if isinstance(reason, str):
            resp.stop_reason = FINISH_TO_STOP.get(reason, "end_turn")
        usage = body.get("usage")
        if isinstance(usage, dict):
            resp.usage = usage_from_openai(usage)
        return resp

    def render_response(self, resp: ir.Response, req: ir.Request) -> dict[str, Any]:
        texts = [b.text for b in resp.content if isinstance(b, ir.TextBlock)]
        reasoning = [
            b.thinking
            for b in resp.content
            if isinstance(b, ir.ThinkingBlock) and not b.redacted and b.thinking
        ]
        calls = [
            {
                "id": b.id,
                "type": "function",
                "function": {"name": b.name, "arguments": b.arguments_json()},
            }
            for b in resp.tool_calls()
        ]
        message: dict[str, Any] = {
            "role": "assistant",
            "content": "".join(texts) if texts else None,
            "refusal": None,
        }
        if reasoning:  # the DeepSeek-style extension most OpenAI clients understand
            message["reasoning_content"] = "\n\n".join(reasoning)
        if calls:
            message["tool_calls"] = calls
        out: dict[str, Any] = {
            "id": resp.id or new_id("chatcmpl-"),
            "object": "chat.completion",
            "created": resp.created or int(time.time()),
            "model": resp.model or req.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": finish_reason(resp.stop_reason, bool(calls)),
                }
            ],
        }
        if resp.usage is not None:
            out["usage"] = usage_to_openai(resp.usage)
        return out

    def stream_parser(self) -> StreamParser:
        return ChatStreamParser()

    def stream_renderer(self, req: ir.Request) -> StreamRenderer:
        return ChatStreamRenderer(req)

    def error_event(self, message: str, error_type: str = "api_error") -> bytes:
        """The error chunk and the closing ``[DONE]``: the error ends the stream."""
        return sse_bytes(error_body(message, error_type)) + DONE


CODEC: Codec = OpenAIChatCodec()
