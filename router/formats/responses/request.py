"""Responses requests: parse a client's body into the IR, render the IR for an upstream."""

from __future__ import annotations

from typing import Any

from router import ir
from router.formats.common import (
    add_dropped,
    as_object,
    bad,
    content_parts,
    field,
    image_from_url,
    image_url,
    merge_extra,
    new_id,
    parse_effort,
    parse_tooling,
    parse_user_and_extra,
    render_effort,
    render_metadata,
    render_sampling,
    render_tool_choice,
    require,
    tool_extra,
)
from router.formats.responses import NAME

_FIELDS = frozenset(
    {
        "model",
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "max_output_tokens",
        "temperature",
        "top_p",
        "reasoning",
        "text",
        "stream",
        "user",
        "metadata",
    }
)


def format_to_ir(fmt: dict[str, Any]) -> dict[str, Any]:
    """``text.format`` -> the chat-shaped ``response_format`` the IR carries."""
    if fmt.get("type") != "json_schema":
        return dict(fmt)
    return {"type": "json_schema", "json_schema": {k: v for k, v in fmt.items() if k != "type"}}


def format_from_ir(fmt: dict[str, Any]) -> dict[str, Any]:
    schema = fmt.get("json_schema")
    if fmt.get("type") == "json_schema" and isinstance(schema, dict):
        return {"type": "json_schema", **schema}
    return dict(fmt)


# --------------------------------------------------------------------------- request parsing


def summary_text(item: dict[str, Any]) -> str:
    parts = [
        p.get("text", "")
        for p in item.get("summary") or []
        if isinstance(p, dict) and isinstance(p.get("text"), str)
    ]
    return "\n\n".join(parts)


def thinking_from_item(item: dict[str, Any]) -> ir.ThinkingBlock:
    encrypted = item.get("encrypted_content")
    return ir.ThinkingBlock(
        summary_text(item),
        signature=encrypted if isinstance(encrypted, str) else None,
        origin=NAME,
    )


def tool_use_from_item(item: dict[str, Any]) -> ir.ToolUseBlock:
    # Pair by call_id (router.md case 1): the item id is Responses-internal.
    block = ir.ToolUseBlock(id=str(item.get("call_id") or ""), name=str(item.get("name") or ""))
    arguments = item.get("arguments")
    ir.set_tool_arguments(block, arguments if isinstance(arguments, str) else "")
    return block


def parse_request(body: dict[str, Any]) -> ir.Request:
    body = as_object(body, "body")
    req = ir.Request(model=require(body, "model", str, "a string"), source_format=NAME)
    instructions = field(body, "instructions", str, "a string")
    if instructions:
        req.system.append(ir.TextBlock(instructions))
    raw_input = require(body, "input", (str, list), "a string or an array")
    if isinstance(raw_input, str):
        req.messages.append(ir.Message("user", [ir.TextBlock(raw_input)]))
    else:
        for i, raw in enumerate(raw_input):
            _parse_item(req, raw, f"input[{i}]")
    parse_tooling(body, req, nested=False)
    req.max_tokens = field(body, "max_output_tokens", int, "an integer")
    req.temperature = field(body, "temperature", (int, float), "a number")
    req.top_p = field(body, "top_p", (int, float), "a number")
    reasoning = field(body, "reasoning", dict, "an object") or {}
    req.reasoning_effort = parse_effort(reasoning.get("effort"), "reasoning.effort")
    rest = {k: v for k, v in reasoning.items() if k != "effort"}
    if rest:  # summary settings have no IR slot
        req.extra["reasoning"] = rest
    text = field(body, "text", dict, "an object") or {}
    fmt = field(text, "format", dict, "an object", "text")
    if fmt is not None:
        req.response_format = format_to_ir(fmt)
    rest = {k: v for k, v in text.items() if k != "format"}
    if rest:
        req.extra["text"] = rest
    req.stream = bool(field(body, "stream", bool, "a boolean"))
    req.include_usage = req.stream  # response.completed always carries usage
    parse_user_and_extra(body, req, _FIELDS)
    return req


def _parts(content: Any, path: str, req: ir.Request) -> list[ir.TextBlock | ir.ImageBlock]:
    out: list[ir.TextBlock | ir.ImageBlock] = []
    for ptype, part, ppath in content_parts(content, path):
        if ptype in ("input_text", "output_text", "text"):
            out.append(ir.TextBlock(field(part, "text", str, "a string", ppath, required=True)))
        elif ptype == "refusal":
            out.append(ir.TextBlock(field(part, "refusal", str, "a string", ppath) or ""))
        elif ptype == "input_image" and isinstance(part.get("image_url"), str):
            out.append(image_from_url(part["image_url"]))
        else:
            add_dropped(req, f"{ppath}.{ptype}")  # files and file_id images have no IR slot
    return out


def _append(req: ir.Request, role: ir.Role, block: ir.Block, *, only_results: bool) -> None:
    """Add a block to the last message when it has the role (and, for tool results, holds only
    results), so a turn's calls and results stay one IR message as Anthropic wants them."""
    last = req.messages[-1] if req.messages else None
    if (
        last is not None
        and last.role == role
        and (
            not only_results
            or (last.content and all(isinstance(b, ir.ToolResultBlock) for b in last.content))
        )
    ):
        last.content.append(block)
    else:
        req.messages.append(ir.Message(role, [block]))


def _parse_item(req: ir.Request, raw: Any, path: str) -> None:
    item = as_object(raw, path)
    kind = item.get("type", "message" if "role" in item else None)
    match kind:
        case "message":
            role = field(item, "role", str, "a string", path, required=True)
            if item.get("content") is None:
                raise bad(f"{path}.content", "field required")
            blocks = _parts(item["content"], path, req)
            if role in ("system", "developer"):
                texts = [b for b in blocks if isinstance(b, ir.TextBlock)]
                if req.messages:  # a system item between turns stays where it was
                    req.messages.append(ir.Message("system", list(texts)))
                else:
                    req.system.extend(texts)
            elif role in ("user", "assistant"):
                content: list[ir.Block] = list(blocks)
                if role == "assistant":
                    content = [
                        b for b in content if not (isinstance(b, ir.TextBlock) and not b.text)
                    ]
                    for block in content:
                        _append(req, "assistant", block, only_results=False)
                else:
                    req.messages.append(ir.Message("user", content))
            else:
                raise bad(f"{path}.role", f"unknown role {role!r}")
        case "function_call":
            field(item, "call_id", str, "a string", path, required=True)
            field(item, "name", str, "a string", path, required=True)
            _append(req, "assistant", tool_use_from_item(item), only_results=False)
        case "function_call_output":
            call_id = field(item, "call_id", str, "a string", path, required=True)
            output = item.get("output")
            parts = [] if output is None else _parts(output, path, req)
            result = ir.ToolResultBlock(tool_use_id=call_id, content=parts)
            _append(req, "user", result, only_results=True)
        case "reasoning":
            _append(req, "assistant", thinking_from_item(item), only_results=False)
        case _:
            # built-in tool calls, item references and the like have no IR slot
            add_dropped(req, f"{path}.{kind}")


# --------------------------------------------------------------------------- request rendering


def render_request(req: ir.Request) -> dict[str, Any]:
    same = req.source_format == NAME
    body: dict[str, Any] = {"model": req.model}
    if req.system:
        if any(b.cache_control is not None for b in req.system):
            add_dropped(req, "cache_control")
        body["instructions"] = req.system_text()
    body["input"] = _render_input(req)
    if req.tools:
        body["tools"] = render_tools(req)
        if req.tool_choice is not None:
            body["tool_choice"] = render_tool_choice(req.tool_choice, nested=False)
    if req.parallel_tool_calls is not None:
        body["parallel_tool_calls"] = req.parallel_tool_calls
    if req.max_tokens is not None:
        body["max_output_tokens"] = req.max_tokens
    render_sampling(req, body)
    for name in ("stop", "seed"):
        if getattr(req, name):
            add_dropped(req, name)
    effort = render_effort(req)
    if effort is not None:
        body["reasoning"] = {"effort": effort}
    if req.response_format is not None:
        body["text"] = {"format": format_from_ir(req.response_format)}
    body["stream"] = req.stream
    render_metadata(req, body)
    merge_extra(req, body, same)
    return body


def render_tools(req: ir.Request) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = []
    for tool in req.tools:
        out: dict[str, Any] = {"type": "function", "name": tool.name}
        if tool.description:
            out["description"] = tool.description
        out["parameters"] = tool.parameters
        extra = tool_extra(tool, req)
        if req.source_format != NAME:
            # Responses defaults function tools to strict, which rejects ordinary schemas.
            extra.setdefault("strict", False)
        out.update(extra)
        tools.append(out)
    return tools


def _input_parts(blocks: list[ir.TextBlock | ir.ImageBlock]) -> str | list[dict[str, Any]]:
    if len(blocks) == 1 and isinstance(blocks[0], ir.TextBlock):
        return blocks[0].text
    return [
        {"type": "input_text", "text": b.text}
        if isinstance(b, ir.TextBlock)
        else {"type": "input_image", "image_url": image_url(b), "detail": "auto"}
        for b in blocks
    ]


def _render_input(req: ir.Request) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for msg in req.messages:
        _render_message(msg, req, items)
    return items


def _render_message(msg: ir.Message, req: ir.Request, items: list[dict[str, Any]]) -> None:
    pending: list[ir.TextBlock | ir.ImageBlock] = []
    texts: list[str] = []

    def flush_user() -> None:
        if pending:
            items.append({"type": "message", "role": "user", "content": _input_parts(pending)})
            pending.clear()

    def flush_assistant() -> None:
        if texts:
            items.append({"type": "message", "role": "assistant", "content": "\n\n".join(texts)})
            texts.clear()

    for block in msg.content:
        match block:
            case ir.TextBlock() if msg.role == "assistant":
                texts.append(block.text)
            case ir.TextBlock() | ir.ImageBlock():
                pending.append(block)
            case ir.ToolResultBlock():
                flush_user()
                parts: list[ir.TextBlock | ir.ImageBlock] = list(block.content)
                if block.is_error:
                    add_dropped(req, "tool_result.is_error")
                output = _input_parts(parts) if parts else ""
                items.append(
                    {
                        "type": "function_call_output",
                        "call_id": block.tool_use_id,
                        "output": output,
                    }
                )
            case ir.ToolUseBlock():
                flush_assistant()
                items.append(
                    {
                        "type": "function_call",
                        "call_id": block.id,
                        "name": block.name,
                        "arguments": block.arguments_json(),
                    }
                )
            case ir.ThinkingBlock() if block.origin == NAME and block.signature:
                # Only encrypted reasoning can be sent back without a stored response.
                flush_assistant()
                items.append(
                    {
                        "type": "reasoning",
                        "id": new_id("rs_"),
                        "summary": [{"type": "summary_text", "text": block.thinking}]
                        if block.thinking
                        else [],
                        "encrypted_content": block.signature,
                    }
                )
            case ir.ThinkingBlock():
                add_dropped(req, "thinking")
    if msg.role == "assistant":
        flush_assistant()
    elif msg.role == "system":
        if pending:
            items.append({"type": "message", "role": "system", "content": _input_parts(pending)})
    else:
        flush_user()
