"""The Anthropic Messages wire format (/v1/messages): requests, responses and SSE streams."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from router import ir
from router.errors import BadRequest, FieldError
from router.formats.base import Codec, optional, require
from router.formats.sse import SSEParser, sse_bytes

NAME = "anthropic"

_REQUEST_FIELDS = frozenset(
    {
        "model", "messages", "max_tokens", "system", "tools", "tool_choice", "stop_sequences",
        "temperature", "top_p", "top_k", "thinking", "metadata", "stream",
    }
)  # fmt: skip
_MESSAGE_FIELDS = frozenset(
    {"id", "type", "role", "model", "content", "stop_reason", "stop_sequence", "usage"}
)

# Anthropic stop reasons are the IR's vocabulary except for these.
_STOP_IN: dict[str, ir.StopReason] = {
    "end_turn": "end_turn",
    "max_tokens": "max_tokens",
    "tool_use": "tool_use",
    "stop_sequence": "stop_sequence",
    "pause_turn": "pause_turn",
    "refusal": "content_filter",
    "model_context_window_exceeded": "max_tokens",
}
_STOP_OUT: dict[str, str] = {
    "end_turn": "end_turn",
    "max_tokens": "max_tokens",
    "tool_use": "tool_use",
    "stop_sequence": "stop_sequence",
    "pause_turn": "pause_turn",
    "content_filter": "refusal",
    "error": "end_turn",
}

_EFFORT_BUDGET: dict[str, int] = {
    "minimal": 1024,  # Anthropic's smallest allowed budget
    "low": 2048,
    "medium": 8192,
    "high": 16384,
    "xhigh": 32000,
}
_MIN_BUDGET = 1024

_ERROR_TYPES = frozenset(
    {
        "invalid_request_error", "authentication_error", "permission_error", "not_found_error",
        "request_too_large", "rate_limit_error", "api_error", "overloaded_error",
        "billing_error", "timeout_error",
    }
)  # fmt: skip
_ERROR_TYPE_MAP = {
    "server_error": "api_error",
    "upstream_error": "api_error",
    "rate_limit": "rate_limit_error",
    "rate_limit_exceeded": "rate_limit_error",
    "timeout": "timeout_error",
    "auth": "authentication_error",
    "bad_request": "invalid_request_error",
    "context_length": "invalid_request_error",
    "not_found": "not_found_error",
}


# --------------------------------------------------------------------------- model table

_FAMILY = re.compile(r"(opus|sonnet|haiku)-(\d)(?!\d)(?:[-.](\d)(?!\d))?")


def model_limits(model: str) -> tuple[int, int | None]:
    """``(default max_tokens, max output cap or None when unknown)`` for a Claude model name.

    The default is deliberately below the cap: Anthropic counts ``max_tokens`` against the
    output-tokens-per-minute rate limit, so asking for the whole window by default hurts."""
    name = model.lower()
    if match := _FAMILY.search(name):
        family, major, minor = match.group(1), int(match.group(2)), int(match.group(3) or 0)
        if major >= 4:
            # Opus 4 and 4.1 stop at 32k output; the later 4.x models allow 64k.
            cap = 32000 if family == "opus" and (major, minor) < (4, 5) else 64000
            return 32000, cap
    if re.search(r"claude-3[-.]7", name):
        return 32000, 64000
    if re.search(r"claude-3[-.]5", name):
        return 8192, 8192
    if "claude-3" in name:
        return 4096, 4096
    return 4096, None


def default_max_tokens(model: str) -> int:
    """The ``max_tokens`` sent when the client gave none (Anthropic requires it)."""
    return model_limits(model)[0]


def effort_for_budget(budget: int) -> ir.Effort:
    if budget <= 2048:
        return "low"
    if budget <= 8192:
        return "medium"
    return "high"


# --------------------------------------------------------------------------- usage


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def usage_from_anthropic(data: dict[str, Any]) -> ir.Usage:
    """Anthropic ``input_tokens`` excludes cache reads and writes; the IR's includes them."""
    cache_read = _int(data.get("cache_read_input_tokens"))
    cache_write = _int(data.get("cache_creation_input_tokens"))
    details = data.get("output_tokens_details")
    reasoning = _int(details.get("thinking_tokens")) if isinstance(details, dict) else 0
    return ir.Usage(
        input_tokens=_int(data.get("input_tokens")) + cache_read + cache_write,
        output_tokens=_int(data.get("output_tokens")),
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        reasoning_tokens=reasoning,
    )


def usage_to_anthropic(usage: ir.Usage | None) -> dict[str, Any]:
    usage = usage or ir.Usage()
    out: dict[str, Any] = {
        "input_tokens": max(
            0, usage.input_tokens - usage.cache_read_tokens - usage.cache_write_tokens
        ),
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cache_read_tokens,
    }
    if usage.reasoning_tokens:
        out["output_tokens_details"] = {"thinking_tokens": usage.reasoning_tokens}
    return out


# --------------------------------------------------------------------------- request parsing


def _at(
    obj: dict[str, Any],
    name: str,
    kind: type | tuple[type, ...],
    label: str,
    path: str,
    *,
    required: bool = True,
) -> Any:
    """base.require/optional, with the field path of a nested object in the error details."""
    try:
        return require(obj, name, kind, label) if required else optional(obj, name, kind, label)
    except BadRequest as exc:
        field = f"{path}.{name}" if path else name
        details = [FieldError(field, d.message) for d in exc.details]
        raise BadRequest(f"{field}: {details[0].message}", details) from None


def _bad(field: str, message: str) -> BadRequest:
    return BadRequest(f"{field}: {message}", [FieldError(field, message)])


def _parse_text_blocks(value: Any, path: str) -> list[ir.TextBlock]:
    if isinstance(value, str):
        return [ir.TextBlock(text=value)] if value else []
    if not isinstance(value, list):
        raise _bad(path, "expected a string or an array of text blocks")
    out: list[ir.TextBlock] = []
    for i, item in enumerate(value):
        where = f"{path}.{i}"
        if not isinstance(item, dict) or item.get("type") != "text":
            raise _bad(where, "expected a text block")
        text = _at(item, "text", str, "a string", where)
        out.append(ir.TextBlock(text=text, cache_control=item.get("cache_control")))
    return out


def _parse_image(item: dict[str, Any], path: str) -> ir.ImageBlock | None:
    source = _at(item, "source", dict, "an object", path)
    where = f"{path}.source"
    kind = _at(source, "type", str, "a string", where)
    if kind == "base64":
        return ir.ImageBlock(
            media_type=_at(source, "media_type", str, "a string", where),
            data=_at(source, "data", str, "a string", where),
        )
    if kind == "url":
        return ir.ImageBlock(url=_at(source, "url", str, "a string", where))
    return None  # e.g. a Files API reference: valid for Anthropic, no IR slot


def _parse_tool_result(item: dict[str, Any], path: str, dropped: list[str]) -> ir.ToolResultBlock:
    block = ir.ToolResultBlock(
        tool_use_id=_at(item, "tool_use_id", str, "a string", path),
        is_error=bool(_at(item, "is_error", bool, "a boolean", path, required=False)),
    )
    content = item.get("content")
    if isinstance(content, str):
        block.content = [ir.TextBlock(text=content)] if content else []
    elif isinstance(content, list):
        for i, part in enumerate(content):
            where = f"{path}.content.{i}"
            if not isinstance(part, dict):
                raise _bad(where, "expected an object")
            if part.get("type") == "text":
                text = _at(part, "text", str, "a string", where)
                block.content.append(
                    ir.TextBlock(text=text, cache_control=part.get("cache_control"))
                )
            elif part.get("type") == "image" and (image := _parse_image(part, where)):
                block.content.append(image)
            else:
                dropped.append(f"{where} ({part.get('type')})")
    elif content is not None:
        raise _bad(f"{path}.content", "expected a string or an array of blocks")
    return block


def _parse_block(item: Any, path: str, dropped: list[str]) -> ir.Block | None:
    if not isinstance(item, dict):
        raise _bad(path, "expected an object")
    kind = _at(item, "type", str, "a string", path)
    match kind:
        case "text":
            text = _at(item, "text", str, "a string", path)
            return ir.TextBlock(text=text, cache_control=item.get("cache_control"))
        case "image":
            image = _parse_image(item, path)
            if image is None:
                dropped.append(f"{path} (image source {item['source'].get('type')})")
            return image
        case "tool_use":
            return ir.ToolUseBlock(
                id=_at(item, "id", str, "a string", path),
                name=_at(item, "name", str, "a string", path),
                input=_at(item, "input", dict, "an object", path),
            )
        case "tool_result":
            return _parse_tool_result(item, path, dropped)
        case "thinking":
            return ir.ThinkingBlock(
                thinking=_at(item, "thinking", str, "a string", path),
                signature=_at(item, "signature", str, "a string", path),
                origin=NAME,
            )
        case "redacted_thinking":
            data = _at(item, "data", str, "a string", path)
            return ir.ThinkingBlock(redacted=True, data=data, origin=NAME)
    # documents, server-tool results, MCP blocks...: valid Anthropic, but the IR has no slot.
    dropped.append(f"{path} ({kind})")
    return None


def _parse_messages(value: list[Any], dropped: list[str]) -> list[ir.Message]:
    out: list[ir.Message] = []
    for i, item in enumerate(value):
        path = f"messages.{i}"
        if not isinstance(item, dict):
            raise _bad(path, "expected an object")
        role = _at(item, "role", str, "a string", path)
        if role not in ("user", "assistant"):
            raise _bad(f"{path}.role", "expected 'user' or 'assistant'")
        content = _at(item, "content", (str, list), "a string or an array", path)
        blocks: list[ir.Block] = []
        if isinstance(content, str):
            blocks.append(ir.TextBlock(text=content))
        else:
            for j, part in enumerate(content):
                block = _parse_block(part, f"{path}.content.{j}", dropped)
                if block is not None:
                    blocks.append(block)
        out.append(ir.Message(role="user" if role == "user" else "assistant", content=blocks))
    return out


def _parse_tools(value: list[Any]) -> list[ir.Tool]:
    tools: list[ir.Tool] = []
    for i, item in enumerate(value):
        path = f"tools.{i}"
        if not isinstance(item, dict):
            raise _bad(path, "expected an object")
        name = _at(item, "name", str, "a string", path)
        kind = item.get("type")
        if kind in (None, "custom"):
            schema = _at(item, "input_schema", dict, "an object", path)
            extra = {
                k: v for k, v in item.items() if k not in ("name", "description", "input_schema")
            }
            tools.append(
                ir.Tool(
                    name=name,
                    description=_at(item, "description", str, "a string", path, required=False),
                    parameters=schema,
                    extra=extra,
                )
            )
        else:
            # A server tool (web_search_20250305, bash_..., text_editor_...): kept whole.
            tools.append(ir.Tool(name=name, extra={k: v for k, v in item.items() if k != "name"}))
    return tools


def _parse_tool_choice(value: dict[str, Any]) -> tuple[ir.ToolChoice, bool | None]:
    kind = _at(value, "type", str, "a string", "tool_choice")
    parallel: bool | None = None
    if _at(value, "disable_parallel_tool_use", bool, "a boolean", "tool_choice", required=False):
        parallel = False
    match kind:
        case "auto":
            return ir.ToolChoice("auto"), parallel
        case "any":
            return ir.ToolChoice("required"), parallel
        case "none":
            return ir.ToolChoice("none"), parallel
        case "tool":
            name = _at(value, "name", str, "a string", "tool_choice")
            return ir.ToolChoice("tool", name), parallel
    raise _bad("tool_choice.type", "expected 'auto', 'any', 'tool' or 'none'")


def parse_request(body: dict[str, Any]) -> ir.Request:
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    model = require(body, "model", str, "a string")
    messages = require(body, "messages", list, "an array")
    max_tokens = require(body, "max_tokens", int, "an integer")
    if max_tokens < 1:
        raise _bad("max_tokens", "must be at least 1")
    req = ir.Request(model=model, max_tokens=max_tokens, source_format=NAME)
    req.messages = _parse_messages(messages, req.dropped)
    if body.get("system") is not None:
        req.system = _parse_text_blocks(body["system"], "system")
    if (tools := optional(body, "tools", list, "an array")) is not None:
        req.tools = _parse_tools(tools)
    if (choice := optional(body, "tool_choice", dict, "an object")) is not None:
        req.tool_choice, req.parallel_tool_calls = _parse_tool_choice(choice)
    if (stops := optional(body, "stop_sequences", list, "an array")) is not None:
        if not all(isinstance(s, str) for s in stops):
            raise _bad("stop_sequences", "expected an array of strings")
        req.stop = list(stops)
    req.temperature = optional(body, "temperature", (int, float), "a number")
    req.top_p = optional(body, "top_p", (int, float), "a number")
    req.top_k = optional(body, "top_k", int, "an integer")
    req.stream = bool(optional(body, "stream", bool, "a boolean"))
    req.include_usage = req.stream  # Anthropic streams always carry usage
    if (metadata := optional(body, "metadata", dict, "an object")) is not None:
        req.metadata = metadata
        if isinstance(metadata.get("user_id"), str):
            req.user = metadata["user_id"]
    extra = {k: v for k, v in body.items() if k not in _REQUEST_FIELDS}
    if (thinking := optional(body, "thinking", dict, "an object")) is not None:
        kind = _at(thinking, "type", str, "a string", "thinking")
        if kind == "enabled":
            budget = _at(thinking, "budget_tokens", int, "an integer", "thinking")
            if budget < _MIN_BUDGET:
                raise _bad("thinking.budget_tokens", f"must be at least {_MIN_BUDGET}")
            req.thinking_budget = budget
            req.reasoning_effort = effort_for_budget(budget)
        else:
            extra["thinking"] = thinking  # disabled / adaptive: only Anthropic understands it
    req.extra = extra
    return req


# --------------------------------------------------------------------------- request rendering


def _image_json(block: ir.ImageBlock) -> dict[str, Any] | None:
    if block.data is not None:
        source = {
            "type": "base64",
            "media_type": block.media_type or "image/png",
            "data": block.data,
        }
    elif block.url and (match := re.match(r"data:([^;,]+);base64,(.*)", block.url, re.S)):
        source = {"type": "base64", "media_type": match.group(1), "data": match.group(2)}
    elif block.url:
        source = {"type": "url", "url": block.url}
    else:
        return None
    return {"type": "image", "source": source}


def _text_json(block: ir.TextBlock) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "text", "text": block.text}
    if block.cache_control is not None:
        out["cache_control"] = block.cache_control
    return out


def _tool_result_json(block: ir.ToolResultBlock) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "tool_result", "tool_use_id": ir.safe_tool_id(block.tool_use_id)}
    parts: list[dict[str, Any]] = []
    for part in block.content:
        if isinstance(part, ir.TextBlock) and part.text:
            parts.append(_text_json(part))
        elif isinstance(part, ir.ImageBlock) and (image := _image_json(part)):
            parts.append(image)
    if len(parts) == 1 and parts[0]["type"] == "text" and "cache_control" not in parts[0]:
        out["content"] = parts[0]["text"]
    elif parts:
        out["content"] = parts
    if block.is_error:
        out["is_error"] = True
    return out


def _block_json(block: ir.Block) -> dict[str, Any] | None:
    match block:
        case ir.TextBlock():
            # Anthropic rejects empty text blocks.
            return _text_json(block) if block.text else None
        case ir.ImageBlock():
            return _image_json(block)
        case ir.ToolUseBlock():
            args = block.input if isinstance(block.input, dict) else {}
            return {
                "type": "tool_use",
                "id": ir.safe_tool_id(block.id),
                "name": block.name,
                "input": args,
            }
        case ir.ToolResultBlock():
            return _tool_result_json(block)
        case ir.ThinkingBlock():
            # Another provider's reasoning (or an unsigned fragment) would be rejected.
            if block.origin != NAME:
                return None
            if block.redacted:
                return {"type": "redacted_thinking", "data": block.data or ""}
            if not block.signature:
                return None
            return {"type": "thinking", "thinking": block.thinking, "signature": block.signature}
    return None


def _render_messages(req: ir.Request) -> tuple[list[dict[str, Any]], list[ir.TextBlock]]:
    system = list(req.system)
    out: list[dict[str, Any]] = []
    for msg in req.messages:
        if msg.role == "system":
            system.extend(b for b in msg.content if isinstance(b, ir.TextBlock) and b.text)
            continue
        role = "assistant" if msg.role == "assistant" else "user"
        blocks = [j for b in msg.content if (j := _block_json(b)) is not None]
        if not blocks:
            continue
        if out and out[-1]["role"] == role:  # Anthropic requires strict alternation
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    for message in out:
        if message["role"] == "user":
            # tool_result blocks must lead their user turn
            message["content"].sort(key=lambda b: b["type"] != "tool_result")
        content = message["content"]
        if len(content) == 1 and content[0]["type"] == "text" and "cache_control" not in content[0]:
            message["content"] = content[0]["text"]
    return out, system


def _in_unsigned_tool_loop(messages: list[dict[str, Any]]) -> bool:
    """Anthropic rejects thinking when the assistant turn answered by the final tool results
    does not itself start with a thinking block (typical of a conversation begun elsewhere)."""
    if len(messages) < 2 or messages[-1]["role"] != "user" or messages[-2]["role"] != "assistant":
        return False
    last, prev = messages[-1]["content"], messages[-2]["content"]
    if isinstance(last, str) or not any(b["type"] == "tool_result" for b in last):
        return False
    if isinstance(prev, str):
        return True
    return prev[0]["type"] not in ("thinking", "redacted_thinking")


def _render_tools(req: ir.Request, native: bool) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = []
    for tool in req.tools:
        kind = tool.extra.get("type")
        if kind not in (None, "custom", "function"):
            if native:
                tools.append({**tool.extra, "name": tool.name})
            else:
                req.dropped.append(f"tools.{tool.name}")
            continue
        schema = dict(tool.parameters)
        schema.setdefault("type", "object")  # OpenAI allows {} here; Anthropic does not
        out: dict[str, Any] = {"name": tool.name}
        if tool.description:
            out["description"] = tool.description
        out["input_schema"] = schema
        if native:
            out.update(tool.extra)
        else:
            req.dropped.extend(f"tools.{tool.name}.{k}" for k in tool.extra if k != "type")
        tools.append(out)
    return tools


def _tool_choice_json(req: ir.Request) -> dict[str, Any] | None:
    choice = req.tool_choice
    out: dict[str, Any] | None = None
    if choice is not None:
        if choice.mode == "tool" and choice.name:
            out = {"type": "tool", "name": choice.name}
        else:
            out = {"type": {"required": "any"}.get(choice.mode, choice.mode)}
    if req.parallel_tool_calls is False and (out is None or out["type"] != "none"):
        out = out or {"type": "auto"}
        out["disable_parallel_tool_use"] = True
    return out


def render_request(req: ir.Request) -> dict[str, Any]:
    native = req.source_format == NAME
    body: dict[str, Any] = dict(req.extra) if native else {}
    if not native:
        req.dropped.extend(req.extra)
    messages, system = _render_messages(req)
    default, cap = model_limits(req.model)
    max_tokens = req.max_tokens or default
    body["model"] = req.model
    body["messages"] = messages
    if system:
        if len(system) == 1 and system[0].cache_control is None:
            body["system"] = system[0].text
        else:
            body["system"] = [_text_json(b) for b in system]

    budget = req.thinking_budget
    if budget is None and req.reasoning_effort not in (None, "none"):
        budget = _EFFORT_BUDGET.get(req.reasoning_effort or "")
    forced = req.tool_choice is not None and req.tool_choice.mode in ("required", "tool")
    if budget is not None and (forced or _in_unsigned_tool_loop(messages)):
        req.dropped.append("reasoning_effort" if req.thinking_budget is None else "thinking")
        budget = None
    if budget is not None:
        budget = max(_MIN_BUDGET, budget)
        if max_tokens <= budget:
            # Thinking counts against max_tokens: keep the asked-for room for the answer.
            max_tokens = budget + max_tokens
            if cap is not None and max_tokens > cap:
                max_tokens = cap
                budget = max(_MIN_BUDGET, min(budget, cap - 4096))
        body["thinking"] = {"type": "enabled", "budget_tokens": budget}
    body["max_tokens"] = max_tokens

    tools = _render_tools(req, native)
    if tools:
        body["tools"] = tools
        if (choice := _tool_choice_json(req)) is not None:
            body["tool_choice"] = choice
    if req.stop:
        body["stop_sequences"] = list(req.stop)
    # Extended thinking rejects sampling tweaks other than top_p >= 0.95.
    if req.temperature is not None:
        if budget is not None:
            req.dropped.append("temperature")
        else:
            body["temperature"] = min(1.0, req.temperature)  # OpenAI's range goes to 2
    if req.top_p is not None:
        if budget is not None and req.top_p < 0.95:
            req.dropped.append("top_p")
        else:
            body["top_p"] = req.top_p
    if req.top_k is not None:
        if budget is not None:
            req.dropped.append("top_k")
        else:
            body["top_k"] = req.top_k
    if native and req.metadata is not None:
        body["metadata"] = req.metadata
    else:
        if req.metadata:
            req.dropped.append("metadata")  # Anthropic metadata takes only user_id
        if req.user:
            body["metadata"] = {"user_id": req.user}
    if req.stream:
        body["stream"] = True
    for name in ("seed", "response_format"):
        if getattr(req, name) is not None:
            req.dropped.append(name)
    return body


# --------------------------------------------------------------------------- responses


def _parse_content_block(item: Any) -> ir.Block | None:
    if not isinstance(item, dict):
        return None
    match item.get("type"):
        case "text":
            return ir.TextBlock(text=str(item.get("text", "")))
        case "thinking":
            return ir.ThinkingBlock(
                thinking=str(item.get("thinking", "")),
                signature=item.get("signature") or None,
                origin=NAME,
            )
        case "redacted_thinking":
            return ir.ThinkingBlock(redacted=True, data=item.get("data"), origin=NAME)
        case "tool_use":
            block = ir.ToolUseBlock(id=str(item.get("id", "")), name=str(item.get("name", "")))
            args = item.get("input")
            if isinstance(args, dict):
                block.input = args
            elif isinstance(args, str):
                ir.set_tool_arguments(block, args)
            return block
    # server_tool_use / *_tool_result / mcp blocks run on Anthropic's side: a client of
    # another format must not see them as calls it has to execute.
    return None


def parse_response(body: dict[str, Any]) -> ir.Response:
    content = body.get("content")
    blocks = [b for item in content or [] if (b := _parse_content_block(item)) is not None]
    stop = body.get("stop_reason")
    usage = body.get("usage")
    resp = ir.Response(
        id=str(body.get("id") or ""),
        model=str(body.get("model") or ""),
        content=blocks,
        stop_reason=_STOP_IN.get(stop, "end_turn") if isinstance(stop, str) else None,
        stop_sequence=body.get("stop_sequence"),
        usage=usage_from_anthropic(usage) if isinstance(usage, dict) else None,
    )
    extra = {k: v for k, v in body.items() if k not in _MESSAGE_FIELDS}
    if extra:
        resp.extra[NAME] = extra
    return resp


def _out_block_json(block: ir.Block) -> dict[str, Any] | None:
    """A content block as sent to a client (any thinking is shown, signed or not)."""
    match block:
        case ir.TextBlock():
            return {"type": "text", "text": block.text}
        case ir.ThinkingBlock() if block.redacted:
            return {"type": "redacted_thinking", "data": block.data or ""}
        case ir.ThinkingBlock():
            return {
                "type": "thinking",
                "thinking": block.thinking,
                "signature": block.signature or "",
            }
        case ir.ToolUseBlock():
            args = block.input if isinstance(block.input, dict) else {}
            return {
                "type": "tool_use",
                "id": _client_tool_id(block.id),
                "name": block.name,
                "input": args,
            }
    return None


def _client_tool_id(tool_id: str) -> str:
    """The id a client sees. Some providers (Gemini) give none; a fresh one per call keeps
    parallel calls apart, and the client echoes it back so later turns still pair up."""
    return ir.safe_tool_id(tool_id) if tool_id else f"toolu_{uuid.uuid4().hex[:24]}"


def _message_id(value: str) -> str:
    return value or f"msg_{uuid.uuid4().hex[:24]}"


def render_response(resp: ir.Response, req: ir.Request) -> dict[str, Any]:
    extra = resp.extra.get(NAME)
    body: dict[str, Any] = dict(extra) if isinstance(extra, dict) else {}
    body.update(
        {
            "id": _message_id(resp.id),
            "type": "message",
            "role": "assistant",
            "model": resp.model or req.model,
            "content": [j for b in resp.content if (j := _out_block_json(b)) is not None],
            "stop_reason": _STOP_OUT.get(resp.stop_reason or "end_turn", "end_turn"),
            "stop_sequence": resp.stop_sequence,
            "usage": usage_to_anthropic(resp.usage),
        }
    )
    return body


# --------------------------------------------------------------------------- stream parsing


class AnthropicStreamParser:
    """Anthropic SSE -> IR events. Server-side tool blocks are skipped, so IR indices are
    renumbered to stay dense."""

    def __init__(self) -> None:
        self._sse = SSEParser()
        self._index: dict[int, int] = {}  # Anthropic block index -> IR index
        self._skipped: set[int] = set()
        self._next = 0
        # Raw Anthropic figures: message_delta may refine some of them; the IR input total
        # needs all three.
        self._raw: dict[str, int] = {}
        self._done = False

    def feed(self, chunk: bytes) -> list[ir.StreamEvent]:
        out: list[ir.StreamEvent] = []
        for sse in self._sse.feed(chunk):
            self._event(sse.event, sse.data, out)
        return out

    def close(self) -> list[ir.StreamEvent]:
        out: list[ir.StreamEvent] = []
        for sse in self._sse.close():
            self._event(sse.event, sse.data, out)
        if not self._done:
            self._done = True
            out.append(ir.ErrorEvent("stream ended before message_stop", "api_error"))
        return out

    def _usage(self, data: Any) -> ir.Usage:
        if isinstance(data, dict):
            for key in ("input_tokens", "output_tokens", "cache_read_input_tokens",
                        "cache_creation_input_tokens"):  # fmt: skip
                if isinstance(data.get(key), int):
                    self._raw[key] = data[key]
            details = data.get("output_tokens_details")
            if isinstance(details, dict) and isinstance(details.get("thinking_tokens"), int):
                self._raw["thinking_tokens"] = details["thinking_tokens"]
        raw: dict[str, Any] = dict(self._raw)
        raw["output_tokens_details"] = {"thinking_tokens": raw.pop("thinking_tokens", 0)}
        return usage_from_anthropic(raw)

    def _event(self, name: str | None, data: str, out: list[ir.StreamEvent]) -> None:
        if self._done or not data:
            return
        try:
            payload = json.loads(data)
        except ValueError:
            return  # a keep-alive or garbage line carries nothing we could use
        if not isinstance(payload, dict):
            return
        kind = payload.get("type") or name
        match kind:
            case "message_start":
                message = _dict(payload.get("message"))
                out.append(
                    ir.MessageStart(
                        id=str(message.get("id") or ""),
                        model=str(message.get("model") or ""),
                        usage=self._usage(message.get("usage")) if message.get("usage") else None,
                    )
                )
            case "content_block_start":
                self._block_start(payload, out)
            case "content_block_delta":
                self._block_delta(payload, out)
            case "content_block_stop":
                index = self._index.get(_int(payload.get("index")))
                if index is not None:
                    out.append(ir.BlockStop(index))
            case "message_delta":
                delta = _dict(payload.get("delta"))
                stop = delta.get("stop_reason")
                out.append(
                    ir.MessageDelta(
                        stop_reason=_STOP_IN.get(stop, "end_turn")
                        if isinstance(stop, str)
                        else None,
                        stop_sequence=delta.get("stop_sequence"),
                        usage=self._usage(payload.get("usage")),
                    )
                )
            case "message_stop":
                self._done = True
                out.append(ir.MessageStop())
            case "error":
                error = _dict(payload.get("error"))
                self._done = True
                out.append(
                    ir.ErrorEvent(
                        message=str(error.get("message") or "upstream stream error"),
                        error_type=str(error.get("type") or "api_error"),
                    )
                )

    def _block_start(self, payload: dict[str, Any], out: list[ir.StreamEvent]) -> None:
        anthropic_index = _int(payload.get("index"))
        block = _dict(payload.get("content_block"))
        start: ir.Block
        deltas: list[tuple[Any, str]] = []
        match block.get("type"):
            case "text":
                start = ir.TextBlock()
                deltas.append(("text", block.get("text") or ""))
            case "thinking":
                start = ir.ThinkingBlock(origin=NAME)
                deltas.append(("thinking", block.get("thinking") or ""))
                deltas.append(("signature", block.get("signature") or ""))
            case "redacted_thinking":
                start = ir.ThinkingBlock(redacted=True, data=block.get("data"), origin=NAME)
            case "tool_use":
                start = ir.ToolUseBlock(
                    id=str(block.get("id", "")), name=str(block.get("name", ""))
                )
                if block.get("input"):
                    deltas.append(("input_json", json.dumps(block["input"], ensure_ascii=False)))
            case _:
                self._skipped.add(anthropic_index)
                return
        index = self._next
        self._next += 1
        self._index[anthropic_index] = index
        out.append(ir.BlockStart(index, start))
        out.extend(ir.BlockDelta(index, kind, text) for kind, text in deltas if text)

    def _block_delta(self, payload: dict[str, Any], out: list[ir.StreamEvent]) -> None:
        index = self._index.get(_int(payload.get("index")))
        delta = _dict(payload.get("delta"))
        if index is None:
            return
        match delta.get("type"):
            case "text_delta":
                out.append(ir.BlockDelta(index, "text", str(delta.get("text", ""))))
            case "thinking_delta":
                out.append(ir.BlockDelta(index, "thinking", str(delta.get("thinking", ""))))
            case "signature_delta":
                out.append(ir.BlockDelta(index, "signature", str(delta.get("signature", ""))))
            case "input_json_delta":
                out.append(ir.BlockDelta(index, "input_json", str(delta.get("partial_json", ""))))


# --------------------------------------------------------------------------- stream rendering


def _error_type(error_type: str) -> str:
    if error_type in _ERROR_TYPES:
        return error_type
    return _ERROR_TYPE_MAP.get(error_type, "api_error")


def error_event(message: str, error_type: str = "api_error") -> bytes:
    payload = {"type": "error", "error": {"type": _error_type(error_type), "message": message}}
    return sse_bytes(payload, event="error")


def _start_json(block: ir.Block) -> dict[str, Any]:
    match block:
        case ir.ThinkingBlock() if block.redacted:
            return {"type": "redacted_thinking", "data": block.data or ""}
        case ir.ThinkingBlock():
            return {"type": "thinking", "thinking": "", "signature": ""}
        case ir.ToolUseBlock():
            return {
                "type": "tool_use",
                "id": _client_tool_id(block.id),
                "name": block.name,
                "input": {},
            }
    return {"type": "text", "text": ""}


_DELTA_JSON = {
    "text": ("text_delta", "text"),
    "thinking": ("thinking_delta", "thinking"),
    "signature": ("signature_delta", "signature"),
    "input_json": ("input_json_delta", "partial_json"),
}


class AnthropicStreamRenderer:
    """IR events -> Anthropic SSE. Anthropic blocks are strictly sequential, while the IR may
    interleave several open blocks (parallel OpenAI tool calls): one block is open at a time,
    the others are buffered and replayed in start order, renumbered 0..n."""

    def __init__(self, req: ir.Request) -> None:
        self._req = req
        self._usage = ir.Usage()
        self._started = False
        self._delta_sent = False
        self._ended = False
        self._current: int | None = None  # the IR index of the open Anthropic block
        self._next = 0
        self._queue: list[int] = []  # buffered IR blocks, in start order
        self._buffers: dict[int, list[ir.BlockStart | ir.BlockDelta]] = {}
        self._stopped: set[int] = set()  # buffered blocks whose stop already arrived
        self._finished: set[int] = set()  # blocks already rendered and closed
        self._signature: list[str] = []  # signature pieces of the open block
        self._id = ""
        self._model = ""
        self._stop: ir.StopReason | None = None
        self._stop_sequence: str | None = None

    def render(self, event: ir.StreamEvent) -> bytes:
        if self._ended:
            return b""
        out: list[bytes] = []
        match event:
            case ir.MessageStart():
                if event.usage is not None:
                    self._usage.merge(event.usage)
                self._id = self._id or event.id
                self._model = self._model or event.model
                self._ensure_started(out)
            case ir.BlockStart():
                self._ensure_started(out)
                self._block_start(event, out)
            case ir.BlockDelta():
                self._ensure_started(out)
                self._block_delta(event, out)
            case ir.BlockStop():
                self._block_stop(event.index, out)
            case ir.MessageDelta():
                # Upstreams split stop reason and usage over several deltas (OpenAI sends
                # usage in a chunk of its own); Anthropic clients keep only the last
                # message_delta, so the figures are held and sent once, at message stop.
                self._ensure_started(out)
                if event.usage is not None:
                    self._usage.merge(event.usage)
                self._stop = event.stop_reason or self._stop
                self._stop_sequence = event.stop_sequence or self._stop_sequence
                self._close_all(out)
            case ir.MessageStop():
                self._end(out)
            case ir.ErrorEvent():
                self._ended = True
                out.append(error_event(event.message, event.error_type))
        return b"".join(out)

    def finish(self) -> bytes:
        if self._ended:
            return b""
        out: list[bytes] = []
        self._end(out)
        return b"".join(out)

    # -- message level

    def _ensure_started(self, out: list[bytes]) -> None:
        if self._started:
            return
        self._started = True
        usage = usage_to_anthropic(self._usage)
        usage["output_tokens"] = 1  # what Anthropic itself reports before any output
        usage.pop("output_tokens_details", None)
        message: dict[str, Any] = {
            "id": _message_id(self._id),
            "type": "message",
            "role": "assistant",
            "model": self._model or self._req.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage,
        }
        out.append(sse_bytes({"type": "message_start", "message": message}, "message_start"))

    def _message_delta(self, stop: ir.StopReason | None, sequence: str | None, out: list[bytes]) -> None:  # fmt: skip
        self._delta_sent = True
        payload = {
            "type": "message_delta",
            "delta": {
                "stop_reason": _STOP_OUT.get(stop or "end_turn", "end_turn"),
                "stop_sequence": sequence,
            },
            "usage": usage_to_anthropic(self._usage),
        }
        out.append(sse_bytes(payload, "message_delta"))

    def _end(self, out: list[bytes]) -> None:
        self._ensure_started(out)
        self._close_all(out)
        if not self._delta_sent:
            self._message_delta(self._stop, self._stop_sequence, out)
        out.append(sse_bytes({"type": "message_stop"}, "message_stop"))
        self._ended = True

    # -- blocks

    def _block_start(self, event: ir.BlockStart, out: list[bytes]) -> None:
        i = event.index
        if i == self._current or i in self._buffers or i in self._finished:
            return
        if self._current is None:
            self._open(event, out)
        else:
            self._queue.append(i)
            self._buffers[i] = [event]

    def _block_delta(self, event: ir.BlockDelta, out: list[bytes]) -> None:
        i = event.index
        if i in self._finished:
            return
        if i != self._current and i not in self._buffers:
            # A delta without a start implies one.
            kind = event.kind
            block: ir.Block = (
                ir.ThinkingBlock() if kind in ("thinking", "signature")
                else ir.ToolUseBlock() if kind == "input_json"
                else ir.TextBlock()
            )  # fmt: skip
            self._block_start(ir.BlockStart(i, block), out)
        if i == self._current:
            self._delta(event, out)
        else:
            self._buffers[i].append(event)

    def _block_stop(self, index: int, out: list[bytes]) -> None:
        if index == self._current:
            self._close_current(out)
            self._drain(out, everything=False)
        elif index in self._buffers:
            self._stopped.add(index)

    def _open(self, start: ir.BlockStart, out: list[bytes]) -> None:
        self._current = start.index
        payload = {
            "type": "content_block_start",
            "index": self._next,
            "content_block": _start_json(start.block),
        }
        out.append(sse_bytes(payload, "content_block_start"))
        # A start carrying text (the IR allows it) still reaches the client.
        block, i = start.block, start.index
        match block:
            case ir.TextBlock() if block.text:
                self._delta(ir.BlockDelta(i, "text", block.text), out)
            case ir.ThinkingBlock() if not block.redacted:
                if block.thinking:
                    self._delta(ir.BlockDelta(i, "thinking", block.thinking), out)
                if block.signature:
                    self._delta(ir.BlockDelta(i, "signature", block.signature), out)
            case ir.ToolUseBlock() if block.input or block.raw_arguments:
                self._delta(ir.BlockDelta(i, "input_json", block.arguments_json()), out)

    def _delta(self, event: ir.BlockDelta, out: list[bytes]) -> None:
        if event.kind == "signature":
            # The SDK keeps only the last signature_delta, and Anthropic sends one just
            # before the block stops: join the pieces and send them then.
            self._signature.append(event.text)
            return
        out.append(self._delta_bytes(event.kind, event.text))

    def _delta_bytes(self, kind: str, text: str) -> bytes:
        delta_type, key = _DELTA_JSON[kind]
        payload = {
            "type": "content_block_delta",
            "index": self._next,
            "delta": {"type": delta_type, key: text},
        }
        return sse_bytes(payload, "content_block_delta")

    def _close_current(self, out: list[bytes]) -> None:
        if self._current is None:
            return
        if self._signature:
            out.append(self._delta_bytes("signature", "".join(self._signature)))
            self._signature = []
        out.append(
            sse_bytes({"type": "content_block_stop", "index": self._next}, "content_block_stop")
        )
        self._finished.add(self._current)
        self._current = None
        self._next += 1

    def _drain(self, out: list[bytes], *, everything: bool) -> None:
        """Replay buffered blocks in start order; stop at the first one still open unless
        ``everything`` (the message is ending, so open blocks are closed as they stand)."""
        while self._current is None and self._queue:
            index = self._queue.pop(0)
            events = self._buffers.pop(index)
            first = events[0]
            assert isinstance(first, ir.BlockStart)
            self._open(first, out)
            for event in events[1:]:
                if isinstance(event, ir.BlockDelta):
                    self._delta(event, out)
            if index in self._stopped or everything:
                self._stopped.discard(index)
                self._close_current(out)

    def _close_all(self, out: list[bytes]) -> None:
        self._close_current(out)
        self._drain(out, everything=True)


# --------------------------------------------------------------------------- codec


class AnthropicCodec:
    name = NAME

    def parse_request(self, body: dict[str, Any]) -> ir.Request:
        return parse_request(body)

    def render_request(self, req: ir.Request) -> dict[str, Any]:
        return render_request(req)

    def parse_response(self, body: dict[str, Any]) -> ir.Response:
        return parse_response(body)

    def render_response(self, resp: ir.Response, req: ir.Request) -> dict[str, Any]:
        return render_response(resp, req)

    def stream_parser(self) -> AnthropicStreamParser:
        return AnthropicStreamParser()

    def stream_renderer(self, req: ir.Request) -> AnthropicStreamRenderer:
        return AnthropicStreamRenderer(req)

    def error_event(self, message: str, error_type: str = "api_error") -> bytes:
        return error_event(message, error_type)


CODEC: Codec = AnthropicCodec()
