"""Input validation at the web edge: request bodies against pydantic models, the shape limits
every JSON body must meet (nesting depth, well-formed text), and query parameters against the
same schema fragments the OpenAPI document publishes -- each failure a field-level 400."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import BaseModel, ValidationError

from router.errors import BadRequest, FieldError, validation_error

if TYPE_CHECKING:
    from web.openapi import Param

# Deeper than any real request (tool schemas nest a few dozen levels at most), and far below
# what the recursive code downstream (pydantic, masking, conversation views) can take.
MAX_JSON_DEPTH = 128
# A UTF-16 surrogate escape, or a UTF-8-encoded surrogate (json.loads decodes bytes with
# "surrogatepass"): only bodies with one of these can hold a lone surrogate.
_SURROGATE_HINT = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def parse_body[M: BaseModel](model: type[M], data: dict[str, Any]) -> M:
    """Validate ``data`` strictly (unknown fields and wrong types are 400 with details)."""
    try:
        return model.model_validate(data, strict=False, extra="forbid")
    except ValidationError as exc:
        raise validation_error(exc, "invalid request body") from exc


def too_deep(raw: bytes | bytearray) -> BadRequest:
    """The 400 for a body whose nesting overflowed the parser, naming the top-level field."""
    return BadRequest(
        f"JSON nested deeper than {MAX_JSON_DEPTH} levels",
        [FieldError(_top_level_key(raw) or "body", f"nested deeper than {MAX_JSON_DEPTH} levels")],
    )


def check_json_shape(raw: bytes | bytearray, data: Any) -> None:
    """Refuse what parses but cannot be handled: nesting deeper than ``MAX_JSON_DEPTH`` and
    strings with a lone surrogate (no UTF-8 form: they cannot be stored, logged or sent on).
    Both walks are skipped unless a cheap scan of the raw bytes says they could find something."""
    deep = raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH
    surrogates = _SURROGATE_HINT.search(raw) is not None
    if not deep and not surrogates:
        return
    stack: list[tuple[Any, tuple[str, ...]]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, dict | list):
            if len(path) >= MAX_JSON_DEPTH:
                field = path[0] if path else "body"
                raise BadRequest(
                    f"JSON nested deeper than {MAX_JSON_DEPTH} levels",
                    [FieldError(field, f"nested deeper than {MAX_JSON_DEPTH} levels")],
                )
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if surrogates and isinstance(key, str) and _SURROGATE.search(key):
                    raise _surrogate_error(path)
                stack.append((item, (*path, str(key))))
        elif surrogates and isinstance(value, str) and _SURROGATE.search(value):
            raise _surrogate_error(path)


def _surrogate_error(path: tuple[str, ...]) -> BadRequest:
    field = ".".join(path) or "body"
    return BadRequest(
        f"'{field}' holds a lone UTF-16 surrogate (not valid Unicode text)",
        [FieldError(field, "contains a lone surrogate (invalid Unicode)")],
    )


def _top_level_key(raw: bytes | bytearray) -> str | None:
    """The key of the top-level member where the text first nests past the limit (a small
    scanner: the parser gave up, so there is no tree to look at)."""
    depth, key, i, n = 0, None, 0, len(raw)
    last_string: str | None = None
    while i < n:
        c = raw[i]
        if c == 0x22:  # a string: skip it whole, escapes included
            j = i + 1
            while j < n and raw[j] != 0x22:
                j += 2 if raw[j] == 0x5C else 1
            last_string = raw[i + 1 : j].decode("utf-8", "replace")
            i = j + 1
            continue
        if c == 0x3A and depth == 1:  # ':' of a top-level member
            key = last_string
        elif c in (0x5B, 0x7B):
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return key if raw.lstrip()[:1] == b"{" else None
        elif c in (0x5D, 0x7D):
            depth -= 1
        i += 1
    return key


def query_params(request: web.Request, params: tuple[Param, ...]) -> dict[str, Any]:
    """The declared query parameters, checked against their published schema fragments
    (integer, minimum, maximum, enum, default); a bad one is a 400 naming it."""
    out: dict[str, Any] = {}
    for param in params:
        schema = param.schema
        raw = request.query.get(param.name)
        if raw is None or raw == "":
            if param.required:
                raise BadRequest(f"missing '{param.name}'", [FieldError(param.name, "required")])
            out[param.name] = schema.get("default")
            continue
        value: Any = raw
        if schema.get("type") == "integer":
            # int() of a 4300-digit string is refused by Python itself; bounds come next.
            if not re.fullmatch(r"-?\d{1,30}", raw):
                raise BadRequest(
                    f"invalid '{param.name}'", [FieldError(param.name, "must be an integer")]
                )
            value = int(raw)
            low, high = schema.get("minimum"), schema.get("maximum")
            if (low is not None and value < low) or (high is not None and value > high):
                bounds = f"between {low} and {high}" if high is not None else f">= {low}"
                raise BadRequest(
                    f"invalid '{param.name}'", [FieldError(param.name, f"must be {bounds}")]
                )
        if "enum" in schema and value not in schema["enum"]:
            choices = ", ".join(str(c) for c in schema["enum"])
            raise BadRequest(
                f"invalid '{param.name}'", [FieldError(param.name, f"must be one of: {choices}")]
            )
        out[param.name] = value
    return out
