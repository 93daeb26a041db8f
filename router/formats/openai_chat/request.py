"""Chat Completions requests: parse a client's body into the IR, render the IR for an upstream."""

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
    parse_effort,
    parse_stop,
    parse_tooling,
    parse_user_and_extra,
    render_effort,
    render_metadata,
    render_sampling,
    render_tool_choice,
    require,
    tool_extra,
)
from router.formats.openai_chat import NAME
from router.formats.tools import call_name, tool_name

MAX_STOP = 4  # the API rejects more stop sequences than this

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


# --------------------------------------------------------------------------- request parsing


def parse_request(body: dict[str, Any]) -> ir.Request:
    body = as_object(body, "body")
    req = ir.Request(model=require(body, "model", str, "a string"), source_format=NAME)
    messages = require(body, "messages", list, "an array")
    if not messages:
        raise bad("messages", "must contain at least one message")
    for i, raw in enumerate(messages):
        _parse_message(req, raw, f"messages[{i}]")
    # Each optional field is read only when the body has it (most bodies name a few): an
    # absent one is what the IR's default already says.
    if not _TOOLING.isdisjoint(body):
        parse_tooling(body, req, nested=True)
    if "max_completion_tokens" in body:
        req.max_tokens = field(body, "max_completion_tokens", int, "an integer")
    if req.max_tokens is None and "max_tokens" in body:
        req.max_tokens = field(body, "max_tokens", int, "an integer")
    if "temperature" in body:
        req.temperature = field(body, "temperature", (int, float), "a number")
    if "top_p" in body:
        req.top_p = field(body, "top_p", (int, float), "a number")
    if "stop" in body:
        req.stop = parse_stop(body["stop"])
    if "seed" in body:
        req.seed = field(body, "seed", int, "an integer")
    if "reasoning_effort" in body:
        req.reasoning_effort = parse_effort(body["reasoning_effort"], "reasoning_effort")
    if "response_format" in body:
        req.response_format = field(body, "response_format", dict, "an object")
    if "stream" in body:
        req.stream = bool(field(body, "stream", bool, "a boolean"))
    if "stream_options" in body:
        options = field(body, "stream_options", dict, "an object") or {}
        include = field(options, "include_usage", bool, "a boolean", "stream_options")
        req.include_usage = bool(include)
        rest = {k: v for k, v in options.items() if k != "include_usage"}
        if rest:
            req.extra["stream_options"] = rest
    parse_user_and_extra(body, req, _CHAT_FIELDS)
    return req


_TOOLING = frozenset({"tools", "tool_choice", "parallel_tool_calls"})


def _content_blocks(
    content: Any, path: str, req: ir.Request, *, images: bool
) -> list[ir.TextBlock | ir.ImageBlock]:
    if isinstance(content, str):  # the usual shape: one text part
        return [ir.TextBlock(content)]
    out: list[ir.TextBlock | ir.ImageBlock] = []
    for ptype, part, ppath in content_parts(content, path):
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
    name = field(msg, "name", str, "a string", path) if "name" in msg else None
    match role:
        case "system" | "developer":
            if msg.get("content") is None:
                raise bad(f"{path}.content", "field required")
            blocks = _content_blocks(msg["content"], path, req, images=False)
            system = [b for b in blocks if isinstance(b, ir.TextBlock)]
            if req.messages:  # a system message between turns stays where it was
                req.messages.append(ir.Message("system", list(system)))
            else:
                req.system.extend(system)
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


# --------------------------------------------------------------------------- request rendering


def render_request(req: ir.Request) -> dict[str, Any]:
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
                    "name": tool_name(tool),
                    **({"description": tool.description} if tool.description else {}),
                    "parameters": tool.parameters,
                    **tool_extra(tool, req),
                },
            }
            for tool in req.tools
        ]
        # The API rejects tool_choice / parallel_tool_calls when no tools are given.
        if req.tool_choice is not None:
            body["tool_choice"] = render_tool_choice(req.tool_choice, nested=True)
        if req.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = req.parallel_tool_calls
    if req.max_tokens is not None:
        key = "max_completion_tokens" if ir.is_openai_reasoning_model(req.model) else "max_tokens"
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
                        "function": {"name": call_name(block), "arguments": block.arguments_json()},
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
