"""Anthropic Messages requests: parse a client's body into the IR, render the IR for Anthropic."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from router import ir
from router.errors import BadRequest, FieldError
from router.formats.anthropic import NAME
from router.formats.common import optional, require
from router.formats.tools import call_name, tool_name

_REQUEST_FIELDS = frozenset(
    {
        "model", "messages", "max_tokens", "system", "tools", "tool_choice", "stop_sequences",
        "temperature", "top_p", "top_k", "thinking", "metadata", "stream",
    }
)  # fmt: skip

_MIN_BUDGET = 1024


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


def _objects(value: list[Any], prefix: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each item of an array of objects with its path (``messages.3``)."""
    for i, item in enumerate(value):
        path = f"{prefix}.{i}"
        if not isinstance(item, dict):
            raise _bad(path, "expected an object")
        yield path, item


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
    for path, item in _objects(value, "messages"):
        role = _at(item, "role", str, "a string", path)
        if role == "system":
            # Claude Code 2.1.x sends system entries between the turns (beside the top-level
            # `system`); they stay system content at their position in the IR.
            content = _at(item, "content", (str, list), "a string or an array", path)
            texts: list[ir.Block] = list(_parse_text_blocks(content, f"{path}.content"))
            out.append(ir.Message(role="system", content=texts))
            continue
        if role not in ("user", "assistant"):
            raise _bad(f"{path}.role", "expected 'user', 'assistant' or 'system'")
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
    for path, item in _objects(value, "tools"):
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
            req.reasoning_effort = ir.effort_for_budget(budget)
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
                "name": call_name(block),
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
    native = req.source_format == NAME
    for msg in req.messages:
        if msg.role == "system":
            texts = [b for b in msg.content if isinstance(b, ir.TextBlock) and b.text]
            if native and texts:  # where the client put it (Claude Code 2.1.x)
                out.append({"role": "system", "content": [_text_json(b) for b in texts]})
            else:  # other formats' system messages join the top-level system prompt
                system.extend(texts)
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
        out: dict[str, Any] = {"name": tool_name(tool)}
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
    default, cap = ir.claude_output_limits(req.model)
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
        budget = ir.budget_for_effort(req.reasoning_effort)
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
