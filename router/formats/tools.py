"""Namespaced and free-form (custom) tools in formats that have neither.

Responses clients (Codex) declare tools inside namespaces and declare custom tools whose input
is one free-form string constrained by a grammar. Chat Completions, Anthropic and Gemini get:

* a namespaced tool under :func:`flat_name` (``clock__sleep``; the default namespace
  ``functions`` keeps the bare name), every format's name charset allows it;
* a free-form tool as a function taking one string field (:func:`free_form_schema`, the
  grammar in its description); the model's call carries ``{"input": text}``.

The Responses renderer maps a call back with :func:`find_tool` and :func:`free_form_input`.
"""

from __future__ import annotations

import json
from typing import Any

from router import ir

# "functions" is the default namespace of OpenAI's tool conventions (Codex treats it as none).
DEFAULT_NAMESPACES = ("", "functions")
SEPARATOR = "__"  # valid in every format's tool names (Anthropic allows [A-Za-z0-9_-])
FREE_FORM_FIELD = "input"


def flat_name(namespace: str | None, name: str) -> str:
    """The name a format without namespaces knows a tool (or a call of it) by."""
    if namespace is None or namespace in DEFAULT_NAMESPACES:
        return name
    return f"{namespace}{SEPARATOR}{name}"


def tool_name(tool: ir.Tool) -> str:
    return flat_name(tool.namespace, tool.name)


def call_name(block: ir.ToolUseBlock) -> str:
    return flat_name(block.namespace, block.name)


def free_form_schema(input_format: dict[str, Any] | None) -> dict[str, Any]:
    """The JSON schema standing in for a free-form tool's input where a format has no custom
    tools: one string field whose description carries the grammar the string must follow."""
    if input_format and input_format.get("type") == "grammar":
        syntax = input_format.get("syntax") or "grammar"
        definition = input_format.get("definition") or ""
        about = f"Free-form input (not JSON) that must match this {syntax} grammar:\n{definition}"
    else:
        about = "Free-form input (not JSON)."
    return {
        "type": "object",
        "properties": {FREE_FORM_FIELD: {"type": "string", "description": about}},
        "required": [FREE_FORM_FIELD],
        "additionalProperties": False,
    }


def free_form_input(block: ir.ToolUseBlock) -> str:
    """The text of a free-form call made through the one-string-field stand-in (whatever
    else the model sent, as it sent it)."""
    if isinstance(block.input, dict):
        value = block.input.get(FREE_FORM_FIELD)
        if isinstance(value, str):
            return value
    if block.raw_arguments is not None:
        return block.raw_arguments
    if isinstance(block.input, str):
        return block.input
    return json.dumps(block.input, ensure_ascii=False) if block.input else ""


def find_tool(req: ir.Request, name: str) -> ir.Tool | None:
    """The request's tool that a format without namespaces calls ``name``."""
    return next((t for t in req.tools if tool_name(t) == name), None)


def client_call(req: ir.Request, block: ir.ToolUseBlock) -> tuple[str, str | None, bool]:
    """``(name, namespace, free_form)`` of a model's call as the client declared the tool:
    what the block says when its format knew, else what the request's tool says."""
    if block.namespace is not None or block.free_form:
        return block.name, block.namespace, block.free_form
    tool = find_tool(req, block.name)
    if tool is None:
        return block.name, None, False
    return tool.name, tool.namespace, tool.free_form
