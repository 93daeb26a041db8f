"""Gemini parts <-> IR blocks, and the field access (camelCase or snake_case) every Gemini
module uses."""

from __future__ import annotations

import json
import re
from typing import Any

from router import ir
from router.errors import BadRequest, FieldError
from router.formats.gemini import NAME
from router.formats.tools import call_name


def _snake(camel: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", camel).lower()


def read(d: dict[str, Any], camel: str) -> Any:
    """A field by its camelCase name, falling back to the snake_case spelling."""
    if camel in d:
        return d[camel]
    return d.get(_snake(camel))


def rest_of(d: dict[str, Any], known: tuple[str, ...]) -> dict[str, Any]:
    """The fields of ``d`` that are not in ``known`` (in either spelling)."""
    names = set(known) | {_snake(k) for k in known}
    return {k: v for k, v in d.items() if k not in names}


def bad(path: str, message: str) -> BadRequest:
    return BadRequest(f"'{path}' {message}", [FieldError(path, message)])


def optional_field(
    d: dict[str, Any], camel: str, kind: type | tuple[type, ...], label: str, path: str
) -> Any:
    """An optional field, type-checked; ``None`` when absent."""
    value = read(d, camel)
    if value is None:
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _types(kind)):
        raise bad(f"{path}{camel}", f"must be {label}")
    return value


def _types(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def is_generated_id(tool_id: str, name: str) -> bool:
    return re.fullmatch(rf"call_{re.escape(name)}_\d+", tool_id) is not None


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def result_text(response: Any) -> tuple[str, bool]:
    """``functionResponse.response`` -> (text, is_error), unwrapping our own wrappers."""
    if isinstance(response, dict) and len(response) == 1:
        key, value = next(iter(response.items()))
        if key in ("result", "error") and isinstance(value, str):
            return value, key == "error"
    if isinstance(response, str):
        return response, False
    return dumps(response), False


def result_object(text: str, is_error: bool) -> dict[str, Any]:
    if is_error:
        return {"error": text}
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if isinstance(value, dict) and result_text(value) == (dumps(value), False):
        return value
    return {"result": text}


def code_text(part: dict[str, Any]) -> str | None:
    """Code-execution parts as readable text (the IR has no slot for them)."""
    code = read(part, "executableCode")
    if isinstance(code, dict):
        lang = str(read(code, "language") or "").lower().replace("language_unspecified", "")
        return f"```{lang}\n{read(code, 'code') or ''}\n```"
    result = read(part, "codeExecutionResult")
    if isinstance(result, dict):
        return str(read(result, "output") or "")
    return None


# --------------------------------------------------------------------------- rendering parts


class PartWriter:
    """IR blocks -> Gemini parts. A signature-only thinking block waits for the next part.

    ``dropped`` is the request's list for history sent to Gemini, where another provider's
    thinking must not go; None renders a response for a client, which sees any reasoning as
    thought parts (only another provider's signatures are left out)."""

    def __init__(self, dropped: list[str] | None) -> None:
        self.dropped = dropped
        self.names: dict[str, str] = {}  # tool_use_id -> function name, for tool results

    def parts(self, blocks: list[ir.Block], where: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        signature: str | None = None
        for k, block in enumerate(blocks):
            part: dict[str, Any] | None = None
            match block:
                case ir.ThinkingBlock() if block.origin != NAME or block.redacted:
                    if self.dropped is None and block.thinking and not block.redacted:
                        out.append({"text": block.thinking, "thought": True})
                    else:
                        self._drop("thinking")
                    continue
                case ir.ThinkingBlock():
                    if not block.thinking:
                        signature = block.signature or signature
                        continue
                    part = {"text": block.thinking, "thought": True}
                    if block.signature:
                        part["thoughtSignature"] = block.signature
                    out.append(part)
                    continue
                case ir.TextBlock():
                    if block.cache_control is not None:
                        self._drop("cache_control")
                    part = {"text": block.text}
                case ir.ImageBlock():
                    part = image_part(block)
                case ir.ToolUseBlock():
                    name = call_name(block)
                    self.names[block.id] = name
                    call: dict[str, Any] = {"name": name, "args": call_args(block)}
                    if block.id and not is_generated_id(block.id, name):
                        call["id"] = block.id
                    part = {"functionCall": call}
                case ir.ToolResultBlock():
                    part = {"functionResponse": self._result(block, f"{where}[{k}]")}
                case _:
                    continue
            if signature is not None:
                part["thoughtSignature"] = signature
                signature = None
            out.append(part)
        if signature is not None:
            out.append({"text": "", "thoughtSignature": signature})
        return out

    def _result(self, block: ir.ToolResultBlock, where: str) -> dict[str, Any]:
        name = block.name or self.names.get(block.tool_use_id)
        if not name:
            raise bad(f"{where}.tool_use_id", f"no earlier tool call has id '{block.tool_use_id}'")
        if any(isinstance(b, ir.ImageBlock) for b in block.content):
            self._drop("tool_result.image")
        out: dict[str, Any] = {
            "name": name,
            "response": result_object(block.text(), block.is_error),
        }
        if block.tool_use_id and not is_generated_id(block.tool_use_id, name):
            out["id"] = block.tool_use_id
        return out

    def _drop(self, what: str) -> None:
        if self.dropped is not None and what not in self.dropped:
            self.dropped.append(what)


def call_args(block: ir.ToolUseBlock) -> Any:
    if block.raw_arguments is not None:
        try:
            return json.loads(block.raw_arguments)
        except ValueError:
            return {}  # Gemini cannot carry arguments that are not JSON
    return block.input


def image_part(block: ir.ImageBlock) -> dict[str, Any]:
    if block.data is not None:
        return {"inlineData": {"mimeType": block.media_type or "image/png", "data": block.data}}
    url = block.url or ""
    if url.startswith("data:") and ";base64," in url:
        head, _, data = url.partition(";base64,")
        return {"inlineData": {"mimeType": head[5:] or "image/png", "data": data}}
    file: dict[str, Any] = {"fileUri": url}
    if block.media_type:
        file["mimeType"] = block.media_type
    return {"fileData": file}
