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
    function_tool,
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
from router.formats.tools import FREE_FORM_FIELD, free_form_input, free_form_schema

CUSTOM_CALL = "custom_tool_call"
TOOLS_ITEM = "additional_tools"  # an input item declaring tools (Codex: namespaces of them)

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
    """A ``function_call`` or ``custom_tool_call`` item (free-form input kept as the
    one-string-field object other formats call the tool with)."""
    # Pair by call_id (router.md case 1): the item id is Responses-internal.
    namespace = item.get("namespace")
    block = ir.ToolUseBlock(
        id=str(item.get("call_id") or ""),
        name=str(item.get("name") or ""),
        namespace=namespace if isinstance(namespace, str) else None,
    )
    if item.get("type") == CUSTOM_CALL:
        text = item.get("input")
        block.free_form = True
        block.input = {FREE_FORM_FIELD: text if isinstance(text, str) else ""}
        return block
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
    # tools here: Responses also has custom and namespace tools (the rest is shared)
    parse_tooling({k: v for k, v in body.items() if k != "tools"}, req, nested=False)
    _parse_tools(body, req)
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
        case "function_call" | "custom_tool_call":
            field(item, "call_id", str, "a string", path, required=True)
            field(item, "name", str, "a string", path, required=True)
            field(item, "namespace", str, "a string", path)
            if kind == CUSTOM_CALL:
                field(item, "input", str, "a string", path, required=True)
            _append(req, "assistant", tool_use_from_item(item), only_results=False)
        case "function_call_output" | "custom_tool_call_output":
            call_id = field(item, "call_id", str, "a string", path, required=True)
            output = item.get("output")
            parts = [] if output is None else _parts(output, path, req)
            result = ir.ToolResultBlock(tool_use_id=call_id, content=parts)
            _append(req, "user", result, only_results=True)
        case "reasoning":
            _append(req, "assistant", thinking_from_item(item), only_results=False)
        case "additional_tools":
            tools = field(item, "tools", list, "an array", path, required=True)
            entries = _parse_tool_list(req, tools, f"{path}.tools", None)
            own = {k: v for k, v in item.items() if k not in ("type", "tools")}
            req.tool_namespaces_item = {**own, "entries": entries}
        case _:
            # built-in tool calls, item references and the like have no IR slot
            add_dropped(req, f"{path}.{kind}")


def _parse_tools(body: dict[str, Any], req: ir.Request) -> None:
    tools = field(body, "tools", list, "an array") or []
    other = [tool for tool in _parse_tool_list(req, tools, "tools", None) if isinstance(tool, dict)]
    if other:
        req.extra["tools"] = other  # built-in tools ride along for same-format renders


def _parse_tool_list(
    req: ir.Request, tools: list[Any], path: str, namespace: str | None
) -> list[str | dict[str, Any]]:
    """Function, custom and (at the top) namespace tools into ``req.tools``. Returns each
    entry in order: the name of a tool or namespace parsed, or a built-in tool's object (no IR
    slot; inside a namespace it is listed as dropped)."""
    entries: list[str | dict[str, Any]] = []
    for k, raw in enumerate(tools):
        tpath = f"{path}[{k}]"
        tool = as_object(raw, tpath)
        kind = tool.get("type")
        if kind == "function":
            parsed = function_tool(tool, tpath, skip=("type",))
        elif kind == "custom":
            parsed = _custom_tool(tool, tpath)
        elif kind == "namespace" and namespace is None:
            name = field(tool, "name", str, "a string", tpath, required=True)
            req.tool_namespaces[name] = {
                k: v for k, v in tool.items() if k not in ("type", "name", "tools")
            }
            inner = field(tool, "tools", list, "an array", tpath, required=True)
            _parse_tool_list(req, inner, f"{tpath}.tools", name)
            entries.append(name)
            continue
        elif namespace is None:
            entries.append(tool)
            continue
        else:
            add_dropped(req, f"{tpath}.{kind}")
            continue
        parsed.namespace = namespace
        req.tools.append(parsed)
        entries.append(parsed.name)
    return entries


def _custom_tool(tool: dict[str, Any], path: str) -> ir.Tool:
    """A custom tool: its input is one free-form string, in the grammar ``format`` gives."""
    fmt = field(tool, "format", dict, "an object", path)
    return ir.Tool(
        name=field(tool, "name", str, "a string", path, required=True),
        description=field(tool, "description", str, "a string", path),
        parameters=free_form_schema(fmt),
        extra={k: v for k, v in tool.items() if k not in ("type", "name", "description", "format")},
        free_form=True,
        input_format=fmt,
    )


# --------------------------------------------------------------------------- request rendering


def render_request(req: ir.Request) -> dict[str, Any]:
    same = req.source_format == NAME
    body: dict[str, Any] = {"model": req.model}
    if req.system:
        if any(b.cache_control is not None for b in req.system):
            add_dropped(req, "cache_control")
        body["instructions"] = req.system_text()
    body["input"] = _render_input(req)
    tools = render_tools(req)
    if req.tool_namespaces_item is not None:
        body["input"].insert(0, _tools_item(req))
    if tools:
        body["tools"] = tools
    if req.tools and req.tool_choice is not None:
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
    """The ``tools`` field: every tool not declared in the ``additional_tools`` item, the
    namespaced ones inside their namespace."""
    in_item = _item_entries(req)
    return [
        entry
        for name, entry in _tool_entries(req).items()
        if name not in in_item and isinstance(entry, dict)
    ]


def _item_entries(req: ir.Request) -> list[Any]:
    item = req.tool_namespaces_item
    entries = item.get("entries") if item is not None else None
    return entries if isinstance(entries, list) else []


def _tools_item(req: ir.Request) -> dict[str, Any]:
    """The ``additional_tools`` input item as the client sent it (entries in their order)."""
    item = dict(req.tool_namespaces_item or {})
    entries = item.pop("entries", [])
    rendered = _tool_entries(req)
    tools = [
        rendered[entry] if isinstance(entry, str) and entry in rendered else entry
        for entry in entries
    ]
    return {"type": TOOLS_ITEM, **item, "tools": [t for t in tools if isinstance(t, dict)]}


def _tool_entries(req: ir.Request) -> dict[str, dict[str, Any]]:
    """Top-level tool entries by name: a tool, or a namespace holding its tools."""
    entries: dict[str, dict[str, Any]] = {}
    for tool in req.tools:
        out = _render_tool(tool, req)
        if tool.namespace is None:
            entries[tool.name] = out
            continue
        group = entries.get(tool.namespace)
        if group is None:
            meta = req.tool_namespaces.get(tool.namespace, {})
            group = entries[tool.namespace] = {
                "type": "namespace",
                "name": tool.namespace,
                **meta,
                "tools": [],
            }
        group["tools"].append(out)
    return entries


def _render_tool(tool: ir.Tool, req: ir.Request) -> dict[str, Any]:
    if tool.free_form:
        out: dict[str, Any] = {"type": "custom", "name": tool.name}
        if tool.description:
            out["description"] = tool.description
        if tool.input_format is not None:
            out["format"] = tool.input_format
        out.update(tool_extra(tool, req))
        return out
    out = {"type": "function", "name": tool.name}
    if tool.description:
        out["description"] = tool.description
    extra = tool_extra(tool, req)
    if req.source_format != NAME:
        # Responses defaults function tools to strict, which rejects ordinary schemas.
        extra.setdefault("strict", False)
    out["parameters"] = tool.parameters
    out.update(extra)
    return out


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
    custom = {
        b.id
        for msg in req.messages
        for b in msg.content
        if isinstance(b, ir.ToolUseBlock) and b.free_form
    }
    for msg in req.messages:
        _render_message(msg, req, items, custom)
    return items


def call_input_item(block: ir.ToolUseBlock) -> dict[str, Any]:
    """A call in the input history, as the client's own item type."""
    item: dict[str, Any]
    if block.free_form:
        item = {"type": CUSTOM_CALL, "call_id": block.id, "name": block.name}
        item["input"] = free_form_input(block)
    else:
        item = {"type": "function_call", "call_id": block.id, "name": block.name}
        item["arguments"] = block.arguments_json()
    if block.namespace is not None:
        item["namespace"] = block.namespace
    return item


def _render_message(
    msg: ir.Message, req: ir.Request, items: list[dict[str, Any]], custom: set[str]
) -> None:
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
                kind = "custom_tool_call_output" if block.tool_use_id in custom else None
                items.append(
                    {
                        "type": kind or "function_call_output",
                        "call_id": block.tool_use_id,
                        "output": output,
                    }
                )
            case ir.ToolUseBlock():
                flush_assistant()
                items.append(call_input_item(block))
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
